"""The automatic layer on every torchvision classifier (issue: the first 1 x 1 output of a
squeeze-and-excitation block used to stop the search inside an early block).

* default suite, every model: built with meta parameters (docs/auto_layer_table.py), the
  choice at the native input size must be the family's last stage as read from torchvision's
  ``forward`` code (table below, written independently of the rule), and docs/_auto_layer_table.rst
  must be what the code gives;
* real forward on CPU (weights=None, small input): the chosen layer's map has more than one
  position, every image's target logit depends on it (non-zero Grad-CAM gradients), and for
  models whose head is global average pooling -> linear CAM reproduces the logits from it
  (``logits = W mean(F) + b``: the layer is exactly what the pooling reads). A few models in
  the default suite, the others @slow; regnet_y_128gf and vit_h_14 get the meta check only.
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

import attribmap
from attribmap.layers import auto_layer

_SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "auto_layer_table.py"
_spec = importlib.util.spec_from_file_location("auto_layer_table", _SCRIPT)
table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(table)

NAMES = torchvision.models.list_models(module=torchvision.models)
# the model's last stage, from torchvision's forward code
FAMILY = [
    (r"resnet\d+|resnext.*|wide_resnet.*", lambda m: "layer4"),
    (r"densenet.*|efficientnet.*|mobilenet.*|convnext.*|swin.*", lambda m: "features"),
    (r"regnet.*", lambda m: "trunk_output"),
    (r"mnasnet.*", lambda m: "layers"),
    (r"shufflenet.*", lambda m: "conv5"),
    (r"googlenet", lambda m: "inception5b"),
    (r"inception_v3", lambda m: "Mixed_7c"),
    (r"maxvit.*", lambda m: f"blocks.{len(m.blocks) - 1}"),
    # no global pooling: the last ReLU before the final max pooling of `features`
    (r"alexnet|vgg.*", lambda m: f"features.{max(i for i, x in enumerate(m.features) if isinstance(x, nn.ReLU))}"),
    # fully convolutional classifier: its ReLU'd class maps are what the global pooling reads
    (r"squeezenet.*", lambda m: "classifier.2"),
    # class-token readout: the input of the last encoder block
    (r"vit_.*", lambda m: f"encoder.layers.encoder_layer_{len(m.encoder.layers) - 2}"),
]
GAP_LINEAR_HEAD = r"resnet\d+|resnext.*|wide_resnet.*|regnet.*|efficientnet.*|mnasnet.*|shufflenet.*|mobilenet_v2|" \
                  r"googlenet|inception_v3"
SMALL_SIZE = {"inception_v3": 160, "maxvit_t": 224}  # the smallest sizes these run at; ViTs need 224


def expected_layer(name, model):
    rule = next(rule for pattern, rule in FAMILY if re.fullmatch(pattern, name))
    return rule(model)


def test_every_classifier_has_a_family_rule():
    assert len(NAMES) >= 80
    missing = [n for n in NAMES if not any(re.fullmatch(p, n) for p, _ in FAMILY)]
    assert not missing, f"add the family of {missing} to FAMILY"


@pytest.fixture(scope="module")
def rows():
    """Table rows computed once per model, shared by the tests of this module."""
    return {}


@pytest.mark.parametrize("name", NAMES)
def test_automatic_layer_is_the_last_stage(name, rows):
    rows[name] = table.row(name)
    assert rows[name][1] == expected_layer(name, table.build_on_meta(name))


def test_auto_layer_uses_that_rule_and_caches_it():
    model = table.build_on_meta("efficientnet_b0")
    assert auto_layer(model, torch.empty(1, 3, 224, 224)) == "features"  # was features.1.0.block.0
    assert auto_layer(model, torch.empty(4, 3, 224, 224)) == "features"


def test_docs_table_matches_the_code(rows):
    computed = [rows.get(name) or table.row(name) for name in NAMES]
    assert table.OUT.read_text() == table.render(computed), "run python docs/auto_layer_table.py"


def _real_model(name):
    torch.manual_seed(0)
    kwargs = {"init_weights": False} if name in ("inception_v3", "googlenet") else {}
    model = torchvision.models.get_model(name, weights=None, **kwargs).eval()
    for module in model.modules():  # ViT heads start at zero: no gradient would reach any layer
        if isinstance(module, nn.Linear) and not module.weight.any():
            nn.init.normal_(module.weight, std=0.02)
    return model


def check_real_forward(name):
    model = _real_model(name)
    size = SMALL_SIZE.get(name, 224 if name.startswith("vit_") else 64)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    ex = attribmap.Explainer(model)
    layer = ex.layer_for("gradcam", x)
    if size == table.native_size(name) or name not in ("inception_v3",):
        assert layer == expected_layer(name, model)
    capture = ex.capture(x, target=[1, 2])
    grid = capture.activations().shape[-2:]
    assert grid[0] * grid[1] > 1, (name, layer, tuple(grid))
    grads = capture.score_grad().flatten(1)
    assert bool((grads.abs().sum(dim=1) > 0).all()), f"{name}: the logits do not depend on {layer}"
    if re.fullmatch(GAP_LINEAR_HEAD, name):
        raw = ex.explain(x, "cam", target=[1, 2], raw=True)  # raises unless logits = W mean(F) + b
        assert torch.isfinite(raw).all()


@pytest.mark.parametrize("name", table.DEFAULT_REAL)
def test_real_forward_default(name):
    check_real_forward(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in NAMES if n not in table.DEFAULT_REAL + table.META_ONLY])
def test_real_forward_slow(name):
    check_real_forward(name)
