"""PxAP: hand-computed values, ignore pixels, the 1.0 bin, reference parity, merging."""
from __future__ import annotations

import numpy as np
import pytest

from attribmap.errors import AttribmapError
from attribmap.evaluate import Framer, PxAP, evaluate_maps
from attribmap.evaluate.pxap import score_histogram


def _pxap(scoremap, mask, ignore=None, delta=0.25):
    acc = PxAP(delta=delta, image_size=2)
    acc.update(Framer(2).frame(scoremap[None], masks=[mask], ignore=None if ignore is None else [ignore],
                               preprocessed=True))
    return acc.compute()


def test_hand_computed_pxap_with_a_score_of_exactly_one():
    scoremap = np.array([[1.0, 0.5], [0.5, 0.0]])
    mask = np.array([[1, 1], [0, 0]])
    # score >= 1: tp 1 fp 0 (P 1, R .5); score >= .5: tp 2 fp 1 (P 2/3, R 1)
    result = _pxap(scoremap, mask)
    assert result["PxAP"] == pytest.approx(100 * (1 * 0.5 + (2 / 3) * 0.5))
    assert result["num_foreground"] == 2 and result["num_background"] == 2


def test_ignore_pixels_are_dropped_but_foreground_wins_over_ignore():
    scoremap = np.array([[1.0, 0.5], [0.5, 0.0]])
    mask = np.array([[1, 1], [0, 0]])
    ignore = np.array([[1, 0], [1, 0]])  # ignores the 0.5 background pixel; (0,0) stays foreground
    result = _pxap(scoremap, mask, ignore)
    assert result["PxAP"] == pytest.approx(100.0)  # P 1 at both recall steps
    assert result["num_foreground"] == 2 and result["num_background"] == 1


def test_histogram_matches_numpy_histogram_bin_edges():
    rng = np.random.default_rng(0)
    edges = np.append(np.arange(0, 1, 0.001), [1.0, 2.0, 3.0])
    scores = np.concatenate([rng.random(5000), edges[:-3], [1.0, 0.0]])
    expected, _ = np.histogram(scores, bins=edges)
    assert np.array_equal(score_histogram(scores, edges), expected)


def test_pxap_matches_reference_and_sharding():
    ref = pytest.importorskip("test_evaluate_reference")
    rng = np.random.default_rng(2)
    raw = np.stack([ref.blobby_map(rng, size=14, low=7) for _ in range(4)])
    masks = [(rng.random((50, 60)) > 0.6) for _ in range(4)]
    ignores = [(rng.random((50, 60)) > 0.8) for _ in range(4)]
    ours = evaluate_maps(raw, masks=masks, ignore=ignores)
    hist_fg = hist_bg = 0
    for m, mask, ign in zip(raw, masks, ignores):
        from attribmap.evaluate.frame import union_mask

        fg_, bg_ = ref.reference_histograms(ref.reference_scoremap(m), union_mask(mask), union_mask(ign), 0.001)
        hist_fg, hist_bg = hist_fg + fg_, hist_bg + bg_
    assert ours["PxAP"] == ref.reference_pxap(hist_fg, hist_bg)
    first = PxAP().update(Framer().frame(raw[:2], masks=masks[:2], ignore=ignores[:2]))
    second = PxAP().update(Framer().frame(raw[2:], masks=masks[2:], ignore=ignores[2:]))
    assert first.merge(second).compute()["PxAP"] == ours["PxAP"]
    curve = ours["pr_curve"]
    assert curve["precision"].shape == curve["recall"].shape == curve["score_thresholds"].shape
    assert curve["recall"][-1] == 1.0


def test_pxap_errors():
    with pytest.raises(AttribmapError, match="foreground"):
        _pxap(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(AttribmapError, match="masks"):
        PxAP(image_size=2).update(Framer(2).frame(np.zeros((2, 2, 2)), masks=[np.ones((2, 2))], preprocessed=True))
