"""Compiled (numba) kernels of the ``"tree"`` contour engine.

The algorithm is described in :mod:`attribmap.evaluate.tree_engine`, which is the only
module that imports this one, and only once numba is known to be importable (so that
OpenCV / numpy fallbacks work without numba). The kernels compile on first use and numba
caches them on disk.

Data layout. A set (a component in the foreground sweep, a background region in the
background sweep) is a row of an int32 ``stats`` array; its columns are the constants
below, one set of names per sweep, because the column of the union key and the extra
columns differ. The box and the measure sit in the same columns in both sweeps, so that
:func:`_merge_box_and_measure` and :func:`_grow_box_and_measure` serve both. Scratch arrays
come in a :class:`TreeWorkspace`, the per-mask tables in a
:class:`~attribmap.evaluate.tree_tables.MaskTables`: named tuples of arrays, which numba
passes field by field, as fast as separate arguments inside compiled code (a call from
Python pays a few microseconds more to type them).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

# the columns of a set's row in ``stats``, shared by both sweeps
X0, Y0, X1, Y1 = 1, 2, 3, 4  # bounding box of the set's pixels, inclusive
MEASURE = 5  # the measure the sweep adds up per set (MaskTables.measure_gain)
STATS_COLUMNS = 8

# TreeWorkspace.fg_stats (a foreground set: an 8-connected component)
FG_RANK = 0  # union rank, a bound on the depth of the set's tree (not its size)
FG_AREA2 = MEASURE  # twice the bit-quad area of its pixels
# (columns 6 and 7 are not used by the foreground sweep)

# TreeWorkspace.bg_stats (a background set: a hole or "outside"); all four add up on a merge
BG_SIZE = 0  # number of pixels (the union key)
BG_FILL = MEASURE  # fill gain: over the 2x2 windows, 1 per window with one pixel, 2 with more
BG_EULER4 = 6  # 4 x its 4-connected Euler number (4: nothing lies inside the hole)
BG_FIRST = 7  # raster index (padded) of its first pixel

# one word per pixel in TreeWorkspace.order: y << 40 | x << 8 | mask of earlier neighbours
_X_SHIFT, _Y_SHIFT, _X_BITS, _MASK_BITS = 8, 40, 0xFFFFFFFF, 255

_OUTSIDE = 0  # background set number of the padded frame around the image


class TreeWorkspace(NamedTuple):
    """Scratch arrays of the sweeps for one map size (H, W), reused from call to call.

    ``P = (H + 2) (W + 2)`` padded pixels, ``S = H W + 1`` set numbers; all int32 unless
    said otherwise.
    """

    label: np.ndarray  # (P,): set number of each pixel of the current cut (both sweeps)
    fg_parent: np.ndarray  # (S,): foreground union-find, the parent of each set
    fg_absorbed_at: np.ndarray  # (S,): level step at which a set got a parent
    fg_stats: np.ndarray  # (S, STATS_COLUMNS): columns FG_*
    bg_parent: np.ndarray  # (S,): background union-find
    bg_stats: np.ndarray  # (S, STATS_COLUMNS): columns BG_*
    active: np.ndarray  # (S,): the roots that are components (fg) or holes (bg)
    active_pos: np.ndarray  # (S,): a root's index in ``active``
    padded: np.ndarray  # (H + 2, W + 2) int16: the map framed by -1
    masks: np.ndarray  # (H, W) uint8: mask of each pixel's earlier neighbours
    order: np.ndarray  # (H W,) int64: the pixels by score, highest first, packed
    slot_of: np.ndarray  # (S,): set number -> index among a level's kept components
    extra: np.ndarray  # (S,) int64: per kept component, the fill gain of its holes

    @classmethod
    def allocate(cls, height: int, width: int) -> "TreeWorkspace":
        """Fresh scratch arrays for maps of ``height`` x ``width`` pixels."""
        padded = (height + 2) * (width + 2)
        sets = height * width + 1
        return cls(label=np.empty(padded, dtype=np.int32),
                   fg_parent=np.empty(sets, dtype=np.int32),
                   fg_absorbed_at=np.empty(sets, dtype=np.int32),
                   fg_stats=np.empty((sets, STATS_COLUMNS), dtype=np.int32),
                   bg_parent=np.empty(sets, dtype=np.int32),
                   bg_stats=np.empty((sets, STATS_COLUMNS), dtype=np.int32),
                   active=np.empty(sets, dtype=np.int32),
                   active_pos=np.empty(sets, dtype=np.int32),
                   padded=np.full((height + 2, width + 2), -1, dtype=np.int16),
                   masks=np.empty((height, width), dtype=np.uint8),
                   order=np.empty(height * width, dtype=np.int64),
                   slot_of=np.empty(sets, dtype=np.int32),
                   extra=np.empty(sets, dtype=np.int64))


class LevelAnswers(NamedTuple):
    """Per cut level, in ``levels_desc`` order: the sweeps' answers."""

    v1: np.ndarray  # (L,) float64: IoU of the largest outer border's box
    v2: np.ndarray  # (L,) float64: best IoU over every border's box
    unresolved: np.ndarray  # (L,) bool: left to the caller
    has_holes: np.ndarray  # (L,) bool


