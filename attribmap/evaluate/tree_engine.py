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

Needs numba (compiled on first use, a few seconds, then cached on disk).
"""
from __future__ import annotations

import threading
import numpy as np

from attribmap.errors import AttribmapError
from attribmap.evaluate._compiled import numba_available

__all__ = ["numba_available", "tree_level_ious", "tree_batch_ious"]

_KERNEL = None
_WORKSPACE = threading.local()


# the 8 neighbours of a pixel as (dy, dx), bit k of a neighbourhood mask = neighbour k
_NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
_FOUR = (1, 3, 4, 6)  # the 4-neighbours among them (N, W, E, S)


def _quad_weight8(window: np.ndarray) -> int:
    """n(Q1) - n(Q3) - 2 n(QD) of one 2x2 window (bool, (2, 2)): 8-connected Euler x 4."""
    count = int(window.sum())
    if count == 1:
        return 1
    if count == 3:
        return -1
    if count == 2 and window[0, 0] == window[1, 1]:
        return -2
    return 0


def _quad_weight4(window: np.ndarray) -> int:
    """n(Q1) - n(Q3) + 2 n(QD) of one 2x2 window: 4-connected Euler number x 4."""
    count = int(window.sum())
    if count == 2 and window[0, 0] == window[1, 1]:
        return 2
    return _quad_weight8(window)


def _fill_weight(window: np.ndarray) -> int:
    """A window's share of a hole's fill gain: 1 for one of its pixels, 2 for more."""
    return min(int(window.sum()), 2)


def _local_groups(mask: int, neighbours, adjacent) -> tuple[int, list[int]]:
    """Split the set neighbours of ``mask`` into groups already connected around the pixel."""
    label = {}
    reps = []
    for k in neighbours:
        if not mask >> k & 1 or k in label:
            continue
        label[k] = len(reps)
        reps.append(k)
        stack = [k]
        while stack:
            a = stack.pop()
            for b in range(8):
                if mask >> b & 1 and b not in label and adjacent(a, b):
                    label[b] = label[k]
                    stack.append(b)  # corners link groups but never represent one
    return len(reps), reps


def _windows(mask: int):
    """The 3x3 neighbourhood of ``mask`` before and after the centre joins, and its 4 windows."""
    patch = np.zeros((3, 3), dtype=bool)
    for k, (dy, dx) in enumerate(_NEIGHBOURS):
        patch[1 + dy, 1 + dx] = bool(mask >> k & 1)
    with_pixel = patch.copy()
    with_pixel[1, 1] = True
    for wy in (0, 1):
        for wx in (0, 1):
            yield patch[wy:wy + 2, wx:wx + 2], with_pixel[wy:wy + 2, wx:wx + 2]


def _neighbourhood_tables():
    """What adding a foreground pixel changes, for each of the 256 masks of its neighbours.

    Returns
    -------
    area2_gain : (256,) int32
        Gain of twice the bit-quad area: +1 per 2x2 window of the pixel already holding
        2 or 3 foreground pixels.
    euler4_gain : (256,) int32
        Gain of ``4 * E8`` = ``n(Q1) - n(Q3) - 2 n(QD)`` over the pixel's 4 windows (kept
        for the tests: the number of holes is ``components - E8``).
    groups : (256,) int32 and reps : (256, 4) int32
        The foreground neighbours split into groups of mutually 8-connected ones (each
        group is already one set before the pixel joins); one neighbour index per group.
    """
    area2_gain = np.zeros(256, dtype=np.int32)
    euler4_gain = np.zeros(256, dtype=np.int32)
    groups = np.zeros(256, dtype=np.int32)
    reps = np.zeros((256, 4), dtype=np.int32)
    for mask in range(256):
        for before, after in _windows(mask):
            if int(before.sum()) in (2, 3):
                area2_gain[mask] += 1
            euler4_gain[mask] += _quad_weight8(after) - _quad_weight8(before)
        count, found = _local_groups(mask, range(8), _touch8)
        groups[mask] = count
        reps[mask, :count] = found
    return area2_gain, euler4_gain, groups, reps


def _background_tables():
    """What adding a background pixel changes, for each of the 256 masks of its
    background neighbours (4-connected background).

    Returns
    -------
    fill_gain : (256,) int32
        Gain of a hole's fill gain: +1 per window of the pixel holding at most one
        background pixel before.
    euler4_gain : (256,) int32
        Gain of ``4 * E4`` = ``n(Q1) - n(Q3) + 2 n(QD)`` over the pixel's 4 windows.
    groups : (256,) int32 and reps : (256, 4) int32
        The background 4-neighbours split into groups already 4-connected through a
        background corner; one neighbour index per group.
    """
    fill_gain = np.zeros(256, dtype=np.int32)
    euler4_gain = np.zeros(256, dtype=np.int32)
    groups = np.zeros(256, dtype=np.int32)
    reps = np.zeros((256, 4), dtype=np.int32)
    for mask in range(256):
        for before, after in _windows(mask):
            fill_gain[mask] += _fill_weight(after) - _fill_weight(before)
            euler4_gain[mask] += _quad_weight4(after) - _quad_weight4(before)
        count, found = _local_groups(mask, _FOUR, _touch4)
        groups[mask] = count
        reps[mask, :count] = found
    return fill_gain, euler4_gain, groups, reps


def _touch8(a: int, b: int) -> bool:
    (ay, ax), (by, bx) = _NEIGHBOURS[a], _NEIGHBOURS[b]
    return max(abs(ay - by), abs(ax - bx)) == 1


def _touch4(a: int, b: int) -> bool:
    (ay, ax), (by, bx) = _NEIGHBOURS[a], _NEIGHBOURS[b]
    return abs(ay - by) + abs(ax - bx) == 1


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

    @numba.njit(cache=True, nogil=True, inline="always")
    def _root(parent, node):
        """Root of ``node``; no path compression, so that :func:`_root_at` stays exact."""
        while parent[node] != node:
            node = parent[node]
        return node

    @numba.njit(cache=True, nogil=True, inline="always")
    def _root_at(parent, absorbed_at, node, step):
        """Root of ``node`` as it was once the pixels of level ``step`` had joined."""
        while parent[node] != node and absorbed_at[node] <= step:
            node = parent[node]
        return node

    @numba.njit(cache=True, nogil=True, inline="always")
    def _find(parent, node):
        """Root of ``node``, halving the path on the way up."""
        while True:
            up = parent[node]
            if up == node:
                return node
            upper = parent[up]
            parent[node] = upper
            node = upper

    @numba.njit(cache=True, nogil=True)
    def _open_set(label, parent, active, active_pos, p, sid, n_active):
        """Pixel ``p`` starts set ``sid``, appended to the active list (rare: a birth)."""
        label[p] = sid
        parent[sid] = sid
        active[n_active] = sid
        active_pos[sid] = n_active

    @numba.njit(cache=True, nogil=True)
    def _drop_active(active, active_pos, n_active, sid):
        """Swap-remove set ``sid`` from the active list, ``n_active`` being the new length
        (rare: a merge)."""
        last = active[n_active]
        slot = active_pos[sid]
        active[slot] = last
        active_pos[last] = slot

    @numba.njit(cache=True, nogil=True, inline="always")
    def _merge_stats(stats, root, other):
        stats[root, 0] += stats[other, 0]
        stats[root, 1] = min(stats[root, 1], stats[other, 1])
        stats[root, 2] = min(stats[root, 2], stats[other, 2])
        stats[root, 3] = max(stats[root, 3], stats[other, 3])
        stats[root, 4] = max(stats[root, 4], stats[other, 4])
        stats[root, 5] += stats[other, 5]
        stats[root, 6] += stats[other, 6]
        stats[root, 7] = min(stats[root, 7], stats[other, 7])

    @numba.njit(cache=True, nogil=True, inline="always")
    def _new_set(stats, sid, p, x, y, gain, euler):
        stats[sid, 0] = 1
        stats[sid, 1] = x
        stats[sid, 2] = y
        stats[sid, 3] = x
        stats[sid, 4] = y
        stats[sid, 5] = gain
        stats[sid, 6] = euler
        stats[sid, 7] = p

    @numba.njit(cache=True, nogil=True, inline="always")
    def _add_to_component(stats, root, x, y, gain):
        # stores only when the box grows (rare, well predicted): no store-to-load chain
        # between consecutive pixels of one set
        if x < stats[root, 1]:
            stats[root, 1] = x
        if y < stats[root, 2]:
            stats[root, 2] = y
        if x > stats[root, 3]:
            stats[root, 3] = x
        if y > stats[root, 4]:
            stats[root, 4] = y
        stats[root, 5] += gain

    @numba.njit(cache=True, nogil=True, inline="always")
    def _add_to_set(stats, root, p, x, y, gain, euler):
        """:func:`_add_to_component` plus size, Euler number and first pixel (holes)."""
        stats[root, 0] += 1
        _add_to_component(stats, root, x, y, gain)
        stats[root, 6] += euler
        if p < stats[root, 7]:
            stats[root, 7] = p

    @numba.njit(cache=True, nogil=True)
    def _first_pixel(s8, level, label, parent, stats, root):
        """Raster index (padded) of a component's first pixel: the leftmost of its top row.
        Only needed to break ties, so it is looked up instead of kept per pixel."""
        padded_w = s8.shape[1] + 2
        y = stats[root, 2]
        for x in range(stats[root, 1], stats[root, 3] + 1):
            p = (y + 1) * padded_w + (x + 1)
            if s8[y, x] > level and _root(parent, label[p]) == root:
                return p
        return -1  # not reached

    @numba.njit(cache=True, nogil=True)
    def _grown(values, used, needed):
        """``values`` with room for ``needed`` entries (doubled as often as necessary)."""
        if needed <= values.shape[0]:
            return values
        capacity = values.shape[0]
        while capacity < needed:
            capacity *= 2
        grown = np.empty(capacity, dtype=values.dtype)
        grown[:used] = values[:used]
        return grown

    @numba.njit(cache=True, nogil=True)
    def _sort_pixels(s8, padded, masks, order):
        """Pixels sorted by score, highest first (ties in raster order), each with the mask
        of its neighbours that come before it in that order.

        Returns ``starts`` with ``starts[255 - v]`` = number of pixels scoring more than
        ``v``. In the reverse order (the background sweep) the neighbours that come before
        a pixel are the complement of its mask (the padded frame counting as before).
        """
        height, width = s8.shape
        for y in range(height):
            for x in range(width):
                padded[y + 1, x + 1] = s8[y, x]
        for y in range(height):  # vectorized: no dependency between pixels
            above = padded[y]
            here = padded[y + 1]
            below = padded[y + 2]
            row = masks[y]
            for x in range(width):
                v = here[x + 1]
                row[x] = (np.uint8(above[x] >= v) | (np.uint8(above[x + 1] >= v) << 1)
                          | (np.uint8(above[x + 2] >= v) << 2) | (np.uint8(here[x] >= v) << 3)
                          | (np.uint8(here[x + 2] > v) << 4) | (np.uint8(below[x] > v) << 5)
                          | (np.uint8(below[x + 1] > v) << 6) | (np.uint8(below[x + 2] > v) << 7))
        counts = np.zeros((4, 256), dtype=np.int64)  # four copies: neighbours share scores
        for y in range(height):
            for x in range(width):
                counts[x & 3, 255 - s8[y, x]] += 1
        starts = np.zeros(257, dtype=np.int64)
        for v in range(256):
            starts[v + 1] = starts[v] + counts[0, v] + counts[1, v] + counts[2, v] + counts[3, v]
        fill = starts[:256].copy()
        for y in range(height):
            for x in range(width):
                slot = 255 - s8[y, x]
                at = fill[slot]
                order[at] = (y << 40) | (x << 8) | masks[y, x]  # one word per pixel
                fill[slot] = at + 1
        return starts

    @numba.njit(cache=True, nogil=True)
    def _neighbour_offsets(padded_w):
        offsets = np.empty(8, dtype=np.int64)
        k = 0
        for dy in range(-1, 2):
            for dx in range(-1, 2):
                if dy != 0 or dx != 0:
                    offsets[k] = dy * padded_w + dx
                    k += 1
        return offsets

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def _foreground_sweep(s8, levels_desc, gt, starts, order,
                          area2_gain, euler4_gain, groups, reps,
                          label, parent, absorbed_at, stats, active, active_pos):
        """From the highest level down; answers the levels without holes.

        At a level with holes (components - Euler number > 0) it keeps the components
        instead: ``snap_set / snap_iou / snap_area`` from ``snap_start[l]`` on,
        ``snap_count[l]`` of them (set number, outer-box IoU, twice the bit-quad area).
        """
        height, width = s8.shape
        padded_w = width + 2
        n_levels = levels_desc.shape[0]
        v1 = np.zeros(n_levels)
        v2 = np.zeros(n_levels)
        has_holes = np.zeros(n_levels, dtype=np.bool_)
        snap_start = np.zeros(n_levels, dtype=np.int64)
        snap_count = np.zeros(n_levels, dtype=np.int64)
        snap_set = np.empty(16, dtype=np.int64)
        snap_iou = np.empty(16, dtype=np.float64)
        snap_area = np.empty(16, dtype=np.int64)
        n_snap = 0
        offsets = _neighbour_offsets(padded_w)
        first_offset = np.empty(256, dtype=np.int64)  # where to look for the first group
        for m in range(256):
            first_offset[m] = offsets[reps[m, 0]]
        n_sets = 0
        n_active = 0
        euler4 = 0
        cursor = 0
        for li in range(n_levels):
            stop = starts[255 - levels_desc[li]]
            while cursor < stop:
                packed = order[cursor]
                mask = packed & 255
                x = (packed >> 8) & 0xFFFFFFFF
                y = packed >> 40
                cursor += 1
                p = (y + 1) * padded_w + (x + 1)
                euler4 += euler4_gain[mask]
                n_groups = groups[mask]
                if n_groups == 0:  # a new component
                    _open_set(label, parent, active, active_pos, p, n_sets, n_active)
                    _new_set(stats, n_sets, p, x, y, 0, 0)
                    stats[n_sets, 0] = 0  # the union rank
                    n_sets += 1
                    n_active += 1
                    continue
                root = _root(parent, label[p + first_offset[mask]])
                for g in range(1, n_groups):
                    other = _root(parent, label[p + offsets[reps[mask, g]]])
                    if other == root:
                        continue
                    if stats[other, 0] > stats[root, 0]:  # union by rank: depth <= log2(n)
                        root, other = other, root
                    elif stats[other, 0] == stats[root, 0]:
                        stats[root, 0] += 1
                    parent[other] = root
                    absorbed_at[other] = li
                    rank = stats[root, 0]
                    _merge_stats(stats, root, other)
                    stats[root, 0] = rank
                    n_active -= 1
                    _drop_active(active, active_pos, n_active, other)
                label[p] = root
                _add_to_component(stats, root, x, y, area2_gain[mask])
            if n_active == 0:
                iou = _box_iou(0, 0, 0, 0, gt)
                v1[li] = iou
                v2[li] = iou
                continue
            holes = 4 * n_active != euler4  # holes = components - Euler number
            if holes:
                has_holes[li] = True
                snap_set = _grown(snap_set, n_snap, n_snap + n_active)
                snap_iou = _grown(snap_iou, n_snap, n_snap + n_active)
                snap_area = _grown(snap_area, n_snap, n_snap + n_active)
                snap_start[li] = n_snap
                snap_count[li] = n_active
            best_v2 = 0.0
            best_area = -1
            best_first = -1
            best_root = -1
            best_v1 = 0.0
            for a in range(n_active):
                r = active[a]
                iou = _box_iou(stats[r, 1], stats[r, 2], min(stats[r, 3] + 1, width - 1),
                               min(stats[r, 4] + 1, height - 1), gt)
                if a == 0 or iou > best_v2:
                    best_v2 = iou
                area = stats[r, 5]
                if area > best_area:
                    best_area = area
                    best_first = -1  # looked up if a tie needs it
                    best_root = r
                    best_v1 = iou
                elif area == best_area:
                    if best_first < 0:
                        best_first = _first_pixel(s8, levels_desc[li], label, parent, stats,
                                                  best_root)
                    first = _first_pixel(s8, levels_desc[li], label, parent, stats, r)
                    if first > best_first:
                        best_first = first
                        best_root = r
                        best_v1 = iou
                if holes:
                    snap_set[n_snap] = r
                    snap_iou[n_snap] = iou
                    snap_area[n_snap] = area
                    n_snap += 1
            v1[li] = best_v1
            v2[li] = best_v2
        return v1, v2, has_holes, snap_start, snap_count, snap_set, snap_iou, snap_area

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def _background_sweep(s8, levels_desc, gt, starts, order,
                          fill_gain, euler_gain, groups, reps, label, parent, stats,
                          active, active_pos, fg_parent, fg_absorbed_at, slot_of, extra,
                          v1, v2, has_holes, unresolved,
                          snap_start, snap_count, snap_set, snap_iou, snap_area):
        """From the lowest level up to the highest level with holes: the holes.

        At each level with holes, V2 also takes the hole borders, and V1 is chosen with
        every component's area made that of its outer border (its holes' fill gain added).
        """
        height, width = s8.shape
        padded_w = width + 2
        n_padded = (height + 2) * padded_w
        n_levels = levels_desc.shape[0]
        lowest_step = n_levels
        for li in range(n_levels):
            if has_holes[li]:
                lowest_step = li  # in levels_desc order: the highest level with holes
                break
        if lowest_step == n_levels:
            return
        # the padded frame is background and set 0, "outside", never absorbed (its size
        # is larger than any other set's) and never in the active list of holes
        outside = 0
        for p in range(padded_w):
            label[p] = outside
            label[n_padded - 1 - p] = outside
        for row in range(1, height + 1):
            label[row * padded_w] = outside
            label[row * padded_w + padded_w - 1] = outside
        parent[outside] = outside
        stats[outside, 0] = n_padded + 1
        n_sets = 1
        offsets = _neighbour_offsets(padded_w)
        first_offset = np.empty(256, dtype=np.int64)  # where to look for the first group
        for m in range(256):
            first_offset[m] = offsets[reps[m, 0]]
        n_active = 0
        cursor = height * width
        for li in range(n_levels - 1, lowest_step - 1, -1):  # ascending levels
            stop = starts[255 - levels_desc[li]]  # background = the pixels scoring <= level
            while cursor > stop:
                cursor -= 1
                packed = order[cursor]
                x = (packed >> 8) & 0xFFFFFFFF
                y = packed >> 40
                p = (y + 1) * padded_w + (x + 1)
                mask = 255 - (packed & 255)
                n_groups = groups[mask]
                if n_groups == 0:  # a new hole
                    _open_set(label, parent, active, active_pos, p, n_sets, n_active)
                    _new_set(stats, n_sets, p, x, y, fill_gain[mask], euler_gain[mask])
                    n_sets += 1
                    n_active += 1
                    continue
                root = _find(parent, label[p + first_offset[mask]])
                for g in range(1, n_groups):
                    other = _find(parent, label[p + offsets[reps[mask, g]]])
                    if other == root:
                        continue
                    if stats[other, 0] > stats[root, 0]:
                        root, other = other, root
                    parent[other] = root
                    if root != outside:
                        _merge_stats(stats, root, other)
                    n_active -= 1
                    _drop_active(active, active_pos, n_active, other)
                label[p] = root
                if root != outside:
                    _add_to_set(stats, root, p, x, y, fill_gain[mask], euler_gain[mask])
            if not has_holes[li]:
                continue
            if n_active == 0:  # cannot happen (both sweeps count the same holes)
                unresolved[li] = True
                continue
            first = snap_start[li]
            count = snap_count[li]
            for j in range(count):
                slot_of[snap_set[first + j]] = j
                extra[j] = 0
            best_hole = 0.0
            nested = False
            for a in range(n_active):
                r = active[a]
                # the hole's border runs one pixel outside the hole's own box
                iou = _box_iou(stats[r, 1] - 1, stats[r, 2] - 1, min(stats[r, 3] + 2, width - 1),
                               min(stats[r, 4] + 2, height - 1), gt)
                best_hole = max(best_hole, iou)
                if stats[r, 6] != 4:  # a component lies inside this hole
                    nested = True
                    break
                # the pixel left of a hole's first pixel belongs to the component around it
                owner = _root_at(fg_parent, fg_absorbed_at, label[stats[r, 7] - 1], li)
                extra[slot_of[owner]] += stats[r, 5]
            if nested:
                unresolved[li] = True
                continue
            best_area = -1
            best_v1 = 0.0
            best_v2 = best_hole
            tied = False
            for j in range(count):
                area = snap_area[first + j] + extra[j]
                if area == best_area:
                    tied = True
                elif area > best_area:
                    tied = False
                    best_area = area
                    best_v1 = snap_iou[first + j]
                best_v2 = max(best_v2, snap_iou[first + j])
            if tied:  # OpenCV's order among tied components also involves hole borders
                unresolved[li] = True
                continue
            v1[li] = best_v1
            v2[li] = best_v2

    @numba.njit(cache=True, nogil=True)
    def _sweep(s8, levels_desc, gt, area2_gain, euler4_gain, groups, reps,
               fill_gain, bg_euler_gain, bg_groups, bg_reps,
               label, parent, absorbed_at, stats, bg_parent, bg_stats, active, active_pos,
               padded, masks, order, slot_of, extra):
        starts = _sort_pixels(s8, padded, masks, order)
        (v1, v2, has_holes, snap_start, snap_count, snap_set, snap_iou,
         snap_area) = _foreground_sweep(s8, levels_desc, gt, starts, order,
                                        area2_gain, euler4_gain, groups, reps, label, parent,
                                        absorbed_at, stats, active, active_pos)
        unresolved = np.zeros(levels_desc.shape[0], dtype=np.bool_)
        _background_sweep(s8, levels_desc, gt, starts, order,
                          fill_gain, bg_euler_gain, bg_groups, bg_reps, label, bg_parent,
                          bg_stats, active, active_pos, parent, absorbed_at, slot_of, extra,
                          v1, v2, has_holes, unresolved, snap_start, snap_count, snap_set,
                          snap_iou, snap_area)
        return v1, v2, unresolved, has_holes

    @numba.njit(cache=True, nogil=True)
    def _batch(s8_maps, frames, from_frames, taus, gt, gt_start, area2_gain, euler4_gain,
               groups, reps, fill_gain, bg_euler_gain, bg_groups, bg_reps,
               label, parent, absorbed_at, stats, bg_parent, bg_stats, active, active_pos,
               padded, masks, order, slot_of, extra, bad_map):
        """Every map of a batch at every tau: V1 / V2 IoU (N, T) and the unresolved ones.

        ``from_frames``: the maps are the float64 ``frames`` in [0, 1], each turned into
        ``floor(255 x)`` in ``s8_maps[0]`` first (numpy's ``(x * 255).astype(uint8)``);
        otherwise ``s8_maps`` holds the uint8 maps. A float map with a value outside
        [0, 1] (or NaN) stops the batch with its index in ``bad_map[0]``.
        """
        n_maps = frames.shape[0] if from_frames else s8_maps.shape[0]
        n_taus = taus.shape[0]
        v1_out = np.zeros((n_maps, n_taus))
        v2_out = np.zeros((n_maps, n_taus))
        unresolved_out = np.zeros((n_maps, n_taus), dtype=np.bool_)
        level_of_tau = np.empty(n_taus, dtype=np.int64)
        slot_of_tau = np.empty(n_taus, dtype=np.int64)
        levels_desc = np.empty(n_taus, dtype=np.int64)
        for n in range(n_maps):
            if from_frames:
                s8 = s8_maps[0]
                frame = frames[n]
                outside = 0
                for y in range(s8.shape[0]):
                    for x in range(s8.shape[1]):
                        v = frame[y, x]
                        outside += np.int64(v < 0.0) + np.int64(v > 1.0) + np.int64(v != v)
                        s8[y, x] = np.uint8(v * 255.0)
                if outside:
                    bad_map[0] = n
                    return v1_out, v2_out, unresolved_out
            else:
                s8 = s8_maps[n]
            peak = float(s8.max())
            for k in range(n_taus):  # the reference's int(tau * max): same float product
                level_of_tau[k] = np.int64(taus[k] * peak)
            n_levels = 0
            for k in range(n_taus - 1, -1, -1):  # taus ascend, so levels do not descend
                if n_levels == 0 or level_of_tau[k] != levels_desc[n_levels - 1]:
                    levels_desc[n_levels] = level_of_tau[k]
                    n_levels += 1
                slot_of_tau[k] = n_levels - 1
            v1, v2, unresolved, _ = _sweep(
                s8, levels_desc[:n_levels], gt[gt_start[n]:gt_start[n + 1]], area2_gain,
                euler4_gain, groups, reps, fill_gain, bg_euler_gain, bg_groups, bg_reps,
                label, parent, absorbed_at, stats, bg_parent, bg_stats, active, active_pos,
                padded, masks, order, slot_of, extra)
            for k in range(n_taus):
                slot = slot_of_tau[k]
                v1_out[n, k] = v1[slot]
                v2_out[n, k] = v2[slot]
                unresolved_out[n, k] = unresolved[slot]
        return v1_out, v2_out, unresolved_out

    return _sweep, _batch


def _kernel():
    """(compiled sweep, compiled batch, foreground tables, background tables), built on first use."""
    global _KERNEL
    if _KERNEL is None:
        if not numba_available():
            raise AttribmapError("engine='tree' needs numba (pip install 'numba>=0.60')")
        _KERNEL = (*_build_kernel(), _neighbourhood_tables(), _background_tables())
    return _KERNEL


def _workspace(height: int, width: int):
    """Per-thread scratch arrays for one map size, reused across calls (no page faults)."""
    cached = getattr(_WORKSPACE, "arrays", None)
    if cached is None or cached[0] != (height, width):
        padded = (height + 2) * (width + 2)
        sets = height * width + 1
        cached = ((height, width),
                  np.empty(padded, dtype=np.int32),  # set number of each pixel in the cut
                  np.empty(sets, dtype=np.int32),  # foreground: union-find over set numbers
                  np.empty(sets, dtype=np.int32),  # ... the level step a set was absorbed at
                  np.empty((sets, 8), dtype=np.int32),  # ... per-set stats
                  np.empty(sets, dtype=np.int32),  # background: union-find
                  np.empty((sets, 8), dtype=np.int32),  # ... per-set stats
                  np.empty(sets, dtype=np.int32),  # active sets
                  np.empty(sets, dtype=np.int32),  # position in the active list
                  np.full((height + 2, width + 2), -1, dtype=np.int16),  # the map, padded
                  np.empty((height, width), dtype=np.uint8),  # neighbour masks
                  np.empty(height * width, dtype=np.int64),  # pixels sorted by score: y, x, mask
                  np.empty(sets, dtype=np.int32),  # set number -> slot among the components
                  np.empty(sets, dtype=np.int64))  # per-component fill gain of its holes
        _WORKSPACE.arrays = cached
    return cached[1:]


def tree_level_ious(s8: np.ndarray, levels: np.ndarray, gt_boxes: np.ndarray):
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
    sweep, _, foreground, background = _kernel()
    results = sweep(s8, np.ascontiguousarray(levels[order]), gt, *foreground, *background,
                    *_workspace(*s8.shape))
    outputs = []
    for desc in results:
        out = np.empty_like(desc)
        out[order] = desc
        outputs.append(out)
    return tuple(outputs)


def tree_batch_ious(maps: np.ndarray, gt_boxes, taus: np.ndarray):
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
    _, batch, foreground, background = _kernel()
    bad_map = np.full(1, -1, dtype=np.int64)
    result = batch(s8_maps, frames, from_frames, taus, gt, gt_start, *foreground, *background,
                   *_workspace(*maps.shape[1:]), bad_map)
    if bad_map[0] >= 0:
        raise AttribmapError(f"float maps must be normalized: finite values in [0, 1]; map "
                             f"{int(bad_map[0])} is not")
    return result
