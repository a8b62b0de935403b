"""Best box IoU of one map at every score-map threshold tau, for MaxBoxAcc V1 and V2.

Only the distinct integer cut levels ``int(tau * max(s8))`` are processed (at most 255,
whatever the number of taus), and one contour extraction per level serves both V1 (the
largest contour) and V2 (every contour). Three engines give identical numbers:

``"opencv"``
    one ``cv2.threshold`` + ``cv2.findContours`` per distinct level; bounding boxes,
    polygon areas and IoUs of all levels computed at once in numpy afterwards.
    Needs opencv-python(-headless).
``"numpy"``
    :func:`attribmap.evaluate.contours.mask_contours` (scipy labelling); no OpenCV,
    about 20x slower.
``"tree"``
    :mod:`attribmap.evaluate.tree_engine`: two compiled union-find sweeps over the
    pixels (foreground components from the top, holes from the bottom) answer every
    level; the rare levels they leave open (a component inside a hole, or an area tie at
    a level with holes) go to the OpenCV engine (the numpy one without it).
    :func:`best_ious_batch` answers a whole batch in one compiled call. Needs numba.

``"auto"`` takes the tree engine when numba can be imported, else OpenCV when it can
be imported, else numpy.
"""
from __future__ import annotations

import numpy as np

from attribmap.errors import AttribmapError
from attribmap.evaluate.contours import mask_contours, threshold_levels
from attribmap.evaluate.frame import to_uint8
from attribmap.evaluate.iou import inclusive_iou
from attribmap.evaluate.tree_engine import numba_available, tree_batch_ious, tree_level_ious

__all__ = ["ENGINES", "resolve_engine", "best_ious_per_tau", "best_ious_batch"]

ENGINES = ("auto", "tree", "opencv", "numpy")


def _load_cv2():
    try:
        import cv2  # noqa: PLC0415
    except ImportError:
        return None
    return cv2


def resolve_engine(engine: str) -> str:
    """Check the ``engine`` name and resolve ``"auto"`` to ``"tree"``, ``"opencv"`` or ``"numpy"``."""
    if engine not in ENGINES:
        raise AttribmapError(f"engine must be one of {ENGINES}; got {engine!r}")
    if engine == "numpy":
        return engine
    if engine == "tree" and not numba_available():
        raise AttribmapError("engine='tree' needs numba (pip install 'numba>=0.60')")
    if engine in ("tree", "auto") and numba_available():
        return "tree"
    if _load_cv2() is None:
        if engine == "opencv":
            raise AttribmapError("engine='opencv' needs opencv-python-headless (pip install opencv-python-headless)")
        return "numpy"
    return "opencv"


