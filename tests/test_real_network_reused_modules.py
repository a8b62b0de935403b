"""Modules called more than once per forward: every method reads the call the tap reads (the last).

``Shared`` applies one ReLU module twice, at two resolutions (as torchvision's BasicBlock
and the EfficientNet-PyTorch models do); ``Separate`` is the same network with two ReLU
modules. Tapping the shared module must give exactly what tapping the second ReLU of
``Separate`` gives, for every registered method that taps a layer.
"""
from __future__ import annotations

import contextlib
import io

import pytest
import torch
from torch import nn

import attribmap
from attribmap.errors import LayerError
from attribmap.methods.fullgrad import FULL_GRADIENTS
from attribmap.tap import Tap
from tests.conftest import assert_same_state, model_state

#: methods that tap no layer of an arbitrary classifier (need an I2C head or a checkpoint)
NOT_LAYER_METHODS = {"i2c", "weightmap"}
#: methods whose maps come from the input, not the layer (checked to run, not for equality)
INPUT_METHODS = {"captum:Saliency", "captum:InputXGradient", "captum:IntegratedGradients", "captum:GuidedBackprop",
                 "captum:Deconvolution"}
#: options that keep the slow ones small (same options on both models)
OPTIONS = {"sscam": {"n_samples": 2}, "iscam": {"n_samples": 2}, "smoothgradcampp": {"n_samples": 2},
           "refinecam": {"layers": "conv2"}}


class Shared(nn.Module):
    """conv (stride 2) -> relu -> conv (stride 2) -> relu (the same module) -> GAP -> fc."""

    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.fc = nn.Linear(8, classes)  # registered before the activation, as in EfficientNet-PyTorch
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv1(x))          # (N, 8, 8, 8) at a 16 px input
        x = self.relu(self.conv2(x) + 0.25)   # (N, 8, 4, 4): the call the tap reads
        return self.fc(self.pool(x).flatten(1))


class Separate(Shared):
    """:class:`Shared` with its own module for the first activation (``relu_first``)."""

    def __init__(self, classes: int = 5) -> None:
        super().__init__(classes)
        self.relu_first = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu_first(self.conv1(x))
        x = self.relu(self.conv2(x) + 0.25)
        return self.fc(self.pool(x).flatten(1))


@pytest.fixture(scope="module")
def twins():
    torch.manual_seed(0)
    shared = Shared().eval()
    separate = Separate().eval()
    separate.load_state_dict(shared.state_dict())
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    return shared, separate, x


def _layer_methods():
    return [m for m in attribmap.methods() if m not in NOT_LAYER_METHODS]


def test_the_twins_compute_the_same_logits(twins):
    shared, separate, x = twins
    with torch.no_grad():
        assert torch.equal(shared(x), separate(x))


def test_tap_reads_the_last_call_and_counts_the_calls(twins):
    shared, separate, x = twins
    a = Tap(shared, {"relu": shared.relu}).run(x)
    b = Tap(separate, {"relu": separate.relu}).run(x)
    assert a.activations("relu").shape == (2, 8, 4, 4)
    assert torch.equal(a.activations("relu"), b.activations("relu"))
    assert torch.allclose(a.score_grad("relu"), b.score_grad("relu"), atol=1e-6)
    assert a.calls("relu") == 2 and b.calls("relu") == 1


@pytest.mark.parametrize("method", _layer_methods())
def test_every_method_acts_on_the_call_the_tap_reads(twins, method):
    shared, separate, x = twins
    before = model_state(shared)
    options = OPTIONS.get(method, {})
    with contextlib.redirect_stderr(io.StringIO()):
        got = attribmap.explain(shared, x, method, layer="relu", target=1, raw=True, **options)
        want = attribmap.explain(separate, x, method, layer="relu", target=1, raw=True, **options)
    assert_same_state(before, model_state(shared))
    assert torch.isfinite(got).all()
    if method in INPUT_METHODS:
        assert got.shape == want.shape
    else:
        assert got.shape[-2:] in {(4, 4), (8, 8), (16, 16)}
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-5 * float(want.abs().max().clamp_min(1))), method