class KeptComponents(NamedTuple):
    """The components of the levels with holes, kept by the foreground sweep: those of
    level ``l`` are entries ``start[l]`` to ``start[l] + count[l] - 1``."""

    start: np.ndarray  # (L,) int64
    count: np.ndarray  # (L,) int64
    set_id: np.ndarray  # (K,) int64: its root in the foreground union-find
    iou: np.ndarray  # (K,) float64: IoU of its outer border's box
    area2: np.ndarray  # (K,) int64: twice the bit-quad area of its pixels


@njit(cache=True, nogil=True)
def _box_iou(x0, y0, x1, y1, gt):
    """Best IoU of the inclusive box (x0, y0, x1, y1) with the rows of ``gt`` (k, 4)."""
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


# ---- union-find --------------------------------------------------------------------------
# The two sweeps link sets differently, on purpose. The foreground sweep links by rank and
# never compresses paths: the background sweep asks which component held a pixel *as of an
# earlier level* (:func:`_root_at`), which only works while every link made stays in place
# (``absorbed_at`` records when). The background union-find is never asked about the past,
# so it links by size (sizes are needed anyway: "outside" must stay the root) and halves
# paths (:func:`_find`).

@njit(cache=True, nogil=True, inline="always")
def _root(parent, node):
    """Root of ``node``; no path compression, so that :func:`_root_at` stays exact."""
    while parent[node] != node:
        node = parent[node]
    return node


@njit(cache=True, nogil=True, inline="always")
def _root_at(parent, absorbed_at, node, step):
    """Root of ``node`` as it was once the pixels of level ``step`` had joined."""
    while parent[node] != node and absorbed_at[node] <= step:
        node = parent[node]
    return node


@njit(cache=True, nogil=True, inline="always")
def _find(parent, node):
    """Root of ``node``, halving the path on the way up."""
    while True:
        up = parent[node]
        if up == node:
            return node
        upper = parent[up]
        parent[node] = upper
        node = upper


@njit(cache=True, nogil=True, inline="always")
def _new_box(stats, sid, x, y, measure):
    """Set ``sid`` holds pixel (x, y) alone: its box, and its first measure."""
    stats[sid, X0] = x
    stats[sid, Y0] = y
    stats[sid, X1] = x
    stats[sid, Y1] = y
    stats[sid, MEASURE] = measure


@njit(cache=True, nogil=True, inline="always")
def _grow_box_and_measure(stats, root, x, y, gain):
    """Pixel (x, y) joins set ``root``: its box grows to it, its measure by ``gain``."""
    # stores only when the box grows (rare, well predicted): no store-to-load chain
    # between consecutive pixels of one set
    if x < stats[root, X0]:
        stats[root, X0] = x
    if y < stats[root, Y0]:
        stats[root, Y0] = y
    if x > stats[root, X1]:
        stats[root, X1] = x
    if y > stats[root, Y1]:
        stats[root, Y1] = y
    stats[root, MEASURE] += gain


@njit(cache=True, nogil=True, inline="always")
def _new_component(stats, sid, x, y):
    """Foreground set ``sid`` is pixel (x, y) alone."""
    _new_box(stats, sid, x, y, 0)
    stats[sid, FG_RANK] = 0


