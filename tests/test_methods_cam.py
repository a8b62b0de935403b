"""CAM: the weighted sum of the GAP classifier, and its refusal elsewhere."""
from __future__ import annotations

import pytest
import torch

import attribmap


def test_cam_is_weighted_sum_and_psb_is_cam_over_hw(tiny_model, tiny_images):
    x = tiny_images
    target = torch.tensor([0, 2, 4])
    feats = tiny_model.features(x).detach()
    manual = torch.einsum("nc,nchw->nhw", tiny_model.fc.weight[target].detach(), feats)
    cam = attribmap.explain(tiny_model, x, method="cam", layer="features", target=target, raw=True)
    assert torch.allclose(cam, manual, atol=1e-6)
    psb = attribmap.explain(tiny_model, x, method="dgl-psb", layer="features", target=target, raw=True)
    h, w = feats.shape[-2:]
    assert torch.allclose(psb, manual / (h * w), atol=1e-6)


def test_cam_rejects_layer_not_feeding_gap_linear(tiny_model, tiny_images):
    with pytest.raises(attribmap.MethodError, match="global average pooling"):
        attribmap.explain(tiny_model, tiny_images, method="cam", layer="features.0")


def test_cam_follows_the_model_after_it_is_converted(tiny_model, tiny_images):
    # model.to(device) / .double() give the classifier new parameter data: CAM must read the
    # module's current weights, not a tensor remembered from an earlier call (on CUDA a
    # remembered CPU weight made CAM fail after model.to("cuda"))
    from attribmap.methods.cam import find_gap_classifier

    explainer = attribmap.Explainer(tiny_model, "features")
    before = explainer.explain(tiny_images, "cam", target=[0, 1, 2], raw=True)
    tiny_model.double()
    weight, bias = find_gap_classifier(explainer.capture(tiny_images.double()), "features")
    assert weight.dtype == torch.float64 and weight.data_ptr() == tiny_model.fc.weight.data_ptr()
    after = explainer.explain(tiny_images.double(), "cam", target=[0, 1, 2], raw=True)
    assert after.dtype == torch.float64 and torch.allclose(after.float(), before, atol=1e-5)
    with torch.no_grad():
        tiny_model.fc.weight.data = tiny_model.fc.weight.data * 2  # replaced, not updated in place
    doubled = explainer.explain(tiny_images.double(), "cam", target=[0, 1, 2], raw=True)
    assert torch.allclose(doubled, 2 * after, atol=1e-9)
