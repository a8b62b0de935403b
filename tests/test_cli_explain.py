"""`attribmap explain` / `attribmap methods` and the figures they write."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from attribmap.cli import main
from attribmap.viz import method_grid, overlay, save_overlay


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)).save(path)
    return path


def test_methods_lists_every_builtin(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for name in ["cam", "gradcam", "gradcampp", "dgl", "dgl-psb", "dgl-cem", "i2c", "captum:Saliency"]:
        assert name in out


def test_explain_writes_png_with_local_weights(photo, tmp_path, capsys):
    torch.manual_seed(0)
    weights = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    out = tmp_path / "maps.png"
    code = main(["explain", str(photo), "--model", "resnet18", "--weights", str(weights),
                 "--method", "gradcam,dgl", "--layer", "layer4", "--size", "64", "-o", str(out)])
    assert code == 0
    image = Image.open(out)
    assert image.size[0] > image.size[1] > 50  # one row, three panels
    assert "wrote" in capsys.readouterr().out
    assert not any(p.name.startswith("tmp") for p in tmp_path.iterdir())  # atomic write left nothing


@pytest.mark.parametrize("argv,message", [
    (["--model", "resnet18", "--layer", "layer9"], "unknown layer 'layer9'"),
    (["--model", "resnet1800"], "unknown model 'resnet1800'"),
    (["--model", "efficientnet_lite3"], "did you mean efficientnet_lite2"),
    (["--model", "resnet18", "--method", "gradcma"], "unknown method 'gradcma'"),
    (["--model", "resnet18", "--weights", "missing.pth"], "weights file not found"),
    (["--model", "resnet18", "--target", "5000"], "out of range"),
    (["--model", "resnet18", "--alpha", "2"], "--alpha must lie in [0, 1]"),
])
def test_bad_arguments_give_one_line_and_exit_2(photo, tmp_path, capsys, argv, message):
    code = main(["explain", str(photo), "--size", "64", "-o", str(tmp_path / "o.png")] + argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("attribmap: error:") and message in err


def test_missing_image_and_argparse_errors(tmp_path, capsys):
    assert main(["explain", str(tmp_path / "none.png"), "--model", "resnet18", "-o", str(tmp_path / "o.png")]) == 2
    assert "image file not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["explain", "x.png"])  # neither --model nor --checkpoint
    assert info.value.code == 2


def test_overlay_and_grid(tmp_path):
    img = torch.zeros(3, 10, 12)
    heat = torch.zeros(10, 12)
    heat[2:5, 3:6] = 1
    rgb = overlay(img, heat, alpha=1.0)
    assert rgb.shape == (10, 12, 3) and rgb.min() >= 0 and rgb.max() <= 1
    assert not np.allclose(rgb[3, 4], rgb[8, 10])  # hot and cold pixels get different colours
    with pytest.raises(ValueError, match="alpha"):
        overlay(img, heat, alpha=1.5)
    save_overlay(tmp_path / "o.png", img, heat, title="t")
    path = method_grid(torch.zeros(2, 3, 10, 12), {"a": torch.rand(2, 10, 12), "b": torch.rand(2, 10, 12)},
                       tmp_path / "grid.png", boxes=[np.array([[1, 1, 5, 5]]), np.zeros((0, 4))],
                       pred_boxes={"a": [[0, 0, 3, 3], [2, 2, 4, 4]]})
    assert Image.open(path).size[0] > 0


@pytest.mark.parametrize("content,message", [(b"", "the file is empty"), (b"plain text", "not an image file")])
def test_unreadable_image_gives_one_line_and_exit_2(tmp_path, capsys, content, message):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(content)
    assert main(["explain", str(bad), "--model", "resnet18", "--size", "64", "-o", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.jpg" in err and message in err


def test_weights_that_are_not_a_state_dict_give_one_line(photo, tmp_path, capsys):
    weights = tmp_path / "photo.pth"
    weights.write_bytes(photo.read_bytes())
    assert main(["explain", str(photo), "--model", "resnet18", "--weights", str(weights), "--size", "64",
                 "-o", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "photo.pth" in err and "not a torch file" in err


def test_explain_and_bench_share_one_input_size_resolution():
    """The model's own input_size is a source after a given size and a checkpoint's recipe."""
    from torch import nn

    from attribmap.inputs import DEFAULT_SIZE
    from attribmap.models.input_size import INPUT_SIZE_SOURCES, resolve_input_size

    model = nn.Identity()
    model.input_size = 96
    assert resolve_input_size(None, None, model) == (96, "model")
    assert resolve_input_size(64, None, model) == (64, "given")
    for odd in (True, 16, "96"):
        model.input_size = odd
        assert resolve_input_size(None, None, model) == (DEFAULT_SIZE, "default")
    assert resolve_input_size(None, None) == (DEFAULT_SIZE, "default")
    assert set(INPUT_SIZE_SOURCES) == {"given", "checkpoint", "model", "default"}
