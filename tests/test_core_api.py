"""Layer resolution, targets, inputs, the registry and the explain_many contract."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

import attribmap
from attribmap.layers import resolve_layer
from attribmap.postprocess import grey_closing, minmax


@pytest.fixture(scope="module")
def resnet18():
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None).eval()


def test_layer_names_modules_and_auto(resnet18, tiny_model):
    assert resolve_layer(resnet18, "layer4.1.conv2")[1] is resnet18.layer4[1].conv2
    assert resolve_layer(resnet18, resnet18.layer3)[0] == "layer3"
    x = torch.randn(1, 3, 64, 64)
    assert resolve_layer(resnet18, None, example=x)[0] == "layer4"
    vgg = torchvision.models.vgg11(weights=None).eval()
    assert resolve_layer(vgg, None, example=x)[0] == "features.19"
    assert resolve_layer(tiny_model, None, example=torch.randn(1, 3, 16, 16))[0] == "features"
    tiny_model.cam_layer = "features.2"
    assert resolve_layer(tiny_model, None)[0] == "features.2"


def test_unknown_layer_lists_close_names(resnet18):
    with pytest.raises(attribmap.LayerError) as info:
        attribmap.explain(resnet18, torch.randn(1, 3, 32, 32), layer="layer5")
    assert "'layer4'" in str(info.value) and "layer5" in str(info.value)
    with pytest.raises(attribmap.LayerError, match="not part of the model"):
        resolve_layer(resnet18, torch.nn.Conv2d(1, 1, 1))


def test_non_4d_layer_is_rejected(resnet18):
    with pytest.raises(attribmap.LayerError, match=r"outputs \(1, 1000\); expected a 4-D"):
        attribmap.explain(resnet18, torch.randn(1, 3, 32, 32), layer="fc")


def test_targets(tiny_model, tiny_images):
    x = tiny_images
    top1 = tiny_model(x).argmax(1)
    assert torch.equal(attribmap.explain(tiny_model, x, "gradcam", "features"),
                       attribmap.explain(tiny_model, x, "gradcam", "features", target=top1))
    per_image = attribmap.explain(tiny_model, x, "cam", "features", target=[0, 1, 2], raw=True)
    for i, t in enumerate([0, 1, 2]):
        assert torch.allclose(per_image[i], attribmap.explain(tiny_model, x[i], "cam", "features", target=t, raw=True)[0], atol=1e-6)
    with pytest.raises(attribmap.TargetError, match="out of range.*5 classes"):
        attribmap.explain(tiny_model, x, "cam", "features", target=5)
    with pytest.raises(attribmap.TargetError, match="out of range"):
        attribmap.explain(tiny_model, x, "cam", "features", target=[0, -1, 2])
    with pytest.raises(attribmap.TargetError, match="one class per image"):
        attribmap.explain(tiny_model, x, "cam", "features", target=[0, 1])


def test_output_shape_range_and_raw(tiny_model, tiny_images):
    maps = attribmap.explain(tiny_model, tiny_images, "gradcam", "features")
    assert maps.shape == (3, 16, 16) and maps.min() >= 0 and maps.max() <= 1
    raw = attribmap.explain(tiny_model, tiny_images, "gradcam", "features", raw=True)
    assert raw.shape == (3, 8, 8)
    single = attribmap.explain(tiny_model, tiny_images[0], "gradcam", "features")
    assert single.shape == (1, 16, 16)


def test_minmax_constant_and_nonfinite_maps_become_zero():
    maps = torch.stack([torch.full((4, 4), 3.0), torch.arange(16.0).view(4, 4), torch.ones(4, 4)])
    maps[2, 0, 0] = float("nan")
    out = minmax(maps)
    assert torch.equal(out[0], torch.zeros(4, 4)) and torch.equal(out[2], torch.zeros(4, 4))
    assert out[1].min() == 0 and out[1].max() == 1


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


def test_explain_many_matches_single_calls(tiny_model, tiny_images):
    names = ["cam", "gradcam", "gradcampp", "dgl", "dgl-psb", "dgl-cem"]
    many, logits = attribmap.Explainer(tiny_model, "features").explain_many(tiny_images, names, return_logits=True)
    assert torch.allclose(logits, tiny_model(tiny_images))
    for name in names:
        assert torch.allclose(many[name], attribmap.explain(tiny_model, tiny_images, name, "features"), atol=1e-6)


def test_one_forward_serves_all_posthoc_methods(tiny_model, tiny_images):
    calls = []
    h = tiny_model.fc.register_forward_hook(lambda *a: calls.append(1))
    try:
        attribmap.Explainer(tiny_model, "features").explain_many(
            tiny_images, ["cam", "gradcam", "gradcampp", "dgl", "dgl-psb", "dgl-cem"])
    finally:
        h.remove()
    assert len(calls) == 1


def test_register_custom_method_and_unknown_names(tiny_model, tiny_images):
    def mean_activation(capture, layer):
        """Mean of the tapped activations over channels."""
        return capture.activations(layer).mean(1)

    attribmap.register_method("test-mean", mean_activation)
    try:
        assert "test-mean" in attribmap.methods()
        out = attribmap.explain(tiny_model, tiny_images, "test-mean", "features", raw=True)
        assert torch.allclose(out, tiny_model.features(tiny_images).mean(1))
        with pytest.raises(attribmap.MethodError, match="already registered"):
            attribmap.register_method("test-mean", mean_activation)
    finally:
        attribmap.unregister_method("test-mean")
    with pytest.raises(attribmap.MethodError, match="did you mean 'gradcam'"):
        attribmap.explain(tiny_model, tiny_images, "gradcma", "features")
    with pytest.raises(attribmap.MethodError, match="no attribution class 'Nope'"):
        attribmap.explain(tiny_model, tiny_images, "captum:Nope", "features")


def test_multiscale_and_closing(tiny_model, tiny_images):
    base = attribmap.explain(tiny_model, tiny_images, "gradcam", "features")
    same = attribmap.explain(tiny_model, tiny_images, "gradcam", "features", scales=(1.0,))
    assert torch.equal(base, same)
    ms = attribmap.explain(tiny_model, tiny_images, "gradcam", "features", scales=(1.0, 2.0), raw=True)
    r1 = attribmap.explain(tiny_model, tiny_images, "gradcam", "features", raw=True)
    up = torch.nn.functional.interpolate(tiny_images, scale_factor=2.0, mode="bilinear", align_corners=False)
    top1 = tiny_model(tiny_images).argmax(1)
    r2 = attribmap.explain(tiny_model, up, "gradcam", "features", raw=True, target=top1)
    r2_small = torch.nn.functional.interpolate(r2[:, None], size=r1.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    assert torch.allclose(ms, (r1 + r2_small) / 2, atol=1e-6)
    closed = attribmap.explain(tiny_model, tiny_images, "gradcam", "features", close=2)
    assert closed.shape == base.shape and closed.max() <= 1 and closed.min() >= 0
    with pytest.raises(attribmap.MethodError, match="raw=True"):
        attribmap.explain(tiny_model, tiny_images, "gradcam", "features", close=2, raw=True)


def test_grey_closing_matches_scikit_image():
    from skimage.morphology import closing, disk

    rng = np.random.default_rng(0)
    img = rng.random((2, 20, 23)).astype(np.float32)
    ours = grey_closing(torch.from_numpy(img), 3).numpy()
    for i in range(2):
        assert np.allclose(ours[i], closing(img[i], disk(3)), atol=1e-7)


def test_cuda_keeps_device(tiny_model, tiny_images):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine")
    model = tiny_model.cuda()
    maps = attribmap.explain(model, tiny_images.cuda(), "dgl", "features")
    assert maps.device.type == "cuda"
