"""BoxAccuracy and evaluate_maps: hand-built cases with known answers, reference parity, merging."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from attribmap.errors import AttribmapError
from attribmap.evaluate import BoxAccuracy, Framer, evaluate_maps


def _frame(size, blocks):
    """A preprocessed (1, size, size) map: each (value, y0, y1, x0, x1) block painted in order."""
    scoremap = np.zeros((size, size))
    for value, y0, y1, x0, x1 in blocks:
        scoremap[y0:y1 + 1, x0:x1 + 1] = value
    return scoremap[None]


def _scores(scoremaps, boxes, delta=0.01, correct=None, size=8):
    acc = BoxAccuracy(delta=delta, image_size=size, engine="numpy")
    acc.update(Framer(size).frame(scoremaps, boxes=boxes, correct=correct, preprocessed=True))
    return acc.compute()


def test_single_block_box_is_one_pixel_larger_than_the_blob():
    scoremap = _frame(8, [(1.0, 2, 4, 2, 4)])  # score exactly 1.0 on a 3x3 blob
    # contour box = [2, 2, 5, 5]; the exact blob [2, 2, 4, 4] has IoU 9/16 = 0.5625 with it
    result = _scores(scoremap, [np.array([[2, 2, 4, 4]])])
    assert result["MaxBoxAcc"] == 100.0
    assert result["MaxBoxAccV2_per_iou"] == {30: 100.0, 50: 100.0, 70: 0.0}
    assert result["MaxBoxAccV2"] == pytest.approx(200.0 / 3)
    exact = _scores(scoremap, [np.array([[2, 2, 5, 5]])])
    assert exact["MaxBoxAccV2_per_iou"] == {30: 100.0, 50: 100.0, 70: 100.0}


def test_hole_borders_count_for_v2_but_v1_keeps_the_outer_border():
    scoremap = _frame(9, [(1.0, 1, 7, 1, 7), (0.0, 3, 5, 3, 5)])  # ring with a 3x3 hole
    # outer box [1, 1, 8, 8]; hole box = hole [3..5] grown by one -> [2, 2, 7, 7]
    result = _scores(scoremap, [np.array([[2, 2, 7, 7]])], size=9)
    assert result["MaxBoxAccV2_per_iou"][70] == 100.0  # the hole box matches exactly
    assert result["MaxBoxAcc_per_iou"] == {30: 100.0, 50: 100.0, 70: 0.0}  # IoU 36/64


def test_touching_the_border_clips_to_w_minus_one():
    scoremap = _frame(8, [(1.0, 0, 7, 5, 7)])  # full-height strip on the right edge
    result = _scores(scoremap, [np.array([[5, 0, 7, 7]])])
    assert result["MaxBoxAccV2_per_iou"][70] == 100.0  # [5, 0, min(8, 7), min(8, 7)]


def test_empty_map_gives_the_zero_box():
    scoremap = np.zeros((1, 8, 8))
    hit = _scores(scoremap, [np.array([[0, 0, 0, 0]])])
    miss = _scores(scoremap, [np.array([[0, 0, 1, 1]])])  # IoU 1/4
    assert hit["MaxBoxAcc"] == 100.0 and hit["MaxBoxAccV2"] == 100.0
    assert miss["MaxBoxAccV2_per_iou"] == {30: 0.0, 50: 0.0, 70: 0.0}


def test_ties_in_area_pick_the_component_opencv_lists_first():
    # two 2x2 squares, polygon area 1 each: OpenCV lists the later (lower) one first
    scoremap = _frame(8, [(1.0, 1, 2, 1, 2), (1.0, 5, 6, 5, 6)])
    upper = _scores(scoremap, [np.array([[1, 1, 3, 3]])])
    lower = _scores(scoremap, [np.array([[5, 5, 7, 7]])])
    assert upper["MaxBoxAcc"] == 0.0 and upper["MaxBoxAccV2_per_iou"][70] == 100.0
    assert lower["MaxBoxAcc"] == 100.0


def test_polygon_area_not_pixel_count_decides_v1():
    # a 1x7 line (7 pixels, polygon area 0) and a 2x2 square (4 pixels, area 1)
    scoremap = _frame(8, [(1.0, 0, 0, 0, 6), (1.0, 4, 5, 4, 5)])
    result = _scores(scoremap, [np.array([[4, 4, 6, 6]])])
    assert result["MaxBoxAcc"] == 100.0


def test_any_gt_box_counts_and_best_tau_is_the_first_maximum():
    # 3x3 plateau at 0.5 with a 1.0 centre: fg = plateau for tau < 127/255, centre above
    scoremap = _frame(9, [(0.5, 3, 5, 3, 5), (1.0, 4, 4, 4, 4)])
    gts = np.array([[0, 0, 1, 1], [4, 4, 5, 5]])  # the second GT box is the centre's box
    result = _scores(scoremap, [gts], size=9)
    assert result["MaxBoxAccV2_per_iou"] == {30: 100.0, 50: 100.0, 70: 100.0}
    assert result["best_tau"][50] == pytest.approx(0.5)
    curve = result["curves"]["BoxAccV2"][50]
    assert curve[:50].max() == 0.0 and curve[50:].min() == 100.0


def test_top1_localization_needs_box_and_class():
    scoremaps = np.concatenate([_frame(8, [(1.0, 2, 4, 2, 4)])] * 2)
    boxes = [np.array([[2, 2, 5, 5]])] * 2
    result = _scores(scoremaps, boxes, correct=[True, False])
    assert result["MaxBoxAcc"] == 100.0
    assert result["Top1Loc"] == 50.0 and result["Top1LocV2"] == 50.0
    assert "Top1Loc" not in _scores(scoremaps, boxes)


def test_boxes_are_rescaled_with_truncation_from_original_pixels():
    scoremap = _frame(8, [(1.0, 2, 4, 2, 4)])
    # original 16x16: [5, 5, 11, 11] * 8 / 16 -> [2, 2, 5, 5] after int()
    acc = BoxAccuracy(delta=0.01, image_size=8, engine="numpy")
    acc.update(Framer(8).frame(scoremap, boxes=[np.array([[5, 5, 11, 11]])], image_sizes=[(16, 16)], preprocessed=True))
    assert acc.compute()["MaxBoxAccV2_per_iou"][70] == 100.0


def test_bad_inputs_raise_clear_errors():
    acc = BoxAccuracy(delta=0.01, image_size=8, engine="numpy")
    with pytest.raises(AttribmapError, match="boxes"):
        acc.update(Framer(8).frame(np.zeros((2, 4, 4)), boxes=[np.array([[0, 0, 1, 1]])]))
    with pytest.raises(AttribmapError, match="x0 <= x1"):
        acc.update(Framer(8).frame(np.zeros((1, 4, 4)), boxes=[np.array([[3, 0, 1, 1]])]))
    with pytest.raises(AttribmapError, match="delta"):
        BoxAccuracy(delta=0.0)
    with pytest.raises(AttribmapError, match="engine"):
        BoxAccuracy(engine="gpu")
    with pytest.raises(AttribmapError, match="before any update"):
        acc.compute()


def test_merged_halves_equal_one_pass():
    rng = np.random.default_rng(5)
    raw = torch.from_numpy(rng.normal(size=(6, 7, 7)))
    boxes = [np.array([[10, 20, 150, 170]]), np.array([[0, 0, 60, 60], [100, 90, 200, 220]])] * 3
    sizes = np.array([[300, 250]] * 6)
    frame = Framer().frame
    whole = BoxAccuracy(delta=0.01).update(frame(raw, boxes=boxes, image_sizes=sizes, correct=[1, 0, 1, 1, 0, 1]))
    first = BoxAccuracy(delta=0.01).update(frame(raw[:3], boxes=boxes[:3], image_sizes=sizes[:3], correct=[1, 0, 1]))
    second = BoxAccuracy(delta=0.01).update(frame(raw[3:], boxes=boxes[3:], image_sizes=sizes[3:], correct=[1, 0, 1]))
    merged = first.merge(second)
    for name, value in whole.state().items():
        assert np.array_equal(value, merged.state()[name]), name
    assert merged.compute()["MaxBoxAccV2"] == whole.compute()["MaxBoxAccV2"]
    with pytest.raises(AttribmapError, match="cannot merge"):
        merged.merge(BoxAccuracy(delta=0.001))
    merged.reset()
    assert int(merged.state()["count"]) == 0


def test_evaluate_maps_matches_the_reference_end_to_end():
    ref = pytest.importorskip("test_evaluate_reference")
    rng = np.random.default_rng(11)
    raw = np.stack([ref.blobby_map(rng, size=14, low=7) for _ in range(4)])  # raw 14x14 maps
    sizes = np.array([[500, 375], [224, 224], [333, 500], [640, 480]])
    boxes = [np.array([[50, 40, 300, 330]]), np.array([[0, 0, 100, 120], [90, 100, 223, 223]]),
             np.array([[100, 50, 250, 400]]), np.array([[200, 100, 639, 479]])]
    correct = np.array([True, False, True, True])
    ours = evaluate_maps(torch.from_numpy(raw), boxes, sizes, correct=correct, delta=0.01)
    scoremaps = [ref.reference_scoremap(m) for m in raw]
    gt = [np.array([[int(x0 * 224.0 / w), int(y0 * 224.0 / h), int(x1 * 224.0 / w), int(y1 * 224.0 / h)]
                    for x0, y0, x1, y1 in b]) for b, (w, h) in zip(boxes, sizes)]
    expected = ref.reference_box_scores(scoremaps, gt, delta=0.01, correct=correct)
    assert ours["MaxBoxAcc"] == expected["MaxBoxAcc"]
    assert ours["MaxBoxAccV2"] == expected["MaxBoxAccV2"]
    assert ours["MaxBoxAccV2_per_iou"] == expected["MaxBoxAccV2_per_iou"]
    assert ours["Top1Loc"] == expected["Top1Loc"] and ours["Top1LocV2"] == expected["Top1LocV2"]
    assert ours["protocol"] == "official" and ours["num_images"] == 4


def test_half_precision_tensors_and_tensor_boxes_are_accepted():
    raw = torch.zeros(1, 7, 7, dtype=torch.bfloat16)
    raw[0, 2:5, 2:5] = 1.0
    acc = BoxAccuracy(delta=0.01, image_size=7, engine="numpy")
    acc.update(Framer(7).frame(raw, boxes=[torch.tensor([[2, 2, 5, 5]])], image_sizes=torch.tensor([[7, 7]]),
                               correct=torch.tensor([True])))
    assert acc.compute()["Top1LocV2"] == 100.0


def test_load_state_round_trip_and_validation():
    import numpy as np
    import pytest
    import torch

    from attribmap.errors import AttribmapError
    from attribmap.evaluate import BoxAccuracy

    rng = np.random.default_rng(0)
    maps = rng.random((3, 14, 14))
    boxes = [np.array([[10, 10, 100, 120]])] * 3
    acc = BoxAccuracy(delta=0.01).update(Framer().frame(maps, boxes=boxes, image_sizes=[(224, 224)] * 3))
    restored = BoxAccuracy(delta=0.01).load_state({k: torch.from_numpy(v) for k, v in acc.state().items()})
    assert restored.compute()["MaxBoxAccV2"] == acc.compute()["MaxBoxAccV2"]
    with pytest.raises(AttribmapError, match="keys"):
        BoxAccuracy(delta=0.01).load_state({"nope": np.zeros(1)})
    with pytest.raises(AttribmapError, match="shape"):
        BoxAccuracy(delta=0.001).load_state(acc.state())