@njit(cache=True, nogil=True, inline="always")
def _new_hole(stats, sid, p, x, y, fill_gain, euler4_gain):
    """Background set ``sid`` is pixel (x, y) alone (``p`` in the padded raster)."""
    _new_box(stats, sid, x, y, fill_gain)
    stats[sid, BG_SIZE] = 1
    stats[sid, BG_EULER4] = euler4_gain
    stats[sid, BG_FIRST] = p


@njit(cache=True, nogil=True, inline="always")
def _add_to_hole(stats, root, p, x, y, fill_gain, euler4_gain):
    """:func:`_grow_box_and_measure` for a hole, plus its size, Euler number and first
    pixel."""
    stats[root, BG_SIZE] += 1
    _grow_box_and_measure(stats, root, x, y, fill_gain)
    stats[root, BG_EULER4] += euler4_gain
    if p < stats[root, BG_FIRST]:
        stats[root, BG_FIRST] = p


@njit(cache=True, nogil=True, inline="always")
def _merge_box_and_measure(stats, root, other):
    """Set ``other`` joins set ``root``: union of the boxes, sum of the measures."""
    stats[root, X0] = min(stats[root, X0], stats[other, X0])
    stats[root, Y0] = min(stats[root, Y0], stats[other, Y0])
    stats[root, X1] = max(stats[root, X1], stats[other, X1])
    stats[root, Y1] = max(stats[root, Y1], stats[other, Y1])
    stats[root, MEASURE] += stats[other, MEASURE]


@njit(cache=True, nogil=True, inline="always")
def _union_by_rank(parent, absorbed_at, stats, root, other, step):
    """Link the foreground roots ``root`` != ``other`` at level step ``step``.

    Returns (the new root, the absorbed one).

    Union by rank keeps every tree at depth <= log2(n) without path compression.
    """
    if stats[other, FG_RANK] > stats[root, FG_RANK]:
        root, other = other, root
    elif stats[other, FG_RANK] == stats[root, FG_RANK]:
        stats[root, FG_RANK] += 1
    parent[other] = root
    absorbed_at[other] = step
    _merge_box_and_measure(stats, root, other)
    return root, other


@njit(cache=True, nogil=True, inline="always")
def _union_by_size(parent, stats, root, other):
    """Link the background roots ``root`` != ``other``.

    Returns (the new root: the larger set, the absorbed one).

    "Outside" is larger than any other set, so it always stays the root; its own stats
    are never updated (it is no hole).
    """
    if stats[other, BG_SIZE] > stats[root, BG_SIZE]:
        root, other = other, root
    parent[other] = root
    if root != _OUTSIDE:
        stats[root, BG_SIZE] += stats[other, BG_SIZE]
        _merge_box_and_measure(stats, root, other)
        stats[root, BG_EULER4] += stats[other, BG_EULER4]
        stats[root, BG_FIRST] = min(stats[root, BG_FIRST], stats[other, BG_FIRST])
    return root, other


# ---- the list of active sets (the roots that are components, or holes) -------------------

@njit(cache=True, nogil=True)
def _open_set(label, parent, active, active_pos, p, sid, n_active):
    """Pixel ``p`` starts set ``sid``, appended to the active list (rare: a birth)."""
    label[p] = sid
    parent[sid] = sid
    active[n_active] = sid
    active_pos[sid] = n_active


@njit(cache=True, nogil=True)
def _drop_active(active, active_pos, n_active, sid):
    """Swap-remove set ``sid`` from the active list, ``n_active`` being the new length
    (rare: a merge)."""
    last = active[n_active]
    slot = active_pos[sid]
    active[slot] = last
    active_pos[last] = slot


# ---- the pixels in score order -----------------------------------------------------------

@njit(cache=True, nogil=True)
def _sort_pixels(s8, ws):
    """Fill ``ws.order`` with the pixels sorted by score, highest first (ties in raster
    order), each with the mask of its neighbours that come before it in that order.

    Returns ``starts`` with ``starts[255 - v]`` = number of pixels scoring more than
    ``v``. In the reverse order (the background sweep) the neighbours that come before
    a pixel are the complement of its mask (the padded frame counting as before).
    """
    padded = ws.padded
    masks = ws.masks
    order = ws.order
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
            order[at] = (y << _Y_SHIFT) | (x << _X_SHIFT) | masks[y, x]
            fill[slot] = at + 1
    return starts


