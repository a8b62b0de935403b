"""Images as tensors, PIL images, ndarrays and paths."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import attribmap


def test_pil_ndarray_and_path_inputs(tiny_model, tmp_path):
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, size=(40, 50, 3), dtype=np.uint8)
    path = tmp_path / "img.png"
    Image.fromarray(array).save(path)
    a = attribmap.explain(tiny_model, Image.fromarray(array), "gradcam", "features")
    b = attribmap.explain(tiny_model, array, "gradcam", "features")
    c = attribmap.explain(tiny_model, str(path), "gradcam", "features")
    d = attribmap.explain(tiny_model, [path, path], "gradcam", "features")
    assert a.shape == (1, 224, 224) and torch.equal(a, b) and torch.equal(a, c)
    assert d.shape == (2, 224, 224) and torch.equal(d[1], a[0])
    with pytest.raises(FileNotFoundError, match="missing.png"):
        attribmap.explain(tiny_model, tmp_path / "missing.png")
    with pytest.raises(attribmap.InputError, match="floating point"):
        attribmap.explain(tiny_model, torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
