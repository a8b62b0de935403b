"""FEM against pytorch-grad-cam and its k-sigma definition."""
from __future__ import annotations

import pytest
import torch
import torchvision

import attribmap
from tests.reference.peers import max_minmax_diff, pgcam_layer_map

TOL = 1e-4


def test_equals_pytorch_grad_cam():
    from pytorch_grad_cam import FEM

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    for k in (2, 1):
        ours = attribmap.explain(model, x, method="fem", layer="layer3", raw=True, k=k)
        theirs = pgcam_layer_map(FEM, model, model.layer3, x, [0, 0], relu=False, k=k)
        assert max_minmax_diff(ours, theirs) < TOL


def test_k_sigma_weights(tiny_model, tiny_images):
    feats = attribmap.Explainer(tiny_model, "features").capture(tiny_images).activations()
    flat = feats.flatten(2)
    mu, sd = flat.mean(dim=2), flat.std(dim=2, unbiased=False)
    weights = (flat > (mu + 2 * sd)[..., None]).float().mean(dim=2)
    expected = (weights[:, :, None, None] * feats).sum(dim=1)
    ours = attribmap.explain(tiny_model, tiny_images, method="fem", layer="features", raw=True)
    assert torch.allclose(ours, expected, atol=1e-6)
    assert bool((weights > 0).any())


def test_bad_k(tiny_model, tiny_images):
    with pytest.raises(attribmap.MethodError, match="k must"):
        attribmap.explain(tiny_model, tiny_images, method="fem", layer="features", k="two")