@njit(cache=True, nogil=True)
def _group_offsets(reps, padded_w):
    """Per mask, the offset in the padded raster of each group's neighbour: (256, 4)."""
    offsets = np.empty(8, dtype=np.int64)  # of the 8 neighbours (tree_tables.NEIGHBOURS)
    k = 0
    for dy in range(-1, 2):
        for dx in range(-1, 2):
            if dy != 0 or dx != 0:
                offsets[k] = dy * padded_w + dx
                k += 1
    group_offset = np.empty((256, 4), dtype=np.int64)
    for m in range(256):
        for g in range(4):
            group_offset[m, g] = offsets[reps[m, g]]
    return group_offset


# ---- the sweeps --------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def _first_pixel(s8, level, label, parent, stats, root):
    """Raster index (padded) of a component's first pixel: the leftmost of its top row.
    Only needed to break ties, so it is looked up instead of kept per pixel."""
    padded_w = s8.shape[1] + 2
    y = stats[root, Y0]
    for x in range(stats[root, X0], stats[root, X1] + 1):
        p = (y + 1) * padded_w + (x + 1)
        if s8[y, x] > level and _root(parent, label[p]) == root:
            return p
    return -1  # not reached


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True, error_model="numpy")
def _foreground_sweep(s8, levels_desc, gt, starts, tables, ws):
    """From the highest level down; answers the levels without holes.

    Returns the :class:`LevelAnswers` (``unresolved`` all False, for the background sweep
    to fill) and, for the levels with holes (components - Euler number > 0), the
    :class:`KeptComponents`.
    """
    label = ws.label
    parent = ws.fg_parent
    absorbed_at = ws.fg_absorbed_at
    stats = ws.fg_stats
    active = ws.active
    active_pos = ws.active_pos
    order = ws.order
    area2_gain = tables.measure_gain
    euler4_gain = tables.euler4_gain
    groups = tables.groups
    height, width = s8.shape
    padded_w = width + 2
    n_levels = levels_desc.shape[0]
    v1 = np.zeros(n_levels)
    v2 = np.zeros(n_levels)
    has_holes = np.zeros(n_levels, dtype=np.bool_)
    kept_start = np.zeros(n_levels, dtype=np.int64)
    kept_count = np.zeros(n_levels, dtype=np.int64)
    kept_set = np.empty(16, dtype=np.int64)
    kept_iou = np.empty(16, dtype=np.float64)
    kept_area2 = np.empty(16, dtype=np.int64)
    n_kept = 0
    group_offset = _group_offsets(tables.reps, padded_w)
    n_sets = 0
    n_active = 0
    euler4 = 0
    cursor = 0
    for li in range(n_levels):
        stop = starts[255 - levels_desc[li]]
        while cursor < stop:
            packed = order[cursor]
            mask = packed & _MASK_BITS
            x = (packed >> _X_SHIFT) & _X_BITS
            y = packed >> _Y_SHIFT
            cursor += 1
            p = (y + 1) * padded_w + (x + 1)
            euler4 += euler4_gain[mask]
            n_groups = groups[mask]
            if n_groups == 0:  # a new component
                _open_set(label, parent, active, active_pos, p, n_sets, n_active)
                _new_component(stats, n_sets, x, y)
                n_sets += 1
                n_active += 1
                continue
            root = _root(parent, label[p + group_offset[mask, 0]])
            for g in range(1, n_groups):
                other = _root(parent, label[p + group_offset[mask, g]])
                if other == root:
                    continue
                root, absorbed = _union_by_rank(parent, absorbed_at, stats, root, other, li)
                n_active -= 1
                _drop_active(active, active_pos, n_active, absorbed)
            label[p] = root
            _grow_box_and_measure(stats, root, x, y, area2_gain[mask])
        if n_active == 0:
            iou = _box_iou(0, 0, 0, 0, gt)
            v1[li] = iou
            v2[li] = iou
            continue
        holes = 4 * n_active != euler4  # holes = components - Euler number
        if holes:
            has_holes[li] = True
            kept_set = _grown(kept_set, n_kept, n_kept + n_active)
            kept_iou = _grown(kept_iou, n_kept, n_kept + n_active)
            kept_area2 = _grown(kept_area2, n_kept, n_kept + n_active)
            kept_start[li] = n_kept
            kept_count[li] = n_active
        best_v2 = 0.0
        best_area = -1
        best_first = -1
        best_root = -1
        best_v1 = 0.0
        for a in range(n_active):
            r = active[a]
            # an outer border's box: x1 = min(x + w, W - 1) as in the reference
            iou = _box_iou(stats[r, X0], stats[r, Y0], min(stats[r, X1] + 1, width - 1),
                           min(stats[r, Y1] + 1, height - 1), gt)
            if a == 0 or iou > best_v2:
                best_v2 = iou
            area = stats[r, FG_AREA2]
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
                kept_set[n_kept] = r
                kept_iou[n_kept] = iou
                kept_area2[n_kept] = area
                n_kept += 1
        v1[li] = best_v1
        v2[li] = best_v2
    unresolved = np.zeros(n_levels, dtype=np.bool_)
    return (LevelAnswers(v1, v2, unresolved, has_holes),
            KeptComponents(kept_start, kept_count, kept_set, kept_iou, kept_area2))


