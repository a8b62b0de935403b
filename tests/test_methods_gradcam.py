"""Grad-CAM against captum's LayerGradCam, Grad-CAM++ against its closed form."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision

import attribmap
from tests.reference.gradients import manual_grad


@pytest.mark.parametrize("arch,layer", [("resnet18", "layer4"), ("vgg11", "features.18"), ("vgg11", "features.19")])
def test_gradcam_equals_captum_layergradcam(arch, layer):
    from captum.attr import LayerGradCam

    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(weights=None).eval()
    x = torch.randn(2, 3, 64, 64)
    target = [3, 7]
    ours = attribmap.explain(model, x, method="gradcam", layer=layer, target=target, raw=True)
    module = dict(model.named_modules())[layer]
    theirs = LayerGradCam(model, module).attribute(x.clone(), target=target, relu_attributions=True)
    assert ours.shape == theirs[:, 0].shape
    assert torch.allclose(ours, theirs[:, 0], atol=1e-5, rtol=0), (ours - theirs[:, 0]).abs().max()
    assert ours.abs().max() > 0  # not trivially zero


def test_gradcampp_closed_form(tiny_model, tiny_images):
    target = torch.tensor([1, 1, 3])
    layer = tiny_model.features
    feats, _, g = manual_grad(tiny_model, layer, tiny_images,
                               lambda z: F.one_hot(target, z.shape[1]).float())
    denom = 2 * g ** 2 + (feats * g ** 3).sum(dim=(2, 3), keepdim=True)
    a = torch.where(denom != 0, g ** 2 / torch.where(denom != 0, denom, torch.ones_like(denom)), torch.zeros_like(g))
    w = (a * torch.relu(g)).sum(dim=(2, 3))
    manual = torch.relu(torch.einsum("nc,nchw->nhw", w, feats))
    ours = attribmap.explain(tiny_model, tiny_images, method="gradcampp", layer="features", target=target, raw=True)
    assert torch.allclose(ours, manual, atol=1e-6)
