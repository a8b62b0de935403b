"""Ablation-CAM against pytorch-grad-cam, its network-tail path against full forward passes."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import attribmap
from attribmap.methods.network_tail import network_tail
from tests.conftest import TinyGapNet
from tests.reference.peers import max_minmax_diff, minmax, pgcam_layer_map, random_resnet18, recorded_activations
from tests.test_methods_scorecam import RowCounter

TOL = 1e-4


@pytest.fixture(scope="module")
def resnet():
    return random_resnet18()


@pytest.fixture(scope="module")
def x48():
    return torch.randn(2, 3, 48, 48, generator=torch.Generator().manual_seed(3))


def _paper_ablation(model, layer_module, x, target):
    """w_k = (z_c - z_c^(k)) / z_c with z^(k) a full forward whose layer output has channel k zeroed."""
    feats, z = recorded_activations(model, layer_module, x)
    maps = []
    for n in range(x.shape[0]):
        weights = []
        for k in range(feats.shape[1]):
            ablated = feats[n:n + 1].clone()
            ablated[:, k] = 0
            h = layer_module.register_forward_hook(lambda m, i, o, a=ablated: a)
            with torch.no_grad():
                zk = model(x[n:n + 1])[0, target[n]]
            h.remove()
            weights.append((z[n, target[n]] - zk) / z[n, target[n]])
        maps.append(torch.relu((torch.stack(weights)[:, None, None] * feats[n]).sum(dim=0)))
    return torch.stack(maps)


def test_ablationcam_is_the_papers_formula(tiny_model, tiny_images):
    target = [1, 1, 3]
    ours = attribmap.explain(tiny_model, tiny_images, method="ablationcam", layer="features", target=target, raw=True)
    assert torch.allclose(ours, _paper_ablation(tiny_model, tiny_model.features, tiny_images, target), atol=1e-5)


@pytest.mark.parametrize("case", ["tiny", "resnet18"])
def test_ablationcam_equals_pytorch_grad_cam(resnet, case):
    """On post-ReLU layers (pytorch-grad-cam zeroes the channel there, as the paper does)."""
    from pytorch_grad_cam import AblationCAM

    if case == "tiny":
        torch.manual_seed(0)
        model, layer = TinyGapNet(width=16).eval(), "features.1"
        x, target = torch.randn(3, 3, 24, 24, generator=torch.Generator().manual_seed(3)), [3, 1, 1]
    else:
        model, layer = resnet, "layer3"
        x, target = torch.randn(1, 3, 48, 48, generator=torch.Generator().manual_seed(3)), [5]
    ours = attribmap.explain(model, x, method="ablationcam", layer=layer, target=target, raw=True)
    theirs = pgcam_layer_map(AblationCAM, model, dict(model.named_modules())[layer], x, target, batch_size=256)
    inner = ((minmax(ours) > 0.02) & (minmax(ours) < 0.98)).flatten(1).sum(dim=1)
    assert bool((inner >= 1).all())
    assert max_minmax_diff(ours, theirs) < TOL


@pytest.mark.parametrize("layer", ["layer3", "layer3.1.conv1"])
def test_tail_and_full_forward_paths_agree(resnet, layer):
    """layer3.1.conv1 needs a side input: the block's residual branch, computed by the head."""
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    tail = attribmap.explain(resnet, x, method="ablationcam", layer=layer, target=[3], raw=True, forward="tail")
    full = attribmap.explain(resnet, x, method="ablationcam", layer=layer, target=[3], raw=True, forward="full")
    assert tail.shape == (1, 2, 2) and float(tail.abs().max()) > 0
    # the same numbers up to float rounding, which the differences z_c - z_c^(k) of nearly equal
    # logits magnify: compared like the peers, after min-max
    assert max_minmax_diff(tail, full) < TOL
    if layer == "layer3.1.conv1":
        assert network_tail(resnet, layer).head is not None


def test_tail_runs_only_the_network_after_the_layer(resnet, x48):
    counter = RowCounter(resnet.conv1)  # the first layer sees the tapped forward only
    try:
        attribmap.explain(resnet, x48, method="ablationcam", layer="layer4", target=[3, 5])
    finally:
        counter.remove()
    assert counter.rows == 2


class Untraceable(TinyGapNet):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def forward(self, x):
        feats = self.features(x)
        if feats.sum() > 0:
            feats = feats * 1.0
        return self.fc(torch.flatten(self.pool(feats), 1))


def test_untraceable_model_falls_back_to_full_forwards(tiny_images):
    torch.manual_seed(0)
    model = Untraceable().eval()
    assert network_tail(model, "features") is None
    auto = attribmap.explain(model, tiny_images, method="ablationcam", layer="features", target=[1, 2, 3], raw=True)
    assert torch.allclose(auto, _paper_ablation(model, model.features, tiny_images, [1, 2, 3]), atol=1e-5)
    with pytest.raises(attribmap.MethodError, match="forward='full'"):
        attribmap.explain(model, tiny_images, method="ablationcam", layer="features", forward="tail")


def test_tail_follows_a_replaced_module(tiny_images):
    torch.manual_seed(0)
    model = TinyGapNet().eval()
    first = network_tail(model, "features")
    model.fc = nn.Linear(16, 5)
    assert network_tail(model, "features") is not first
    ours = attribmap.explain(model, tiny_images, method="ablationcam", layer="features", target=[0, 1, 2], raw=True)
    assert torch.allclose(ours, _paper_ablation(model, model.features, tiny_images, [0, 1, 2]), atol=1e-5)


def test_dead_channels_are_not_ablated(tiny_model, tiny_images):
    with torch.no_grad():
        tiny_model.features[2].weight[:10].zero_()
        tiny_model.features[2].bias[:10] = -1.0
    counter = RowCounter(tiny_model.fc)
    try:
        ours = attribmap.explain(tiny_model, tiny_images, method="ablationcam", layer="features", target=[1, 1, 3],
                                 raw=True, batch_size=1000)
    finally:
        counter.remove()
    feats = attribmap.Explainer(tiny_model, "features").capture(tiny_images).activations()
    live = int((feats.flatten(2) != 0).any(dim=2).sum())
    assert live <= 3 * 6
    assert counter.rows == 3 + 3 + live  # tapped forward, the tail's check, the live channels
    assert torch.allclose(ours, _paper_ablation(tiny_model, tiny_model.features, tiny_images, [1, 1, 3]), atol=1e-5)


@pytest.mark.parametrize("options,match", [({"batch_size": 0}, "batch_size"), ({"forward": "half"}, "forward")])
def test_bad_options(tiny_model, tiny_images, options, match):
    with pytest.raises(attribmap.MethodError, match=match):
        attribmap.explain(tiny_model, tiny_images, method="ablationcam", layer="features", **options)
