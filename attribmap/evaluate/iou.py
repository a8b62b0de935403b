"""Intersection over union of inclusive pixel boxes (x0, y0, x1, y1), as in wsolevaluation."""
from __future__ import annotations

import numpy as np

__all__ = ["inclusive_iou"]


def inclusive_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU matrix of inclusive integer boxes: a box covers x0..x1 and y0..y1 inclusive.

    Parameters
    ----------
    boxes_a : ndarray, shape (a, 4)
    boxes_b : ndarray, shape (b, 4)

    Returns
    -------
    ndarray, float64, shape (a, b), values in [0, 1]. Width is ``x1 - x0 + 1``; a pair
    whose union is not positive (degenerate boxes) gets IoU 0, like the reference.
    """
    a = np.asarray(boxes_a, dtype=np.int64).reshape(-1, 4)[:, None, :]
    b = np.asarray(boxes_b, dtype=np.int64).reshape(-1, 4)[None, :, :]
    inter_w = np.maximum(0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1)
    inter_h = np.maximum(0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1)
    intersection = inter_w * inter_h
    area_a = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    union = area_a + area_b - intersection
    degenerate = union <= 0
    iou = intersection / np.where(degenerate, 1, union)
    iou[degenerate] = 0.0
    return iou
