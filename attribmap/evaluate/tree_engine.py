"""The ``"tree"`` contour engine: every cut level of a map in one compiled sweep.

Pixels are added from the highest uint8 score down into a union-find over 8-connected
neighbours, so after adding every pixel with ``s8 > t`` the sets are exactly the
8-connected components of the cut at level ``t``. Each set keeps what the WSOL protocol
needs from its outer contour:

* its bounding box (the outer border's bounding rectangle);
* twice its *bit-quad area*: over the 2x2 windows of the zero-padded image, a window
  with 4 foreground pixels counts 2 and one with 3 counts 1. All pixels of a window are
  8-adjacent, hence in one set. For a component without holes this is twice
  ``cv2.contourArea`` of its outer border;
* its first pixel in raster order (for OpenCV's order among equal areas).

The sweep also keeps ``4 * E8``, four times the 8-connected Euler number
``E8 = (n(Q1) - n(Q3) - 2 n(QD)) / 4`` (Gray's bit-quad formula), so the number of
holes (4-connected background regions off the border) ``= components - E8`` is known at
every level. What adding one pixel changes (area gain, Euler gain, which of its
foreground neighbours are already one set) depends only on which of its 8 neighbours
are in: it is tabulated once for the 256 neighbourhoods (:func:`_neighbourhood_tables`).

* A level **without holes** is answered from the sets alone: the contours are the outer
  borders, V1 is the set of largest area (ties: the one whose first pixel comes last in
  raster order, the one OpenCV lists first) and V2 the best box over all sets.
* A level **with holes** (about one level in six on CAM-like maps, most levels on
  noise) is flagged; :func:`attribmap.evaluate.threshold_boxes.best_ious_per_tau`
  computes those levels with the OpenCV (or numpy) engine, so results stay identical.

Needs numba (compiled on first use, about 3 s, then cached on disk).
"""
from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np

from attribmap.errors import AttribmapError

__all__ = ["numba_available", "tree_level_ious"]

_KERNEL = None
_WORKSPACE = threading.local()


@lru_cache(maxsize=None)
def numba_available() -> bool:
    """Whether numba can be imported (the ``"tree"`` engine needs it)."""
    try:
        import numba  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


# the 8 neighbours of a pixel as (dy, dx), bit k of a neighbourhood mask = neighbour k
_NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def _quad_weight(window: np.ndarray) -> int:
    """n(Q1) - n(Q3) - 2 n(QD) contribution of one 2x2 window (bool, shape (2, 2))."""
    count = int(window.sum())
    if count == 1:
        return 1
    if count == 3:
        return -1
    if count == 2 and window[0, 0] == window[1, 1]:
        return -2
    return 0


def _neighbourhood_tables():
    """What adding a pixel changes, for each of the 256 masks of its foreground neighbours.

    Returns
    -------
    area2_gain : (256,) int64
        Gain of twice the bit-quad area: +1 per 2x2 window of the pixel already holding
        2 or 3 foreground pixels.
    euler4_gain : (256,) int64
        Gain of ``4 * E8`` = ``n(Q1) - n(Q3) - 2 n(QD)`` over the pixel's 4 windows.
    groups : (256,) int64 and reps : (256, 4) int64
        The foreground neighbours split into groups of mutually 8-connected ones (each
        group is already one set before the pixel joins); one neighbour index per group.
    """
    area2_gain = np.zeros(256, dtype=np.int64)
    euler4_gain = np.zeros(256, dtype=np.int64)
    groups = np.zeros(256, dtype=np.int64)
    reps = np.zeros((256, 4), dtype=np.int64)
    for mask in range(256):
        patch = np.zeros((3, 3), dtype=bool)
        for k, (dy, dx) in enumerate(_NEIGHBOURS):
            patch[1 + dy, 1 + dx] = bool(mask >> k & 1)
        with_pixel = patch.copy()
        with_pixel[1, 1] = True
        for wy in (0, 1):
            for wx in (0, 1):
                before = patch[wy:wy + 2, wx:wx + 2]
                after = with_pixel[wy:wy + 2, wx:wx + 2]
                if int(before.sum()) in (2, 3):
                    area2_gain[mask] += 1
                euler4_gain[mask] += _quad_weight(after) - _quad_weight(before)
        label = [-1] * 8
        for k in range(8):
            if not mask >> k & 1 or label[k] >= 0:
                continue
            reps[mask, groups[mask]] = k
            stack = [k]
            label[k] = groups[mask]
            while stack:
                a = stack.pop()
                (ay, ax) = _NEIGHBOURS[a]
                for b, (by, bx) in enumerate(_NEIGHBOURS):
                    near = max(abs(ay - by), abs(ax - bx)) == 1
                    if mask >> b & 1 and label[b] < 0 and near:
                        label[b] = groups[mask]
                        stack.append(b)
            groups[mask] += 1
    return area2_gain, euler4_gain, groups, reps


