"""What adding one pixel changes, for each of the 256 masks of its earlier neighbours.

The ``"tree"`` engine (:mod:`attribmap.evaluate.tree_engine`) adds the pixels of a map one
at a time, each with the 8-bit mask of its neighbours already added (bit ``k`` =
neighbour ``k`` of :data:`NEIGHBOURS`). Every quantity it keeps changes by an amount that
depends only on that mask; this module tabulates those amounts (plain numpy, built once).
"""
from __future__ import annotations

from typing import Callable, Iterable, Iterator, NamedTuple

import numpy as np

__all__ = ["NEIGHBOURS", "MaskTables", "foreground_tables", "background_tables"]

# the 8 neighbours of a pixel as (dy, dx), bit k of a neighbourhood mask = neighbour k
NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
_FOUR = (1, 3, 4, 6)  # the 4-neighbours among them (N, W, E, S)


class MaskTables(NamedTuple):
    """Per-mask changes for one sweep, each indexed by the 8-bit neighbour mask.

    Attributes
    ----------
    measure_gain : ndarray, int32, shape (256,)
        Gain of the measure a set adds up: twice the bit-quad area (foreground sweep) or
        the fill gain (background sweep).
    euler4_gain : ndarray, int32, shape (256,)
        Gain of 4 x the Euler number (8-connected foreground, 4-connected background).
    groups : ndarray, int32, shape (256,)
        How many groups the set neighbours form, a group being neighbours already
        connected to each other around the pixel (so already one set).
    reps : ndarray, int32, shape (256, 4)
        One neighbour index per group (the first ``groups[mask]`` entries).
    """

    measure_gain: np.ndarray
    euler4_gain: np.ndarray
    groups: np.ndarray
    reps: np.ndarray


def foreground_tables() -> MaskTables:
    """What adding a foreground pixel changes (8-connected foreground).

    Returns
    -------
    MaskTables
        ``measure_gain``: +1 per 2x2 window of the pixel already holding 2 or 3 foreground
        pixels (twice the bit-quad area: a window with 4 pixels counts 2, with 3 counts 1);
        ``euler4_gain``: gain of ``4 E8 = n(Q1) - n(Q3) - 2 n(QD)`` over the pixel's 4
        windows (the number of holes is ``components - E8``); ``groups`` / ``reps``: the
        foreground neighbours split into groups of mutually 8-connected ones.
    """
    return _tables(_area2_weight, _quad_weight8, range(8), _touch8)


def background_tables() -> MaskTables:
    """What adding a background pixel changes (4-connected background).

    Returns
    -------
    MaskTables
        ``measure_gain``: the fill gain, +1 per window of the pixel holding at most one
        background pixel before; ``euler4_gain``: gain of ``4 E4 = n(Q1) - n(Q3) +
        2 n(QD)``; ``groups`` / ``reps``: the background 4-neighbours split into groups
        already 4-connected through a background corner.
    """
    return _tables(_fill_weight, _quad_weight4, _FOUR, _touch4)


def _tables(measure_weight: Callable[[np.ndarray], int], euler_weight: Callable[[np.ndarray], int],
            neighbours: Iterable[int], adjacent: Callable[[int, int], bool]) -> MaskTables:
    """Tabulate, for the 256 masks, the change of ``sum(weight(window))`` over the pixel's
    four windows when it joins, and its local groups of neighbours."""
    measure_gain = np.zeros(256, dtype=np.int32)
    euler4_gain = np.zeros(256, dtype=np.int32)
    groups = np.zeros(256, dtype=np.int32)
    reps = np.zeros((256, 4), dtype=np.int32)
    for mask in range(256):
        for before, after in _windows(mask):
            measure_gain[mask] += measure_weight(after) - measure_weight(before)
            euler4_gain[mask] += euler_weight(after) - euler_weight(before)
        count, found = _local_groups(mask, neighbours, adjacent)
        groups[mask] = count
        reps[mask, :count] = found
    return MaskTables(measure_gain, euler4_gain, groups, reps)


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


def _area2_weight(window: np.ndarray) -> int:
    """A window's share of twice the bit-quad area: 2 when full, 1 with three pixels."""
    return max(int(window.sum()) - 2, 0)


def _fill_weight(window: np.ndarray) -> int:
    """A window's share of a hole's fill gain: 1 for one of its pixels, 2 for more."""
    return min(int(window.sum()), 2)


def _local_groups(mask: int, neighbours: Iterable[int],
                  adjacent: Callable[[int, int], bool]) -> tuple[int, list[int]]:
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


def _windows(mask: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The 4 windows of the pixel's 3x3 neighbourhood before and after the pixel joins."""
    patch = np.zeros((3, 3), dtype=bool)
    for k, (dy, dx) in enumerate(NEIGHBOURS):
        patch[1 + dy, 1 + dx] = bool(mask >> k & 1)
    with_pixel = patch.copy()
    with_pixel[1, 1] = True
    for wy in (0, 1):
        for wx in (0, 1):
            yield patch[wy:wy + 2, wx:wx + 2], with_pixel[wy:wy + 2, wx:wx + 2]


def _touch8(a: int, b: int) -> bool:
    (ay, ax), (by, bx) = NEIGHBOURS[a], NEIGHBOURS[b]
    return max(abs(ay - by), abs(ax - bx)) == 1


def _touch4(a: int, b: int) -> bool:
    (ay, ax), (by, bx) = NEIGHBOURS[a], NEIGHBOURS[b]
    return abs(ay - by) + abs(ax - bx) == 1
