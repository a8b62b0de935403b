"""Peak IoU and the energy pointing game against direct computations on small cases."""
from __future__ import annotations

import numpy as np
import pytest

from attribmap.errors import AttribmapError
from attribmap.evaluate import EnergyPointing, Evaluator, Framer, PeakIoU
from attribmap.evaluate.frame import official_maps


def _brute_force_peak_iou(frame_maps, masks, ignores, delta):
    """Threshold the pooled pixels at every tau directly: IoU = |pred & fg| / |pred | fg|."""
    scores = np.concatenate([m.ravel() for m in frame_maps])
    fg = np.concatenate([m.ravel() for m in masks])
    keep = ~np.concatenate([(ig & ~m).ravel() for ig, m in zip(ignores, masks)])
    best, best_tau = -1.0, None
    for tau in np.append(np.arange(0, 1, delta), 1.0):
        predicted = scores >= tau
        inter = (predicted & fg & keep).sum()
        union = ((predicted | fg) & keep).sum()
        iou = 100.0 * inter / union
        if iou >= best:  # ">=": the highest tau wins ties
            best, best_tau = iou, tau
    return best, best_tau


@pytest.mark.parametrize("delta", [0.01, 0.1])
def test_peak_iou_equals_thresholding_every_tau_directly(delta):
    rng = np.random.default_rng(3)
    raw = rng.normal(size=(3, 5, 5))
    masks = [rng.random((12, 12)) > 0.6 for _ in range(3)]
    ignores = [rng.random((12, 12)) > 0.8 for _ in range(3)]
    metric = PeakIoU(delta=delta, image_size=12)
    frame = Framer(12).frame(raw, masks=masks, ignore=ignores)
    result = metric.update(frame).compute()
    expected, expected_tau = _brute_force_peak_iou(official_maps(raw, 12), masks, ignores, delta)
    assert result["PeakIoU"] == pytest.approx(expected, abs=1e-12)
    assert result["PeakIoU_tau"] == pytest.approx(expected_tau, abs=1e-12)
    assert result["iou"].max() == result["PeakIoU"]


def test_peak_iou_of_a_perfect_map_is_100_and_needs_foreground():
    mask = np.zeros((8, 8), dtype=bool)
    mask[2:5, 3:7] = True
    metric = PeakIoU(delta=0.01, image_size=8).update(Framer(8).frame(mask[None].astype(float), masks=[mask]))
    assert metric.compute()["PeakIoU"] == 100.0
    with pytest.raises(AttribmapError, match="foreground"):
        PeakIoU(image_size=8).update(Framer(8).frame(np.ones((1, 8, 8)), masks=[np.zeros((8, 8))])).compute()


def test_energy_pointing_on_hand_made_maps():
    maps = np.zeros((3, 10, 10))
    maps[0, 2:4, 2:4] = 1.0   # all energy inside box [2, 2, 5, 5]
    maps[0, 9, 9] = 0.0
    maps[1, 0, 0] = 1.0       # energy 1 at (0, 0), 3 inside the boxes
    maps[1, 5, 5] = 0.5
    maps[1, 6, 6] = 0.5
    maps[1, 7, 7] = 1.0
    maps[1, 6, 7] = 1.0       # in both overlapping boxes: counted once
    boxes = [np.array([[2, 2, 5, 5]]), np.array([[5, 5, 7, 7], [6, 6, 9, 9]]), np.array([[0, 0, 3, 3]])]
    frame = Framer(10).frame(maps, boxes=boxes, preprocessed=True)
    result = EnergyPointing(image_size=10).update(frame).compute()
    # image 0: 1, image 1: 3 / 4, image 2 (all zero): 0
    assert result["EnergyPointing"] == pytest.approx(100.0 * (1.0 + 0.75 + 0.0) / 3)


def test_energy_pointing_merges_and_shards_exactly():
    rng = np.random.default_rng(4)
    raw = rng.normal(size=(7, 6, 6))
    boxes = [np.array([[int(a), int(b), int(a) + 5, int(b) + 7]]) for a, b in rng.integers(0, 12, (7, 2))]
    whole = Evaluator(["energy_pointing"], image_size=20)
    whole.update(raw, boxes=boxes)
    parts = [Evaluator(["energy_pointing"], image_size=20) for _ in range(3)]
    for part, chunk in zip(parts, np.array_split(np.arange(7)[::-1], 3)):
        part.update(raw[chunk], boxes=[boxes[i] for i in chunk])
    merged = parts[0].merge(parts[1]).merge(parts[2])
    assert merged.compute() == whole.compute()
    for name, value in whole.state()["energy_pointing"].items():
        assert np.array_equal(merged.state()["energy_pointing"][name], value)
