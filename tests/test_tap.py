"""The tap and its capture: targets, recorded activations, no graph before the layer."""
from __future__ import annotations

import pytest
import torch

import attribmap
from tests.conftest import TinyGapNet


def test_targets(tiny_model, tiny_images):
    x = tiny_images
    top1 = tiny_model(x).argmax(1)
    assert torch.equal(attribmap.explain(tiny_model, x, "gradcam", "features"),
                       attribmap.explain(tiny_model, x, "gradcam", "features", target=top1))
    per_image = attribmap.explain(tiny_model, x, "cam", "features", target=[0, 1, 2], raw=True)
    for i, t in enumerate([0, 1, 2]):
        assert torch.allclose(per_image[i], attribmap.explain(tiny_model, x[i], "cam", "features", target=t, raw=True)[0], atol=1e-6)
    with pytest.raises(attribmap.TargetError, match="out of range.*5 classes"):
        attribmap.explain(tiny_model, x, "cam", "features", target=5)
    with pytest.raises(attribmap.TargetError, match="out of range"):
        attribmap.explain(tiny_model, x, "cam", "features", target=[0, -1, 2])
    with pytest.raises(attribmap.TargetError, match="one class per image"):
        attribmap.explain(tiny_model, x, "cam", "features", target=[0, 1])


def test_inplace_relu_does_not_corrupt_activations():
    """Tapping the conv before an in-place ReLU must record the pre-ReLU values."""
    torch.manual_seed(0)
    model = TinyGapNet().eval()
    x = torch.randn(2, 3, 16, 16)
    cap = attribmap.Explainer(model, "features.2").capture(x)
    expected = model.features[2](model.features[1](model.features[0](x).clone())).detach()
    assert torch.allclose(cap.activations("features.2"), expected)
    assert (cap.activations("features.2") < 0).any()  # the in-place ReLU did not clip it


def test_nothing_before_the_layer_records_a_graph(tiny_model, tiny_images):
    seen = {}

    def probe(module, inputs, output):
        seen["grad_enabled"] = torch.is_grad_enabled()
        seen["requires_grad"] = output.requires_grad

    handle = tiny_model.features[0].register_forward_hook(probe)
    try:
        attribmap.explain(tiny_model, tiny_images, method="gradcam", layer="features")
    finally:
        handle.remove()
    assert seen == {"grad_enabled": False, "requires_grad": False}


def test_two_tapped_layers_of_one_forward_both_get_their_gradients(tiny_model, tiny_images):
    """A later tapped layer (the container ``features``) must not cut the graph of an earlier one."""
    ex = attribmap.Explainer(tiny_model)
    both = ex.capture(tiny_images, target=[0, 1, 2], layers=["features.2", "features"])
    alone = ex.capture(tiny_images, target=[0, 1, 2], layers=["features.2"])
    early = both.score_grad("features.2")
    assert early.abs().sum() > 0
    assert torch.allclose(early, alone.score_grad("features.2"), atol=1e-6)
    assert torch.allclose(both.score_grad("features"),
                          ex.capture(tiny_images, target=[0, 1, 2], layers=["features"]).score_grad("features"),
                          atol=1e-6)


def test_an_out_of_range_target_names_its_image(tiny_model, tiny_images):
    from attribmap.errors import TargetError

    n = tiny_images.shape[0]
    with pytest.raises(TargetError, match=rf"target 99 \(image 1 of {n}\) out of range"):
        attribmap.Explainer(tiny_model, "features").explain(tiny_images, "gradcam", target=[0, 99] + [0] * (n - 2))
    with pytest.raises(TargetError, match=r"target 99 out of range"):  # one class for all: no image named
        attribmap.Explainer(tiny_model, "features").explain(tiny_images, "gradcam", target=99)
