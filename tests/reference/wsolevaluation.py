"""The reference algorithm of clovaai/wsolevaluation, rewritten on OpenCV for cross-checks.

Imported by ``tests/test_evaluate_reference.py`` (the cross-checks) and by
``benchmarks/speed_evaluate.py`` (the reference loop it times). It follows the reference's steps literally: for every tau, ``cv2.threshold`` at
``int(tau * max(s8))``, ``cv2.findContours(RETR_TREE, CHAIN_APPROX_SIMPLE)``,
``cv2.boundingRect`` per contour, ``max(contours, key=cv2.contourArea)`` for V1, the
inclusive IoU against every GT box; and ``np.histogram`` for PxAP.
"""
from __future__ import annotations

import cv2
import numpy as np


def reference_contour_boxes(s8: np.ndarray, level: int):
    """(all boxes (k,4), largest box (4,)) of ``s8 > level`` the way the reference does it."""
    height, width = s8.shape
    _, binary = cv2.threshold(s8[..., None], level, 255, cv2.THRESH_BINARY)
    contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[-2]
    if len(contours) == 0:
        empty = np.zeros((1, 4), dtype=np.int64)
        return empty, empty[0]

    def to_box(contour):
        x, y, w, h = cv2.boundingRect(contour)
        return [x, y, min(x + w, width - 1), min(y + h, height - 1)]

    boxes = np.asarray([to_box(c) for c in contours], dtype=np.int64)
    largest = np.asarray(to_box(max(contours, key=cv2.contourArea)), dtype=np.int64)
    return boxes, largest


def reference_iou(boxes_a, boxes_b) -> np.ndarray:
    """Inclusive IoU written independently of attribmap (broadcasting, +1 widths)."""
    a = np.asarray(boxes_a, dtype=np.int64)[:, None]
    b = np.asarray(boxes_b, dtype=np.int64)[None]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1, 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1, 0, None)
    inter = iw * ih
    union = ((a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
             + (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1) - inter)
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def reference_best_ious(scoremap: np.ndarray, gt_boxes, taus):
    """Per tau: best IoU of the V1 box and of any V2 box (one findContours per tau)."""
    s8 = (scoremap * 255).astype(np.uint8)
    peak = s8.max()
    v1 = np.empty(len(taus))
    v2 = np.empty(len(taus))
    for i, tau in enumerate(taus):
        boxes, largest = reference_contour_boxes(s8, int(tau * peak))
        v2[i] = reference_iou(boxes, gt_boxes).max()
        v1[i] = reference_iou(largest[None], gt_boxes).max()
    return v1, v2


def reference_normalize(cam: np.ndarray) -> np.ndarray:
    cam = np.array(cam, dtype=np.float64)
    if np.isnan(cam).any() or cam.min() == cam.max():
        return np.zeros_like(cam)
    cam -= cam.min()
    cam /= cam.max()
    return cam


def reference_scoremap(raw: np.ndarray, size: int = 224) -> np.ndarray:
    return reference_normalize(cv2.resize(np.asarray(raw, np.float64), (size, size), interpolation=cv2.INTER_CUBIC))


def reference_histograms(scoremap, fg, ignore, delta):
    taus = np.arange(0, 1, delta)
    edges = np.append(taus, [1.0, 2.0, 3.0])
    keep_bg = ~fg & ~(ignore & ~fg)
    h_fg, _ = np.histogram(scoremap[fg], bins=edges)
    h_bg, _ = np.histogram(scoremap[keep_bg], bins=edges)
    return h_fg.astype(float), h_bg.astype(float)


def reference_pxap(h_fg, h_bg) -> float:
    tp = h_fg[::-1].cumsum()
    fn = h_fg.sum() - tp
    fp = h_bg[::-1].cumsum()
    nonzero = (tp + fp) != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = tp / (tp + fp)
        recall = tp / (tp + fn)
    return float((precision[1:] * np.diff(recall))[nonzero[1:]].sum() * 100)


def reference_box_scores(scoremaps, gt_boxes_list, delta=0.001, correct=None):
    """MaxBoxAcc (V1, IoU 0.5), MaxBoxAccV2 and per-IoU values, like the reference."""
    taus = np.arange(0, 1, delta)
    deltas = (30, 50, 70)
    v1_hits = {d: np.zeros(len(taus)) for d in deltas}
    v2_hits = {d: np.zeros(len(taus)) for d in deltas}
    top1_v1 = {d: np.zeros(len(taus)) for d in deltas}
    top1_v2 = {d: np.zeros(len(taus)) for d in deltas}
    for n, (scoremap, gt) in enumerate(zip(scoremaps, gt_boxes_list)):
        v1, v2 = reference_best_ious(scoremap, gt, taus)
        for d in deltas:
            v1_hits[d][v1 >= d / 100] += 1
            v2_hits[d][v2 >= d / 100] += 1
            if correct is not None and correct[n]:
                top1_v1[d][v1 >= d / 100] += 1
                top1_v2[d][v2 >= d / 100] += 1
    count = float(len(scoremaps))
    per_iou_v2 = {d: (v2_hits[d] * 100.0 / count).max() for d in deltas}
    out = {
        "MaxBoxAcc": (v1_hits[50] * 100.0 / count).max(),
        "MaxBoxAccV2": float(np.average([per_iou_v2[d] for d in deltas])),
        "MaxBoxAccV2_per_iou": per_iou_v2,
    }
    if correct is not None:
        out["Top1Loc"] = (top1_v1[50] * 100.0 / count).max()
        out["Top1LocV2"] = float(np.average([(top1_v2[d] * 100.0 / count).max() for d in deltas]))
    return out


def blobby_map(rng: np.random.Generator, size: int = 224, low: int = 14) -> np.ndarray:
    """A CAM-like map: smoothed noise at low resolution, bicubic upsampled (with holes,
    several blobs and blobs touching the border at most thresholds)."""
    from scipy import ndimage

    raw = ndimage.gaussian_filter(rng.normal(size=(low, low)), rng.uniform(0.6, 2.0))
    return cv2.resize(raw, (size, size), interpolation=cv2.INTER_CUBIC)
