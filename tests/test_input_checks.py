"""Bad inputs to Explainer / explain get attribmap's own message, before any work."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import attribmap
from attribmap.errors import ImageReadError, InputError, TargetError
from attribmap.inputs import check_finite, fit_to_model, load_image


def _with_nan(images: torch.Tensor, *where) -> torch.Tensor:
    bad = images.clone()
    for index in where:
        bad[index, 1, 2, 3] = float("nan") if index % 2 == 0 else float("inf")
    return bad


def test_nonfinite_images_are_refused_naming_the_images(tiny_model, tiny_images):
    bad = _with_nan(tiny_images, 0, 2)
    explainer = attribmap.Explainer(tiny_model, layer="features")
    for call in (lambda: explainer.explain(bad, "gradcam"), lambda: explainer.explain_many(bad, ["cam", "dgl"]),
                 lambda: attribmap.explain(tiny_model, bad, "cam"), lambda: explainer.capture(bad)):
        with pytest.raises(InputError, match=r"images 0, 2 of the batch \(N = 3\) hold NaN or infinite"):
            call()


def test_nonfinite_zero_warns_and_zeroes_those_values(tiny_model, tiny_images):
    bad = _with_nan(tiny_images, 1)
    cleaned = tiny_images.clone()
    cleaned[1, 1, 2, 3] = 0.0
    with pytest.warns(RuntimeWarning, match=r"image 1 of the batch \(N = 3\): 1 NaN or infinite values replaced"):
        maps = attribmap.explain(tiny_model, bad, "gradcam", layer="features", nonfinite="zero")
    assert torch.equal(maps, attribmap.explain(tiny_model, cleaned, "gradcam", layer="features"))
    assert maps[1].max() == 1.0  # a real map, not the all-zero one NaN gave before
    assert torch.isinf(bad[1, 1, 2, 3])  # the caller's tensor is untouched
    with pytest.raises(InputError, match="nonfinite must be one of"):
        check_finite(tiny_images, "ignore")


def test_one_channel_tensor_names_given_and_expected_channels(tiny_model):
    for grey in (torch.rand(2, 1, 16, 16), torch.rand(1, 16, 16)):
        with pytest.raises(InputError, match=r"1 channel \(shape \(\d, 1, 16, 16\)\) but the model's first layer "
                                             r"'features.0' takes 3: repeat a greyscale image"):
            attribmap.explain(tiny_model, grey, "cam")


def test_float64_images_are_cast_to_the_model_dtype(tiny_model, tiny_images):
    expected = attribmap.explain(tiny_model, tiny_images, "gradcam", layer="features")
    maps = attribmap.explain(tiny_model, tiny_images.double(), "gradcam", layer="features")
    assert maps.dtype == torch.float32 and torch.equal(maps, expected)
    assert fit_to_model(tiny_images.double(), tiny_model.double()).dtype == torch.float64


@pytest.mark.parametrize("target, message", [
    ([1, None, 2], r"target\[1\] is None; target classes must be integers"),
    ([True, 1, 2], r"target\[0\] is True \(bool\)"),
    ([1, 2.0, 0], r"target\[1\] is 2.0 \(float\)"),
    ([[0, 1], [2, None], [1, 1]], r"target\[1\]\[1\] is None"),
    (True, "not a bool"),
])
def test_target_items_that_are_no_class_index_get_our_message(tiny_model, tiny_images, target, message):
    with pytest.raises(TargetError, match=message):
        attribmap.explain(tiny_model, tiny_images, "gradcam", layer="features", target=target)


def test_float_image_file_with_nan_is_an_image_read_error(tmp_path):
    values = np.full((8, 8), 0.5, dtype=np.float32)
    values[3, 3] = np.nan
    path = tmp_path / "float.tif"
    Image.fromarray(values, mode="F").save(path)
    with pytest.raises(ImageReadError, match=r"float.tif.*1 NaN or infinite pixels"):
        load_image(path)


def test_sixteen_bit_mask_is_read_by_bit_depth_like_images(tmp_path):
    from attribmap.data.records import load_binary_mask

    mask = np.zeros((8, 8), dtype=np.uint16)
    mask[:4] = 65535
    mask[4:6] = 100  # 100 / 65535 of full scale: background, as in the image reading
    Image.fromarray(mask).save(tmp_path / "m16.png")
    read = load_binary_mask(str(tmp_path / "m16.png"))
    assert read[:4].all() and not read[4:].any()
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty.png"):
        load_binary_mask(str(tmp_path / "empty.png"))
