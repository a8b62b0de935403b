"""The batch-norm-folded inference copy used by the Score-CAM family."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import attribmap
from attribmap.methods.folded_model import fold_batchnorms, folded_model
from tests.conftest import TinyGapNet
from tests.reference.peers import random_resnet18


class ConvBnNet(nn.Module):
    """conv -> BN -> ReLU, conv -> BN (its conv output also read by a skip: not foldable) -> GAP -> linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6, 4)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        c = self.conv2(h)
        h = torch.relu(self.bn2(c) + c)
        return self.fc(h.mean(dim=(2, 3)))


def _randomize_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=gen))
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen))
    return model.eval()


def test_the_copy_folds_single_use_pairs_and_computes_the_same_function():
    torch.manual_seed(0)
    model = _randomize_norms(ConvBnNet())
    copy = fold_batchnorms(model)
    kinds = [type(m).__name__ for m in copy.modules()]
    assert kinds.count("BatchNorm2d") == 1  # bn2 stays: conv2's output has a second reader
    x = torch.randn(4, 3, 12, 12)
    with torch.no_grad():
        assert torch.allclose(copy(x), model(x), rtol=1e-5, atol=1e-5)
    assert not torch.equal(copy.conv1.weight, model.conv1.weight)  # the folded weights are new tensors


def test_the_model_is_left_exactly_as_found():
    model = random_resnet18()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modules = [id(m) for m in model.modules()]
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        copy = folded_model(model, x, model(x))
    assert copy is not model
    assert [id(m) for m in model.modules()] == modules
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    with torch.no_grad():
        assert torch.allclose(copy(x), model(x), rtol=1e-4, atol=1e-4)


def test_cached_until_a_weight_or_a_mode_changes():
    model = random_resnet18()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        first = folded_model(model, x, model(x))
        assert folded_model(model, x, model(x)) is first
        model.layer1[0].bn1.running_mean.add_(1.0)  # in place: its version counter moves
        second = folded_model(model, x, model(x))
    assert second is not first
    with torch.no_grad():
        assert torch.allclose(second(x), model(x), rtol=1e-4, atol=1e-4)
    model.train()
    assert folded_model(model, x, torch.zeros(1, 1000)) is model  # batch statistics: nothing to fold
    model.eval()


def test_models_without_norms_or_with_wrong_logits_run_as_they_are():
    plain = TinyGapNet().eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert fold_batchnorms(plain) is None
        assert folded_model(plain, x, plain(x)) is plain
    model = _randomize_norms(ConvBnNet(), seed=1)
    with torch.no_grad():
        assert folded_model(model, x, model(x) + 1.0) is model  # a copy that misses the logits is not trusted


def test_untraceable_models_run_as_they_are():
    class Branchy(ConvBnNet):
        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
                x = -x
            return super().forward(x)

    model = _randomize_norms(Branchy(), seed=2)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert folded_model(model, x, model(x)) is model


@pytest.mark.parametrize("method", ["scorecam", "iscam:n_samples=2", "sscam:n_samples=2"])
def test_score_cam_family_maps_equal_with_and_without_folding(method):
    model = random_resnet18()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    explainer = attribmap.Explainer(model, layer="layer3")
    folded = explainer.explain(x, method=method, target=[3, 7], raw=True)
    plain = explainer.explain(x, method=f"{method}:fold_batchnorm=False", target=[3, 7], raw=True)
    assert folded.abs().max() > 0
    assert torch.allclose(folded, plain, rtol=1e-4, atol=1e-5 * float(plain.abs().max()))


def test_fold_batchnorm_must_be_a_bool():
    model = TinyGapNet().eval()
    with pytest.raises(attribmap.MethodError, match="fold_batchnorm must be True or False; got 'yes'"):
        attribmap.explain(model, torch.randn(1, 3, 16, 16), method="scorecam", layer="features",
                          fold_batchnorm="yes")
