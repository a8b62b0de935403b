"""How similar two maps are, as Adebayo et al. (2018) measure it.

For a pair of maps of one image (the trained model's and a randomized model's), both at the
input resolution:

* Spearman rank correlation of the absolute values and of the signed values (average ranks
  for ties);
* SSIM (:func:`skimage.metrics.structural_similarity`, data range 1) of the maps as images:
  absolute values divided by their maximum, in [0, 1];
* Pearson correlation of their HOG features (:func:`skimage.feature.hog` of those images).

A constant map has no ranking and no gradients: its rank and HOG correlations are undefined.
They are returned as NaN, and :func:`is_constant` says which maps they are, so that callers
count them rather than hide them in a mean.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

__all__ = ["is_constant", "spearman", "pearson", "as_image", "ssim", "hog_similarity", "compare"]


def is_constant(scoremap: np.ndarray) -> bool:
    """Whether every value of ``scoremap`` (any shape) is the same (or it holds a non-finite value)."""
    flat = np.asarray(scoremap, dtype=np.float64).reshape(-1)
    if not np.isfinite(flat).all():
        return True
    return bool(flat.max() == flat.min())


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of the equal-size arrays ``a`` and ``b`` (flattened); NaN when either is constant."""
    x = np.asarray(a, dtype=np.float64).reshape(-1)
    y = np.asarray(b, dtype=np.float64).reshape(-1)
    x = x - x.mean()
    y = y - y.mean()
    norm = np.sqrt((x * x).sum() * (y * y).sum())
    if not norm > 0:
        return float("nan")
    return float(np.clip((x * y).sum() / norm, -1.0, 1.0))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of the equal-size arrays ``a`` and ``b`` (average ranks for ties); NaN when either is constant."""
    from scipy.stats import rankdata

    if is_constant(a) or is_constant(b):
        return float("nan")
    return pearson(rankdata(np.asarray(a).reshape(-1)), rankdata(np.asarray(b).reshape(-1)))


def as_image(scoremap: np.ndarray) -> np.ndarray:
    """``abs(scoremap) / max(abs(scoremap))``: float64 (H, W) in [0, 1] (all zeros for an all-zero map)."""
    image = np.abs(np.asarray(scoremap, dtype=np.float64))
    peak = image.max() if image.size else 0.0
    return image / peak if peak > 0 and np.isfinite(peak) else np.zeros_like(image)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of :func:`as_image` of the (H, W) maps ``a`` and ``b`` (scikit-image, data range 1, 7x7 window)."""
    from skimage.metrics import structural_similarity

    x, y = as_image(a), as_image(b)
    window = min(7, *x.shape)
    window -= 1 - window % 2  # odd
    return float(structural_similarity(x, y, data_range=1.0, win_size=max(window, 3)))


def _hog(image: np.ndarray) -> np.ndarray:
    from skimage.feature import hog

    cell = max(2, min(image.shape) // 16)
    return hog(image, orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(2, 2), feature_vector=True)


def hog_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of the HOG features of :func:`as_image` of the (H, W) maps ``a`` and ``b``; NaN for a constant one."""
    if is_constant(a) or is_constant(b):
        return float("nan")
    return pearson(_hog(as_image(a)), _hog(as_image(b)))


def compare(original: np.ndarray, other: np.ndarray) -> Dict[str, float]:
    """Every measure of one pair of (H, W) maps: ``spearman``, ``spearman_abs``, ``ssim``, ``hog``.

    Parameters
    ----------
    original, other : ndarray (H, W)
        Signed raw maps at the same resolution.

    Returns
    -------
    dict of float; ``spearman``, ``spearman_abs`` and ``hog`` are NaN when either map is
    constant (see :func:`is_constant`).
    """
    return {"spearman": spearman(original, other), "spearman_abs": spearman(np.abs(original), np.abs(other)),
            "ssim": ssim(original, other), "hog": hog_similarity(original, other)}
