"""Score-CAM, SS-CAM and IS-CAM against the peers, the paper's Algorithm 1, and their work bounds."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision

import attribmap
from tests.conftest import TinyGapNet
from tests.reference.peers import (max_minmax_diff, minmax, pgcam_layer_map, random_resnet18, recorded_activations,
                                   torchcam_map)

TOL = 1e-4


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    model = TinyGapNet(num_classes=5, width=8).eval()
    x = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    return model, x, [3, 1, 1]


class RowCounter:
    """Counts the rows of every forward pass of a model (and the largest batch)."""

    def __init__(self, model):
        self.rows = 0
        self.largest = 0
        self.handle = model.register_forward_pre_hook(self)

    def __call__(self, module, inputs):
        self.rows += inputs[0].shape[0]
        self.largest = max(self.largest, inputs[0].shape[0])

    def remove(self):
        self.handle.remove()


def _paper_scorecam(model, layer_module, x, target):
    """Algorithm 1: upsample each channel (bilinear), min-max, mask, logit, softmax over channels."""
    feats, _ = recorded_activations(model, layer_module, x)
    out = []
    for n in range(x.shape[0]):
        scores = []
        for k in range(feats.shape[1]):
            up = F.interpolate(feats[n:n + 1, k:k + 1], size=x.shape[-2:], mode="bilinear", align_corners=False)
            span = up.max() - up.min()
            mask = (up - up.min()) / span if span > 0 else torch.zeros_like(up)
            with torch.no_grad():
                scores.append(model(x[n:n + 1] * mask)[0, target[n]])
        w = torch.softmax(torch.stack(scores), dim=0)
        out.append(torch.relu((w[:, None, None] * feats[n]).sum(dim=0)))
    return torch.stack(out)


def test_scorecam_is_algorithm_1(tiny):
    model, x, target = tiny
    ours = attribmap.explain(model, x, method="scorecam", layer="features", target=target, raw=True)
    assert torch.allclose(ours, _paper_scorecam(model, model.features, x, target), atol=1e-5)


def test_scorecam_equals_pytorch_grad_cam_with_its_align_corners(tiny):
    from pytorch_grad_cam import ScoreCAM

    model, x, target = tiny
    ours = attribmap.explain(model, x, method="scorecam", layer="features", target=target, raw=True,
                             align_corners=True)
    theirs = pgcam_layer_map(ScoreCAM, model, model.features, x, target)
    assert max_minmax_diff(ours, theirs) < TOL
    default = attribmap.explain(model, x, method="scorecam", layer="features", target=target, raw=True)
    assert max_minmax_diff(default, theirs) > 1e-4  # the resize convention is visible


def test_scorecam_on_resnet18_equals_pytorch_grad_cam():
    from pytorch_grad_cam import ScoreCAM

    model = random_resnet18()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    ours = attribmap.explain(model, x, method="scorecam:batch_size=128", layer="layer3", target=[1, 2], raw=True,
                             align_corners=True)
    theirs = pgcam_layer_map(ScoreCAM, model, model.layer3, x, [1, 2])
    assert max_minmax_diff(ours, theirs) < TOL


def test_scorecam_equals_torchcam_with_its_mask_order(tiny):
    import torchcam.methods

    model, x, target = tiny
    ours = attribmap.explain(model, x, method="scorecam", layer="features", target=target, raw=True,
                             normalize="layer")
    theirs = torchcam_map(torchcam.methods.ScoreCAM, model, "features", x, target)
    assert max_minmax_diff(ours, theirs) < TOL


def test_iscam_equals_torchcam(tiny):
    import torchcam.methods

    model, x, target = tiny
    ours = attribmap.explain(model, x, method="iscam", layer="features", target=target, raw=True,
                             normalize="layer", n_samples=4)
    theirs = torchcam_map(torchcam.methods.ISCAM, model, "features", x, target, num_samples=4)
    assert max_minmax_diff(ours, theirs) < TOL
    assert max_minmax_diff(ours, attribmap.explain(model, x, method="scorecam", layer="features", target=target,
                                                   raw=True, normalize="layer")) > 1e-4


def test_sscam_equals_torchcam_with_the_same_noise(tiny):
    import torchcam.methods

    model, x, target = tiny
    ours = attribmap.explain(model, x, method="sscam", layer="features", target=target, raw=True,
                             normalize="layer", n_samples=3, sigma=0.5, seed=5)
    torch.manual_seed(5)  # torchcam draws from the global generator, in the order we draw
    theirs = torchcam_map(torchcam.methods.SSCAM, model, "features", x, target, num_samples=3, std=0.5)
    assert max_minmax_diff(ours, theirs) < TOL


def test_sscam_without_noise_is_scorecam(tiny):
    model, x, target = tiny
    smooth = attribmap.explain(model, x, method="sscam", layer="features", target=target, raw=True,
                               n_samples=2, sigma=0.0)
    plain = attribmap.explain(model, x, method="scorecam", layer="features", target=target, raw=True)
    assert max_minmax_diff(smooth, plain) < TOL
    noisy = attribmap.explain(model, x, method="sscam", layer="features", target=target, raw=True,
                              n_samples=2, sigma=2.0)
    assert max_minmax_diff(noisy, plain) > 1e-3


def test_sscam_is_reproducible_and_seeded(tiny):
    model, x, target = tiny
    run = lambda **kw: attribmap.explain(model, x, method="sscam", layer="features", target=target, raw=True,  # noqa: E731
                                         n_samples=2, sigma=1.0, **kw)
    a, b, c = run(seed=1), run(seed=1), run(seed=2)
    assert torch.equal(a, b)
    assert max_minmax_diff(a, c) > 1e-4
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(run(generator=g1), run(generator=g2))
    assert torch.equal(run(generator=torch.Generator().manual_seed(1)), a)


def test_dead_channels_share_one_forward_exactly(tiny):
    model, x, target = tiny
    with torch.no_grad():  # channels 0..5 of the tapped layer are dead (constant 0 after ReLU)
        model.features[2].weight[:6].zero_()
        model.features[2].bias[:6] = -1.0
    counter = RowCounter(model)
    try:
        ours = attribmap.explain(model, x, method="scorecam", layer="features", target=target, raw=True)
    finally:
        counter.remove()
    feats = attribmap.Explainer(model, "features").capture(x, target).activations()
    live = int((feats.flatten(2).amax(dim=2) > feats.flatten(2).amin(dim=2)).sum())
    assert live <= 3 * (16 - 6)
    assert counter.rows == 3 + live + 1  # tap + live channels + one zero image
    assert torch.allclose(ours, _paper_scorecam(model, model.features, x, target), atol=1e-5)


def test_batch_size_bounds_every_forward_and_not_the_result(tiny):
    model, x, target = tiny
    maps = {}
    for bs in (1, 7, 100):
        counter = RowCounter(model)
        try:
            maps[bs] = attribmap.explain(model, x, method=f"iscam:batch_size={bs}:n_samples=2", layer="features",
                                         target=target, raw=True)
        finally:
            counter.remove()
        assert counter.largest <= max(bs, x.shape[0])  # the tapped forward holds the 3 images
    assert torch.allclose(maps[1], maps[7], atol=1e-6) and torch.allclose(maps[7], maps[100], atol=1e-6)


def test_repeated_images_share_their_forwards(tiny):
    """Rows that repeat an image (several targets per image) cost that image's forwards once."""
    model, x, _ = tiny
    rows = x[[0, 0, 1]]
    counter = RowCounter(model)
    try:
        together = attribmap.explain(model, rows, method="scorecam", layer="features", target=[1, 4, 2], raw=True)
    finally:
        counter.remove()
    assert counter.rows == 3 + 2 * 16
    apart = [attribmap.explain(model, x[i:i + 1], method="scorecam", layer="features", target=t, raw=True)
             for i, t in ((0, 1), (0, 4), (1, 2))]
    assert torch.allclose(together, torch.cat(apart), atol=1e-6)
    assert max_minmax_diff(together[:1], together[1:2]) > 1e-4  # the two targets differ


