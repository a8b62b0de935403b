"""The ``"tree"`` contour engine: every cut level of a map in two compiled sweeps.

The foreground at level ``t`` is ``s8 > t``; OpenCV's contours of it (``RETR_TREE``) are
the outer border of every 8-connected foreground component and the border of every hole
(a 4-connected background region that does not touch the image edge). The engine gets
what the WSOL protocol needs from those contours without tracing any of them. The pixels
are sorted by score once (counting sort, ties in raster order), each with the mask of its
8 neighbours that come before it, computed for all pixels at once; every quantity below
changes by an amount that depends only on that mask, tabulated for the 256 masks.

* **Foreground sweep** (pixels added from the highest score down into a union-find over
  8-connected neighbours, union by rank, no path compression): after the pixels of a
  level, the sets are the components of its cut. Each keeps its bounding box (the outer
  border's bounding rectangle) and twice its bit-quad area (a 2x2 window with 4 of its
  pixels counts 2, one with 3 counts 1: twice ``cv2.contourArea`` of the outer border of a
  component without holes). A running Euler number (Gray's bit quads, ``n(Q1) - n(Q3) -
  2 n(QD)``) gives the number of holes, components minus Euler number, at every level.
  A level without holes is answered on the spot; at a level with holes the components
  (set, box IoU, area) are kept for the second sweep.
* **Background sweep**, only when some level has holes and only up to the highest such
  level (pixels added from the lowest score up into a union-find over 4-connected
  background, the padded frame around the image being one set, "outside"): the other
  sets are the holes. Each keeps its bounding box (the hole border's box is that box
  grown by one pixel on every side), its first pixel in raster order, its *fill gain*
  (over the image's 2x2 windows, 1 for a window holding one of its pixels, 2 for one
  holding more; twice the polygon area of the hole's border when nothing lies inside
  the hole) and its 4-connected Euler number (``n(Q1) - n(Q3) + 2 n(QD)``, 1 unless a
  component lies inside the hole). Both measures add up when two sets merge (two sets
  share a window only diagonally, one pixel each). Each hole's fill gain goes to the
  component holding the pixel left of the hole's first pixel (always the component
  around the hole), looked up in the foreground union-find as it was at that level (the
  step at which each set was absorbed is kept); that makes the component's area the
  area of its outer border.

V1 is the component of largest outer-border area (ties: the one whose first pixel, looked
up only then, comes last in raster order: the one OpenCV lists first; a hole border never
beats its own outer border), V2 the best box over the outer and hole borders. Two rare
cases are left to the caller (:func:`attribmap.evaluate.threshold_boxes.best_ious_per_tau`
and :func:`~attribmap.evaluate.threshold_boxes.best_ious_batch` compute them with OpenCV,
or numpy without it): a level where a component lies inside a hole, and a level with
holes where the largest area is shared by several components (OpenCV's order among them
then also involves the hole borders).

Code layout: this module checks the inputs and holds per-thread scratch space;
:mod:`attribmap.evaluate.tree_tables` tabulates the per-mask changes (numpy) and
:mod:`attribmap.evaluate.tree_kernels` holds the compiled sweeps. Needs numba (compiled
on first use, a few seconds, then cached on disk); the kernels are imported only then.
"""
from __future__ import annotations

import threading

import numpy as np

from attribmap.errors import AttribmapError
from attribmap.evaluate._compiled import numba_available
from attribmap.evaluate.tree_tables import background_tables, foreground_tables

__all__ = ["numba_available", "tree_level_ious", "tree_batch_ious"]

_KERNELS = None
_WORKSPACE = threading.local()


def _kernels():
    """(the kernel module, foreground tables, background tables), loaded on first use."""
    global _KERNELS
    if _KERNELS is None:
        if not numba_available():
            raise AttribmapError("engine='tree' needs numba (pip install 'numba>=0.60')")
        from attribmap.evaluate import tree_kernels  # noqa: PLC0415 (imports numba)

        _KERNELS = (tree_kernels, foreground_tables(), background_tables())
    return _KERNELS


def _workspace(kernels, height: int, width: int):
    """This thread's :class:`~attribmap.evaluate.tree_kernels.TreeWorkspace` for
    (height, width) maps, reused across calls (no page faults)."""
    shape, workspace = getattr(_WORKSPACE, "cached", ((), None))
    if shape != (height, width):
        workspace = kernels.TreeWorkspace.allocate(height, width)
        _WORKSPACE.cached = ((height, width), workspace)
    return workspace


