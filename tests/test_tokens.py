"""Token and channels-last layers read as maps (attribmap.tokens), on small torchvision ViT / Swin.

The heavy torchvision models at 224 px are in tests/test_transformers_torchvision.py.
"""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torchvision.models import SwinTransformer, VisionTransformer

import attribmap
from attribmap.tokens import GridLayout, plausible_grid, read_layout
from tests.conftest import TinyGapNet, assert_same_state, model_state


def small_vit(num_layers: int = 2) -> VisionTransformer:
    """32 px, 8 px patches (4 x 4 grid + a class token), hidden 32; a random (not zero) head."""
    torch.manual_seed(0)
    model = VisionTransformer(image_size=32, patch_size=8, num_layers=num_layers, num_heads=2, hidden_dim=32,
                              mlp_dim=64, num_classes=5)
    nn.init.normal_(model.heads.head.weight, std=0.5)  # torchvision initialises the head to zeros
    return model.eval()


def small_swin() -> SwinTransformer:
    """32 px: stages (N, 8, 8, 8) and (N, 4, 4, 16), channels-last."""
    torch.manual_seed(0)
    return SwinTransformer(patch_size=[4, 4], embed_dim=8, depths=[1, 1], num_heads=[1, 2], window_size=[2, 2],
                           num_classes=5).eval()


@pytest.fixture
def images():
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def hand_gradcam(model, module, images, targets, to_grid):
    """Grad-CAM by hand: hook the block, differentiate the target logits there, reshape both."""
    seen = {}
    handle = module.register_forward_hook(lambda mod, inputs, output: seen.update(out=output))
    try:
        logits = model(images)
    finally:
        handle.remove()
    (grad,) = torch.autograd.grad(logits[torch.arange(len(targets)), targets].sum(), seen["out"])
    feats, grads = to_grid(seen["out"].detach()), to_grid(grad)
    return torch.relu((grads.mean(dim=(2, 3))[:, :, None, None] * feats).sum(dim=1))


def vit_grid(tokens):  # drop the class token, lay the 16 patch tokens on their 4 x 4 grid
    return tokens[:, 1:, :].reshape(tokens.shape[0], 4, 4, tokens.shape[2]).permute(0, 3, 1, 2)


def test_vit_block_gradcam_equals_hand_written_reshape(images):
    model = small_vit()
    ex = attribmap.Explainer(model)
    maps = ex.explain(images, "gradcam", target=[1, 3], raw=True)
    assert ex.layers_used == {"gradcam": "encoder.layers.encoder_layer_0"}  # the input of the last block
    expected = hand_gradcam(model, model.encoder.layers.encoder_layer_0, images, torch.tensor([1, 3]), vit_grid)
    assert maps.shape == (2, 4, 4) and expected.abs().sum() > 0
    torch.testing.assert_close(maps, expected, rtol=1e-4, atol=1e-6)
    full = ex.explain(images, "dgl", target=[1, 3])
    assert full.shape == (2, 32, 32) and full.amax(dim=(1, 2)).tolist() == [1.0, 1.0]


def test_last_vit_block_warns_that_the_patch_tokens_do_not_reach_the_logits(images):
    model = small_vit()
    with pytest.warns(UserWarning, match="do not depend on the patch tokens"):
        maps = attribmap.explain(model, images, "gradcam", layer="encoder.layers.encoder_layer_1", raw=True)
    assert torch.equal(maps, torch.zeros(2, 4, 4))  # class-token readout: really zero


def test_swin_stage_is_read_channels_last(images):
    model = small_swin()
    ex = attribmap.Explainer(model)
    maps = ex.explain(images, "gradcam", target=[0, 4], raw=True)
    assert ex.layers_used["gradcam"] == "features"  # the last stage, before the final norm and permute
    expected = hand_gradcam(model, model.features, images, torch.tensor([0, 4]), lambda t: t.permute(0, 3, 1, 2))
    torch.testing.assert_close(maps, expected, rtol=1e-4, atol=1e-6)
    # (N, 8, 8, 8) reads as a grid both ways; the Swin block says channels-last
    stage1 = attribmap.Explainer(model, "features.1").capture(images)
    assert stage1.layout().kind == "channels-last" and stage1.activations().shape == (2, 8, 8, 8)


