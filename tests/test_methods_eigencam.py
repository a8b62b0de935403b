"""Eigen-CAM, Eigen-Grad-CAM and KPCA-CAM against pytorch-grad-cam (up to the sign it leaves open)."""
from __future__ import annotations

import pytest
import torch
import torchvision

import attribmap
from tests.conftest import TinyGapNet
from tests.reference.peers import minmax, pgcam_layer_map

TOL = 1e-4


@pytest.fixture(scope="module")
def cases():
    torch.manual_seed(0)
    tiny = TinyGapNet().eval()
    resnet = torchvision.models.resnet18(weights=None).eval()
    return [(tiny, "features", torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))),
            (resnet, "layer3", torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2)))]


def _equal_up_to_sign(ours: torch.Tensor, theirs: torch.Tensor) -> bool:
    """pytorch-grad-cam keeps the sign its SVD / scikit-learn returns; we fix it. Per image."""
    for a, b in zip(ours, theirs):
        same = (minmax(a[None]) - minmax(b[None])).abs().max()
        flipped = (minmax(a[None]) - minmax(-b[None])).abs().max()
        if min(float(same), float(flipped)) >= TOL:
            return False
    return True


@pytest.mark.parametrize("name,peer,options", [("eigencam", "EigenCAM", {}), ("eigengradcam", "EigenGradCAM", {}),
                                               ("kpcacam", "KPCA_CAM", {}), ("kpcacam", "KPCA_CAM", {"kernel": "rbf"}),
                                               ("kpcacam", "KPCA_CAM", {"kernel": "poly", "gamma": 0.01})])
def test_equal_pytorch_grad_cam_up_to_sign(cases, name, peer, options):
    import pytorch_grad_cam

    for model, layer, x in cases:
        target = [1] * x.shape[0]
        ours = attribmap.explain(model, x, method=name, layer=layer, target=target, raw=True, **options)
        theirs = pgcam_layer_map(getattr(pytorch_grad_cam, peer), model, dict(model.named_modules())[layer], x,
                                 target, relu=False, **options)
        assert _equal_up_to_sign(ours, theirs), (name, layer, options)


@pytest.mark.parametrize("name", ["eigencam", "eigengradcam", "kpcacam"])
def test_sign_correlates_with_the_activation_sum(cases, name):
    model, layer, x = cases[1]
    ours = attribmap.explain(model, x, method=name, layer=layer, target=[1, 2], raw=True)
    reference = attribmap.Explainer(model, layer).capture(x).activations().sum(dim=1)
    for a, r in zip(ours.flatten(1), reference.flatten(1)):
        assert float(((a - a.mean()) * (r - r.mean())).sum()) >= 0


def test_eigencam_is_the_first_principal_component(tiny_model, tiny_images):
    feats = attribmap.Explainer(tiny_model, "features").capture(tiny_images).activations().double()
    ours = attribmap.explain(tiny_model, tiny_images, method="eigencam", layer="features", raw=True)
    for n in range(feats.shape[0]):
        pts = feats[n].flatten(1).T
        pts = pts - pts.mean(dim=0)
        _, vecs = torch.linalg.eigh(pts.T @ pts)  # covariance eigenvectors
        projection = (pts @ vecs[:, -1]).view(feats.shape[2:])
        assert min(float((ours[n] - projection).abs().max()), float((ours[n] + projection).abs().max())) < 1e-4


def test_kpcacam_bad_kernel(tiny_model, tiny_images):
    with pytest.raises(attribmap.MethodError, match="kernel"):
        attribmap.explain(tiny_model, tiny_images, method="kpcacam", layer="features", kernel="laplace")
    with pytest.raises(attribmap.MethodError, match="gamma"):
        attribmap.explain(tiny_model, tiny_images, method="kpcacam", layer="features", gamma=-1.0)
