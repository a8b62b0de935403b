"""The official frame: bicubic resize, min-max, uint8, box and mask rescaling."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from attribmap.errors import AttribmapError
from attribmap.evaluate.frame import (
    normalize_minmax,
    official_maps,
    rescale_boxes,
    resize_bicubic,
    resize_mask_nearest,
    to_uint8,
    union_mask,
)


@pytest.mark.parametrize("shape", [(7, 7), (14, 14), (28, 28), (13, 17), (1, 5), (2, 2), (300, 200), (224, 224)])
def test_bicubic_resize_is_bit_identical_to_opencv(shape):
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(sum(shape))
    for scale in (1.0, 1e3, 1e-3):
        raw = rng.normal(size=shape) * scale
        expected = cv2.resize(raw, (224, 224), interpolation=cv2.INTER_CUBIC).reshape(224, 224)
        assert np.array_equal(resize_bicubic(raw, (224, 224)), expected)


def test_bicubic_resize_keeps_constants_and_batches():
    maps = np.stack([np.full((7, 7), 3.0), np.arange(49.0).reshape(7, 7)])
    out = resize_bicubic(maps, (20, 30))
    assert out.shape == (2, 20, 30)
    assert np.allclose(out[0], 3.0)  # the cubic weights sum to one
    assert np.array_equal(out[1], resize_bicubic(maps[1], (20, 30)))


def test_minmax_edge_cases():
    maps = np.stack([
        np.array([[1.0, 3.0], [2.0, 5.0]]),
        np.full((2, 2), 7.0),                     # constant -> zeros
        np.array([[1.0, np.nan], [0.0, 2.0]]),    # NaN -> zeros
        np.array([[1.0, np.inf], [0.0, 2.0]]),    # infinite -> zeros
    ])
    out = normalize_minmax(maps)
    assert np.array_equal(out[0], [[0.0, 0.5], [0.25, 1.0]])
    assert not out[1:].any()
    assert out[0].max() == 1.0  # exactly one: becomes 255 in uint8
    assert np.array_equal(to_uint8(out[0]), [[0, 127], [63, 255]])


def test_official_maps_accepts_tensors_and_checks_shape():
    raw = torch.arange(16.0).reshape(1, 4, 4)
    out = official_maps(raw, image_size=8)
    assert out.shape == (1, 8, 8) and out.dtype == np.float64
    assert out.min() == 0.0 and out.max() == 1.0
    with pytest.raises(AttribmapError, match=r"\(N, h, w\)"):
        official_maps(np.zeros((4, 4)))


def test_rescale_boxes_truncates_like_the_reference():
    # 100 * 224 / 300 = 74.67 -> 74; 299 * 224 / 300 = 223.25 -> 223; 50 * 224 / 150 = 74.67 -> 74
    out = rescale_boxes([[100, 50, 299, 149]], (300, 150))
    assert out.tolist() == [[74, 74, 223, 222]]
    with pytest.raises(AttribmapError, match=">= 0"):
        rescale_boxes([[-1, 0, 3, 3]], (10, 10))
    with pytest.raises(AttribmapError, match=r"\(W, H\)"):
        rescale_boxes([[0, 0, 3, 3]], (0, 10))


def test_nearest_resize_matches_opencv_and_masks_union():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(3)
    for shape in [(10, 10), (37, 91), (300, 200), (5, 3)]:
        mask = (rng.random(shape) > 0.5).astype(np.float32) * 255
        for size in [(224, 224), (20, 33)]:
            expected = cv2.resize(mask, (size[1], size[0]), interpolation=cv2.INTER_NEAREST).reshape(size)
            assert np.array_equal(resize_mask_nearest(mask, size), expected)
    instances = np.zeros((2, 4, 4))
    instances[0, 0, 0] = 255
    instances[1, 3, 3] = 1
    union = union_mask(instances, image_size=4)
    assert union.sum() == 2 and union[0, 0] and union[3, 3]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -1e-9, 1.0 + 1e-12])
@pytest.mark.parametrize("compiled", [True, False])
def test_preprocessed_maps_outside_the_unit_interval_are_rejected(bad, compiled, monkeypatch):
    from attribmap.evaluate import frame_kernels
    from attribmap.evaluate.frame import frame_scoremaps

    if not compiled:
        monkeypatch.setattr(frame_kernels, "numba_available", lambda: False)
    maps = np.zeros((2, 4, 4))
    maps[1, 2, 3] = 1.0
    assert frame_scoremaps(maps, 4, preprocessed=True) is not None
    maps[1, 3, 0] = bad
    with pytest.raises(AttribmapError, match="finite values in \\[0, 1\\]"):
        frame_scoremaps(maps, 4, preprocessed=True)
