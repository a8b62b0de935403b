"""Guided Backprop / Deconvolution / GuidedGradCam on ReLU6 networks (captum hooks ``nn.ReLU`` only).

attribmap gives captum's guided rule to ``nn.Hardtanh`` / ``nn.ReLU6`` modules for the duration of
the call. Checked against a hand-computed rule on a two-unit network, on a random-weight
efficientnet_lite0 (every activation a ReLU6: guided must differ from the plain gradient), and
for cleanup (no hook left on any module, also after an error).
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from attribmap.methods.captum_methods import CaptumMethod
from attribmap.models import build_model

pytest.importorskip("captum")


class _TwoUnits(nn.Module):
    """x (N, 1, 1, W) -> h = (2x, -x) -> ReLU6 -> y = h1 - 3 h2 -> logit = sum over pixels, shape (N, 1)."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 1, bias=False)
        self.act = nn.ReLU6(inplace=inplace)
        self.conv2 = nn.Conv2d(2, 1, 1, bias=False)
        with torch.no_grad():
            self.conv1.weight.copy_(torch.tensor([2.0, -1.0]).view(2, 1, 1, 1))
            self.conv2.weight.copy_(torch.tensor([1.0, -3.0]).view(1, 2, 1, 1))

    def forward(self, x):
        return self.conv2(self.act(self.conv1(x))).sum(dim=(1, 2, 3)).unsqueeze(1)


# pixels x = 1, -1, 4, 0.5: pre-activations (2x, -x) = (2, -1), (-2, 1), (8, -4), (1, -0.5)
X = torch.tensor([1.0, -1.0, 4.0, 0.5]).view(1, 1, 1, 4)
# plain gradient: sum_k w_k c_k 1[0 < h_k < 6] = 2, (-1)(-3) = 3, 0 (both clamped), 2
SALIENCY = torch.tensor([2.0, 3.0, 0.0, 2.0])
# guided: sum_k w_k relu(c_k 1[0 < h_k < 6]) = 2, 0 (the negative signal stops), 0, 2
GUIDED = torch.tensor([2.0, 0.0, 0.0, 2.0])
# deconvolution: sum_k w_k relu(c_k), the forward mask ignored = 2 everywhere
DECONV = torch.tensor([2.0, 2.0, 2.0, 2.0])


def _hooks(model: nn.Module) -> int:
    return sum(len(m._backward_hooks) + len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("name, expected", [("Saliency", SALIENCY), ("GuidedBackprop", GUIDED),
                                            ("Deconvolution", DECONV)])
def test_hand_computed_rule_on_relu6(name, expected, inplace):
    model = _TwoUnits(inplace=inplace).eval()
    attr = CaptumMethod(name)(X, model, torch.tensor([0]))
    assert attr.shape == (1, 1, 4)
    assert torch.allclose(attr.flatten(), expected, atol=1e-6), attr
    assert _hooks(model) == 0 and model.act.inplace is inplace


def test_guided_differs_from_saliency_on_efficientnet_lite0():
    torch.manual_seed(0)
    model = build_model("efficientnet_lite0", num_classes=10).eval()
    x = torch.rand(2, 3, 64, 64)
    target = torch.tensor([1, 7])
    saliency = CaptumMethod("Saliency")(x, model, target)
    guided = CaptumMethod("GuidedBackprop")(x, model, target)
    # relative difference far above any rounding: the ReLU6 rule changes the gradient everywhere
    assert (guided - saliency).abs().max() > 0.1 * saliency.abs().max()
    layer = dict(model.named_modules())["_head_act"]
    guided_gradcam = CaptumMethod("GuidedGradCam")(x, model, target, layer=layer)
    assert guided_gradcam.shape == (2, 64, 64) and torch.isfinite(guided_gradcam).all()
    assert _hooks(model) == 0


def test_hooks_removed_after_an_error():
    model = _TwoUnits().eval()
    with pytest.raises(Exception):
        CaptumMethod("GuidedBackprop")(X, model, torch.tensor([5]))  # one logit: target 5 does not exist
    assert _hooks(model) == 0
    # the next call is unaffected
    assert torch.allclose(CaptumMethod("Saliency")(X, model, torch.tensor([0])).flatten(), SALIENCY, atol=1e-6)
