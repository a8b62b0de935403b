"""Finer-CAM: the contrastive gradient request, against torchcam ("mean") and pytorch-grad-cam ("softmax")."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import attribmap
from attribmap.gradients import FinerGradient
from tests.reference.peers import max_minmax_diff, random_resnet18

TOL = 1e-4


@pytest.fixture(scope="module")
def setup():
    model = random_resnet18()
    return model, torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(2))


def test_request_is_the_gradient_of_the_contrastive_score():
    z = torch.tensor([[1.0, 3.0, 2.5, -1.0, 2.9], [0.0, 0.1, 5.0, 0.2, -3.0]])
    targets = torch.tensor([1, 2])
    request = FinerGradient(gamma=0.5, references=2)
    assert request.reference_classes(z, targets).tolist() == [[4, 2], [3, 1]]
    v = request.grad_output(z, targets)
    expected = torch.zeros_like(z)
    expected[0, 1], expected[0, 4], expected[0, 2] = 1.0, -0.25, -0.25
    expected[1, 2], expected[1, 3], expected[1, 1] = 1.0, -0.25, -0.25
    assert torch.allclose(v, expected)
    assert FinerGradient(0.5, 2) == request and hash(FinerGradient(0.5, 2)) == hash(request)


def test_mean_weighting_equals_torchcam(setup):
    import torchcam.methods

    model, x = setup
    target = [3, 7, 7]
    ours = attribmap.explain(model, x, method="finercam", layer="layer3", target=target, raw=True)
    with torchcam.methods.FinerCAM(model, "layer3", input_shape=(3, 64, 64)) as extractor:
        theirs = extractor(target, model(x.clone()), normalized=False)[0]
    assert max_minmax_diff(ours, theirs) < TOL
    plain = attribmap.explain(model, x, method="gradcam", layer="layer3", target=target, raw=True)
    assert max_minmax_diff(ours, plain) > 1e-3


def test_softmax_weighting_equals_pytorch_grad_cam(setup):
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import FinerWeightedTarget

    model, x = setup
    ours = attribmap.explain(model, x, method="finercam:weighting=softmax:gamma=1.0", layer="layer3", raw=True)
    # pytorch-grad-cam's FinerCAM.forward for targets=None: top-1 main class, the 3 nearest as references
    logits = model(x).detach().numpy()
    order = np.argsort(np.abs(logits - logits.max(axis=-1)[:, None]), axis=-1)
    targets = [FinerWeightedTarget(int(order[i, 0]), [int(order[i, j]) for j in (1, 2, 3)], 1.0) for i in range(3)]
    base = GradCAM(model, [model.layer3])
    try:
        inputs = x.clone()
        outputs = base.activations_and_grads(inputs)
        model.zero_grad()
        sum(t(o) for t, o in zip(targets, outputs)).backward()
        acts = base.activations_and_grads.activations[0].numpy()
        grads = base.activations_and_grads.gradients[0].numpy()
        theirs = np.maximum(base.get_cam_image(inputs, model.layer3, targets, acts, grads, False), 0)
    finally:
        base.activations_and_grads.release()
    assert max_minmax_diff(ours, torch.from_numpy(theirs)) < TOL


def test_shares_the_explain_many_backward(setup):
    model, x = setup
    ex = attribmap.Explainer(model, "layer3")
    both = ex.explain_many(x, ["gradcam", "finercam", "finercam:gamma=0.2"], raw=True)
    assert torch.allclose(both["finercam"], ex.explain(x, "finercam", raw=True), atol=1e-6)
    assert max_minmax_diff(both["finercam"], both["finercam:gamma=0.2"]) > 1e-4


@pytest.mark.parametrize("options,match", [({"references": 0}, "references"), ({"weighting": "max"}, "weighting")])
def test_bad_options(setup, options, match):
    model, x = setup
    with pytest.raises(attribmap.MethodError, match=match):
        attribmap.explain(model, x, method="finercam", layer="layer3", **options)
