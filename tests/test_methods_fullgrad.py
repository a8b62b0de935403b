"""FullGrad: completeness of its gradients, the authors' aggregation, and pytorch-grad-cam's."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import attribmap
from attribmap.methods.fullgrad import FULL_GRADIENTS
from tests.conftest import TinyGapNet
from tests.reference.peers import max_minmax_diff, random_resnet18

TOL = 1e-4


@pytest.fixture(scope="module")
def resnet():
    return random_resnet18()


@pytest.fixture(scope="module")
def x():
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(6))


def test_full_gradients_are_complete(resnet, x):
    """x . dz/dx + sum of all bias gradients = z_c for a ReLU network (Srinivas & Fleuret, eq. 2)."""
    capture = attribmap.Explainer(resnet, "layer3").capture(x, target=[2, 9])
    grads = capture.derive(FULL_GRADIENTS)
    total = (grads.input_grad * x).flatten(1).sum(dim=1)
    for _, bias_grad in grads.bias_grads:
        total = total + bias_grad.flatten(1).sum(dim=1)
    total = total + resnet.fc.bias.detach()[[2, 9]]  # the linear layer's bias, not a 4-D term
    z = capture.logits.detach()[[0, 1], [2, 9]]
    assert torch.allclose(total, z, rtol=1e-4, atol=1e-4), (total, z)
    assert len(grads.bias_grads) == 20  # resnet18: 20 batch norms, no conv bias
    assert capture.derive(FULL_GRADIENTS) is grads  # cached


def _authors_fullgrad(model, x, target):
    """The authors' saliency(): per-image rescale of each term over all channels, align_corners=True."""
    records = []
    hooks = [m.register_forward_hook(lambda mod, i, o: (records.append((mod, o)), o.clone())[1])
             for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.BatchNorm2d)) and m.bias is not None]
    xg = x.clone().requires_grad_(True)
    z = model(xg)
    for h in hooks:
        h.remove()
    grads = torch.autograd.grad(z[torch.arange(len(target)), target].sum(), [xg] + [o for _, o in records])

    def post(t):
        t = t.abs()
        t = t - t.flatten(1).min(dim=1).values.view(-1, 1, 1, 1)
        return t / (t.flatten(1).max(dim=1).values.view(-1, 1, 1, 1) + 1e-6)

    cam = post(grads[0] * x).sum(dim=1, keepdim=True)
    for (mod, _), g in zip(records, grads[1:]):
        if isinstance(mod, torch.nn.BatchNorm2d):
            b = mod.bias - mod.running_mean * mod.weight / torch.sqrt(mod.running_var + mod.eps)
        else:
            b = mod.bias
        t = post(g * b.detach().view(1, -1, 1, 1))
        cam = cam + F.interpolate(t, size=x.shape[-2:], mode="bilinear", align_corners=True).sum(dim=1, keepdim=True)
    return cam[:, 0].detach()


def test_default_is_the_authors_aggregation(resnet, x):
    ours = attribmap.explain(resnet, x, method="fullgrad", target=[2, 9], raw=True)
    assert ours.shape == (2, 32, 32)
    assert torch.allclose(ours, _authors_fullgrad(resnet, x, [2, 9]), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("model_name", ["tiny", "resnet18"])
def test_channel_normalization_equals_pytorch_grad_cam(resnet, x, model_name):
    from pytorch_grad_cam import FullGrad
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.manual_seed(0)
    model = TinyGapNet().eval() if model_name == "tiny" else resnet
    inputs = x[:, :, :16, :16] if model_name == "tiny" else x
    ours = attribmap.explain(model, inputs, method="fullgrad", target=[2, 4], raw=True, normalize="channel",
                             align_corners=False)
    theirs = FullGrad(model, [])(input_tensor=inputs.clone(), targets=[ClassifierOutputTarget(t) for t in (2, 4)])
    assert max_minmax_diff(ours, torch.from_numpy(theirs)) < TOL
    default = attribmap.explain(model, inputs, method="fullgrad", target=[2, 4], raw=True)
    assert max_minmax_diff(default, torch.from_numpy(theirs)) > 1e-2  # the normalizations differ


def test_batch_norm_without_running_stats_is_refused(tiny_images):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4, track_running_stats=False),
                                torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(4, 3)).eval()
    with pytest.raises(attribmap.MethodError, match="running statistics"):
        attribmap.explain(model, tiny_images, method="fullgrad", layer="2")
