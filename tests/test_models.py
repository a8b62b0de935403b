"""attribmap.models: every architecture builds, runs, names its layers and obeys CAM algebra."""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from attribmap.errors import AttribmapError, InputError
from attribmap.models import (WeightMapGenerator, arch_config, available_archs, build_model)

torch.set_num_threads(1)

CLASSIFIERS = ["vgg16_gap", "inception_v3_spg", "resnet50_wsol", "resnet18_small", "resnet18_narrow"]
I2C = ["vgg16_i2c", "inception_v3_i2c", "resnet50_i2c", "resnet18_small_i2c", "resnet18_narrow_i2c"]
SIZE = {"inception_v3_spg": 96, "inception_v3_i2c": 96}
# CAM map side: 64 px / 16 -> 4; inception at 96 px: 48, 46, 24 (ceil pool), 22, 12, 6
MAP_SIZE = {"vgg16_gap": 4, "resnet50_wsol": 4, "resnet18_small": 4, "inception_v3_spg": 6,
            "vgg16_i2c": 4, "resnet50_i2c": 4, "resnet18_small_i2c": 4, "inception_v3_i2c": 6,
            "resnet18_narrow": 4, "resnet18_narrow_i2c": 4}


def _outputs(model: nn.Module, names: list[str], x: torch.Tensor):
    """Run model(x) and return (logits, {name: output of that module})."""
    modules = dict(model.named_modules())
    seen: dict[str, torch.Tensor] = {}
    handles = [modules[n].register_forward_hook(
        lambda _m, _i, out, n=n: seen.__setitem__(n, out.detach().clone())) for n in names]
    try:
        with torch.no_grad():
            logits = model(x)
    finally:
        for h in handles:
            h.remove()
    return logits, seen


@pytest.fixture(scope="module")
def built():
    torch.manual_seed(0)
    return {a: build_model(a, num_classes=3).eval() for a in CLASSIFIERS + I2C}


def test_available_archs_lists_the_agreed_names():
    expected = set(CLASSIFIERS + I2C + ["siamese_resnet18", "siamese_resnet18_narrow", "weightmap_resnet18",
                                        "weightmap_resnet34", "weightmap_resnet50", "weightmap_resnet18_narrow",
                                        "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2",
                                        "efficientnet_lite0_wsol", "efficientnet_lite0_i2c",
                                        "siamese_efficientnet_lite0", "weightmap_efficientnet_lite0"])
    assert set(available_archs()) == expected
    assert available_archs() == sorted(available_archs())


