"""ShapleyCAM (Cai, 2025): Grad-CAM weights corrected by a second-order term.

w_k = mean_ij (g - H F / 2)_k with g = ds/dF and H F the Hessian of the score applied to the
activations (:meth:`attribmap.tap.Capture.score_hvp`, a double backward through the capture's
graph); map ReLU(sum_k w_k F_k). Where the logits are linear in F (F feeds global average
pooling and a linear classifier) H F = 0 and ShapleyCAM equals Grad-CAM.
"""
from __future__ import annotations

import torch

from attribmap.methods.gradcam import weighted_channels
from attribmap.methods.perturbation import check_choice
from attribmap.tap import Capture

__all__ = ["shapleycam", "SCORES"]

SCORES = ("logit", "rest")


def shapleycam(capture: Capture, layer: str, score: str = "logit") -> torch.Tensor:
    """ShapleyCAM: ReLU(sum_k mean_ij(g - H F / 2)_k F_k); (N, h, w).

    Parameters
    ----------
    capture : Capture
        The recorded forward pass: activations of ``layer`` (N, C, h, w), logits and
        targets, one row per image and target class, and the cached gradients.
    layer : str
        Name of the tapped layer whose activations F are read.
    score : {"logit", "rest"}
        The explained score: the target logit (pytorch-grad-cam's default target), or ReST,
        z_c - CE(z, c), the residual softmax target the paper proposes.

    Returns
    -------
    torch.Tensor
        (N, h, w) raw maps on the layer's grid, one per row of ``capture``.

    References
    ----------
    Cai, "CAMs as Shapley Value-based Explainers", arXiv:2501.06261, 2025.
    """
    check_choice(score, "score", SCORES)
    grad, hvp = capture.score_hvp(layer, score)
    weights = (grad - 0.5 * hvp).mean(dim=(2, 3))
    return torch.relu(weighted_channels(weights, capture.activations(layer)))
