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


def test_sixteen_bit_greyscale_is_scaled_by_its_bit_depth(tmp_path):
    from attribmap.inputs import load_image

    ramp = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "grey16.png")
    rgb = np.asarray(load_image(tmp_path / "grey16.png"))
    assert rgb.shape == (32, 32, 3) and rgb.dtype == np.uint8
    assert np.array_equal(rgb[..., 0], np.round(ramp / 257.0).astype(np.uint8))  # not saturated to 255
    assert abs(rgb.mean() - 127.5) < 1.0


@pytest.mark.parametrize("content,reason", [(b"", "empty"), (b"hello, not a picture", "not an image file"),
                                            ("truncated", "truncated or corrupt")])
def test_unreadable_files_raise_one_clear_error_naming_the_file(tmp_path, content, reason):
    from attribmap.errors import ImageReadError
    from attribmap.inputs import load_image

    path = tmp_path / "broken.jpg"
    if content == "truncated":
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(content)
    with pytest.raises(ImageReadError, match=reason) as info:
        load_image(path)
    assert "broken.jpg" in str(info.value)