def _build_kernel():
    import numba  # noqa: PLC0415

    @numba.njit(cache=True, nogil=True)
    def _box_iou(x0, y0, x1, y1, gt):
        best = 0.0
        area_a = (x1 - x0 + 1) * (y1 - y0 + 1)
        for g in range(gt.shape[0]):
            inter_w = min(x1, gt[g, 2]) - max(x0, gt[g, 0]) + 1
            inter_h = min(y1, gt[g, 3]) - max(y0, gt[g, 1]) + 1
            if inter_w < 0:
                inter_w = 0
            if inter_h < 0:
                inter_h = 0
            inter = inter_w * inter_h
            union = area_a + (gt[g, 2] - gt[g, 0] + 1) * (gt[g, 3] - gt[g, 1] + 1) - inter
            iou = 0.0
            if union > 0:
                iou = inter / union
            if g == 0 or iou > best:
                best = iou
        return best

    @numba.njit(cache=True, nogil=True)
    def _find(parent, node):
        """Root of ``node``, halving the path on the way up."""
        while True:
            up = parent[node]
            if up == node:
                return node
            upper = parent[up]
            parent[node] = upper
            node = upper

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def _sweep(s8, levels_desc, gt, area2_gain, euler4_gain, groups, reps,
               parent, stats, active, active_pos):
        # padded (H+2)*(W+2) index space; parent is meaningful only where inside == 1
        # (the padded border never joins).
        # stats[root]: size, min_x, min_y, max_x, max_y, area2, first pixel (raster).
        height, width = s8.shape
        padded_w = width + 2
        total = height * width
        n_levels = levels_desc.shape[0]
        v1 = np.zeros(n_levels)
        v2 = np.zeros(n_levels)
        has_holes = np.zeros(n_levels, dtype=np.bool_)
        inside = np.zeros(parent.shape[0], dtype=np.uint8)  # foreground flags, padded

        # counting sort of the pixels by score, highest first
        starts = np.zeros(257, dtype=np.int64)
        for y in range(height):
            for x in range(width):
                starts[256 - s8[y, x]] += 1
        for v in range(256):
            starts[v + 1] += starts[v]
        # now starts[255 - v] = number of pixels with score > v
        fill = starts[:256].copy()
        order_x = np.empty(total, dtype=np.int64)
        order_y = np.empty(total, dtype=np.int64)
        for y in range(height):
            for x in range(width):
                slot = 255 - s8[y, x]
                at = fill[slot]
                order_x[at] = x
                order_y[at] = y
                fill[slot] = at + 1

        offsets = np.empty(8, dtype=np.int64)
        k = 0
        for dy in range(-1, 2):
            for dx in range(-1, 2):
                if dy != 0 or dx != 0:
                    offsets[k] = dy * padded_w + dx
                    k += 1
        n_active = 0
        euler4 = 0
        cursor = 0
        for li in range(n_levels):
            stop = starts[255 - levels_desc[li]]
            while cursor < stop:
                x = order_x[cursor]
                y = order_y[cursor]
                cursor += 1
                p = (y + 1) * padded_w + (x + 1)
                mask = (inside[p - padded_w - 1] | (inside[p - padded_w] << 1)
                        | (inside[p - padded_w + 1] << 2) | (inside[p - 1] << 3)
                        | (inside[p + 1] << 4) | (inside[p + padded_w - 1] << 5)
                        | (inside[p + padded_w] << 6) | (inside[p + padded_w + 1] << 7))
                inside[p] = 1
                euler4 += euler4_gain[mask]
                n_groups = groups[mask]
                if n_groups == 0:  # a new component
                    parent[p] = p
                    stats[p, 0] = 1
                    stats[p, 1] = x
                    stats[p, 2] = y
                    stats[p, 3] = x
                    stats[p, 4] = y
                    stats[p, 5] = 0
                    stats[p, 6] = p
                    active[n_active] = p
                    active_pos[p] = n_active
                    n_active += 1
                    continue
                root = _find(parent, p + offsets[reps[mask, 0]])
                for g in range(1, n_groups):
                    other = _find(parent, p + offsets[reps[mask, g]])
                    if other == root:
                        continue
                    if stats[other, 0] > stats[root, 0]:
                        root, other = other, root
                    parent[other] = root
                    stats[root, 0] += stats[other, 0]
                    stats[root, 1] = min(stats[root, 1], stats[other, 1])
                    stats[root, 2] = min(stats[root, 2], stats[other, 2])
                    stats[root, 3] = max(stats[root, 3], stats[other, 3])
                    stats[root, 4] = max(stats[root, 4], stats[other, 4])
                    stats[root, 5] += stats[other, 5]
                    stats[root, 6] = min(stats[root, 6], stats[other, 6])
                    n_active -= 1  # swap-remove the absorbed set from the active list
                    last = active[n_active]
                    slot = active_pos[other]
                    active[slot] = last
                    active_pos[last] = slot
                parent[p] = root
                stats[root, 0] += 1
                stats[root, 1] = min(stats[root, 1], x)
                stats[root, 2] = min(stats[root, 2], y)
                stats[root, 3] = max(stats[root, 3], x)
                stats[root, 4] = max(stats[root, 4], y)
                stats[root, 5] += area2_gain[mask]
                stats[root, 6] = min(stats[root, 6], p)
            # number of holes = components - Euler number
            if 4 * n_active != euler4:
                has_holes[li] = True
                continue
            if n_active == 0:
                iou = _box_iou(0, 0, 0, 0, gt)
                v1[li] = iou
                v2[li] = iou
                continue
            best_v2 = 0.0
            best_area = -1
            best_first = -1
            best_v1 = 0.0
            for a in range(n_active):
                r = active[a]
                iou = _box_iou(stats[r, 1], stats[r, 2], min(stats[r, 3] + 1, width - 1),
                               min(stats[r, 4] + 1, height - 1), gt)
                if a == 0 or iou > best_v2:
                    best_v2 = iou
                area = stats[r, 5]
                if area > best_area or (area == best_area and stats[r, 6] > best_first):
                    best_area = area
                    best_first = stats[r, 6]
                    best_v1 = iou
            v1[li] = best_v1
            v2[li] = best_v2
        return v1, v2, has_holes

    return _sweep


