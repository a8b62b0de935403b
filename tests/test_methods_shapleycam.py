"""ShapleyCAM: the Hessian-vector term of the capture, against pytorch-grad-cam's ShapleyCAM."""
from __future__ import annotations

import pytest
import torch

import attribmap
from attribmap.methods.shapleycam import ScoreHessian
from tests.reference.peers import max_minmax_diff, random_resnet18, pgcam_layer_map

TOL = 1e-4


@pytest.fixture(scope="module")
def setup():
    model = random_resnet18()
    return model, torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2)), [3, 7]


@pytest.mark.parametrize("score,target_class", [("logit", "ClassifierOutputTarget"), ("rest", "ClassifierOutputReST")])
def test_equals_pytorch_grad_cam(setup, score, target_class):
    from pytorch_grad_cam import ShapleyCAM
    from pytorch_grad_cam.utils import model_targets

    model, x, target = setup
    ours = attribmap.explain(model, x, method="shapleycam", layer="layer3", target=target, raw=True, score=score)
    theirs = pgcam_layer_map(ShapleyCAM, model, model.layer3, x, target,
                             target_class=getattr(model_targets, target_class))
    assert max_minmax_diff(ours, theirs) < TOL


def test_hvp_is_a_double_backward(setup):
    """H F = d/dF <ds/dF, F> with F fixed; for ReST it is not zero (softmax curvature)."""
    model, x, target = setup
    capture = attribmap.Explainer(model, "layer3").capture(x, target=target)
    grad, hvp = capture.derive(ScoreHessian("rest"), "layer3")
    feats = capture.activations("layer3").clone().requires_grad_(True)
    z = model.fc(torch.flatten(model.avgpool(model.layer4(feats)), 1))
    s = z[[0, 1], target] + torch.log_softmax(z, dim=1)[[0, 1], target]
    (g,) = torch.autograd.grad(s.sum(), feats, create_graph=True)
    (hv,) = torch.autograd.grad((g * feats.detach()).sum(), feats)
    assert torch.allclose(grad, g.detach(), atol=1e-6)
    assert torch.allclose(hvp, hv, atol=1e-6) and float(hvp.abs().max()) > 0
    assert capture.derive(ScoreHessian("rest"), "layer3")[1] is hvp  # cached


def test_linear_head_makes_it_grad_cam(tiny_model, tiny_images):
    ours = attribmap.explain(tiny_model, tiny_images, method="shapleycam", layer="features", raw=True)
    plain = attribmap.explain(tiny_model, tiny_images, method="gradcam", layer="features", raw=True)
    assert torch.allclose(ours, plain, atol=1e-6)


def test_bad_score(tiny_model, tiny_images):
    with pytest.raises(attribmap.MethodError, match="score"):
        attribmap.explain(tiny_model, tiny_images, method="shapleycam", layer="features", score="prob")