@pytest.mark.parametrize("arch", CLASSIFIERS)
def test_gap_classifier_forward_and_cam_identity(built, arch):
    model = built[arch]
    assert model.arch == arch and model.num_classes == 3
    s = SIZE.get(arch, 64)
    x = torch.randn(2, 3, s, s)
    logits, seen = _outputs(model, [model.cam_layer], x)
    assert logits.shape == (2, 3)
    fmap = seen[model.cam_layer]
    assert fmap.dim() == 4 and fmap.shape[-1] == MAP_SIZE[arch]
    fc = model.fc
    assert isinstance(fc, nn.Linear) and fc.in_features == fmap.shape[1]
    expected = fmap.mean(dim=(2, 3)) @ fc.weight.T + fc.bias   # W . GAP(F) + b
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-5)
    # CAM map form: mean over pixels of sum_k W[c,k] F_k  + b_c equals the logit
    cam = torch.einsum("ck,nkhw->nchw", fc.weight, fmap)
    torch.testing.assert_close(cam.mean(dim=(2, 3)) + fc.bias, logits, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch", I2C)
def test_i2c_forward_features(built, arch):
    model = built[arch]
    s = SIZE.get(arch, 64)
    x = torch.randn(2, 3, s, s)
    modules = dict(model.named_modules())
    for name in (model.cam_layer, model.feature_layer, model.class_map_layer):
        assert name in modules
    assert isinstance(modules[model.class_map_layer], nn.Conv2d)
    assert modules[model.class_map_layer].kernel_size == (1, 1)
    with torch.no_grad():
        logits, feat, class_maps = model.forward_features(x)
        plain = model(x)
    h = MAP_SIZE[arch]
    assert class_maps.shape == (2, 3, h, h)
    assert feat.dim() == 4 and feat.shape[0] == 2 and feat.shape[-2:] == (h, h)
    torch.testing.assert_close(logits, class_maps.mean(dim=(2, 3)))
    torch.testing.assert_close(plain, logits)
    # the dotted names really are the modules producing feat / class maps
    _, seen = _outputs(model, [model.feature_layer, model.class_map_layer, model.cam_layer], x)
    torch.testing.assert_close(seen[model.feature_layer], feat)
    torch.testing.assert_close(seen[model.class_map_layer], class_maps)
    assert seen[model.cam_layer].dim() == 4


def test_feature_layers_are_the_agreed_ones(built):
    assert built["inception_v3_i2c"].feature_layer == "Mixed_6e"
    assert built["resnet50_i2c"].feature_layer == "layer4"
    assert built["vgg16_i2c"].feature_layer == "features"
    assert built["resnet50_wsol"].cam_layer == "layer4"
    assert built["inception_v3_spg"].cam_layer == "head"
    assert dict(built["inception_v3_spg"].named_modules())["Mixed_6e"] is not None


def test_wsol_strides_at_224():
    """layer4 stride 1 (ResNet50) and Mixed_6a stride 1 give 14x14 maps at 224 px."""
    x = torch.randn(1, 3, 224, 224)
    for arch, channels in (("resnet50_wsol", 2048), ("inception_v3_i2c", 768)):
        model = build_model(arch, 2).eval()
        with torch.no_grad():
            f = model.forward_body(x)
        assert f.shape == (1, channels, 14, 14), arch
    model = build_model("inception_v3_spg", 2, large_feature_map=True).eval()
    with torch.no_grad():
        assert model.forward_body(x).shape == (1, 1024, 28, 28)


def test_backbone_state_dict_keys_match_torchvision():
    """Backbone parameter names/shapes equal torchvision's (built on the meta device)."""
    ours = build_model("resnet50_wsol", 5).state_dict()
    with torch.device("meta"):
        tv = torchvision.models.resnet50().state_dict()
        tv_vgg = torchvision.models.vgg16().features.state_dict()
    for key, value in tv.items():
        if not key.startswith("fc."):
            assert ours[key].shape == value.shape, key
    vgg = build_model("vgg16_gap", 5).state_dict()
    for key, value in tv_vgg.items():
        if int(key.split(".")[0]) < 30:  # pool5 (index 30) is dropped; it has no parameters
            assert vgg[f"features.{key}"].shape == value.shape, key
    assert len([k for k in vgg if k.startswith("features.")]) == len(tv_vgg)


def _fake_pretrained(monkeypatch):
    """Make WeightsEnum.get_state_dict return torchvision's own state dict filled with 0.5.

    This runs the real ``weights=`` path (enum lookup, load_state_dict in torchvision) with
    no download.
    """
    from torchvision.models._api import WeightsEnum

    makers = {
        "ResNet18_Weights": lambda: torchvision.models.resnet18(),
        "ResNet50_Weights": lambda: torchvision.models.resnet50(),
        "Inception_V3_Weights": lambda: torchvision.models.inception_v3(
            weights=None, aux_logits=True, init_weights=False),
    }

    def get_state_dict(self, *args, **kwargs):
        sd = makers[type(self).__name__]().state_dict()
        return {k: torch.full_like(v, 0.5) if v.is_floating_point() else v for k, v in sd.items()}

    monkeypatch.setattr(WeightsEnum, "get_state_dict", get_state_dict)


def test_pretrained_weights_load_into_backbone_only(monkeypatch):
    _fake_pretrained(monkeypatch)
    model = build_model("resnet18_small", 4, weights="DEFAULT")
    assert bool((model.layer4[1].conv2.weight == 0.5).all())
    assert not bool((model.fc.weight == 0.5).all())  # new layer: fresh init
    model = build_model("inception_v3_i2c", 4, weights="IMAGENET1K_V1", head_channels=8)
    assert bool((model.Mixed_6a.branch3x3.conv.weight == 0.5).all())
    assert model.Mixed_6a.branch3x3.conv.stride == (1, 1)
    assert not bool((model.head.conv1.weight == 0.5).all())
    gen = WeightMapGenerator("resnet50", weights="DEFAULT")
    assert bool((gen.layer3[0].conv1.weight == 0.5).all())
    assert not bool((gen.decoder[0].conv1.weight == 0.5).all())


def test_vgg_weights_are_passed_to_torchvision(monkeypatch):
    calls = []
    real = torchvision.models.vgg16

    def spy(weights=None, **kw):
        calls.append(weights)
        with torch.device("meta"):
            return real(weights=None, **kw)

    monkeypatch.setattr(torchvision.models, "vgg16", spy)
    model = build_model("vgg16_i2c", 4, weights="DEFAULT", head_channels=8)
    assert calls == ["DEFAULT"] and len(model.features) == 30


def test_resnet18_small_has_layer4_at_stride_1(built):
    first = built["resnet18_small"].layer4[0]
    assert first.conv1.stride == (1, 1) and first.downsample[0].stride == (1, 1)


def test_arch_config_rebuilds_the_same_model():
    torch.manual_seed(1)
    model = build_model("resnet18_small_i2c", 4, head_channels=32).eval()
    cfg = arch_config(model)
    assert cfg == {"arch": "resnet18_small_i2c", "num_classes": 4,
                   "kwargs": {"head_channels": 32, "dropout": 0.0}}
    clone = build_model(cfg["arch"], cfg["num_classes"], **cfg["kwargs"]).eval()
    clone.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(clone(x), model(x))
    assert arch_config(nn.DataParallel(model)) == cfg     # wrappers are looked through
    gen_cfg = arch_config(WeightMapGenerator("resnet34"))
    assert gen_cfg == {"arch": "weightmap_resnet34", "num_classes": 0, "kwargs": {"padding": "reflect"}}
    with pytest.raises(AttribmapError, match="not built by"):
        arch_config(nn.Linear(2, 2))


def test_siamese_embedding_shape():
    model = build_model("siamese_resnet18", num_classes=0).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 200)
    assert model.embedding_dim == 200 and model.arch == "siamese_resnet18"
    assert arch_config(model)["kwargs"] == {"embedding_dim": 200}


