"""Grad-CAM (Selvaraju et al., ICCV 2017) and Grad-CAM++ (Chattopadhay et al., WACV 2018)."""
from __future__ import annotations

import torch

from attribmap.tap import Capture

__all__ = ["gradcam", "gradcampp"]


def gradcam(capture: Capture, layer: str) -> torch.Tensor:
    """Grad-CAM: ReLU(sum_k alpha_k F_k), alpha_k = spatial mean of dz_c/dF_k; (N, h, w)."""
    grads = capture.score_grad(layer)
    feats = capture.activations(layer)
    alpha = grads.mean(dim=(2, 3))
    return torch.relu(torch.einsum("nc,nchw->nhw", alpha, feats))


def gradcampp(capture: Capture, layer: str) -> torch.Tensor:
    """Grad-CAM++ with the closed form for exponential scores; (N, h, w).

    a = g^2 / (2 g^2 + sum_ij F g^3) (0 where the denominator is 0),
    w_k = sum_ij a ReLU(g), map = ReLU(sum_k w_k F_k), g = dz_c/dF.
    """
    grads = capture.score_grad(layer)
    feats = capture.activations(layer)
    g2 = grads.pow(2)
    denom = 2 * g2 + (feats * grads.pow(3)).sum(dim=(2, 3), keepdim=True)
    safe = torch.where(denom != 0, denom, torch.ones_like(denom))
    a = torch.where(denom != 0, g2 / safe, torch.zeros_like(denom))
    weights = (a * torch.relu(grads)).sum(dim=(2, 3))
    return torch.relu(torch.einsum("nc,nchw->nhw", weights, feats))