def test_cam_works_on_the_swin_norm_that_feeds_pooling(images):
    model = small_swin()
    raw = attribmap.Explainer(model, "norm").explain_many(images, ["cam", "dgl-psb"], raw=True)
    torch.testing.assert_close(raw["dgl-psb"] * 16, raw["cam"], rtol=1e-4, atol=1e-5)  # CAM = h w * PSB
    with pytest.raises(attribmap.MethodError, match="global average pooling"):
        attribmap.explain(model, images, "cam")  # the stage output passes the final LayerNorm first


def test_shapes_state_and_gradient_flow_through_token_layers(images):
    model = small_vit()
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.25)
    before = model_state(model)
    maps = attribmap.Explainer(model).explain_many(images, ["gradcam", "gradcampp", "dgl", "dgl-psb", "dgl-cem"])
    for name, m in maps.items():
        assert m.shape == (2, 32, 32) and torch.isfinite(m).all(), name
    assert_same_state(before, model_state(model))
    # two layers of one forward: the patch embedding (a map) and a token block, both with gradients
    ex = attribmap.Explainer(model)
    both = ex.capture(images, target=[2, 2], layers=["conv_proj", "encoder.layers.encoder_layer_0"])
    alone = ex.capture(images, target=[2, 2], layers=["conv_proj"])
    assert both.layout("encoder.layers.encoder_layer_0").kind == "tokens"
    torch.testing.assert_close(both.score_grad("conv_proj"), alone.score_grad("conv_proj"), rtol=1e-5, atol=1e-7)
    assert both.score_grad("encoder.layers.encoder_layer_0").shape == (2, 32, 4, 4)


def test_reshape_option_callable_name_and_mapping(images):
    model = small_vit()
    layer = "encoder.layers.encoder_layer_0"
    auto = attribmap.explain(model, images, "gradcam", layer=layer, raw=True)
    by_hand = attribmap.explain(model, images, "gradcam", layer=layer, raw=True, reshape=vit_grid)
    mapped = attribmap.explain(model, images, "gradcam", layer=layer, raw=True, reshape={layer: "tokens"})
    assert torch.equal(auto, by_hand) and torch.equal(auto, mapped)
    with pytest.raises(attribmap.LayerError, match="only select and rearrange"):
        attribmap.explain(model, images, "gradcam", layer=layer, reshape=lambda t: vit_grid(t) * 2)
    with pytest.raises(attribmap.LayerError, match="returned"):
        attribmap.explain(model, images, "gradcam", layer=layer, reshape=lambda t: t[:, 1:])
    with pytest.raises(attribmap.LayerError, match="not a layout"):
        attribmap.Explainer(model, reshape="channels_last")
    swin = small_swin()  # forcing the wrong reading is the user's call, and it is honoured
    forced = attribmap.Explainer(swin, "features.1", reshape="channels-first").capture(images)
    assert forced.activations().shape == (2, 8, 8, 8) and forced.layout().kind == "channels-first"