def test_build_model_errors():
    with pytest.raises(AttribmapError, match="resnet50_wsol"):
        build_model("resnet50_wsl", 3)
    with pytest.raises(AttribmapError, match="num_classes"):
        build_model("resnet18_small", 0)
    with pytest.raises(AttribmapError, match="head_channel"):
        build_model("resnet18_small", 3, head_channels=8)
    assert isinstance(build_model("weightmap_resnet18", 0), WeightMapGenerator)


@pytest.mark.parametrize("encoder", ["resnet18", "resnet50"])
def test_weightmap_generator_shape_and_range(encoder):
    torch.manual_seed(0)
    gen = WeightMapGenerator(encoder).train()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        m = gen(x)
        m_eval = gen.eval()(x)
    assert m.shape == (2, 1, 64, 96) and m_eval.shape == (2, 1, 64, 96)
    assert bool(((m > 0) & (m < 1)).all()) and bool(((m_eval >= 0) & (m_eval <= 1)).all())
    assert m.std() > 0  # not a constant map
    assert len(gen.decoder) == 5
    assert gen.arch == f"weightmap_{encoder}"


def test_weightmap_resnet34_by_name_runs():
    gen = build_model("weightmap_resnet34", 0).eval()
    with torch.no_grad():
        assert gen(torch.randn(1, 3, 32, 64)).shape == (1, 1, 32, 64)


def test_weightmap_generator_is_trainable_end_to_end():
    gen = WeightMapGenerator("resnet18").train()
    m = gen(torch.randn(2, 3, 32, 32))
    m.mean().backward()
    assert gen.conv1.weight.grad is not None and gen.decoder[-1].conv2.weight.grad is not None


def test_weightmap_generator_rejects_bad_sizes():
    gen = WeightMapGenerator("resnet18")
    with pytest.raises(InputError, match="multiples of 32.*70x64"):
        gen(torch.randn(1, 3, 70, 64))
    with pytest.raises(InputError, match=r"\(N,3,H,W\)"):
        gen(torch.randn(1, 1, 64, 64))
    with pytest.raises(ValueError, match="resnet101"):
        WeightMapGenerator("resnet101")


def _minmax_up(raw: torch.Tensor, size: int) -> torch.Tensor:
    up = torch.nn.functional.interpolate(raw[:, None], size=(size, size), mode="bilinear",
                                         align_corners=False)[:, 0]
    lo = up.flatten(1).min(1).values[:, None, None]
    hi = up.flatten(1).max(1).values[:, None, None]
    return (up - lo) / (hi - lo)


