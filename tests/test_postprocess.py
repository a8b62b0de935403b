"""Post-processing: min-max normalization and grey-level closing."""
from __future__ import annotations

import numpy as np
import torch

from attribmap.postprocess import grey_closing, minmax


def test_minmax_constant_and_nonfinite_maps_become_zero():
    maps = torch.stack([torch.full((4, 4), 3.0), torch.arange(16.0).view(4, 4), torch.ones(4, 4)])
    maps[2, 0, 0] = float("nan")
    out = minmax(maps)
    assert torch.equal(out[0], torch.zeros(4, 4)) and torch.equal(out[2], torch.zeros(4, 4))
    assert out[1].min() == 0 and out[1].max() == 1


def test_grey_closing_matches_scikit_image():
    from skimage.morphology import closing, disk

    rng = np.random.default_rng(0)
    img = rng.random((2, 20, 23)).astype(np.float32)
    ours = grey_closing(torch.from_numpy(img), 3).numpy()
    for i in range(2):
        assert np.allclose(ours[i], closing(img[i], disk(3)), atol=1e-7)


def test_constant_raw_maps_come_out_as_zeros_after_upsampling():
    """Bilinear weights leave 1-ulp ripples on an upsampled constant; min-max must not stretch them."""
    from attribmap.postprocess import average_scales, postprocess, upsample

    values = [0.1, 0.3, 1 / 3, 2.7, 1e-3, 123.456, -5.5, 7e5, 3.14159]
    sizes = [(7, 7), (14, 14), (5, 9), (13, 13), (2, 2), (3, 3), (1, 1), (28, 28)]
    rippled = 0
    for v in values:
        for hw in sizes:
            raw = torch.full((1,) + hw, v)
            rippled += int(upsample(raw, (224, 224)).unique().numel() > 1)
            assert torch.equal(postprocess(raw, (224, 224)), torch.zeros(1, 224, 224)), (v, hw)
            averaged = average_scales([raw, torch.full((1, 9, 11), v)], hw)  # multi-scale rounding
            assert torch.equal(postprocess(averaged, (224, 224), close=1), torch.zeros(1, 224, 224)), (v, hw)
    assert rippled > 0  # the upsampling really does ripple: the check above is not vacuous
    tiny_bump = torch.zeros(2, 7, 7)
    tiny_bump[0, 3, 3] = 1e-30  # a real (if tiny) map is still normalized
    out = postprocess(tiny_bump, (32, 32))
    assert out[0].max() == 1 and torch.equal(out[1], torch.zeros(32, 32))