@njit(cache=True, nogil=True, error_model="numpy")
def _background_sweep(s8, levels_desc, gt, starts, tables, ws, answers, kept):
    """From the lowest level up to the highest level with holes: the holes.

    At each level with holes, V2 also takes the hole borders, and V1 is chosen with
    every component's area made that of its outer border (its holes' fill gain added);
    written into ``answers`` (:class:`LevelAnswers`), with the levels it cannot answer
    marked ``unresolved``. ``kept``: the :class:`KeptComponents` of the foreground sweep,
    whose union-find (``ws.fg_parent``, ``ws.fg_absorbed_at``) must be as it left it.
    """
    label = ws.label
    parent = ws.bg_parent
    stats = ws.bg_stats
    active = ws.active
    active_pos = ws.active_pos
    order = ws.order
    fg_parent = ws.fg_parent
    fg_absorbed_at = ws.fg_absorbed_at
    slot_of = ws.slot_of
    extra = ws.extra
    fill_gain = tables.measure_gain
    euler4_gain = tables.euler4_gain
    groups = tables.groups
    v1 = answers.v1
    v2 = answers.v2
    unresolved = answers.unresolved
    has_holes = answers.has_holes
    kept_start = kept.start
    kept_count = kept.count
    kept_set = kept.set_id
    kept_iou = kept.iou
    kept_area2 = kept.area2
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
    # the padded frame is background and set _OUTSIDE, never absorbed (its size is
    # larger than any other set's) and never in the active list of holes
    for p in range(padded_w):
        label[p] = _OUTSIDE
        label[n_padded - 1 - p] = _OUTSIDE
    for row in range(1, height + 1):
        label[row * padded_w] = _OUTSIDE
        label[row * padded_w + padded_w - 1] = _OUTSIDE
    parent[_OUTSIDE] = _OUTSIDE
    stats[_OUTSIDE, BG_SIZE] = n_padded + 1
    n_sets = _OUTSIDE + 1
    group_offset = _group_offsets(tables.reps, padded_w)
    n_active = 0
    cursor = height * width
    for li in range(n_levels - 1, lowest_step - 1, -1):  # ascending levels
        stop = starts[255 - levels_desc[li]]  # background = the pixels scoring <= level
        while cursor > stop:
            cursor -= 1
            packed = order[cursor]
            x = (packed >> _X_SHIFT) & _X_BITS
            y = packed >> _Y_SHIFT
            p = (y + 1) * padded_w + (x + 1)
            mask = _MASK_BITS - (packed & _MASK_BITS)  # the neighbours before, in this order
            n_groups = groups[mask]
            if n_groups == 0:  # a new hole
                _open_set(label, parent, active, active_pos, p, n_sets, n_active)
                _new_hole(stats, n_sets, p, x, y, fill_gain[mask], euler4_gain[mask])
                n_sets += 1
                n_active += 1
                continue
            # the foreground sweep's steps, with the background's own find and union
            # (path halving, union by size: see "union-find" above)
            root = _find(parent, label[p + group_offset[mask, 0]])
            for g in range(1, n_groups):
                other = _find(parent, label[p + group_offset[mask, g]])
                if other == root:
                    continue
                root, absorbed = _union_by_size(parent, stats, root, other)
                n_active -= 1
                _drop_active(active, active_pos, n_active, absorbed)
            label[p] = root
            if root != _OUTSIDE:
                _add_to_hole(stats, root, p, x, y, fill_gain[mask], euler4_gain[mask])
        if not has_holes[li]:
            continue
        if n_active == 0:  # cannot happen (both sweeps count the same holes)
            unresolved[li] = True
            continue
        first = kept_start[li]
        count = kept_count[li]
        for j in range(count):
            slot_of[kept_set[first + j]] = j
            extra[j] = 0
        best_hole = 0.0
        nested = False
        for a in range(n_active):
            r = active[a]
            # the hole's border runs one pixel outside the hole's own box
            iou = _box_iou(stats[r, X0] - 1, stats[r, Y0] - 1, min(stats[r, X1] + 2, width - 1),
                           min(stats[r, Y1] + 2, height - 1), gt)
            best_hole = max(best_hole, iou)
            if stats[r, BG_EULER4] != 4:  # a component lies inside this hole
                nested = True
                break
            # the pixel left of a hole's first pixel belongs to the component around it
            owner = _root_at(fg_parent, fg_absorbed_at, label[stats[r, BG_FIRST] - 1], li)
            extra[slot_of[owner]] += stats[r, BG_FILL]
        if nested:
            unresolved[li] = True
            continue
        best_area = -1
        best_v1 = 0.0
        best_v2 = best_hole
        tied = False
        for j in range(count):
            area = kept_area2[first + j] + extra[j]
            if area == best_area:
                tied = True
            elif area > best_area:
                tied = False
                best_area = area
                best_v1 = kept_iou[first + j]
            best_v2 = max(best_v2, kept_iou[first + j])
        if tied:  # OpenCV's order among tied components also involves hole borders
            unresolved[li] = True
            continue
        v1[li] = best_v1
        v2[li] = best_v2