def test_ablation_replaces_only_the_read_call_in_full_forward_passes(twins):
    shared, separate, x = twins
    got = attribmap.explain(shared, x, "ablationcam", layer="relu", target=1, raw=True, forward="full")
    want = attribmap.explain(separate, x, "ablationcam", layer="relu", target=1, raw=True, forward="full")
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-6)


def test_refinecam_automatic_layers_are_spatial_only(twins):
    shared, _, x = twins
    # relu's earlier siblings, nearest first: conv2 (spatial), fc (a Linear: never chosen)
    from attribmap.methods.refinecam import refinecam_layers

    assert refinecam_layers(shared, "relu", {}) == ["conv2"]
    assert refinecam_layers(shared, "conv2", {}) == ["conv1"]  # fc, between them, is skipped
    maps = attribmap.explain(shared, x, "refinecam", layer="relu", raw=True)
    assert maps.shape == (2, 4, 4)


def test_refinecam_without_a_spatial_sibling_is_one_line(twins):
    shared, _, x = twins
    with pytest.raises(LayerError) as err:
        attribmap.explain(shared, x, "refinecam", layer="conv1")
    assert "\n" not in str(err.value) and "'conv1'" in str(err.value) and "layers=" in str(err.value)


def test_refinecam_given_a_non_spatial_layer_is_one_line(twins):
    shared, _, x = twins
    with pytest.raises(LayerError) as err:
        attribmap.explain(shared, x, "refinecam", layer="relu", layers="fc")
    assert "\n" not in str(err.value) and "'fc'" in str(err.value)


def test_reference_efficientnet_ablation_and_refinecam_run_at_the_head():
    """The reference EfficientNet-Lite0 applies one ``_swish`` at the stem (112 px) and the head."""
    lite = pytest.importorskip("efficientnet_lite_pytorch")
    torch.manual_seed(0)
    ref = lite.EfficientNet.from_name("efficientnet-lite0", num_classes=10).eval()
    x = torch.randn(1, 3, 64, 64)
    assert attribmap.Explainer(ref).layer_for("gradcam", x) == "_swish"
    for method in ("ablationcam", "refinecam"):
        maps = attribmap.explain(ref, x, method, raw=True, batch_size=512) if method == "ablationcam" \
            else attribmap.explain(ref, x, method, raw=True)
        assert maps.shape == (1, 2, 2) and torch.isfinite(maps).all()


class SharedConv(nn.Module):
    """One biased 3x3 conv applied twice (16 px, then 8 px), ReLU between -> GAP -> fc."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 3, padding=1)
        self.conv = nn.Conv2d(6, 6, 3, padding=1)
        self.down = nn.MaxPool2d(2)
        self.act = nn.ReLU()
        self.fc = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.conv(self.act(self.stem(x))))
        x = self.act(self.conv(self.down(x)))
        return self.fc(x.mean(dim=(2, 3)))


class SplitConv(SharedConv):
    """:class:`SharedConv` with a separate (equal) conv for the second call."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_again = nn.Conv2d(6, 6, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.conv(self.act(self.stem(x))))
        x = self.act(self.conv_again(self.down(x)))
        return self.fc(x.mean(dim=(2, 3)))


def test_fullgrad_adds_the_bias_of_every_call_of_a_reused_conv():
    torch.manual_seed(0)
    shared = SharedConv().eval()
    split = SplitConv().eval()
    state = shared.state_dict()
    state.update({f"conv_again.{k}": v for k, v in shared.conv.state_dict().items()})
    split.load_state_dict(state)
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    got = attribmap.explain(shared, x, "fullgrad", layer="act", target=0, raw=True)
    want = attribmap.explain(split, x, "fullgrad", layer="act", target=0, raw=True)
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-6)
    capture = Tap(shared, {"act": shared.act}).run(x, 0)
    names = [name for name, _ in capture.derive(FULL_GRADIENTS).bias_grads]
    assert names == ["stem", "conv#1", "conv#2"]
