"""FEM, the Feature Explanation Method (Fuad et al., IPTA 2020): channels weighted by their strong pixels.

A pixel of channel k is strong when F_k(i, j) > mean(F_k) + k_sigma * std(F_k) (population
standard deviation over the pixels); w_k is the fraction of strong pixels and the map is
sum_k w_k F_k. Class-agnostic: no gradient is read.
"""
from __future__ import annotations

import torch

from attribmap.errors import MethodError
from attribmap.methods.gradcam import weighted_channels
from attribmap.tap import Capture

__all__ = ["fem"]


def fem(capture: Capture, layer: str, k: float = 2.0) -> torch.Tensor:
    """FEM: sum_k w_k F_k, w_k = fraction of pixels above mean + k std of channel k; (N, h, w).

    Parameters
    ----------
    capture : Capture
        The recorded forward pass: activations of ``layer`` (N, C, h, w), logits and
        targets, one row per image and target class, and the cached gradients.
    layer : str
        Name of the tapped layer whose activations F are read.
    k : float
        Threshold in standard deviations (2, the k-sigma rule of the paper).

    Returns
    -------
    torch.Tensor
        (N, h, w) raw maps on the layer's grid, one per row of ``capture`` (no ReLU; the weights are >= 0).

    References
    ----------
    Fuad, Martin, Giot, Bourqui, Benois-Pineau, Zemmari, "Features Understanding in 3D CNNs
    for Actions Recognition in Video", IPTA 2020.
    """
    if isinstance(k, bool) or not isinstance(k, (int, float)):
        raise MethodError(f"k must be a number of standard deviations; got {k!r}")
    feats = capture.activations(layer)
    flat = feats.flatten(2)
    threshold = flat.mean(dim=2, keepdim=True) + float(k) * flat.std(dim=2, unbiased=False, keepdim=True)
    weights = (flat > threshold).to(feats.dtype).mean(dim=2)
    return weighted_channels(weights, feats)