def tree_level_ious(s8: np.ndarray, levels: np.ndarray, gt_boxes: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """V1 and V2 IoU at each cut level of one map, with the levels left unresolved marked.

    Parameters
    ----------
    s8 : ndarray, uint8, shape (H, W)
        The map as ``floor(255 * normalized map)``.
    levels : ndarray, int, shape (L,)
        Distinct cut levels in [0, 255], in any order; foreground at level t is ``s8 > t``.
    gt_boxes : ndarray, int64, shape (k, 4), k >= 1
        Ground-truth boxes, inclusive x0, y0, x1, y1.

    Returns
    -------
    v1_iou, v2_iou : ndarray, float64, shape (L,)
        Best IoU against the GT boxes of the largest contour's box and of any contour's
        box, in the order of ``levels``; undefined (0) where ``unresolved``.
    unresolved : ndarray, bool, shape (L,)
        Levels the sweep does not answer (a component inside a hole, or a tie for the
        largest area at a level with holes); the caller must compute them otherwise.
    has_holes : ndarray, bool, shape (L,)
        Levels whose cut has at least one hole.

    Example
    -------
    >>> ring = np.zeros((5, 5), np.uint8); ring[1:4, 1:4] = 9; ring[2, 2] = 0
    >>> v1, v2, unresolved, holes = tree_level_ious(ring, np.array([0]), np.array([[1, 1, 4, 4]]))
    >>> float(v1[0]), bool(holes[0])
    (1.0, True)
    """
    s8 = np.ascontiguousarray(s8, dtype=np.uint8)
    if s8.ndim != 2 or s8.size == 0:
        raise AttribmapError(f"s8 must be a non-empty 2-D uint8 map; got shape {s8.shape}")
    levels = np.asarray(levels, dtype=np.int64).reshape(-1)
    if len(levels) and (levels.min() < 0 or levels.max() > 255):
        raise AttribmapError(f"levels must lie in [0, 255]; got {levels.min()}..{levels.max()}")
    if len(np.unique(levels)) != len(levels):
        raise AttribmapError("levels must be distinct")
    gt = np.ascontiguousarray(gt_boxes, dtype=np.int64).reshape(-1, 4)
    if len(gt) == 0:
        raise AttribmapError("every image needs at least one ground-truth box")
    order = np.argsort(-levels, kind="stable")
    kernels, fg_tables, bg_tables = _kernels()
    answers = kernels.level_answers(s8, np.ascontiguousarray(levels[order]), gt, fg_tables,
                                    bg_tables, _workspace(kernels, *s8.shape))
    outputs = []
    for desc in answers:  # v1, v2, unresolved, has_holes
        out = np.empty_like(desc)
        out[order] = desc
        outputs.append(out)
    return tuple(outputs)


def tree_batch_ious(maps: np.ndarray, gt_boxes, taus: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """V1 and V2 IoU of every map of a batch at every tau, in one compiled call.

    Parameters
    ----------
    maps : ndarray, shape (N, H, W)
        uint8 maps ``floor(255 * normalized map)``, or the normalized float64 maps in
        [0, 1] themselves (turned into uint8 inside, as ``(x * 255).astype(np.uint8)``).
    gt_boxes : sequence of N arrays, int, shape (k_i, 4), k_i >= 1
        Ground-truth boxes per map, inclusive x0, y0, x1, y1.
    taus : ndarray, float64, shape (T,)
        Ascending score-map thresholds in [0, 1); map n is cut at ``int(tau * max(map))``.

    Returns
    -------
    v1_iou, v2_iou : ndarray, float64, shape (N, T)
        As :func:`attribmap.evaluate.threshold_boxes.best_ious_per_tau`; undefined (0)
        where ``unresolved``.
    unresolved : ndarray, bool, shape (N, T)
        Taus whose level the sweeps leave to the caller (see :func:`tree_level_ious`).
    """
    maps = np.asarray(maps)
    if maps.ndim != 3 or maps.shape[1] == 0 or maps.shape[2] == 0:
        raise AttribmapError(f"maps must have shape (N, H, W) with H, W >= 1; got {maps.shape}")
    from_frames = maps.dtype != np.uint8
    if from_frames:
        frames = np.ascontiguousarray(maps, dtype=np.float64)  # checked in the kernel
        s8_maps = np.empty((1,) + maps.shape[1:], dtype=np.uint8)
    else:
        frames = np.zeros((0, 1, 1))
        s8_maps = np.ascontiguousarray(maps)
    boxes = [np.asarray(b, dtype=np.int64).reshape(-1, 4) for b in gt_boxes]
    if len(boxes) != maps.shape[0]:
        raise AttribmapError(f"need one box array per map: {maps.shape[0]} maps, {len(boxes)} arrays")
    if any(len(b) == 0 for b in boxes):
        raise AttribmapError("every image needs at least one ground-truth box")
    taus = np.ascontiguousarray(taus, dtype=np.float64).reshape(-1)
    if len(taus) == 0 or np.any(np.diff(taus) <= 0) or taus[0] < 0 or taus[-1] >= 1:
        raise AttribmapError("taus must be a non-empty ascending array of thresholds in [0, 1)")
    gt = np.ascontiguousarray(np.concatenate(boxes) if boxes else np.zeros((0, 4), np.int64))
    gt_start = np.concatenate([[0], np.cumsum([len(b) for b in boxes])]).astype(np.int64)
    kernels, fg_tables, bg_tables = _kernels()
    v1, v2, unresolved, bad_map = kernels.batch_answers(
        s8_maps, frames, from_frames, taus, gt, gt_start, fg_tables, bg_tables,
        _workspace(kernels, *maps.shape[1:]))
    if bad_map >= 0:
        raise AttribmapError(f"float maps must be normalized: finite values in [0, 1]; map "
                             f"{int(bad_map)} is not")
    return v1, v2, unresolved
