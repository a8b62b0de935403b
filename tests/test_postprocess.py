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
