"""Methods that run extra forward passes in channels-last layout fall back for models that refuse it."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import attribmap
from attribmap.methods.perturbation import in_fast_layout


class FlattenNet(nn.Module):
    """Two convolutions and a linear layer on the flattened activations (``view`` or ``reshape``)."""

    def __init__(self, use_view: bool):
        super().__init__()
        self.use_view = use_view
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                                      nn.Conv2d(6, 6, 3, stride=2, padding=1), nn.ReLU())
        self.fc = nn.Linear(6 * 8 * 8, 4)

    def forward(self, x):
        h = self.features(x)
        # a view of channels-last activations fails: "view size is not compatible with input tensor's size and stride"
        flat = h.view(h.size(0), -1) if self.use_view else h.reshape(h.size(0), -1)
        return self.fc(flat)


def _twins():
    torch.manual_seed(0)
    viewing = FlattenNet(use_view=True)
    bn = viewing.features[1]
    bn.running_mean.uniform_(-0.5, 0.5)
    bn.running_var.uniform_(0.5, 1.5)
    reshaping = FlattenNet(use_view=False)
    reshaping.load_state_dict(viewing.state_dict())
    return viewing.eval(), reshaping.eval()


METHODS = ["scorecam", "sscam:n_samples=2", "iscam:n_samples=2", "scorecam:fold_batchnorm=False",
           "ablationcam", "ablationcam:forward='full'", "ablationcam:forward='tail'", "smoothgradcampp:n_samples=2"]


@pytest.mark.parametrize("method", METHODS)
def test_a_model_that_views_its_activations_gets_the_maps_of_its_reshaping_twin(method):
    viewing, reshaping = _twins()
    x = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    got = attribmap.explain(viewing, x, method=method, layer="features", target=[0, 2, 3], raw=True)
    want = attribmap.explain(reshaping, x, method=method, layer="features", target=[0, 2, 3], raw=True)
    assert want.abs().max() > 0
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-5 * float(want.abs().max()))


def test_the_layout_is_tried_once_per_owner_and_real_errors_surface():
    class Owner:
        pass

    calls = []

    def refuses_channels_last(x):
        calls.append(x.is_contiguous())
        if not x.is_contiguous():
            raise RuntimeError("view size is not compatible")
        return x.sum()

    owner = Owner()
    x = torch.randn(2, 3, 4, 4)
    assert in_fast_layout(owner, refuses_channels_last, x) == x.sum()
    assert in_fast_layout(owner, refuses_channels_last, x) == x.sum()
    assert calls == [False, True, True]  # tried once, then contiguous only

    def always_fails(x):
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        in_fast_layout(Owner(), always_fails, x)

    accepting = Owner()
    seen = []
    in_fast_layout(accepting, lambda t: seen.append(t.is_contiguous(memory_format=torch.channels_last)), x)
    in_fast_layout(accepting, lambda t: seen.append(t.is_contiguous(memory_format=torch.channels_last)), x)
    assert seen == [True, True]
