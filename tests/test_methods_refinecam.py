"""RefineCAM against torchcam (layer resolution) and pytorch-grad-cam (input resolution)."""
from __future__ import annotations

import pytest
import torch

import attribmap
from tests.reference.peers import max_minmax_diff, random_resnet18

TOL = 1e-4


@pytest.fixture(scope="module")
def setup():
    model = random_resnet18(classifier_scale=100)  # pytorch-grad-cam's Grad-CAM++ eps becomes negligible
    return model, torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(2)), [3, 1, 1]


@pytest.mark.parametrize("base,peer", [("layercam", "LayerCAM"), ("gradcam", "GradCAM")])
def test_equals_torchcam(setup, base, peer):
    """torchcam's own Grad-CAM++ is not eq. 19 (test_methods_gradcam), so bases whose formulas agree."""
    import torchcam.methods

    model, x, target = setup
    ours = attribmap.explain(model, x, method="refinecam", layer="layer4", layers="layer3", base=base, target=target,
                             raw=True)
    with torchcam.methods.RefineCAM(model, ["layer3", "layer4"], input_shape=(3, 64, 64),
                                    base_method=getattr(torchcam.methods, peer)) as extractor:
        theirs = extractor(target, model(x.clone()), normalized=False)[0]
    assert ours.shape == theirs.shape == (3, 4, 4)
    assert max_minmax_diff(ours, theirs) < TOL


def test_input_resolution_equals_pytorch_grad_cam(setup):
    from pytorch_grad_cam import RefineCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model, x, target = setup
    ours = attribmap.explain(model, x, method="refinecam", layer="layer4", target=target, raw=True,
                             resolution="input")  # default second layer: layer3, the previous sibling
    theirs = RefineCAM(model, [model.layer3, model.layer4])(x.clone(), [ClassifierOutputTarget(t) for t in target])
    assert ours.shape == (3, 64, 64)
    assert max_minmax_diff(ours, torch.from_numpy(theirs)) < TOL


def test_is_the_product_of_the_normalized_layer_maps(setup):
    model, x, target = setup
    ex = attribmap.Explainer(model)
    l3 = ex.explain(x, "gradcampp@layer3", target=target, raw=True)
    l4 = ex.explain(x, "gradcampp@layer4", target=target, raw=True)
    unit = lambda m: (m - m.amin(dim=(1, 2), keepdim=True)) / (  # noqa: E731
        (m - m.amin(dim=(1, 2), keepdim=True)).amax(dim=(1, 2), keepdim=True) + 1e-8)
    up = torch.nn.functional.interpolate(unit(l4)[:, None], size=l3.shape[-2:], mode="bilinear",
                                         align_corners=False)[:, 0]
    ours = attribmap.explain(model, x, method="refinecam:layers=layer3", layer="layer4", target=target, raw=True)
    assert torch.allclose(ours, unit(l3) * up, atol=1e-6)


def test_needs_a_second_layer(tiny_model, tiny_images):
    with pytest.raises(attribmap.LayerError, match="earlier sibling"):
        attribmap.explain(tiny_model, tiny_images, method="refinecam", layer="features")
    with pytest.raises(attribmap.MethodError, match="post-hoc"):
        attribmap.explain(tiny_model, tiny_images, method="refinecam", layer="features.2", base="captum:Saliency")


def test_the_extra_layers_are_tapped_in_the_same_forward_pass(setup):
    model, x, target = setup
    passes = []
    handle = model.register_forward_hook(lambda *_: passes.append(1))
    try:
        one = attribmap.explain(model, x, method="refinecam", layer="layer4", target=target, raw=True)
        assert len(passes) == 1  # layer3 tapped with layer4, no retap
        both = attribmap.Explainer(model, "layer4").explain_many(x, ["refinecam:layers=layer2+layer3", "gradcam"],
                                                                 target=target, raw=True)
        assert len(passes) == 2
    finally:
        handle.remove()
    # the same maps as a capture that lacks the extra layers (refinecam then retaps them)
    from attribmap.methods.refinecam import refinecam
    from attribmap.tap import Tap

    capture = Tap(model, {"layer4": model.layer4}).run(x, torch.tensor(target))
    assert torch.allclose(one, refinecam(capture, "layer4"), atol=1e-6)
    assert torch.allclose(both["refinecam:layers=layer2+layer3"],
                          refinecam(capture, "layer4", layers="layer2+layer3"), atol=1e-6)
    assert not any(m._forward_hooks for m in model.modules())


def test_unresolvable_extra_layers_are_left_to_the_method(setup):
    model, x, target = setup
    with pytest.raises(attribmap.LayerError, match="nolayer"):
        attribmap.explain(model, x, method="refinecam:layers=nolayer", layer="layer4", target=target)