def _opencv_level_ious(s8: np.ndarray, levels: np.ndarray, gt_boxes: np.ndarray):
    """Per level: IoU of the largest contour's box and best IoU over all contour boxes."""
    cv2 = _load_cv2()
    height, width = s8.shape
    threshold, find_contours = cv2.threshold, cv2.findContours
    binary, tree, simple = cv2.THRESH_BINARY, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE
    point_chunks = []
    contours_per_level = []
    # (cropping to the foreground's bounding box was measured: no faster at 224 px)
    for level in levels.tolist():
        found = find_contours(threshold(s8, level, 1, binary)[1], tree, simple)[-2]
        contours_per_level.append(len(found))
        point_chunks.extend(found)
    contour_lengths = [len(c) for c in point_chunks]
    contours_per_level = np.asarray(contours_per_level, dtype=np.int64)
    points = np.concatenate(point_chunks, axis=0).reshape(-1, 2).astype(np.int64)
    lengths = np.asarray(contour_lengths, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    xs, ys = points[:, 0], points[:, 1]
    min_x = np.minimum.reduceat(xs, starts)
    min_y = np.minimum.reduceat(ys, starts)
    max_x = np.maximum.reduceat(xs, starts)
    max_y = np.maximum.reduceat(ys, starts)
    # boundingRect -> (x, y, w, h) with w = max - min + 1; box x1 = min(x + w, W - 1)
    boxes = np.stack([min_x, min_y, np.minimum(max_x + 1, width - 1), np.minimum(max_y + 1, height - 1)], axis=1)
    # shoelace area of each closed polygon (exact: integer terms summed in float64)
    nxt = np.arange(1, len(points) + 1)
    nxt[starts + lengths - 1] = starts
    cross = xs * ys[nxt] - ys * xs[nxt]
    area2 = np.abs(np.add.reduceat(cross, starts))
    contour_iou = inclusive_iou(boxes, gt_boxes).max(axis=1)
    level_starts = np.concatenate([[0], np.cumsum(contours_per_level)[:-1]])
    v2 = np.maximum.reduceat(contour_iou, level_starts)
    # V1: first contour (in OpenCV's order) whose area is the level's maximum
    level_of = np.repeat(np.arange(len(levels)), contours_per_level)
    best_area = np.maximum.reduceat(area2, level_starts)
    candidate = np.where(area2 == best_area[level_of], np.arange(len(area2)), len(area2))
    winner = np.minimum.reduceat(candidate, level_starts)
    return contour_iou[winner], v2


def contour_iou_for_box(boxes: np.ndarray, gt_boxes: np.ndarray) -> np.ndarray:
    """Best IoU of each box against any ground-truth box: (n,) float64."""
    return inclusive_iou(boxes, gt_boxes).max(axis=1)


def _numpy_level_ious(s8: np.ndarray, levels: np.ndarray, gt_boxes: np.ndarray):
    v1 = np.empty(len(levels))
    v2 = np.empty(len(levels))
    for i, level in enumerate(levels.tolist()):
        found = mask_contours(s8 > level)
        v1[i] = contour_iou_for_box(found.largest_box[None], gt_boxes)[0]
        v2[i] = contour_iou_for_box(found.all_boxes, gt_boxes).max()
    return v1, v2


def _tree_level_ious(s8: np.ndarray, levels: np.ndarray, gt_boxes: np.ndarray):
    """Tree sweep for every level it resolves, OpenCV (or numpy) for the rare others."""
    v1, v2, unresolved, _ = tree_level_ious(s8, levels, gt_boxes)
    if unresolved.any():
        fallback = _opencv_level_ious if _load_cv2() is not None else _numpy_level_ious
        v1[unresolved], v2[unresolved] = fallback(s8, levels[unresolved], gt_boxes)
    return v1, v2


def best_ious_per_tau(s8: np.ndarray, gt_boxes: np.ndarray, taus: np.ndarray, engine: str = "auto"):
    """Best IoU of the V1 box and of any V2 box of one map at each tau.

    Parameters
    ----------
    s8 : ndarray, uint8, shape (H, W)
        ``floor(255 * normalized map)``.
    gt_boxes : ndarray, int, shape (k, 4)
        Ground-truth boxes in the same frame, inclusive x0, y0, x1, y1.
    taus : ndarray, shape (T,)
        Score-map thresholds in [0, 1).
    engine : {"auto", "tree", "opencv", "numpy"}

    Returns
    -------
    v1_iou, v2_iou : ndarray, float64, shape (T,)
        IoU of the largest contour's box against its best GT box, and the best IoU over
        all contour boxes and GT boxes; no foreground gives the box [0, 0, 0, 0].
    """
    engine = resolve_engine(engine)
    s8 = np.ascontiguousarray(s8, dtype=np.uint8)
    gt = np.asarray(gt_boxes, dtype=np.int64).reshape(-1, 4)
    if len(gt) == 0:
        raise AttribmapError("every image needs at least one ground-truth box")
    taus = np.asarray(taus, dtype=np.float64)
    if taus.ndim != 1 or len(taus) == 0 or taus.min() < 0 or taus.max() >= 1:
        raise AttribmapError("taus must be a non-empty 1-D array of thresholds in [0, 1)")
    peak = int(s8.max())
    levels = threshold_levels(peak, taus)
    if peak == 0:
        empty_iou = contour_iou_for_box(np.zeros((1, 4), dtype=np.int64), gt)[0]
        full = np.full(len(levels), empty_iou)
        return full, full.copy()
    distinct, inverse = np.unique(levels, return_inverse=True)
    if engine == "tree":
        v1, v2 = _tree_level_ious(s8, distinct, gt)
    elif engine == "opencv":
        v1, v2 = _opencv_level_ious(s8, distinct, gt)
    else:
        v1, v2 = _numpy_level_ious(s8, distinct, gt)
    return v1[inverse], v2[inverse]


def best_ious_batch(maps: np.ndarray, gt_boxes, taus: np.ndarray, engine: str = "auto"):
    """:func:`best_ious_per_tau` for every map of a batch.

    The tree engine answers the whole batch in one compiled call (no per-map Python
    work); the rare levels it leaves unresolved go to OpenCV (or numpy). The other
    engines loop over the maps.

    Parameters
    ----------
    maps : ndarray, shape (N, H, W)
        uint8 maps ``floor(255 * normalized map)``, or the normalized float maps in [0, 1].
    gt_boxes : sequence of N arrays, int, shape (k_i, 4)
    taus : ndarray, shape (T,), ascending, in [0, 1)
    engine : {"auto", "tree", "opencv", "numpy"}

    Returns
    -------
    v1_iou, v2_iou : ndarray, float64, shape (N, T)
    """
    engine = resolve_engine(engine)
    maps = np.asarray(maps)
    taus = np.asarray(taus, dtype=np.float64)
    if engine != "tree":
        s8_maps = maps if maps.dtype == np.uint8 else to_uint8(maps)
        pairs = [best_ious_per_tau(s8, gt, taus, engine) for s8, gt in zip(s8_maps, gt_boxes)]
        shape = (len(pairs), len(taus))
        return (np.array([p[0] for p in pairs]).reshape(shape), np.array([p[1] for p in pairs]).reshape(shape))
    v1, v2, unresolved = tree_batch_ious(maps, gt_boxes, taus)
    fallback = _opencv_level_ious if _load_cv2() is not None else _numpy_level_ious
    for index in np.flatnonzero(unresolved.any(axis=1)):
        todo = unresolved[index]
        s8 = maps[index] if maps.dtype == np.uint8 else to_uint8(maps[index])
        s8 = np.ascontiguousarray(s8)
        gt = np.asarray(gt_boxes[index], dtype=np.int64).reshape(-1, 4)
        levels = threshold_levels(int(s8.max()), taus[todo])
        distinct, inverse = np.unique(levels, return_inverse=True)
        fixed_v1, fixed_v2 = fallback(s8, distinct, gt)
        v1[index, todo] = fixed_v1[inverse]
        v2[index, todo] = fixed_v2[inverse]
    return v1, v2