def test_explain_i2c_and_cam_use_the_declared_layers():
    """The core's "i2c" reads model.class_map_layer; "cam" the model.cam_layer + its fc."""
    import attribmap

    torch.manual_seed(3)
    model = build_model("resnet18_small_i2c", 3, head_channels=16).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits, _, class_maps = model.forward_features(x)
    top = logits.argmax(1)
    expected = _minmax_up(class_maps[torch.arange(2), top], 64)
    torch.testing.assert_close(attribmap.explain(model, x, method="i2c"), expected,
                               rtol=1e-4, atol=1e-5)
    # CAM on the head differs from the class map only by the (constant) bias
    torch.testing.assert_close(attribmap.explain(model, x, method="cam"), expected,
                               rtol=1e-4, atol=1e-5)

    gap = build_model("resnet18_small", 3).eval()
    logits, seen = _outputs(gap, ["layer4"], x)
    cam = torch.einsum("nk,nkhw->nhw", gap.fc.weight[logits.argmax(1)], seen["layer4"])
    torch.testing.assert_close(attribmap.explain(gap, x, method="cam"), _minmax_up(cam, 64),
                               rtol=1e-4, atol=1e-5)


def test_i2c_head_starts_with_small_logits():
    """Regression: Kaiming fan-out init of the 1x1 class-map conv gave logits ~30 at step 0."""
    import torch

    from attribmap.models import build_model

    torch.manual_seed(0)
    model = build_model("resnet18_small_i2c", num_classes=4).eval()
    with torch.no_grad():
        logits = model(torch.randn(4, 3, 64, 64))
    assert logits.abs().max() < 1.0


def test_narrow_resnet_has_torchvision_names_and_an_8x8_cam_at_128px():
    from attribmap.models.backbones import narrow_resnet

    reference = torchvision.models.resnet18(weights=None).state_dict()
    same_width = narrow_resnet(18, 64).state_dict()
    reference = {k: v.shape for k, v in reference.items() if not k.startswith("fc.")}
    assert {k: v.shape for k, v in same_width.items()} == reference
    narrow = build_model("resnet18_narrow", 8).eval()
    assert narrow.layer4[0].conv1.stride == (1, 1) and narrow.fc.in_features == 256
    _, seen = _outputs(narrow, [narrow.cam_layer], torch.randn(1, 3, 128, 128))
    assert tuple(seen["layer4"].shape) == (1, 256, 8, 8)
    assert arch_config(build_model("resnet18_narrow", 8, width=16))["kwargs"] == {"width": 16}
    with pytest.raises(ValueError, match="no pretrained weights exist for a ResNet of width 32"):
        build_model("resnet18_narrow", 8, weights="DEFAULT")


def test_i2c_head_dropout_is_active_in_training_only():
    torch.manual_seed(0)
    model = build_model("resnet18_narrow_i2c", 3, head_channels=16, dropout=0.5)
    names = [n for n, _ in model.head.named_children()]
    assert names == ["conv1", "relu1", "drop1", "conv2", "relu2", "drop2"]
    assert all(m.p == 0.5 for m in model.head if isinstance(m, nn.Dropout))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        model.train()
        a, b = model(x), model(x)
        model.eval()
        c, d = model(x), model(x)
    assert not torch.equal(a, b) and torch.equal(c, d)
    plain = build_model("resnet18_narrow_i2c", 3, head_channels=16)
    assert [n for n, _ in plain.head.named_children()] == ["conv1", "relu1", "conv2", "relu2"]
    assert plain.state_dict().keys() == model.state_dict().keys()   # dropout adds no tensors
    with pytest.raises(ValueError, match=r"dropout must be a probability in \[0, 1\), got 1.0"):
        build_model("resnet18_narrow_i2c", 3, dropout=1.0)


def test_narrow_siamese_shares_the_narrow_classifier_body():
    """A narrow classifier initialises the narrow embedding (method II starts from pretraining)."""
    classifier = build_model("resnet18_narrow", num_classes=3)
    embedding = build_model("siamese_resnet18_narrow", num_classes=0)
    body = {k: v.shape for k, v in classifier.state_dict().items() if not k.startswith("fc.")}
    theirs = {k: v.shape for k, v in embedding.state_dict().items() if not k.startswith("fc.")}
    assert body == theirs
    assert embedding(torch.zeros(2, 3, 64, 64)).shape == (2, 200)
