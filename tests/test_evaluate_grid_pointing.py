"""The grid pointing game: hand-computed cases, raw maps (not min-max), merging, uniform = 1/n^2."""
import numpy as np
import pytest
import torch

from attribmap.errors import AttribmapError
from attribmap.evaluate import Evaluator, GridPointing, evaluate_maps
from attribmap.evaluate.grid_pointing import positive_share


def _cells(n: int, side: int):
    """The n*n cells of a side x side frame as inclusive boxes, row-major."""
    step = side // n
    return [np.array([[c * step, r * step, c * step + step - 1, r * step + step - 1]]) for r in range(n)
            for c in range(n)]


def test_hand_case_signed_map():
    # 4x4 frame, 2x2 cells; target = top-left cell
    raw = np.array([[[3.0, 1.0, -5.0, 0.0],
                     [0.0, 0.0, 2.0, 0.0],
                     [-1.0, 0.0, 0.0, 4.0],
                     [0.0, 0.0, 0.0, 0.0]]])
    boxes = [np.array([[0, 0, 1, 1]])]
    result = evaluate_maps(raw, boxes=boxes, image_size=4, metrics=["grid_pointing"])
    # positive mass: 3 + 1 + 2 + 4 = 10, inside the cell 4 -> 40 %; the -5 is ignored
    assert result["GridPointing"] == pytest.approx(40.0, abs=1e-12)
    # min-max first would count the negative regions: not what the metric reads
    shifted = (raw - raw.min()) / (raw.max() - raw.min())
    share, _ = positive_share(shifted, boxes)
    assert abs(100 * share[0] - 40.0) > 5.0


def test_scale_and_empty_maps():
    boxes = [np.array([[0, 0, 1, 1]])] * 3
    maps = np.zeros((3, 4, 4))
    maps[0, 0, 0] = 1e-3          # all the mass inside: 100 %
    maps[1] = -1.0                # nothing positive: 0 and counted
    maps[2, 3, 3] = 7.0           # all the mass outside: 0 %
    metric = GridPointing(image_size=4)
    Evaluator([metric], image_size=4).update(maps, boxes=boxes)
    result = metric.compute()
    assert result["GridPointing"] == pytest.approx(100.0 / 3, abs=1e-12)
    assert result["GridPointing_empty"] == 1
    assert result["num_images"] == 3


@pytest.mark.parametrize("n", [2, 3, 4])
def test_uniform_map_scores_one_over_n_squared(n):
    side = 12 * n
    boxes = _cells(n, side)
    maps = torch.ones(len(boxes), 5, 5)  # a layer-sized map: upsampled, still uniform
    result = evaluate_maps(maps, boxes=boxes, image_size=side, metrics=["grid_pointing"])
    assert result["GridPointing"] == pytest.approx(100.0 / n ** 2, abs=1e-9)


def test_layer_map_is_upsampled_before_the_positive_part():
    # a 2x2 layer map with one positive cell: bilinear upsampling to 8x8 keeps the cells'
    # interior, spreads only at the border between cells
    raw = np.array([[[1.0, 0.0], [0.0, 0.0]]])
    box = [np.array([[0, 0, 3, 3]])]
    result = evaluate_maps(raw, boxes=box, image_size=8, metrics=["grid_pointing"])
    up = torch.nn.functional.interpolate(torch.tensor(raw)[:, None], size=(8, 8), mode="bilinear",
                                         align_corners=False)[0, 0].numpy()
    expected = 100 * up[:4, :4].sum() / up.sum()
    assert result["GridPointing"] == pytest.approx(expected, abs=1e-12)
    assert 50.0 < result["GridPointing"] < 100.0


def test_merge_across_batches_equals_one_pass():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(10, 7, 7))
    boxes = [_cells(2, 16)[i % 4] for i in range(10)]
    one = GridPointing(image_size=16)
    Evaluator([one], image_size=16).update(maps, boxes=boxes)
    parts = []
    for lo, hi in ((0, 3), (3, 4), (4, 10)):
        metric = GridPointing(image_size=16)
        Evaluator([metric], image_size=16).update(maps[lo:hi], boxes=boxes[lo:hi])
        parts.append(metric)
    merged = parts[2].merge(parts[0]).merge(parts[1])
    assert merged.compute() == one.compute()
    restored = GridPointing(image_size=16).load_state(one.state())
    assert restored.compute() == one.compute()


def test_needs_raw_maps():
    frame_maps = np.zeros((1, 4, 4))
    evaluator = Evaluator(["grid_pointing"], image_size=4)
    with pytest.raises(AttribmapError, match="needs raw"):
        evaluator.update(frame_maps, boxes=[np.array([[0, 0, 1, 1]])], preprocessed=True)