@njit(cache=True, nogil=True)
def level_answers(s8, levels_desc, gt, fg_tables, bg_tables, ws):
    """Both sweeps over one uint8 map (H, W) at the distinct ``levels_desc`` (L,), in
    descending order, against the boxes ``gt`` (k, 4); a :class:`LevelAnswers`."""
    starts = _sort_pixels(s8, ws)
    answers, kept = _foreground_sweep(s8, levels_desc, gt, starts, fg_tables, ws)
    _background_sweep(s8, levels_desc, gt, starts, bg_tables, ws, answers, kept)
    return answers


@njit(cache=True, nogil=True)
def batch_answers(s8_maps, frames, from_frames, taus, gt, gt_start, fg_tables, bg_tables, ws):
    """Every map of a batch at every tau: V1 / V2 IoU (N, T), the unresolved ones, and
    the index of the first float map that is not normalized (-1 if none).

    ``from_frames``: the maps are the float64 ``frames`` (N, H, W) in [0, 1], each turned
    into ``floor(255 x)`` in ``s8_maps[0]`` first (numpy's ``(x * 255).astype(uint8)``);
    otherwise ``s8_maps`` (N, H, W) holds the uint8 maps. A float map with a value outside
    [0, 1] (or NaN) stops the batch. The boxes of map ``n`` are ``gt[gt_start[n]:
    gt_start[n + 1]]``.
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
                return v1_out, v2_out, unresolved_out, n
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
        v1, v2, unresolved, _ = level_answers(s8, levels_desc[:n_levels],
                                              gt[gt_start[n]:gt_start[n + 1]], fg_tables,
                                              bg_tables, ws)
        for k in range(n_taus):
            slot = slot_of_tau[k]
            v1_out[n, k] = v1[slot]
            v2_out[n, k] = v2[slot]
            unresolved_out[n, k] = unresolved[slot]
    return v1_out, v2_out, unresolved_out, -1
