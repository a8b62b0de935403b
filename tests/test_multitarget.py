"""Several classes per image from one forward (attribmap.targets): maps (N, T, H, W).

The equality test iterates ``attribmap.methods()`` when it runs, so methods registered later
are covered. Left out there: ``weightmap`` (only buildable from a checkpoint, class-agnostic);
``i2c`` runs on its own model (a fully convolutional head). captum methods all run (on the
tiny model every one is fast; IntegratedGradients with n_steps=4).
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

import attribmap
from attribmap.methods import Extractor, lookup
from attribmap.targets import ALL_TARGETS_LIMIT
from tests.conftest import TinyGapNet

OPTIONS = {"captum:IntegratedGradients": {"n_steps": 4}, "refinecam": {"layers": "features.1"}}
TABLE = [[0, 3, 4], [2, 2, 1], [4, 0, 1]]  # 3 images x 3 classes (a repeat included)


class TinyClassMapNet(nn.Module):
    """conv -> ReLU -> 1x1 conv to K class maps -> spatial mean = logits (an I2C-style head)."""

    class_map_layer = "head"

    def __init__(self, num_classes: int = 5):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(8, num_classes, 1)

    def forward(self, x):
        return self.head(self.features(x)).mean(dim=(2, 3))


#: Methods whose map does not depend on the class (the activations' own structure).
CLASS_AGNOSTIC = ("captum:LayerActivation", "eigencam", "kpcacam", "fem")


def _explainable_methods():
    return [name for name in attribmap.methods() if lookup(name).extractor is not None]


@pytest.mark.parametrize("name", _explainable_methods())
def test_every_method_equals_one_call_per_class(name, tiny_images):
    torch.manual_seed(0)
    model = TinyClassMapNet().eval() if name == "i2c" else TinyGapNet().eval()
    ex = attribmap.Explainer(model, None if name == "i2c" else "features")
    options = OPTIONS.get(name, {})
    table = torch.tensor(TABLE)
    many = ex.explain(tiny_images, name, target=TABLE, raw=True, **options)
    assert many.shape[:2] == (3, 3), name
    for j in range(3):
        single = ex.explain(tiny_images, name, target=table[:, j], raw=True, **options)
        torch.testing.assert_close(many[:, j], single, rtol=1e-5, atol=1e-6, msg=lambda m: f"{name} slot {j}: {m}")
    assert not torch.equal(many[0, 0], many[0, 1]) or name in CLASS_AGNOSTIC, name


def test_one_forward_and_one_batched_backward_serve_every_class_and_method(tiny_model, tiny_images, monkeypatch):
    forwards, backwards = [], []
    handle = tiny_model.fc.register_forward_hook(lambda *a: forwards.append(1))
    grad = torch.autograd.grad

    def counting_grad(*args, **kwargs):
        backwards.append(kwargs.get("is_grads_batched", False))
        return grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", counting_grad)
    try:
        maps = attribmap.Explainer(tiny_model, "features").explain_many(
            tiny_images, ["cam", "gradcam", "gradcampp", "dgl", "dgl-psb", "dgl-cem"], target=TABLE)
    finally:
        handle.remove()
    assert forwards == [1] and backwards == [True]  # 2 gradient kinds x 3 classes: one VJP
    for m in maps.values():
        assert m.shape == (3, 3, 16, 16) and m.min() >= 0 and m.max() <= 1


def test_all_classes_tensor_tables_and_options(tiny_model, tiny_images):
    ex = attribmap.Explainer(tiny_model, "features")
    every = ex.explain(tiny_images, "gradcam", target="all", raw=True)
    assert every.shape == (3, 5, 8, 8)
    torch.testing.assert_close(every[:, 2], ex.explain(tiny_images, "gradcam", target=2, raw=True))
    table = torch.tensor(TABLE)
    assert torch.equal(ex.explain(tiny_images, "dgl", target=table), ex.explain(tiny_images, "dgl", target=TABLE))
    one_slot = ex.explain(tiny_images, "dgl", target=[[1], [2], [3]])
    assert one_slot.shape == (3, 1, 16, 16)  # lists always give (N, T, H, W)
    ms = ex.explain(tiny_images, "gradcam", target=TABLE, scales=(1.0, 1.5), close=1)
    for j in range(3):
        torch.testing.assert_close(ms[:, j], ex.explain(tiny_images, "gradcam", target=table[:, j], scales=(1.0, 1.5),
                                                        close=1), rtol=1e-5, atol=1e-6)
    maps, logits = ex.explain_many(tiny_images, ["cam"], target=TABLE, return_logits=True)
    assert logits.shape == (3, 5)
    capture = ex.capture(tiny_images, target=TABLE)
    assert capture.multi_target and capture.targets.tolist() == sum(TABLE, [])
    assert capture.images.shape[0] == capture.logits.shape[0] == capture.activations().shape[0] == 9


def test_class_agnostic_extractor_runs_once_per_image(tiny_model, tiny_images):
    calls = []

    class Brightness(Extractor):
        name = "test-brightness"
        needs_target = False

        def __call__(self, images, model, target, **options):
            calls.append(images.shape[0])
            return images.mean(dim=1)

    maps = attribmap.Explainer(tiny_model).explain_many(tiny_images, [Brightness()], target=TABLE, raw=True)
    assert calls == [3] and maps["test-brightness"].shape == (3, 3, 16, 16)
    assert torch.equal(maps["test-brightness"][:, 0], maps["test-brightness"][:, 2])


@pytest.mark.parametrize("target,message", [
    ([[0, 1], [2]], "one length for every image"),
    ([[0, 1], [2, 3]], "one list per image"),
    ([[0, 1], [2, 9], [1, 1]], "target 9 of image 1 is out of range"),
    ([[0.5, 1], [2, 3], [1, 1]], "integers"),
    ([[0, None], [2, 3], [1, 1]], "integers"),
    ([[], [], []], "empty"),
    ("every", "not a target form"),
])
def test_bad_target_tables_are_refused_clearly(tiny_model, tiny_images, target, message):
    with pytest.raises(attribmap.TargetError, match=message):
        attribmap.explain(tiny_model, tiny_images, "gradcam", layer="features", target=target)


def test_all_is_refused_above_the_limit(tiny_images):
    model = TinyGapNet(num_classes=ALL_TARGETS_LIMIT + 1).eval()
    with pytest.raises(attribmap.TargetError, match=f"{ALL_TARGETS_LIMIT + 1} maps per image"):
        attribmap.explain(model, tiny_images, "gradcam", layer="features", target="all")