def _kernel():
    """(compiled sweep, neighbourhood tables), built on first use."""
    global _KERNEL
    if _KERNEL is None:
        if not numba_available():
            raise AttribmapError("engine='tree' needs numba (pip install 'numba>=0.60')")
        _KERNEL = (_build_kernel(), _neighbourhood_tables())
    return _KERNEL


def _workspace(height: int, width: int):
    """Per-thread scratch arrays for one map size, reused across calls (no page faults)."""
    cached = getattr(_WORKSPACE, "arrays", None)
    if cached is None or cached[0] != (height, width):
        padded = (height + 2) * (width + 2)
        cached = ((height, width),
                  np.empty(padded, dtype=np.int64),  # parent
                  np.empty((padded, 8), dtype=np.int64),  # per-root stats
                  np.empty(height * width, dtype=np.int64),  # active roots
                  np.empty(padded, dtype=np.int64))  # position in the active list
        _WORKSPACE.arrays = cached
    return cached[1:]


def tree_level_ious(s8: np.ndarray, levels: np.ndarray, gt_boxes: np.ndarray):
    """V1 and V2 IoU at each cut level of one map, with the levels that have holes marked.

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
        box, in the order of ``levels``; undefined (0) where ``has_holes``.
    has_holes : ndarray, bool, shape (L,)
        Levels whose cut has at least one hole; the caller must compute them otherwise.
    """
    s8 = np.ascontiguousarray(s8, dtype=np.uint8)
    if s8.ndim != 2 or s8.size == 0:
        raise AttribmapError(f"s8 must be a non-empty 2-D uint8 map; got shape {s8.shape}")
    levels = np.asarray(levels, dtype=np.int64).reshape(-1)
    if len(levels) and (levels.min() < 0 or levels.max() > 255):
        raise AttribmapError(f"levels must lie in [0, 255]; got {levels.min()}..{levels.max()}")
    gt = np.ascontiguousarray(gt_boxes, dtype=np.int64).reshape(-1, 4)
    if len(gt) == 0:
        raise AttribmapError("every image needs at least one ground-truth box")
    order = np.argsort(-levels, kind="stable")
    sweep, tables = _kernel()
    v1_desc, v2_desc, holes_desc = sweep(s8, np.ascontiguousarray(levels[order]), gt, *tables,
                                         *_workspace(*s8.shape))
    v1 = np.empty(len(levels))
    v2 = np.empty(len(levels))
    has_holes = np.empty(len(levels), dtype=bool)
    v1[order], v2[order], has_holes[order] = v1_desc, v2_desc, holes_desc
    return v1, v2, has_holes
