"""torchvision vit_b_16 and swin_t (random init, 224 px, batch 2) without hand-written reshapes.

Grad-CAM of attribmap is compared at layer resolution with (1) Grad-CAM written by hand on
the same hooks with the reshape, and (2) pytorch-grad-cam's GradCAM given the
``reshape_transform`` its tutorial documents for vision transformers (drop the class
token, reshape to the 14 x 14 grid, bring the channels first). The pytorch-grad-cam
comparisons and the bench run are @slow (about ten seconds each on two cores).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

import attribmap
from attribmap.models.loading import load_torchvision_model
from tests.conftest import assert_same_state, model_state
from tests.test_tokens import hand_gradcam

VIT_LAYER = "encoder.layers.encoder_layer_10"  # the automatic choice: the input of the last block
SWIN_LAYER = "features"                          # the last stage, channels-last (N, 7, 7, 768)


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    model = torchvision.models.vit_b_16(weights=None)
    nn.init.normal_(model.heads.head.weight, std=0.02)  # torchvision's head starts at zero: no gradient at all
    return model.eval()


@pytest.fixture(scope="module")
def swin():
    torch.manual_seed(0)
    return torchvision.models.swin_t(weights=None).eval()


@pytest.fixture(scope="module")
def images():
    return torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))


def vit_tutorial_reshape(tensor, height=14, width=14):
    """pytorch-grad-cam's tutorial reshape for ViT: drop the class token, grid, channels first."""
    result = tensor[:, 1:, :].reshape(tensor.size(0), height, width, tensor.size(2))
    return result.transpose(2, 3).transpose(1, 2)


def swin_tutorial_reshape(tensor):
    """The tutorial's last step for Swin's (N, h, w, C) stages: channels first."""
    return tensor.transpose(2, 3).transpose(1, 2)


def pytorch_grad_cam_layer_maps(model, layer, images, targets, reshape):
    """pytorch-grad-cam's GradCAM at layer resolution: its cam image before rescaling, ReLU'd."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    wanted = [ClassifierOutputTarget(int(t)) for t in targets]
    with GradCAM(model=model, target_layers=[layer], reshape_transform=reshape) as cam:
        cam(input_tensor=images, targets=wanted)
        acts = cam.activations_and_grads.activations[0].numpy()
        grads = cam.activations_and_grads.gradients[0].numpy()
        raw = cam.get_cam_image(images, layer, wanted, acts, grads)
    model.zero_grad(set_to_none=True)
    return torch.from_numpy(np.maximum(raw, 0))


def test_vit_b_16_automatic_layer_gradcam_and_state(vit, images):
    before = model_state(vit)
    ex = attribmap.Explainer(vit)
    one = images[:1]  # batch 1 here (two forward passes of ViT-B/16 on CPU); batch 2 in the slow tests
    raw = ex.explain(one, "gradcam", target=[3], raw=True)
    assert ex.layers_used == {"gradcam": VIT_LAYER}
    expected = hand_gradcam(vit, dict(vit.named_modules())[VIT_LAYER], one, torch.tensor([3]), vit_tutorial_reshape)
    assert raw.shape == (1, 14, 14) and expected.abs().sum() > 0
    torch.testing.assert_close(raw, expected, rtol=1e-3, atol=1e-7)
    assert_same_state(before, model_state(vit))


def test_swin_t_stage_is_channels_last_not_c7(swin, images):
    before = model_state(swin)
    ex = attribmap.Explainer(swin)
    raw = ex.explain(images, "gradcam", target=[3, 9], raw=True)
    assert ex.layers_used == {"gradcam": SWIN_LAYER}
    assert raw.shape == (2, 7, 7)  # was (2, 7, 768): C = 7 read from (N, 7, 7, 768)
    expected = hand_gradcam(swin, swin.features, images, torch.tensor([3, 9]), swin_tutorial_reshape)
    torch.testing.assert_close(raw, expected, rtol=1e-3, atol=1e-7)
    explicit = ex.capture(images, target=[3, 9], layers=["features.7"])
    assert explicit.activations().shape == (2, 768, 7, 7)
    assert_same_state(before, model_state(swin))


@pytest.mark.slow
def test_vit_b_16_matches_pytorch_grad_cam(vit, images):
    layer = dict(vit.named_modules())[VIT_LAYER]
    ours = attribmap.explain(vit, images, "gradcam", layer=VIT_LAYER, target=[3, 9], raw=True)
    theirs = pytorch_grad_cam_layer_maps(vit, layer, images, [3, 9], vit_tutorial_reshape)
    torch.testing.assert_close(ours, theirs, rtol=1e-3, atol=1e-7)


@pytest.mark.slow
def test_swin_t_matches_pytorch_grad_cam(swin, images):
    ours = attribmap.explain(swin, images, "gradcam", layer=SWIN_LAYER, target=[3, 9], raw=True)
    theirs = pytorch_grad_cam_layer_maps(swin, swin.features, images, [3, 9], swin_tutorial_reshape)
    torch.testing.assert_close(ours, theirs, rtol=1e-3, atol=1e-7)


def test_cli_loader_builds_vit_b_16_for_explain(images):
    model = load_torchvision_model("vit_b_16")
    assert isinstance(model, torchvision.models.VisionTransformer) and not model.training
    assert attribmap.Explainer(model).layer_for("gradcam", images[:1]) == VIT_LAYER


@pytest.mark.slow
def test_cli_explain_and_bench_accept_vit_b_16(tmp_path, capsys):
    from PIL import Image

    from attribmap.cli import main

    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(photo)
    assert main(["explain", str(photo), "--model", "vit_b_16", "--method", "gradcam,dgl",
                 "-o", str(tmp_path / "vit.png")]) == 0
    assert f"layer {VIT_LAYER} (automatic choice)" in capsys.readouterr().out
    data = tmp_path / "synth"
    assert main(["synth", str(data), "--classes", "2", "--per-class", "1", "--val-per-class", "0",
                 "--test-per-class", "1", "--size", "64", "--seed", "0"]) == 0
    out = tmp_path / "bench"
    assert main(["bench", "--data", str(data), "--split", "test", "--model", "vit_b_16", "--methods", "gradcam",
                 "--batch-size", "2", "--out", str(out), "--no-figures"]) == 0
    import json

    results = json.loads((out / "results.json").read_text())
    assert results["extractors"]["gradcam"]["about"]["layer"] == VIT_LAYER
    assert f"gradcam: {VIT_LAYER}" in (out / "results.md").read_text()