def test_token_grid_rules_and_their_errors():
    tokens = torch.zeros(2, 1 + 14 * 14, 8)
    by_patch = read_layout("b", tokens, None, None, (224, 224), patch_size=(16, 16))
    by_count = read_layout("b", tokens, None, None, (224, 224))
    assert by_patch == by_count == GridLayout("tokens", (14, 14), 8, 1)
    registers = read_layout("b", torch.zeros(1, 5 + 7 * 10, 4), None, None, (112, 160), patch_size=(16, 16))
    assert (registers.grid, registers.extra_tokens) == ((7, 10), 5)
    with pytest.raises(attribmap.LayerError, match="cannot tell the token grid"):
        read_layout("b", torch.zeros(1, 17, 4), None, None, (32, 32))  # 1 + 4x4 or 8 + 3x3
    assert read_layout("b", torch.zeros(1, 17, 4), None, None, (32, 32), patch_size=(8, 8)).extra_tokens == 1
    with pytest.raises(attribmap.LayerError, match="batch-first"):
        read_layout("b", torch.zeros(197, 2, 8), None, None, (224, 224), batch=2)
    with pytest.raises(attribmap.LayerError, match="expected a 4-D map"):
        read_layout("fc", torch.zeros(2, 5), nn.Linear(3, 5), None, (32, 32))


def test_channels_first_or_last_from_geometry_and_module():
    swin_stage = read_layout("features.7", torch.zeros(1, 7, 7, 768), None, None, (224, 224))
    assert (swin_stage.kind, swin_stage.grid, swin_stage.channels) == ("channels-last", (7, 7), 768)  # not C = 7
    assert read_layout("layer4", torch.zeros(1, 768, 7, 7), None, None, (224, 224)).kind == "channels-first"
    cube = torch.zeros(1, 8, 8, 8)  # both readings plausible: the module decides, else channels-first
    assert read_layout("x", cube, nn.Linear(8, 8), None, (32, 32)).kind == "channels-last"
    assert read_layout("x", cube, nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()), None, (32, 32)).kind == "channels-first"
    assert read_layout("x", cube, nn.ReLU(), None, (32, 32)).kind == "channels-first"
    assert plausible_grid(147, 147, (299, 299)) and not plausible_grid(7, 768, (224, 224))
    with pytest.raises(attribmap.LayerError, match="neither channels-first"):
        read_layout("odd", torch.zeros(1, 16, 1, 49), None, None, (224, 224))


def test_single_position_layers_are_refused_unless_allowed(tiny_images):
    model = TinyGapNet().eval()
    before = model_state(model)
    with pytest.raises(attribmap.LayerError, match=r"single position \(1 x 1\).*allow_1x1=True"):
        attribmap.explain(model, tiny_images, "gradcam", layer="pool")
    assert_same_state(before, model_state(model))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        maps = attribmap.explain(model, tiny_images, "gradcam", layer="pool", allow_1x1=True)
    assert torch.equal(maps, torch.zeros(3, 16, 16))  # the documented output of a constant map


def test_a_method_that_misreads_a_channels_last_layer_is_stopped(images):
    """captum's LayerGradCam reads Swin's (N, h, w, C) stage as (N, C, h, w) and returns a
    (N, w, C) "map"; every raw map must be a grid of the input, so it is stopped."""
    model = small_swin()
    with pytest.raises(attribmap.MethodError, match=r"returned maps \(2, 4, 16\), which are no grid of the 32 x 32"):
        attribmap.explain(model, images, "captum:LayerGradCam", layer="features")


def test_token_layers_on_cuda_keep_the_device(images):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine")
    model = small_vit().cuda()
    many = attribmap.Explainer(model).explain(images.cuda(), "gradcam", target=[[1, 2], [3, 4]])
    assert many.device.type == "cuda" and many.shape == (2, 2, 32, 32)
    torch.testing.assert_close(many.cpu(), attribmap.Explainer(small_vit()).explain(images, "gradcam",
                                                                                   target=[[1, 2], [3, 4]]),
                               rtol=1e-3, atol=1e-4)


def test_cam_on_a_token_layer_advises_a_gradient_method(images):
    model = small_vit()
    with pytest.raises(attribmap.MethodError, match="layer holds tokens") as caught:
        attribmap.explain(model, images, "cam", layer="encoder.layers.encoder_layer_0", raw=True)
    assert "convolutional" not in str(caught.value)
