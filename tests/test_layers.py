"""Layer resolution: dotted names, modules, the automatic choice and helpful errors."""
from __future__ import annotations

import pytest
import torch
import torchvision

import attribmap
from attribmap.layers import resolve_layer


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
