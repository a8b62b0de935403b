"""Histograms of map scores over fixed bin edges, as PxAP needs them.

A score ``v`` falls in bin ``i`` when ``edges[i] <= v < edges[i + 1]`` (the last bin is
closed on the right), exactly like ``np.histogram`` / ``searchsorted(side="right") - 1``.
For PxAP's edges (``arange(0, 1, delta)`` then 1, 2, 3) and with numba, the bin of each
score is guessed as ``int(v / delta)`` and corrected by one comparison on each side with
the edges themselves (recomputed exactly as numpy's arange makes them), so the counts are
identical to the binary search while costing O(1) per pixel; the bins are found in one
branch-free (vectorized) pass and counted in a second, foreground and background together. Other edges, or no
numba: ``np.searchsorted``.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from attribmap.errors import AttribmapError
from attribmap.evaluate._compiled import numba_available

__all__ = ["score_bins", "score_histogram", "split_histograms"]

_KERNEL = None


def score_bins(scores: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index of every score of ``scores`` for the bins ``[e_i, e_i+1)`` of ``edges`` (last bin closed), same shape."""
    flat = np.asarray(scores, dtype=np.float64)
    index = np.searchsorted(edges, flat, side="right") - 1
    index = np.minimum(index, len(edges) - 2)  # the last bin is closed on the right
    if index.size and index.min() < 0:
        raise AttribmapError(f"scores below the first histogram edge {edges[0]}")
    return index


def score_histogram(scores: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``scores`` in the bins ``[e_i, e_i+1)`` (last bin closed), like np.histogram.

    Parameters
    ----------
    scores : ndarray (any shape), values within [edges[0], edges[-1]]
    edges : ndarray (B + 1,), increasing

    Returns
    -------
    ndarray, int64, shape (B,)
    """
    index = score_bins(np.ravel(scores), edges)
    return np.bincount(index, minlength=len(edges) - 1).astype(np.int64)


def _build_kernel():
    import numba  # noqa: PLC0415

    @numba.njit(cache=True, nogil=True, boundscheck=False)
    def _split_histograms(scores, foreground, background, step, n_even, fg_counts, bg_counts,
                          index):
        """PxAP's edges only: ``fl(i * step)`` for i < n_even, then 1, 2, 3."""
        n_bins = fg_counts.shape[0]
        n = scores.shape[0]
        outside = 0
        scale = 1.0 / step
        top = n_even - 1
        # pass 1, arithmetic only (vectorizes): the bin of each score, offset by its kind
        # (0: neither, 1: foreground, 2: background, 3: both, impossible and dropped)
        for k in range(n):
            v = scores[k]
            outside += np.int64(v < 0.0) + np.int64(v > 3.0) + np.int64(v != v)
            i = min(np.int64(v * scale), top)  # at most one bin off below 1
            i -= np.int64(i * step > v)  # i * step is exactly edges[i] (numpy's arange)
            i += np.int64((i + 1) * step <= v) * np.int64(i < top)
            i = i if v < 1.0 else n_even + np.int64(v >= 2.0)
            kind = np.int64(foreground[k]) + 2 * np.int64(background[k])
            index[k] = np.int32(i + kind * n_bins)
        if outside:
            return False
        # pass 2: counts in four interleaved copies (neighbouring pixels share bins)
        stride = 4 * n_bins
        counts = np.zeros(4 * stride, dtype=np.int64)
        for k in range(n):
            counts[(k & 3) * stride + index[k]] += 1
        for c in range(4):
            for i in range(n_bins):
                fg_counts[i] += counts[c * stride + n_bins + i]
                bg_counts[i] += counts[c * stride + 2 * n_bins + i]
        return True

    return _split_histograms


@lru_cache(maxsize=64)
def _pxap_layout(edges_bytes: bytes) -> int:
    """The number of even edges when the edges are PxAP's, else 0.

    PxAP's edges are ``np.append(np.arange(0, 1, d), [1, 2, 3])``; numpy's arange makes
    them ``fl(i * d)``, which is checked here too, since the compiled kernel recomputes
    them that way. For such edges ``int(v / d)`` is at most one bin away from the bin of
    a score ``v < 1``, and one comparison on each side finds it; scores from 1 on fall in
    the bins of 1.0 or 2.0.
    """
    edges = np.frombuffer(edges_bytes, dtype=np.float64)
    if len(edges) < 5 or edges[0] != 0.0:
        return 0
    step = float(edges[1] - edges[0])
    if not (0.0 < step < 1.0):
        return 0
    even = np.arange(0, 1, step)
    if not np.array_equal(edges, np.append(even, [1.0, 2.0, 3.0])):
        return 0
    if not np.array_equal(even, np.arange(len(even)) * step):
        return 0
    return len(even)


def split_histograms(scores: np.ndarray, foreground: np.ndarray, background: np.ndarray,
                     edges: np.ndarray, fg_counts: np.ndarray, bg_counts: np.ndarray) -> None:
    """Add the scores at foreground pixels to ``fg_counts`` and at background pixels to
    ``bg_counts`` (pixels in neither are skipped).

    Parameters
    ----------
    scores : ndarray, float64, any shape (one map (H, W) or a batch (N, H, W))
        Values within [edges[0], edges[-1]].
    foreground, background : ndarray, bool, the shape of ``scores``
        Disjoint pixel sets.
    edges : ndarray, float64, shape (B + 1,)
        Increasing bin edges (the fast path takes PxAP's layout, see above).
    fg_counts, bg_counts : ndarray, int64, shape (B,)
        Updated in place.
    """
    scores = np.ascontiguousarray(scores, dtype=np.float64).reshape(-1)
    foreground = np.ascontiguousarray(foreground, dtype=bool).reshape(-1)
    background = np.ascontiguousarray(background, dtype=bool).reshape(-1)
    if not (scores.shape == foreground.shape == background.shape):
        raise AttribmapError(f"scores, foreground and background must have one shape; got "
                             f"{scores.size}, {foreground.size} and {background.size} pixels")
    edges = np.ascontiguousarray(edges, dtype=np.float64)
    n_even = _pxap_layout(edges.tobytes()) if numba_available() else 0
    if n_even:
        global _KERNEL
        if _KERNEL is None:
            _KERNEL = _build_kernel()
        index = np.empty(scores.shape[0], dtype=np.int32)
        if not _KERNEL(scores, foreground, background, float(edges[1] - edges[0]), n_even,
                       fg_counts, bg_counts, index):
            _raise_outside(scores, edges)
        return
    if scores.size and not (scores.min() >= edges[0] and scores.max() <= edges[-1]):
        _raise_outside(scores, edges)
    bins = score_bins(scores, edges)
    fg_counts += np.bincount(bins[foreground], minlength=len(edges) - 1)
    bg_counts += np.bincount(bins[background], minlength=len(edges) - 1)


def _raise_outside(scores: np.ndarray, edges: np.ndarray) -> None:
    bad = scores[~((scores >= edges[0]) & (scores <= edges[-1]))]
    raise AttribmapError(f"scores must lie within [{edges[0]}, {edges[-1]}]; got {bad[0]!r}")
