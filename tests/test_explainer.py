"""The explain / explain_many contract: shapes, ranges, shared passes, scales and closing."""
from __future__ import annotations

import pytest
import torch

import attribmap
from tests.conftest import TinyGapNet


def test_output_shape_range_and_raw(tiny_model, tiny_images):
    maps = attribmap.explain(tiny_model, tiny_images, "gradcam", "features")
    assert maps.shape == (3, 16, 16) and maps.min() >= 0 and maps.max() <= 1
    raw = attribmap.explain(tiny_model, tiny_images, "gradcam", "features", raw=True)
    assert raw.shape == (3, 8, 8)
    single = attribmap.explain(tiny_model, tiny_images[0], "gradcam", "features")
    assert single.shape == (1, 16, 16)


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


def test_training_mode_is_kept_and_warned(tiny_images):
    model = TinyGapNet().train()
    with pytest.warns(UserWarning, match="training mode"):
        attribmap.explain(model, tiny_images, method="gradcam", layer="features")
    assert model.training and all(m.training for m in model.modules())


def test_cuda_keeps_device(tiny_model, tiny_images):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine")
    model = tiny_model.cuda()
    maps = attribmap.explain(model, tiny_images.cuda(), "dgl", "features")
    assert maps.device.type == "cuda"


def test_specs_override_the_layer_and_carry_options(tiny_model, tiny_images):
    ex = attribmap.Explainer(tiny_model, "features")
    got = ex.explain_many(tiny_images, ["gradcam", "gradcam@features.2", "dgl-cem:alpha=1.0"], raw=True)
    assert torch.equal(got["gradcam"], attribmap.explain(tiny_model, tiny_images, "gradcam", "features", raw=True))
    assert torch.equal(got["gradcam@features.2"],
                       attribmap.explain(tiny_model, tiny_images, "gradcam", "features.2", raw=True))
    assert torch.allclose(got["dgl-cem:alpha=1.0"],
                          attribmap.explain(tiny_model, tiny_images, "dgl-cem", "features", raw=True, alpha=1.0))
    assert ex.layer_for("gradcam@features.2", tiny_images) == "features.2"
    assert attribmap.Explainer(tiny_model).layer_for("gradcam", tiny_images) == "features"
    with pytest.raises(attribmap.MethodError, match="names a checkpoint"):
        ex.explain_many(tiny_images, ["i2c=some.pt"])
    with pytest.raises(attribmap.MethodError, match="pass close to explain"):
        ex.explain_many(tiny_images, ["gradcam:close=2"])


def test_two_layers_of_one_call_share_one_forward(tiny_model, tiny_images):
    calls = []
    handle = tiny_model.fc.register_forward_hook(lambda *a: calls.append(1))
    try:
        attribmap.Explainer(tiny_model, "features").explain_many(tiny_images, ["cam", "dgl@features.2", "gradcam"])
    finally:
        handle.remove()
    assert len(calls) == 1


def test_layers_used_reports_the_automatic_choice(tiny_model, tiny_images):
    ex = attribmap.Explainer(tiny_model)
    ex.explain_many(tiny_images, ["gradcam", "dgl@features.2", "captum:LayerGradCam"])
    assert ex.layers_used == {"gradcam": "features", "dgl@features.2": "features.2", "captum:LayerGradCam": "features"}
    ex.explain(tiny_images, "captum:Saliency")
    assert ex.layers_used == {}  # the latest call tapped no layer
