"""Histograms of map scores over fixed bin edges, as PxAP needs them.

A score ``v`` falls in bin ``i`` when ``edges[i] <= v < edges[i + 1]`` (the last bin is
closed on the right), exactly like ``np.histogram`` / ``searchsorted(side="right") - 1``.
For PxAP's edges (``arange(0, 1, delta)`` then 1, 2, 3) and with numba, the bin of each
score is guessed as ``int(v / delta)`` and corrected by one comparison with the edges
themselves, so the counts are identical to the binary search while costing O(1) per
pixel, and foreground and background are counted in the same pass. Other edges, or no
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
    """Bin index of every score for the bins ``[e_i, e_i+1)`` (last bin closed), same shape."""
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
    def _split_histograms(scores, foreground, background, edges, step, fg_counts, bg_counts):
        n_bins = edges.shape[0] - 1
        low = edges[0]
        high = edges[n_bins]
        n = scores.shape[0]
        outside = 0
        for k in range(n):  # no early exit: this loop vectorizes
            v = scores[k]
            outside += np.int64(not (v >= low and v <= high))  # also NaN
        if outside:
            return False
        scale = 1.0 / step
        # counts[copy, kind, bin] with kind = foreground + 2 * background (0: neither;
        # 3 cannot happen for disjoint sets and is dropped); neighbouring pixels mostly
        # share a bin, so four interleaved copies keep consecutive increments apart
        stride = 4 * n_bins
        counts = np.zeros(4 * stride, dtype=np.int64)
        for k in range(n):
            v = scores[k]
            i = min(int((v - low) * scale), n_bins - 1)
            if edges[i] > v:  # the guess is off by at most one (see _even_edges)
                i -= 1
            elif i + 1 < n_bins and edges[i + 1] <= v:
                i += 1
            kind = np.int64(foreground[k]) + 2 * np.int64(background[k])
            counts[(k & 3) * stride + kind * n_bins + i] += 1
        for c in range(4):
            for i in range(n_bins):
                fg_counts[i] += counts[c * stride + n_bins + i]
                bg_counts[i] += counts[c * stride + 2 * n_bins + i]
        return True

    return _split_histograms


@lru_cache(maxsize=64)
def _pxap_layout(edges_bytes: bytes) -> bool:
    """Whether the edges are ``np.append(np.arange(0, 1, d), [1, 2, 3])`` for their own d.

    For these edges ``int(v / d)`` is never more than one bin away from the true bin of a
    score ``v`` in [0, 3]: below 1 the edges are ``fl(i * d)``, so ``v / d`` lies within a
    few ulps of ``[i, i + 1)``; from 1 on the guess is clipped to the last bin and one step
    down (to the bin of 1.0) or none is right. The compiled kernel relies on it.
    """
    edges = np.frombuffer(edges_bytes, dtype=np.float64)
    if len(edges) < 5 or edges[0] != 0.0:
        return False
    step = float(edges[1] - edges[0])
    if not (0.0 < step < 1.0):
        return False
    return bool(np.array_equal(edges, np.append(np.arange(0, 1, step), [1.0, 2.0, 3.0])))


def split_histograms(scores: np.ndarray, foreground: np.ndarray, background: np.ndarray,
                     edges: np.ndarray, fg_counts: np.ndarray, bg_counts: np.ndarray) -> None:
    """Add the scores at foreground pixels to ``fg_counts`` and at background pixels to
    ``bg_counts`` (pixels in neither are skipped).

    Parameters
    ----------
    scores : ndarray, float64, shape (H, W)
        Values within [edges[0], edges[-1]].
    foreground, background : ndarray, bool, shape (H, W)
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
    if numba_available() and _pxap_layout(edges.tobytes()):
        global _KERNEL
        if _KERNEL is None:
            _KERNEL = _build_kernel()
        if not _KERNEL(scores, foreground, background, edges, float(edges[1] - edges[0]),
                       fg_counts, bg_counts):
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
