"""evaluate_maps / Evaluator: non-finite maps are counted and reported, boxes outside their image refused."""
from __future__ import annotations

import numpy as np
import pytest

from attribmap.errors import AttribmapError
from attribmap.evaluate import Evaluator, evaluate_maps


def _maps(count: int = 4) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.random((count, 7, 7))


BOXES = [np.array([[2, 2, 30, 30]])] * 4
SIZES = np.array([[40, 40]] * 4)


@pytest.mark.parametrize("protocol", ["official", "legacy"])
def test_nonfinite_maps_are_counted_reported_and_warned(protocol):
    maps = _maps()
    clean = evaluate_maps(maps, boxes=BOXES, image_sizes=SIZES, delta=0.01, protocol=protocol)
    assert clean["nonfinite_maps"] == 0
    maps[1, 3, 3] = np.nan
    maps[3, 0, 0] = -np.inf
    with pytest.warns(RuntimeWarning, match=r"maps of images 1, 3 hold NaN or infinite values"):
        results = evaluate_maps(maps, boxes=BOXES, image_sizes=SIZES, delta=0.01, protocol=protocol)
    assert results["nonfinite_maps"] == 2


def test_evaluator_counts_survive_state_merge_and_reset():
    maps = _maps()
    maps[0, 0, 0] = np.inf
    first = Evaluator(["boxes"], options={"delta": 0.01})
    with pytest.warns(RuntimeWarning):
        first.update(maps, boxes=BOXES, image_sizes=SIZES)
    assert first.nonfinite_maps == 1
    restored = Evaluator(["boxes"], options={"delta": 0.01}).load_state(first.state())
    assert restored.nonfinite_maps == 1
    old_state = {k: v for k, v in first.state().items() if k != "_maps"}  # a resume file from before the count
    assert Evaluator(["boxes"], options={"delta": 0.01}).load_state(old_state).nonfinite_maps == 0
    second = Evaluator(["boxes"], options={"delta": 0.01})
    with pytest.warns(RuntimeWarning, match="images 4"):  # stream positions continue across batches
        second.update(_maps(), boxes=BOXES, image_sizes=SIZES)
        second.update(maps[:1], boxes=BOXES[:1], image_sizes=SIZES[:1])
    assert first.merge(second).nonfinite_maps == 2
    assert first.reset().nonfinite_maps == 0


@pytest.mark.parametrize("box, message", [
    ([2, 2, 41, 30], r"image 2: box \(x0, y0, x1, y1\) = \[2.0, 2.0, 41.0, 30.0\] lies outside its image of size "
                     r"\(W, H\) = \(40.0, 40.0\)"),
    ([2, 2, 30, 45], "image 2: box .* lies outside its image"),
    ([-1, 2, 30, 30], "image 2: box coordinates must be finite and >= 0"),
    ([20, 2, 10, 30], "image 2: boxes must be x0 <= x1"),
])
def test_boxes_outside_their_image_are_refused_naming_the_image(box, message):
    boxes = list(BOXES)
    boxes[2] = np.array([box])
    with pytest.raises(AttribmapError, match=message):
        evaluate_maps(_maps(), boxes=boxes, image_sizes=SIZES, delta=0.01)


def test_box_on_the_last_column_plus_one_is_accepted_as_in_the_readers():
    boxes = [np.array([[0, 0, 40, 40]])] * 4  # x1 == W: boxes made as x + width reach it
    assert evaluate_maps(_maps(), boxes=boxes, image_sizes=SIZES, delta=0.01)["num_images"] == 4
    with pytest.raises(AttribmapError, match="image 0: boxes given without image_sizes must lie in the 224x224"):
        evaluate_maps(_maps(), boxes=[np.array([[0, 0, 224, 10]])] + BOXES[1:], delta=0.01)
