"""Dual-Gradients Localization (Tan et al., ACM MM 2020), as the authors' code computes it.

* G^c = dz_c/dF, the gradient of the target **logit**;
* G^L = dL/dF with dL/dz taken as p - alpha * onehot(c) (TensorFlow semantics of the
  authors' loss, alpha = 10); it is *not* autograd of alpha * cross-entropy;
* F~ = F / ||F||_2 - G^L / ||G^L||_2, each norm over the whole (C, h, w) tensor of an image;
* maps: ``dgl`` = sum_k G^c_k * F~_k, ``dgl-psb`` = sum_k G^c_k * F_k,
  ``dgl-cem`` = sum_k F~_k. No ReLU anywhere.
"""
from __future__ import annotations

import torch

from attribmap.gradients import DEFAULT_DGL_ALPHA
from attribmap.tap import Capture

__all__ = ["dgl", "dgl_psb", "dgl_cem", "enhanced_features", "DEFAULT_ALPHA"]

DEFAULT_ALPHA = DEFAULT_DGL_ALPHA
_EPS = 1e-12


def _unit(x: torch.Tensor) -> torch.Tensor:
    norm = x.flatten(1).norm(dim=1).clamp_min(_EPS)
    return x / norm.view(-1, *([1] * (x.dim() - 1)))


def enhanced_features(capture: Capture, layer: str, alpha: float = DEFAULT_ALPHA) -> torch.Tensor:
    """F~ = F/||F|| - G^L/||G^L|| (N, C, h, w) of the class-aware enhanced map branch.

    Parameters
    ----------
    capture : Capture
        The recorded forward pass: activations of ``layer`` (N, C, h, w), logits and
        targets, one row per image and target class, and the cached gradients.
    layer : str
        Name of the tapped layer whose activations F are read.
    alpha : float
        Weight of the one-hot term of the loss gradient G^L (10, as the authors' code).

    Returns
    -------
    torch.Tensor
        (N, C, h, w) enhanced features F~, each norm taken over an image's whole (C, h, w).

    References
    ----------
    Tan, Ruan, Gu, Wei, Zhao, "Dual-Gradients Localization Framework for Weakly Supervised
    Object Localization", ACM MM 2020.
    """
    feats = capture.activations(layer)
    return _unit(feats) - _unit(capture.loss_grad(layer, alpha))


def dgl(capture: Capture, layer: str, alpha: float = DEFAULT_ALPHA) -> torch.Tensor:
    """DGL, both branches fused: sum_k G^c_k * F~_k; (N, h, w).

    Parameters
    ----------
    capture : Capture
        The recorded forward pass: activations of ``layer`` (N, C, h, w), logits and
        targets, one row per image and target class, and the cached gradients.
    layer : str
        Name of the tapped layer whose activations F are read.
    alpha : float
        Weight of the one-hot term of the loss gradient G^L (10, as the authors' code).

    Returns
    -------
    torch.Tensor
        (N, h, w) raw maps on the layer's grid, one per row of ``capture`` (signed: no ReLU).

    References
    ----------
    Tan, Ruan, Gu, Wei, Zhao, "Dual-Gradients Localization Framework for Weakly Supervised
    Object Localization", ACM MM 2020.
    """
    return (capture.score_grad(layer) * enhanced_features(capture, layer, alpha)).sum(dim=1)


def dgl_psb(capture: Capture, layer: str) -> torch.Tensor:
    """DGL pixel-level selection branch: sum_k G^c_k * F_k; (N, h, w).

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
        (N, h, w) raw maps on the layer's grid, one per row of ``capture`` (signed: no ReLU).

    References
    ----------
    Tan, Ruan, Gu, Wei, Zhao, "Dual-Gradients Localization Framework for Weakly Supervised
    Object Localization", ACM MM 2020.
    """
    return (capture.score_grad(layer) * capture.activations(layer)).sum(dim=1)


def dgl_cem(capture: Capture, layer: str, alpha: float = DEFAULT_ALPHA) -> torch.Tensor:
    """DGL class-aware enhanced map branch: sum_k F~_k; (N, h, w).

    Parameters
    ----------
    capture : Capture
        The recorded forward pass: activations of ``layer`` (N, C, h, w), logits and
        targets, one row per image and target class, and the cached gradients.
    layer : str
        Name of the tapped layer whose activations F are read.
    alpha : float
        Weight of the one-hot term of the loss gradient G^L (10, as the authors' code).

    Returns
    -------
    torch.Tensor
        (N, h, w) raw maps on the layer's grid, one per row of ``capture`` (signed: no ReLU).

    References
    ----------
    Tan, Ruan, Gu, Wei, Zhao, "Dual-Gradients Localization Framework for Weakly Supervised
    Object Localization", ACM MM 2020.
    """
    return enhanced_features(capture, layer, alpha).sum(dim=1)
