"""Smooth Grad-CAM++: the paper's formula on seeded noise, and torchcam's noise and derivatives."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import attribmap
from attribmap.methods.smoothgradcampp import smoothed_derivatives
from tests.conftest import TinyGapNet
from tests.reference.gradients import manual_grad
from tests.reference.peers import max_minmax_diff, torchcam_map

TOL = 1e-4


@pytest.fixture
def setup():
    torch.manual_seed(0)
    model = TinyGapNet().eval()
    with torch.no_grad():
        model.fc.weight.mul_(100)  # torchcam's eps (1e-8) becomes negligible against g^2
    x = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    return model, x, [3, 1, 1]


def _noisy_copies(x, n_samples, sigma, seed):
    gen = torch.Generator().manual_seed(seed)
    return [x + sigma * torch.randn(x.shape, generator=gen) for _ in range(n_samples)]


def test_is_grad_campp_on_averaged_derivatives(setup):
    model, x, target = setup
    onehot = lambda z: F.one_hot(torch.tensor(target), z.shape[1]).float()  # noqa: E731
    layer = model.features[1]  # spatially varying gradients
    feats = manual_grad(model, layer, x, onehot)[0]
    gs = [manual_grad(model, layer, noisy, onehot)[2] for noisy in _noisy_copies(x, 3, 0.3, 7)]
    d1, d2, d3 = (torch.stack([g ** p for g in gs]).mean(dim=0) for p in (1, 2, 3))
    denom = 2 * d2 + feats.sum(dim=(2, 3), keepdim=True) * d3
    a = torch.where(denom != 0, d2 / torch.where(denom != 0, denom, torch.ones_like(denom)), torch.zeros_like(d2))
    expected = torch.relu(torch.einsum("nc,nchw->nhw", (a * torch.relu(d1)).sum(dim=(2, 3)), feats))
    ours = attribmap.explain(model, x, method="smoothgradcampp", layer="features.1", target=target, raw=True,
                             n_samples=3, sigma=0.3, seed=7)
    assert max_minmax_diff(ours, expected) < TOL


def test_noise_and_derivatives_equal_torchcams(setup):
    """torchcam departs from the paper three ways (docs/methods/gradcam.rst); rebuilt from our noise and
    derivatives with those three choices, its map is reproduced: the inputs are the same."""
    import torchcam.methods

    model, x, target = setup
    capture = attribmap.Explainer(model, "features.1").capture(x, target=target)
    d1, d2, d3 = smoothed_derivatives(capture, "features.1", n_samples=1, sigma=0.3, seed=11)
    last_noisy = capture.retap(_noisy_copies(x, 1, 0.3, 11)[0]).activations("features.1")
    feats = capture.activations("features.1")
    alpha = d2 / (2 * d2 + (d3 * feats).sum(dim=(2, 3), keepdim=True) + 1e-8)  # (1) sum of F D3
    weights = (alpha * torch.relu(d1)).sum(dim=(2, 3))  # (2) ReLU of the last sample's gradient (n = 1: D1)
    rebuilt = torch.relu(torch.einsum("nc,nchw->nhw", weights, last_noisy))  # (3) the last noisy activations
    torch.manual_seed(11)
    theirs = torchcam_map(torchcam.methods.SmoothGradCAMpp, model, "features.1", x, target, num_samples=1, std=0.3)
    assert max_minmax_diff(rebuilt, theirs) < TOL
    ours = attribmap.explain(model, x, method="smoothgradcampp", layer="features.1", target=target, raw=True,
                             n_samples=1, sigma=0.3, seed=11)
    assert max_minmax_diff(ours, theirs) > 1e-2


def test_seeded_reproducible_and_batch_invariant(setup):
    model, x, target = setup
    run = lambda **kw: attribmap.explain(model, x, method="smoothgradcampp", layer="features.1",  # noqa: E731
                                         target=target, raw=True, n_samples=4, **kw)
    a = run(seed=3, batch_size=5)
    assert torch.allclose(a, run(seed=3, batch_size=12), atol=1e-6)
    assert torch.equal(a, run(seed=3, batch_size=5))
    assert max_minmax_diff(a, run(seed=4, batch_size=5)) > 1e-4
    assert torch.equal(run(generator=torch.Generator().manual_seed(3)), run(seed=3))


def test_zero_noise_is_grad_campp(setup):
    model, x, target = setup
    smooth = attribmap.explain(model, x, method="smoothgradcampp", layer="features.1", target=target, raw=True,
                               sigma=0.0)
    plain = attribmap.explain(model, x, method="gradcampp", layer="features.1", target=target, raw=True)
    assert torch.allclose(smooth, plain, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("options,match", [({"n_samples": 0}, "n_samples"), ({"sigma": float("nan")}, "sigma"),
                                           ({"generator": 3}, "generator")])
def test_bad_options(setup, options, match):
    model, x, target = setup
    with pytest.raises(attribmap.MethodError, match=match):
        attribmap.explain(model, x, method="smoothgradcampp", layer="features", **options)
