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
