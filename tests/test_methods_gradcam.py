"""The Grad-CAM family against captum, pytorch-grad-cam and torchcam, at layer resolution.

pytorch-grad-cam's Grad-CAM++ adds 1e-6 to its denominator 2 g^2 + (sum F) g^3; at the tiny
gradients of a randomly initialized network at small inputs (g^2 ~ 1e-6) that eps moves its
map by ~1e-3. The peer tests therefore scale the classifier by 100 (a different random model,
the same one for both sides), which makes the eps negligible without touching the formula.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision

import attribmap
from tests.reference.gradients import manual_grad
from tests.reference.peers import max_minmax_diff, minmax, pgcam_layer_map, random_resnet18, torchcam_map

TOL = 1e-4


@pytest.fixture(scope="module")
def resnet():
    return random_resnet18(classifier_scale=100)


@pytest.fixture(scope="module")
def batch():
    return torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(2)), [3, 7, 7]


def _not_degenerate(maps: torch.Tensor) -> None:
    """Peer equality means something only if the maps have more than a peak and zeros."""
    inner = ((minmax(maps) > 0.02) & (minmax(maps) < 0.98)).flatten(1).sum(dim=1)
    assert bool((inner >= 2).all()), minmax(maps)


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


def _paper_gradcampp(feats, g):
    """Chattopadhay et al. eq. 19: a = g^2 / (2 g^2 + (sum_ab F_ab) g^3), 0 where the denominator is 0."""
    denom = 2 * g ** 2 + feats.sum(dim=(2, 3), keepdim=True) * g ** 3
    a = torch.where(denom != 0, g ** 2 / torch.where(denom != 0, denom, torch.ones_like(denom)), torch.zeros_like(g))
    w = (a * torch.relu(g)).sum(dim=(2, 3))
    return torch.relu(torch.einsum("nc,nchw->nhw", w, feats))


def test_gradcampp_is_the_papers_eq19(tiny_model, tiny_images):
    # features.1 feeds a strided conv, so g varies over space (after GAP -> linear alone it
    # would not, and both denominators would agree)
    target = torch.tensor([1, 1, 3])
    feats, _, g = manual_grad(tiny_model, tiny_model.features[1], tiny_images,
                              lambda z: F.one_hot(target, z.shape[1]).float())
    ours = attribmap.explain(tiny_model, tiny_images, method="gradcampp", layer="features.1", target=target, raw=True)
    assert torch.allclose(ours, _paper_gradcampp(feats, g), atol=1e-6)
    # the torchcam-style denominator (sum over space of F g^3) is a different number
    wrong_denom = 2 * g ** 2 + (feats * g ** 3).sum(dim=(2, 3), keepdim=True)
    wrong_w = (g ** 2 / wrong_denom * torch.relu(g)).sum(dim=(2, 3))
    wrong = torch.relu(torch.einsum("nc,nchw->nhw", wrong_w, feats))
    assert max_minmax_diff(ours, wrong) > 1e-3


@pytest.mark.parametrize("layer", ["layer3", "layer4"])
def test_gradcampp_equals_pytorch_grad_cam(resnet, batch, layer):
    from pytorch_grad_cam import GradCAMPlusPlus

    x, target = batch
    ours = attribmap.explain(resnet, x, method="gradcampp", layer=layer, target=target, raw=True)
    theirs = pgcam_layer_map(GradCAMPlusPlus, resnet, dict(resnet.named_modules())[layer], x, target)
    assert ours.shape == theirs.shape
    _not_degenerate(ours)
    assert max_minmax_diff(ours, theirs) < TOL


PGCAM_PEERS = {"gradcam": "GradCAM", "hirescam": "HiResCAM", "gradcam-elementwise": "GradCAMElementWise",
               "xgradcam": "XGradCAM", "layercam": "LayerCAM"}


@pytest.mark.parametrize("name", sorted(PGCAM_PEERS))
def test_gradient_methods_equal_pytorch_grad_cam(resnet, batch, name):
    import pytorch_grad_cam

    x, target = batch
    ours = attribmap.explain(resnet, x, method=name, layer="layer3", target=target, raw=True)
    theirs = pgcam_layer_map(getattr(pytorch_grad_cam, PGCAM_PEERS[name]), resnet, resnet.layer3, x, target)
    _not_degenerate(ours)
    assert max_minmax_diff(ours, theirs) < TOL


@pytest.mark.parametrize("name,peer", [("gradcam", "GradCAM"), ("xgradcam", "XGradCAM"), ("layercam", "LayerCAM")])
def test_gradient_methods_equal_torchcam(resnet, batch, name, peer):
    import torchcam.methods

    x, target = batch
    ours = attribmap.explain(resnet, x, method=name, layer="layer3", target=target, raw=True)
    theirs = torchcam_map(getattr(torchcam.methods, peer), resnet, "layer3", x, target)
    assert max_minmax_diff(ours, theirs) < TOL


def test_torchcam_gradcampp_is_not_eq19(resnet, batch):
    """torchcam 0.5.0's GradCAMpp: it means to divide g^2 by 2 g^2 + sum_ij(F g^3) (a spatial sum of
    F g^3, not eq. 19's (sum F) g^3), but ``alpha[mask].div_(...)`` divides a copy, so its pixel
    weights stay g^2: w_k = sum_ij g^2 ReLU(g). Documented in docs/methods/gradcam.rst."""
    import torchcam.methods

    x, target = batch
    ours = attribmap.explain(resnet, x, method="gradcampp", layer="layer3", target=target, raw=True)
    theirs = torchcam_map(torchcam.methods.GradCAMpp, resnet, "layer3", x, target)
    feats, _, g = manual_grad(resnet, resnet.layer3, x, lambda z: F.one_hot(torch.tensor(target), z.shape[1]).float())
    what_torchcam_computes = torch.relu(torch.einsum("nc,nchw->nhw", (g ** 2 * torch.relu(g)).sum(dim=(2, 3)), feats))
    assert max_minmax_diff(theirs, what_torchcam_computes) < TOL
    assert max_minmax_diff(ours, _paper_gradcampp(feats, g)) < TOL
    assert max_minmax_diff(ours, theirs) > 1e-2


def test_xgradcam_dead_channel_weight_is_zero(tiny_model, tiny_images):
    """sum F = 0 for a dead channel: its weight is 0, not NaN."""
    with torch.no_grad():
        tiny_model.features[2].weight[0].zero_()
        tiny_model.features[2].bias[0] = -1.0
    maps = attribmap.explain(tiny_model, tiny_images, method="xgradcam", layer="features", raw=True)
    assert torch.isfinite(maps).all()
