"""Gradient-weighted class activation maps read from one capture: Grad-CAM and its relatives.

All of them combine the activations ``F`` (N, C, h, w) of the tapped layer with the gradient
``g = dz_c/dF`` of the target logit (one shared vector-Jacobian product):

=======================  ==========================================================
``gradcam``              ReLU(sum_k mean_ij(g_k) F_k)
``gradcampp``            Grad-CAM++ closed form (eq. 19): pixel weights a = g^2 / (2 g^2 +
                         (sum_ab F_ab) g^3), w_k = sum_ij a ReLU(g), ReLU(sum_k w_k F_k)
``hirescam``             ReLU(sum_k g_k * F_k)
``gradcam-elementwise``  ReLU(sum_k ReLU(g_k * F_k))
``xgradcam``             w_k = sum_ij g F / sum_ij F, ReLU(sum_k w_k F_k)
``layercam``             ReLU(sum_k ReLU(g_k) * F_k)
=======================  ==========================================================
"""
from __future__ import annotations

import torch

from attribmap.tap import Capture

__all__ = ["gradcam", "gradcampp", "gradcampp_weights", "hirescam", "gradcam_elementwise", "xgradcam", "layercam",
           "weighted_channels"]


def weighted_channels(weights: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
    """sum_k weights[n, k] * feats[n, k]: (N, C) x (N, C, h, w) -> (N, h, w).

    Parameters
    ----------
    weights : torch.Tensor
        (N, C) channel weights, cast to the dtype of ``feats``.
    feats : torch.Tensor
        (N, C, h, w) activations.

    Returns
    -------
    torch.Tensor
        (N, h, w) weighted channel sums (no ReLU).
    """
    return torch.einsum("nc,nchw->nhw", weights.to(feats.dtype), feats)


def _safe_ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num / den, 0 where den == 0."""
    ok = den != 0
    return torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), torch.zeros_like(num))


def gradcam(capture: Capture, layer: str) -> torch.Tensor:
    """Grad-CAM: ReLU(sum_k alpha_k F_k), alpha_k = spatial mean of dz_c/dF_k; (N, h, w).

    Parameters
    ----------
    capture : Capture
        The recorded forward pass: activations of ``layer`` (N, C, h, w), logits and
        targets, one row per image and target class, and the cached gradients.
    layer : str
        Name of the tapped layer whose activations F are read.

    Returns
    -------
    torch.Tensor
        (N, h, w) raw maps on the layer's grid, one per row of ``capture``.

    References
    ----------
    Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
    Localization", ICCV 2017.
    """
    grads = capture.score_grad(layer)
    return torch.relu(weighted_channels(grads.mean(dim=(2, 3)), capture.activations(layer)))


def gradcampp_weights(feats: torch.Tensor, d1: torch.Tensor, d2: torch.Tensor, d3: torch.Tensor) -> torch.Tensor:
    """Grad-CAM++ channel weights (N, C) from the first three derivatives (N, C, h, w).

    a_ij = d2_ij / (2 d2_ij + (sum_ab F_ab) d3_ij) per channel (0 where the denominator is 0),
    w_k = sum_ij a_ij ReLU(d1_ij). For exponential scores d2 = g^2 and d3 = g^3 (eq. 19);
    Smooth Grad-CAM++ passes their averages over noisy inputs.

    Parameters
    ----------
    feats : torch.Tensor
        (N, C, h, w) activations F.
    d1, d2, d3 : torch.Tensor
        (N, C, h, w) first, second and third derivatives of the score with respect to F
        (g, g^2, g^3 for Grad-CAM++).

    Returns
    -------
    torch.Tensor
        (N, C) channel weights w.
    """
    activation_sum = feats.sum(dim=(2, 3), keepdim=True)
    a = _safe_ratio(d2, 2 * d2 + activation_sum * d3)
    return (a * torch.relu(d1)).sum(dim=(2, 3))


def gradcampp(capture: Capture, layer: str) -> torch.Tensor:
    """Grad-CAM++ with the closed form for exponential scores (eq. 19); (N, h, w).

    a_ij = g_ij^2 / (2 g_ij^2 + (sum_ab F_ab) g_ij^3) per channel (0 where the denominator is
    0): the spatial **sum of the activations** times the gradient cubed **at (i, j)**.
    w_k = sum_ij a_ij ReLU(g_ij), map = ReLU(sum_k w_k F_k), g = dz_c/dF.

    Parameters
    ----------
    capture : Capture
        The recorded forward pass: activations of ``layer`` (N, C, h, w), logits and
        targets, one row per image and target class, and the cached gradients.
    layer : str
        Name of the tapped layer whose activations F are read.

    Returns
    -------
    torch.Tensor
        (N, h, w) raw maps on the layer's grid, one per row of ``capture``.

    References
    ----------
    Chattopadhay, Sarkar, Howlader, Balasubramanian, "Grad-CAM++: Generalized Gradient-based
    Visual Explanations for Deep Convolutional Networks", WACV 2018, eq. 19.
    """
    grads = capture.score_grad(layer)
    feats = capture.activations(layer)
    g2 = grads.pow(2)
    weights = gradcampp_weights(feats, grads, g2, g2 * grads)
    return torch.relu(weighted_channels(weights, feats))


def hirescam(capture: Capture, layer: str) -> torch.Tensor:
    """HiResCAM: ReLU(sum_k g_k * F_k), the gradient applied element-wise; (N, h, w).

    Parameters
    ----------
    capture : Capture
        The recorded forward pass: activations of ``layer`` (N, C, h, w), logits and
        targets, one row per image and target class, and the cached gradients.
    layer : str
        Name of the tapped layer whose activations F are read.

    Returns
    -------
    torch.Tensor
        (N, h, w) raw maps on the layer's grid, one per row of ``capture``.

    References
    ----------
    Draelos, Carin, "Use HiResCAM instead of Grad-CAM for faithful explanations of
    convolutional neural networks", arXiv:2011.08891, 2020.
    """
    return torch.relu((capture.score_grad(layer) * capture.activations(layer)).sum(dim=1))


def gradcam_elementwise(capture: Capture, layer: str) -> torch.Tensor:
    """Element-wise Grad-CAM: ReLU(sum_k ReLU(g_k * F_k)); (N, h, w).

    The variant of HiResCAM in pytorch-grad-cam (``GradCAMElementWise``) that keeps only the
    positive products before summing the channels.

    Parameters
    ----------
    capture : Capture
        The recorded forward pass: activations of ``layer`` (N, C, h, w), logits and
        targets, one row per image and target class, and the cached gradients.
    layer : str
        Name of the tapped layer whose activations F are read.

    Returns
    -------
    torch.Tensor
        (N, h, w) raw maps on the layer's grid, one per row of ``capture``.

    References
    ----------
    Draelos, Carin, arXiv:2011.08891, 2020 (HiResCAM, of which this is the positive-part
    variant).
    """
    return torch.relu(torch.relu(capture.score_grad(layer) * capture.activations(layer)).sum(dim=1))


def xgradcam(capture: Capture, layer: str) -> torch.Tensor:
    """XGrad-CAM: w_k = sum_ij g F / sum_ij F (0 where sum F = 0), ReLU(sum_k w_k F_k); (N, h, w).

    Parameters
    ----------
    capture : Capture
        The recorded forward pass: activations of ``layer`` (N, C, h, w), logits and
        targets, one row per image and target class, and the cached gradients.
    layer : str
        Name of the tapped layer whose activations F are read.

    Returns
    -------
    torch.Tensor
        (N, h, w) raw maps on the layer's grid, one per row of ``capture``.

    References
    ----------
    Fu et al., "Axiom-based Grad-CAM: Towards Accurate Visualization and Explanation of CNNs",
    BMVC 2020 (arXiv:2008.02312).
    """
    grads = capture.score_grad(layer)
    feats = capture.activations(layer)
    weights = _safe_ratio((grads * feats).sum(dim=(2, 3)), feats.sum(dim=(2, 3)))
    return torch.relu(weighted_channels(weights, feats))


def layercam(capture: Capture, layer: str) -> torch.Tensor:
    """LayerCAM: ReLU(sum_k ReLU(g_k) * F_k), positive gradients as pixel weights; (N, h, w).

    Parameters
    ----------
    capture : Capture
        The recorded forward pass: activations of ``layer`` (N, C, h, w), logits and
        targets, one row per image and target class, and the cached gradients.
    layer : str
        Name of the tapped layer whose activations F are read.

    Returns
    -------
    torch.Tensor
        (N, h, w) raw maps on the layer's grid, one per row of ``capture``.

    References
    ----------
    Jiang, Zhang, Hou, Cheng, Wei, "LayerCAM: Exploring Hierarchical Class Activation Maps for
    Localization", IEEE TIP 30, 2021.
    """
    return torch.relu((torch.relu(capture.score_grad(layer)) * capture.activations(layer)).sum(dim=1))