@pytest.mark.parametrize("spec,match", [("scorecam:batch_size=0", "batch_size"), ("scorecam:normalize=input", "normalize"),
                                        ("sscam:n_samples=0", "n_samples"), ("sscam:sigma=-1", "sigma"),
                                        ("iscam:n_samples=1.5", "n_samples"), ("sscam:seed=x", "seed")])
def test_bad_options_are_clear_errors(tiny, spec, match):
    model, x, target = tiny
    with pytest.raises(attribmap.MethodError, match=match):
        attribmap.Explainer(model, "features").explain_many(x, [spec], target=target)


def test_training_mode_is_refused_before_any_masked_forward():
    model = torchvision.models.resnet18(weights=None).train()
    x = torch.randn(2, 3, 32, 32)
    counter = RowCounter(model)
    try:
        with pytest.warns(UserWarning, match="training mode"), pytest.raises(attribmap.MethodError, match="eval"):
            attribmap.explain(model, x, method="scorecam", layer="layer3")
    finally:
        counter.remove()
    assert counter.rows == 2  # the tapped forward only (the explainer warns about its batch-norm update)


def test_maps_are_not_trivial(tiny):
    model, x, target = tiny
    for name in ("scorecam", "iscam", "sscam"):
        maps = minmax(attribmap.explain(model, x, method=name, layer="features", target=target, raw=True))
        assert ((maps > 0.05) & (maps < 0.95)).flatten(1).sum(dim=1).min() >= 4, name
