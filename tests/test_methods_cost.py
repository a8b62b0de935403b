"""Every registered method declares its cost, and the declaration matches what it runs.

The head of a tiny model counts its calls: the shared forward pass calls it once, so a
method declared ``"shared"`` must add no call at all and one declared ``"extra"`` must add
at least one (Score-CAM's masked inputs, FullGrad's graph from the input, ...).
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

import attribmap
from attribmap.methods import get_method, lookup, registered_names
from attribmap.methods.base import COSTS, EXTRA_PASSES, SHARED_PASS, Method
from tests.conftest import TinyGapNet


class TinyFcnNet(nn.Module):
    """conv -> ReLU -> 1x1 conv class maps -> GAP: a fully convolutional head, as I2C models have."""

    def __init__(self, num_classes: int = 5, width: int = 8):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(inplace=True))
        self.classifier = nn.Conv2d(width, num_classes, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return torch.flatten(self.pool(self.classifier(self.features(x))), 1)


def _head_calls(model: nn.Module, head: nn.Module, method: str, images: torch.Tensor, layer: str = "features") -> int:
    calls = []
    handle = head.register_forward_hook(lambda module, inputs, output: calls.append(1))
    try:
        attribmap.Explainer(model, layer).explain(images, method, target=[1, 2], raw=True)
    finally:
        handle.remove()
    return len(calls)


def _posthoc_names():
    return [name for name in registered_names() if isinstance(lookup(name).extractor, Method)]


@pytest.mark.parametrize("name", _posthoc_names())
def test_a_method_runs_as_many_forward_passes_as_it_declares(name):
    torch.manual_seed(0)
    images = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    method = get_method(name)
    assert method.cost in COSTS
    if name == "i2c":  # reads the class maps of a fully convolutional head
        model = TinyFcnNet().eval()
        head, layer = model.classifier, "classifier"
    else:
        model = TinyGapNet().eval()
        head, layer = model.fc, "features.3"
    extra = _head_calls(model, head, name, images, layer) - 1
    if method.cost == SHARED_PASS:
        assert extra == 0, f"{name} is declared shared but ran {extra} more forward passes"
    else:
        assert extra >= 1, f"{name} is declared extra but ran no forward pass of its own"


def test_extractors_that_run_on_their_own_cost_extra_passes():
    assert get_method("captum:Saliency").cost == EXTRA_PASSES
    model = TinyGapNet().eval()
    images = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    assert _head_calls(model, model.fc, "captum:Saliency", images) >= 1


def test_a_bad_cost_is_refused():
    with pytest.raises(attribmap.MethodError, match="cost of method 'x' must be one of"):
        attribmap.register_method("x", lambda capture, layer: None, cost="cheap")
    assert "x" not in registered_names()
