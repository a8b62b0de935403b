"""Finer-CAM (Zhang et al., CVPR 2025): Grad-CAM of the target's score against its most similar classes.

The gradient of a contrastive score s = z_c - gamma * (the logits of the T classes closest
to z_c) replaces the target logit's in Grad-CAM, so the map shows what separates the target
from the classes it is most easily confused with (:class:`~attribmap.gradients.FinerGradient`).
It is one more request of the shared vector-Jacobian product.
"""
from __future__ import annotations

import torch

from attribmap.gradients import FinerGradient
from attribmap.methods.gradcam import weighted_channels
from attribmap.tap import Capture

__all__ = ["finercam", "finer_needs"]


def _request(gamma: float, references: int, weighting: str) -> FinerGradient:
    from attribmap.errors import MethodError

    try:
        return FinerGradient(gamma, references, weighting)
    except ValueError as exc:
        raise MethodError(f"finercam: {exc}") from exc


def finer_needs(options) -> set:
    """The Finer-CAM gradient request of a call's options.

    Parameters
    ----------
    options : mapping
        The call's keyword options; ``gamma``, ``references`` and ``weighting`` are read
        (defaults 0.6, 3 and "mean", as :func:`finercam`).

    Returns
    -------
    set of FinerGradient
        The one request :func:`finercam` reads.
    """
    return {_request(options.get("gamma", 0.6), options.get("references", 3), options.get("weighting", "mean"))}


def finercam(capture: Capture, layer: str, gamma: float = 0.6, references: int = 3,
             weighting: str = "mean") -> torch.Tensor:
    """Finer-CAM with Grad-CAM as the base: ReLU(sum_k mean_ij(ds/dF_k) F_k); (N, h, w).

    Parameters
    ----------
    capture : Capture
        The recorded forward pass: activations of ``layer`` (N, C, h, w), logits and
        targets, one row per image and target class, and the cached gradients.
    layer : str
        Name of the tapped layer whose activations F are read.
    gamma : float
        Comparison strength (0.6, as torchcam; pytorch-grad-cam's ``alpha`` defaults to 1).
    references : int
        Number T of most similar classes compared with (3, as both peers).
    weighting : {"mean", "softmax"}
        "mean": s = z_c - gamma * mean_t z_{d_t} (torchcam); "softmax": the
        probability-weighted score of pytorch-grad-cam's ``FinerWeightedTarget``.

    Returns
    -------
    torch.Tensor
        (N, h, w) raw maps on the layer's grid, one per row of ``capture``.

    References
    ----------
    Zhang et al., "Finer-CAM: Spotting the Difference Reveals Finer Details for Visual
    Explanation", CVPR 2025 (arXiv:2501.11309).
    """
    grads = capture.gradient(_request(gamma, references, weighting), layer)
    return torch.relu(weighted_channels(grads.mean(dim=(2, 3)), capture.activations(layer)))
