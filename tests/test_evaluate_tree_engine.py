"""The compiled ``"tree"`` contour engine: hand cases, tables, and equality with OpenCV."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

pytest.importorskip("numba")

from attribmap.errors import AttribmapError  # noqa: E402
from attribmap.evaluate import BoxAccuracy, Framer  # noqa: E402
from attribmap.evaluate import threshold_boxes  # noqa: E402
from attribmap.evaluate.threshold_boxes import best_ious_per_tau, resolve_engine  # noqa: E402
from attribmap.evaluate.tree_engine import tree_batch_ious, tree_level_ious  # noqa: E402
from attribmap.evaluate.tree_tables import background_tables, foreground_tables  # noqa: E402

NW, N, NE, W, E, SW, S, SE = (1 << k for k in range(8))


def _holes(foreground: np.ndarray) -> int:
    """Background regions (4-connected) that do not touch the image edge."""
    _, count = ndimage.label(np.pad(~foreground, 1, constant_values=True))
    return count - 1


def _iou(a, b) -> float:
    inter_w = max(0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    inter_h = max(0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    inter = inter_w * inter_h
    union = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter
    return inter / union


def test_neighbourhood_tables_by_hand():
    area2_gain, euler4_gain, groups, reps = foreground_tables()
    assert area2_gain[0] == 0 and euler4_gain[0] == 4 and groups[0] == 0  # a new blob
    assert area2_gain[255] == 4 and groups[255] == 1  # filling a hole: +4 windows to 4 px
    assert euler4_gain[255] == 4  # ... and the hole disappears: E8 + 1
    assert area2_gain[W] == 0 and euler4_gain[W] == 0 and groups[W] == 1  # extend a run
    assert area2_gain[N | NW | W] == 1  # completes one 2x2 square (3 -> 4 pixels)
    assert groups[N | S] == 2 and groups[N | E] == 1  # N and E touch diagonally
    assert groups[NW | NE | SW | SE] == 4 and euler4_gain[NW | NE | SW | SE] == -12
    assert sorted(reps[N | S, :2].tolist()) == [1, 6]


def test_background_tables_by_hand():
    fill_gain, euler4_gain, groups, reps = background_tables()
    assert fill_gain[0] == 4 and euler4_gain[0] == 4 and groups[0] == 0  # a new hole
    assert fill_gain[W] == 4 and groups[W] == 1 and reps[W, 0] == 3  # one more window pair
    assert fill_gain[N | NW | W] == 3  # the NW window already held 3 background pixels
    assert fill_gain[255] == 0 and euler4_gain[255] == 4  # a lone foreground pixel goes away
    assert groups[N | S] == 2 and groups[N | NE | E] == 1  # N-NE-E is 4-connected
    assert groups[NW | NE | SW | SE] == 0  # diagonal background does not touch (4-connected)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (6, 1), (5, 5)])
def test_constant_map_is_one_full_component(shape):
    s8 = np.full(shape, 9, dtype=np.uint8)
    gt = np.array([[0, 0, 1, 1]])
    v1, v2, unresolved, holes = tree_level_ious(s8, np.array([0, 3, 8]), gt)
    height, width = shape
    box = (0, 0, min(width, width - 1), min(height, height - 1))  # x1 = min(x + w, W - 1)
    assert not holes.any() and not unresolved.any()
    assert v1.tolist() == [_iou(box, gt[0])] * 3 and v2.tolist() == v1.tolist()


def test_diagonal_chain_is_one_component_with_zero_area():
    s8 = (np.eye(6) * 50).astype(np.uint8)
    s8[0, 5] = 20  # a lone pixel, also of zero area, first in raster order after (0, 0)
    gt = np.array([[5, 0, 5, 1]])
    v1, v2, _, holes = tree_level_ious(s8, np.array([0, 30]), gt)
    assert not holes.any()
    # level 0: tie at area 0 -> the lone pixel (first pixel index 5 > 0) is V1
    assert v1[0] == _iou((5, 0, 5, 1), gt[0]) == 1.0 and v2[0] == 1.0
    # level 30: only the diagonal, box clipped to the image: (0, 0, 5, 5)
    assert v1[1] == v2[1] == _iou((0, 0, 5, 5), gt[0])


def test_tie_goes_to_the_component_whose_first_pixel_is_last():
    s8 = np.zeros((10, 12), dtype=np.uint8)
    s8[1:4, 6:9] = 100  # first pixel (1, 6): raster index 18
    s8[5:8, 1:4] = 100  # first pixel (5, 1): raster index 61 -> OpenCV's max picks it
    gt = np.array([[1, 5, 4, 8]])
    v1, v2, _, holes = tree_level_ious(s8, np.array([0]), gt)
    assert not holes[0] and v1[0] == 1.0 and v2[0] == 1.0
    bigger = s8.copy()
    bigger[1:5, 6:9] = 100  # now the upper blob has the larger area
    v1, v2, _, _ = tree_level_ious(bigger, np.array([0]), gt)
    assert v1[0] == _iou((6, 1, 9, 5), gt[0]) and v2[0] == 1.0


def test_levels_with_holes_are_answered_by_the_sweeps():
    s8 = np.zeros((9, 9), dtype=np.uint8)
    s8[1:8, 1:8] = 200
    s8[3:6, 3:6] = 50  # a ring above level 50, a full square below
    gt = np.array([[2, 2, 7, 7]])
    levels = np.array([120, 10, 60])
    v1, v2, unresolved, holes = tree_level_ious(s8, levels, gt)
    assert holes.tolist() == [True, False, True] and not unresolved.any()
    # outer box (1, 1, 8, 8) for V1; the hole (3..5) has the border box (2, 2, 7, 7) in V2
    assert v1.tolist() == [_iou((1, 1, 8, 8), gt[0])] * 3
    assert v2.tolist() == [1.0, _iou((1, 1, 8, 8), gt[0]), 1.0]


def test_a_hole_counts_in_the_area_of_its_outer_border():
    s8 = np.zeros((12, 20), dtype=np.uint8)
    s8[1:10, 1:10] = 90
    s8[2:9, 2:9] = 0  # a one-pixel ring: outer polygon area 64, bit-quad area of its pixels 0
    s8[2:7, 13:18] = 90  # a full 5x5 square: area 16, larger than the ring's pixels alone
    ring_box, square_box = (1, 1, 10, 10), (13, 2, 18, 7)  # x1 = min(x + w, W - 1)
    v1, v2, unresolved, holes = tree_level_ious(s8, np.array([0]), np.array([ring_box]))
    assert holes[0] and not unresolved[0]
    assert v1[0] == 1.0 and v2[0] == 1.0  # the ring wins V1, as with cv2.contourArea
    v1, _, _, _ = tree_level_ious(s8, np.array([0]), np.array([square_box]))
    assert v1[0] == _iou(ring_box, square_box)


def test_rare_cases_are_left_to_the_caller_and_still_exact():
    cv2 = pytest.importorskip("cv2")
    del cv2
    nested = np.zeros((12, 12), dtype=np.uint8)
    nested[1:10, 1:10] = 90
    nested[3:8, 3:8] = 0
    nested[5, 5] = 40  # a component inside the hole, up to level 40
    tie = np.zeros((10, 16), dtype=np.uint8)
    tie[1:6, 1:6] = 70
    tie[3, 3] = 0  # a 5x5 square with a one-pixel hole ...
    tie[1:6, 9:14] = 60  # ... and a full 5x5 square: both outer borders have area 16
    for s8 in (nested, tie):  # resolved again once the dot (the full square) is gone
        gt = np.array([[2, 2, 6, 6]])
        _, _, unresolved, holes = tree_level_ious(s8, np.array([0, 65]), gt)
        assert unresolved.tolist() == [True, False] and holes.tolist() == [True, True]
        taus = np.arange(0, 1, 0.05)
        ours = best_ious_per_tau(s8, gt, taus, "tree")
        theirs = best_ious_per_tau(s8, gt, taus, "opencv")
        assert np.array_equal(ours[0], theirs[0]) and np.array_equal(ours[1], theirs[1])


def _random_maps(rng, count):
    for index in range(count):
        height, width = (int(v) for v in rng.integers(1, 40, 2))
        kind = index % 5
        if kind == 0:  # noise: ties and holes everywhere
            yield rng.integers(0, 256, (height, width)).astype(np.uint8)
        elif kind == 1:  # few levels: large flat plateaus
            yield rng.integers(0, 4, (height, width)).astype(np.uint8)
        elif kind == 2:  # smooth blobs touching the borders
            smooth = ndimage.gaussian_filter(rng.normal(size=(height, width)), rng.uniform(0.5, 3))
            smooth -= smooth.min()
            yield (smooth / max(smooth.max(), 1e-12) * 255).astype(np.uint8)
        elif kind == 3:  # rings: a band of a smooth map is high
            smooth = ndimage.gaussian_filter(rng.normal(size=(height, width)), 1.5)
            band = np.abs(smooth - 0.1)
            yield ((band.max() - band) / max(band.max(), 1e-12) * 255).astype(np.uint8)
        else:  # sparse pixels at one value
            yield ((rng.random((height, width)) < 0.3) * int(rng.integers(1, 256))).astype(np.uint8)


def _random_gt(rng, height, width):
    corners = np.stack([rng.integers(0, width, 2), rng.integers(0, height, 2)], axis=1)
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    return np.array([[lo[0], lo[1], hi[0], hi[1]], [0, 0, width - 1, height - 1]])


def test_levels_and_hole_flags_match_opencv_and_scipy_on_random_maps():
    cv2 = pytest.importorskip("cv2")
    del cv2
    rng = np.random.default_rng(3)
    hole_levels = unresolved_levels = 0
    for s8 in _random_maps(rng, 150):
        if s8.max() == 0:
            continue
        gt = _random_gt(rng, *s8.shape)
        levels = np.arange(int(s8.max()))
        v1, v2, unresolved, holes = tree_level_ious(s8, levels, gt)
        ref_v1, ref_v2 = threshold_boxes._opencv_level_ious(s8, levels, gt)
        assert np.array_equal(v1[~unresolved], ref_v1[~unresolved])
        assert np.array_equal(v2[~unresolved], ref_v2[~unresolved])
        for level, flagged in zip(levels[::7], holes[::7]):
            assert flagged == (_holes(s8 > level) > 0)
        assert not (unresolved & ~holes).any()
        hole_levels += int(holes.sum())
        unresolved_levels += int(unresolved.sum())
        for delta in (0.01, 0.001):
            taus = np.arange(0, 1, delta)
            ours = best_ious_per_tau(s8, gt, taus, "tree")
            theirs = best_ious_per_tau(s8, gt, taus, "opencv")
            assert np.array_equal(ours[0], theirs[0]) and np.array_equal(ours[1], theirs[1])
    # levels with holes are answered by the sweeps; nesting and ties (noise) are the rest
    assert hole_levels > 5000 and 0 < unresolved_levels < 0.05 * hole_levels


def test_matches_the_reference_loop_on_cam_like_maps():
    reference = pytest.importorskip("test_evaluate_reference")
    rng = np.random.default_rng(11)
    gt = np.array([[10, 12, 60, 70], [40, 5, 90, 50]])
    for delta, count in ((0.01, 3), (0.001, 1)):
        taus = np.arange(0, 1, delta)
        for _ in range(count):
            raw = reference.blobby_map(rng, size=224, low=int(rng.choice([7, 14])))
            scoremap = reference.reference_normalize(raw)
            ref_v1, ref_v2 = reference.reference_best_ious(scoremap, gt, taus)
            v1, v2 = best_ious_per_tau((scoremap * 255).astype(np.uint8), gt, taus, "tree")
            assert np.array_equal(v1, ref_v1) and np.array_equal(v2, ref_v2)


def test_fallback_without_opencv_uses_the_numpy_engine(monkeypatch):
    s8 = np.zeros((16, 16), dtype=np.uint8)
    s8[1:14, 1:14] = 90
    s8[4:6, 4:7] = 0
    s8[7, 2] = 0
    s8[8:13, 8:13] = 0
    s8[10, 10] = 40  # at levels below 40: a component inside a hole, left to the fallback
    gt = np.array([[3, 3, 8, 7]])
    taus = np.arange(0, 1, 0.1)
    expected = best_ious_per_tau(s8, gt, taus, "numpy")
    monkeypatch.setattr(threshold_boxes, "_load_cv2", lambda: None)
    v1, v2 = best_ious_per_tau(s8, gt, taus, "tree")
    assert np.array_equal(v1, expected[0]) and np.array_equal(v2, expected[1])
    assert v2.max() == 1.0  # the grown hole box (3, 3, 8, 7) is found
    assert tree_level_ious(s8, np.array([0, 50]), gt)[2].tolist() == [True, False]


def test_box_accuracy_end_to_end_equals_the_opencv_engine():
    pytest.importorskip("cv2")
    rng = np.random.default_rng(2)
    maps = ndimage.gaussian_filter(rng.normal(size=(6, 14, 14)), (0, 1.2, 1.2))
    boxes = [np.array([[int(x), int(y), int(x) + 60, int(y) + 50]]) for x, y in rng.integers(0, 150, (6, 2))]
    tree = BoxAccuracy(delta=0.01, engine="tree").update(Framer().frame(maps, boxes=boxes)).compute()
    opencv = BoxAccuracy(delta=0.01, engine="opencv").update(Framer().frame(maps, boxes=boxes)).compute()
    assert tree["MaxBoxAcc"] == opencv["MaxBoxAcc"] and tree["MaxBoxAccV2"] == opencv["MaxBoxAccV2"]
    for iou in (30, 50, 70):
        assert np.array_equal(tree["curves"]["BoxAccV2"][iou], opencv["curves"]["BoxAccV2"][iou])
        assert np.array_equal(tree["curves"]["BoxAccV1"][iou], opencv["curves"]["BoxAccV1"][iou])


def test_engine_selection_and_bad_input():
    assert resolve_engine("auto") == "tree" and resolve_engine("tree") == "tree"
    with pytest.raises(AttribmapError, match="engine must be one of"):
        resolve_engine("fast")
    with pytest.raises(AttribmapError, match="levels must lie in"):
        tree_level_ious(np.ones((3, 3), np.uint8), np.array([256]), np.array([[0, 0, 1, 1]]))
    with pytest.raises(AttribmapError, match="2-D"):
        tree_level_ious(np.ones(4, np.uint8), np.array([0]), np.array([[0, 0, 1, 1]]))
    with pytest.raises(AttribmapError, match="ground-truth"):
        tree_level_ious(np.ones((3, 3), np.uint8), np.array([0]), np.zeros((0, 4)))


def test_batch_equals_one_map_at_a_time_including_fallback_and_empty_maps():
    pytest.importorskip("cv2")
    rng = np.random.default_rng(5)
    maps = [m for m in _random_maps(rng, 10)]
    size = (24, 24)
    s8 = np.zeros((len(maps) + 2,) + size, dtype=np.uint8)
    for index, m in enumerate(maps):
        s8[index, :m.shape[0], :m.shape[1]] = m[:24, :24]
    s8[-2, 1:14, 1:14] = 90  # a ring with a dot inside: left to the fallback
    s8[-2, 3:12, 3:12] = 0
    s8[-2, 7, 7] = 40
    # s8[-1] stays all zero: no foreground at any level
    gt = [_random_gt(rng, *size) for _ in range(len(s8))]
    for delta in (0.01, 0.001):
        taus = np.arange(0, 1, delta)
        v1, v2, unresolved = tree_batch_ious(s8, gt, taus)
        assert unresolved[-2].any() and not unresolved[-1].any()
        both = threshold_boxes.best_ious_batch(s8, gt, taus, "tree")
        for index in range(len(s8)):
            one = best_ious_per_tau(s8[index], gt[index], taus, "opencv")
            assert np.array_equal(both[0][index], one[0]) and np.array_equal(both[1][index], one[1])
            ok = ~unresolved[index]
            assert np.array_equal(v1[index][ok], one[0][ok]) and np.array_equal(v2[index][ok], one[1][ok])


def test_batch_takes_normalized_float_maps_like_their_uint8_form():
    rng = np.random.default_rng(8)
    frames = ndimage.gaussian_filter(rng.random((5, 30, 30)), (0, 2, 2))
    frames -= frames.min(axis=(1, 2), keepdims=True)
    frames /= frames.max(axis=(1, 2), keepdims=True)
    gt = [_random_gt(rng, 30, 30) for _ in range(5)]
    taus = np.arange(0, 1, 0.01)
    from_float = tree_batch_ious(frames, gt, taus)
    from_uint8 = tree_batch_ious((frames * 255).astype(np.uint8), gt, taus)
    for a, b in zip(from_float, from_uint8):
        assert np.array_equal(a, b)
    frames[2, 3, 4] = 1.5
    with pytest.raises(AttribmapError, match="normalized"):
        tree_batch_ious(frames, gt, taus)


def test_batch_rejects_bad_input():
    taus = np.arange(0, 1, 0.1)
    maps = np.zeros((2, 5, 5), dtype=np.uint8)
    box = np.array([[0, 0, 1, 1]])
    with pytest.raises(AttribmapError, match="one box array per map"):
        tree_batch_ious(maps, [box], taus)
    with pytest.raises(AttribmapError, match="ground-truth"):
        tree_batch_ious(maps, [box, np.zeros((0, 4))], taus)
    with pytest.raises(AttribmapError, match="ascending"):
        tree_batch_ious(maps, [box, box], taus[::-1])
    with pytest.raises(AttribmapError, match=r"\(N, H, W\)"):
        tree_batch_ious(maps[0], [box], taus)


def test_box_accuracy_in_chunks_equals_one_call(monkeypatch):
    from attribmap.evaluate import box_accuracy

    rng = np.random.default_rng(4)
    maps = ndimage.gaussian_filter(rng.normal(size=(7, 14, 14)), (0, 1.2, 1.2))
    boxes = [np.array([[int(x), int(y), int(x) + 60, int(y) + 50]]) for x, y in rng.integers(0, 150, (7, 2))]
    correct = rng.random(7) < 0.5
    whole = BoxAccuracy(delta=0.01).update(Framer().frame(maps, boxes=boxes, correct=correct)).compute()
    monkeypatch.setattr(box_accuracy, "_CHUNK", 3)
    chunked = BoxAccuracy(delta=0.01).update(Framer().frame(maps, boxes=boxes, correct=correct)).compute()
    for key in ("MaxBoxAcc", "MaxBoxAccV2", "Top1Loc", "Top1LocV2"):
        assert whole[key] == chunked[key]
    for iou in (30, 50, 70):
        assert np.array_equal(whole["curves"]["BoxAccV2"][iou], chunked["curves"]["BoxAccV2"][iou])


def test_without_numba_the_engine_module_imports_and_auto_falls_back():
    script = """
import sys
sys.modules["numba"] = None  # import numba now raises ImportError
import numpy as np
from attribmap.errors import AttribmapError
from attribmap.evaluate import threshold_boxes, tree_engine
assert not tree_engine.numba_available()
assert threshold_boxes.resolve_engine("auto") != "tree"
s8 = np.zeros((6, 6), np.uint8); s8[1:5, 1:5] = 9
gt = np.array([[1, 1, 5, 5]])
v1, v2 = threshold_boxes.best_ious_per_tau(s8, gt, np.arange(0, 1, 0.5), "auto")
assert v1.tolist() == [1.0, 1.0], v1
try:
    tree_engine.tree_level_ious(s8, np.array([0]), gt)
except AttribmapError as error:
    assert "needs numba" in str(error)
else:
    raise AssertionError("no error without numba")
assert "attribmap.evaluate.tree_kernels" not in sys.modules
print("ok")
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
