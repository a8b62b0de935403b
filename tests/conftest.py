"""Shared fixtures: tiny models and deterministic inputs."""
from __future__ import annotations

import os

import pytest
import torch
from torch import nn

torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))


class TinyGapNet(nn.Module):
    """conv -> ReLU(inplace) -> conv -> ReLU(inplace) -> GAP -> Linear (a CAM-able head)."""

    def __init__(self, num_classes: int = 5, width: int = 8):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(inplace=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return TinyGapNet().eval()


@pytest.fixture
def tiny_images():
    g = torch.Generator().manual_seed(1)
    return torch.randn(3, 3, 16, 16, generator=g)


def model_state(model: nn.Module):
    """Everything explain() promises to leave unchanged."""
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
                + len(getattr(m, "_backward_pre_hooks", {})) for m in model.modules())
    return {
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "params": [p.detach().clone() for p in model.parameters()],
        "buffers": [b.detach().clone() for b in model.buffers()],
        "hooks": hooks,
        "inplace": [getattr(m, "inplace", None) for m in model.modules()],
    }


def assert_same_state(a, b):
    assert a["training"] == b["training"]
    assert a["requires_grad"] == b["requires_grad"]
    assert a["hooks"] == b["hooks"]
    assert a["inplace"] == b["inplace"]
    for x, y in zip(a["grads"], b["grads"]):
        assert (x is None and y is None) or torch.equal(x, y)
    for x, y in zip(a["params"] + a["buffers"], b["params"] + b["buffers"]):
        assert torch.equal(x, y)
