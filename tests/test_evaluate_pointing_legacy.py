"""Pointing game and the legacy fixed-threshold protocol."""
from __future__ import annotations

import numpy as np
import pytest

from attribmap.errors import AttribmapError
from attribmap.evaluate import Framer, LegacyLocalization, PointingGame, evaluate_maps
from attribmap.evaluate.legacy import legacy_box, legacy_gt_boxes


def _peak_map(size, y, x):
    scoremap = np.zeros((1, size, size))
    scoremap[0, y, x] = 1.0
    return scoremap


@pytest.mark.parametrize("peak, hit", [((50, 50), True), ((50, 70), True), ((50, 76), False)])
def test_pointing_game_tolerance(peak, hit):
    # GT box x 30..60; the peak at x = 70 is 10 px away, at x = 76 16 px away
    game = PointingGame(tolerance=15)
    game.update(Framer().frame(_peak_map(224, *peak), boxes=[np.array([[30, 30, 60, 60]])], preprocessed=True))
    assert game.compute()["PointingGame"] == (100.0 if hit else 0.0)


def test_pointing_game_constant_map_is_a_miss_and_merging_adds_counts():
    game = PointingGame().update(Framer().frame(np.zeros((1, 224, 224)), boxes=[np.array([[0, 0, 223, 223]])],
                                                preprocessed=True))
    other = PointingGame().update(Framer().frame(_peak_map(224, 5, 5), boxes=[np.array([[0, 0, 10, 10]])],
                                                 preprocessed=True))
    assert game.merge(other).compute() == {"PointingGame": 50.0, "num_images": 2}


def test_legacy_box_is_unclipped_and_empty_is_0011():
    s8 = np.zeros((10, 10), dtype=np.uint8)
    assert legacy_box(s8, 0.2).tolist() == [0, 0, 1, 1]
    s8[6:10, 7:10] = 255
    assert legacy_box(s8, 0.2).tolist() == [7, 6, 10, 10]  # x + w = 10 = W, not clipped


def test_legacy_gt_boxes_follow_resize_and_center_crop():
    # 512x512 image -> 256 (factor 0.5) -> crop offset 16
    boxes = legacy_gt_boxes([[64, 100, 400, 511]], (512, 512))
    assert boxes.tolist() == [[16, 34, 184, 223]]


def test_legacy_protocol_counts_gt_known_and_top1():
    scoremaps = np.zeros((2, 224, 224))
    scoremaps[:, 34:184, 16:185] = 1.0  # blob exactly on the transformed GT box
    boxes = [np.array([[64, 100, 400, 400]])] * 2
    acc = LegacyLocalization(tau=0.2)
    acc.update(Framer(224).frame(scoremaps, boxes=boxes, image_sizes=[(512, 512)] * 2, correct=[True, False],
                                 preprocessed=True))
    result = acc.compute()
    assert result["GTKnownLoc"] == 100.0 and result["Top1Loc"] == 50.0
    assert result["protocol"] == "legacy"
    functional = evaluate_maps(scoremaps[:, ::8, ::8], boxes, [(512, 512)] * 2, protocol="legacy")
    assert set(functional) >= {"GTKnownLoc", "num_images", "protocol"}


def test_legacy_and_functional_errors():
    with pytest.raises(AttribmapError, match="tau"):
        LegacyLocalization(tau=1.5)
    with pytest.raises(AttribmapError, match="image_sizes"):
        evaluate_maps(np.zeros((1, 7, 7)), [np.array([[0, 0, 1, 1]])], protocol="legacy")
    with pytest.raises(AttribmapError, match="protocol"):
        evaluate_maps(np.zeros((1, 7, 7)), [np.array([[0, 0, 1, 1]])], protocol="v3")
    with pytest.raises(AttribmapError, match="boxes, masks"):
        evaluate_maps(np.zeros((1, 7, 7)))
