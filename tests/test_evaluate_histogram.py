"""Score histograms for PxAP: the O(1) compiled binning equals the binary search exactly."""
from __future__ import annotations

import numpy as np
import pytest

from attribmap.errors import AttribmapError
from attribmap.evaluate import histogram
from attribmap.evaluate.histogram import score_bins, split_histograms


def _edges(delta):
    return np.append(np.arange(0, 1, delta), [1.0, 2.0, 3.0])


def _hard_scores(rng, edges):
    """Random scores plus every edge and its two float neighbours (the hard cases)."""
    inner = edges[edges <= 1.0]
    near = np.concatenate([inner, np.nextafter(inner, -1.0), np.nextafter(inner, 2.0)])
    near = near[(near >= 0.0) & (near <= 1.0)]
    tail = [1.0, np.nextafter(1.0, 2.0), 1.5, np.nextafter(2.0, 0.0), 2.0, 2.7, 3.0]  # last bins
    return np.concatenate([rng.random(20000), near, [0.0], tail])


@pytest.mark.parametrize("delta", [0.01, 0.001, 0.25, 0.003])
@pytest.mark.parametrize("compiled", [True, False])
def test_split_histograms_equal_searchsorted(delta, compiled, monkeypatch):
    if compiled:
        pytest.importorskip("numba")
    else:
        monkeypatch.setattr(histogram, "numba_available", lambda: False)
    rng = np.random.default_rng(int(delta * 1000))
    edges = _edges(delta)
    scores = _hard_scores(rng, edges)
    foreground = rng.random(scores.size) < 0.3
    background = ~foreground & (rng.random(scores.size) < 0.8)  # some pixels in neither
    fg = np.zeros(len(edges) - 1, dtype=np.int64)
    bg = np.zeros_like(fg)
    split_histograms(scores, foreground, background, edges, fg, bg)
    bins = score_bins(scores, edges)
    assert np.array_equal(fg, np.bincount(bins[foreground], minlength=len(fg)))
    assert np.array_equal(bg, np.bincount(bins[background], minlength=len(bg)))
    assert fg.sum() == foreground.sum() and bg.sum() == background.sum()
    expected, _ = np.histogram(scores[foreground], bins=edges)  # numpy's own binning
    assert np.array_equal(fg, expected)


@pytest.mark.parametrize("bad", [-1e-12, 3.5, np.nan])
def test_scores_outside_the_edges_are_rejected(bad):
    edges = _edges(0.01)
    scores = np.array([0.2, bad, 0.4])
    fg = np.zeros(len(edges) - 1, dtype=np.int64)
    with pytest.raises(AttribmapError, match="scores must lie within"):
        split_histograms(scores, np.ones(3, bool), np.zeros(3, bool), edges, fg, fg.copy())


def test_shapes_must_agree():
    edges = _edges(0.01)
    fg = np.zeros(len(edges) - 1, dtype=np.int64)
    with pytest.raises(AttribmapError, match="one shape"):
        split_histograms(np.zeros(4), np.ones(3, bool), np.zeros(4, bool), edges, fg, fg.copy())


def test_other_edges_take_the_binary_search():
    edges = np.array([0.0, 0.1, 0.15, 0.7, 1.0, 5.0])  # uneven: no O(1) guess
    assert not histogram._pxap_layout(edges.tobytes())
    assert histogram._pxap_layout(_edges(0.01).tobytes())
    scores = np.array([0.0, 0.1, 0.12, 0.69, 0.7, 1.0, 4.0, 5.0])
    fg = np.zeros(5, dtype=np.int64)
    bg = np.zeros_like(fg)
    split_histograms(scores, np.ones(8, bool), np.zeros(8, bool), edges, fg, bg)
    assert fg.tolist() == [1, 2, 1, 1, 3] and bg.sum() == 0
