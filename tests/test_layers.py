"""Layer resolution: dotted names, modules, the automatic choice and helpful errors."""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import attribmap
from attribmap.layers import resolve_layer
from tests.conftest import TinyGapNet


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
    with pytest.raises(attribmap.LayerError, match=r"outputs \(1, 1000\); expected a 4-D map"):
        attribmap.explain(resnet18, torch.randn(1, 3, 32, 32), layer="fc")


def test_squeeze_excitation_pooling_no_longer_stops_the_choice():
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v3_small(weights=None).eval()
    x = torch.randn(1, 3, 64, 64)
    assert resolve_layer(model, None, example=x)[0] == "features"  # was features.1.block.0


class _NeedsData(nn.Module):
    """A forward that reads a value (fails on the meta device): the automatic choice falls back."""

    def __init__(self):
        super().__init__()
        self.net = TinyGapNet()

    def forward(self, x):
        if float(x.abs().sum()) < 0:  # data-dependent control flow
            x = -x
        return self.net(x)


def _batchnorm_steps(model):
    return [int(m.num_batches_tracked) for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


def test_train_mode_chooses_the_layer_without_an_extra_forward():
    """inception_v3 in train mode used to fail in the one-image probe, and every call updated
    batch-norm statistics twice."""
    torch.manual_seed(0)
    model = torchvision.models.inception_v3(weights=None, init_weights=False).train()  # with its aux head
    x = torch.randn(2, 3, 299, 299)
    forwards = []
    handle = model.fc.register_forward_hook(lambda *a: forwards.append(1))
    try:
        with pytest.warns(UserWarning, match="training mode"):
            ex = attribmap.Explainer(model)
            maps = ex.explain(x, "gradcam", target=[1, 2])
    finally:
        handle.remove()
    assert maps.shape == (2, 299, 299) and ex.layers_used == {"gradcam": "Mixed_7c"}
    assert forwards == [1] and set(_batchnorm_steps(model)) == {1}  # one forward, statistics updated once
    assert model.training


def test_train_mode_resnet_updates_batchnorm_once_per_call(resnet18):
    model = torchvision.models.resnet18(weights=None).train()
    x = torch.randn(2, 3, 64, 64)
    with pytest.warns(UserWarning, match="training mode"):
        for call in range(1, 3):
            attribmap.explain(model, x, "gradcam", target=[0, 1])
            assert set(_batchnorm_steps(model)) == {call}


def test_fallback_when_the_forward_cannot_run_on_meta(tiny_images):
    model = _NeedsData().eval()
    assert resolve_layer(model, None, example=tiny_images)[0] == "net.features"  # watched on image 0, eval mode
    assert sum(len(m._forward_hooks) for m in model.modules()) == 0
    model.train()
    with pytest.warns(UserWarning, match="training mode"), \
            pytest.raises(attribmap.LayerError, match="training mode.*pass layer="):
        attribmap.explain(model, tiny_images, "gradcam")


def test_meta_shadow_leaves_the_model_alone(tiny_model):
    from attribmap.layers import meta_shadow

    seen = []
    handle = tiny_model.features.register_forward_hook(lambda *a: seen.append(1))
    try:
        shadow = meta_shadow(tiny_model)
        shadow(torch.empty(2, 3, 16, 16, device="meta"))
    finally:
        handle.remove()
    assert seen == []  # the shadow carries no hooks of the model
    assert all(p.device.type == "meta" for p in shadow.parameters())
    assert all(p.device.type == "cpu" for p in tiny_model.parameters())
    assert shadow.fc.weight is not tiny_model.fc.weight
