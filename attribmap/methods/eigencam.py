"""Projection maps: the first principal component of the activations (Eigen-CAM) and variants.

Each image's activations X (C, h, w) are read as h*w points in R^C, centred (the mean over
the pixels subtracted per channel) and projected on their first principal direction:

* ``eigencam``: X = F (class-agnostic);
* ``eigengradcam``: X = g * F, g = dz_c/dF;
* ``kpcacam``: kernel PCA of X = F (a sigmoid kernel by default).

A principal direction has no sign; the map's sign is chosen so that it correlates
positively with the channel sum of F (then the object, where activations are high, is
high). No ReLU is applied.
"""
from __future__ import annotations

from typing import Optional

import torch

from attribmap.errors import MethodError
from attribmap.gradients import SCORE
from attribmap.methods.perturbation import check_choice
from attribmap.tap import Capture

__all__ = ["eigencam", "eigengradcam", "kpcacam", "first_component", "kernel_first_component", "KERNELS"]

KERNELS = ("sigmoid", "rbf", "poly", "linear", "cosine")


def _points(x: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w) -> centred points (N, h*w, C) in float64, NaNs as 0."""
    pts = torch.nan_to_num(x.detach().double().flatten(2).transpose(1, 2), nan=0.0)
    return pts - pts.mean(dim=1, keepdim=True)


def _orient(projection: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
    """Flip each map (N, h*w) whose correlation with the channel sum of ``feats`` is negative."""
    reference = feats.detach().double().sum(dim=1).flatten(1)
    reference = reference - reference.mean(dim=1, keepdim=True)
    centred = projection - projection.mean(dim=1, keepdim=True)
    sign = torch.where((centred * reference).sum(dim=1) < 0, -1.0, 1.0).to(projection.dtype)
    return projection * sign[:, None]


def first_component(x: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
    """Projection (N, h, w) of the centred points of ``x`` (N, C, h, w) on their first principal direction.

    Equals ``U[:, 0] * S[0]`` of the SVD of the centred (h*w, C) matrix, oriented by
    :func:`_orient` against ``feats``.
    """
    n, _, h, w = x.shape
    pts = _points(x)
    _, _, vh = torch.linalg.svd(pts, full_matrices=False)
    projection = (pts @ vh[:, 0, :, None])[..., 0]
    return _orient(projection, feats).view(n, h, w).to(x.dtype)


def _kernel(pts: torch.Tensor, kernel: str, gamma: Optional[float], degree: int, coef0: float) -> torch.Tensor:
    """Gram matrices (N, P, P) of the points (N, P, C), with scikit-learn's kernel definitions."""
    c = pts.shape[-1]
    g = 1.0 / c if gamma is None else float(gamma)
    dots = pts @ pts.transpose(1, 2)
    if kernel == "linear":
        return dots
    if kernel == "sigmoid":
        return torch.tanh(g * dots + coef0)
    if kernel == "poly":
        return (g * dots + coef0) ** degree
    if kernel == "rbf":
        sq = pts.pow(2).sum(dim=-1)
        return torch.exp(-g * (sq[:, :, None] + sq[:, None, :] - 2 * dots).clamp_min(0))
    norms = pts.norm(dim=-1).clamp_min(1e-300)
    return dots / (norms[:, :, None] * norms[:, None, :])


def kernel_first_component(x: torch.Tensor, feats: torch.Tensor, kernel: str = "sigmoid",
                           gamma: Optional[float] = None, degree: int = 3, coef0: float = 1.0) -> torch.Tensor:
    """First kernel principal component (N, h, w) of the centred points of ``x``.

    The Gram matrix K of the h*w points is double-centred, its top eigenvector v (eigenvalue
    lambda) gives the component ``v * sqrt(lambda)`` (what scikit-learn's
    ``KernelPCA(n_components=1).fit_transform`` returns), oriented by :func:`_orient`.

    Parameters
    ----------
    x : torch.Tensor
        (N, C, h, w) values whose h*w points (in R^C) are analysed.
    feats : torch.Tensor
        (N, C, h, w) activations whose channel sum fixes the sign of each component.
    kernel : {"sigmoid", "rbf", "poly", "linear", "cosine"}
        Kernel of the Gram matrix (see :func:`kpcacam`).
    gamma : float, optional
        Kernel coefficient of the sigmoid, rbf and poly kernels; default 1 / C.
    degree : int
        Degree of the poly kernel.
    coef0 : float
        Constant term of the sigmoid and poly kernels.

    Returns
    -------
    torch.Tensor
        (N, h, w) first kernel principal component, in the dtype of ``x``.
    """
    n, _, h, w = x.shape
    pts = _points(x)
    gram = _kernel(pts, kernel, gamma, degree, coef0)
    p = gram.shape[-1]
    centring = torch.eye(p, dtype=gram.dtype, device=gram.device) - 1.0 / p
    centred = centring @ gram @ centring
    values, vectors = torch.linalg.eigh((centred + centred.transpose(1, 2)) / 2)
    projection = vectors[..., -1] * values[..., -1:].clamp_min(0).sqrt()
    return _orient(projection, feats).view(n, h, w).to(x.dtype)


def eigencam(capture: Capture, layer: str) -> torch.Tensor:
    """Eigen-CAM: the activations projected on their first principal component; (N, h, w).

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
    Muhammad, Yeasin, "Eigen-CAM: Class Activation Map using Principal Components", IJCNN 2020.
    """
    feats = capture.activations(layer)
    return first_component(feats, feats)


def eigengradcam(capture: Capture, layer: str) -> torch.Tensor:
    """Eigen-Grad-CAM: g * F projected on its first principal component; (N, h, w).

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
    Muhammad, Yeasin, IJCNN 2020 (Eigen-CAM), applied to the gradient-weighted activations as
    pytorch-grad-cam's ``EigenGradCAM``.
    """
    feats = capture.activations(layer)
    return first_component(capture.gradient(SCORE, layer) * feats, feats)


def kpcacam(capture: Capture, layer: str, kernel: str = "sigmoid", gamma: Optional[float] = None,
            degree: int = 3, coef0: float = 1.0) -> torch.Tensor:
    """KPCA-CAM: the first kernel principal component of the activations; (N, h, w).

    Parameters
    ----------
    capture : Capture
        The recorded forward pass: activations of ``layer`` (N, C, h, w), logits and
        targets, one row per image and target class, and the cached gradients.
    layer : str
        Name of the tapped layer whose activations F are read.
    kernel : {"sigmoid", "rbf", "poly", "linear", "cosine"}
        scikit-learn's kernels: tanh(gamma x.y + coef0), exp(-gamma norm(x - y)^2),
        (gamma x.y + coef0)^degree, x.y, x.y / (norm(x) norm(y)).
    gamma : float, optional
        Default 1 / C.
    degree : int
        Degree of the polynomial kernel.
    coef0 : float
        Constant term of the polynomial and sigmoid kernels.

    Returns
    -------
    torch.Tensor
        (N, h, w) raw maps on the layer's grid, one per row of ``capture`` (signed: no ReLU).

    References
    ----------
    Karmani, Sivakaran, Prasad, Ali, Yang, Tang, "KPCA-CAM: Visual Explainability of Deep
    Computer Vision Models using Kernel PCA", arXiv:2410.00267, 2024.
    """
    check_choice(kernel, "kernel", KERNELS)
    if gamma is not None and (isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or gamma <= 0):
        raise MethodError(f"gamma must be a positive number or None; got {gamma!r}")
    feats = capture.activations(layer)
    return kernel_first_component(feats, feats, kernel, gamma, int(degree), float(coef0))
