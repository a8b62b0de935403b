"""`attribmap explain`: the layer used is printed; several classes; 1 x 1 layers; --reshape."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from attribmap.cli import main
from attribmap.commands.explain import parse_target


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, size=(48, 64, 3), dtype=np.uint8)).save(path)
    return path


def test_the_layer_used_is_printed(photo, tmp_path, capsys):
    assert main(["explain", str(photo), "--model", "mobilenet_v3_small", "--size", "64", "-o",
                 str(tmp_path / "a.png")]) == 0
    assert "layer features (automatic choice)" in capsys.readouterr().out
    assert main(["explain", str(photo), "--model", "resnet18", "--size", "64", "--method", "gradcam,dgl@layer3",
                 "-o", str(tmp_path / "b.png")]) == 0
    assert "layers gradcam: layer4, dgl@layer3: layer3" in capsys.readouterr().out


def test_several_classes_give_one_column_per_method_and_class(photo, tmp_path, capsys):
    one, two = tmp_path / "one.png", tmp_path / "two.png"
    assert main(["explain", str(photo), "--model", "resnet18", "--size", "64", "--target", "3", "-o", str(one)]) == 0
    assert main(["explain", str(photo), "--model", "resnet18", "--size", "64", "--target", "3,7,9",
                 "-o", str(two)]) == 0
    assert "target 3,7,9" in capsys.readouterr().out
    assert Image.open(two).size[0] > 1.8 * Image.open(one).size[0]  # image + 3 panels vs image + 1


def test_single_position_layer_needs_the_opt_in(photo, tmp_path, capsys):
    argv = ["explain", str(photo), "--model", "resnet18", "--size", "64", "--layer", "avgpool", "-o",
            str(tmp_path / "c.png")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "single position (1 x 1)" in err and "--allow-1x1" in err
    assert main(argv + ["--allow-1x1"]) == 0


def test_target_parsing():
    assert parse_target(None) is None and parse_target("all") == "all"
    assert parse_target("5") == 5 and parse_target("3, 7") == [[3, 7]] and parse_target("4,") == [[4]]
    with pytest.raises(ValueError, match="--target must be"):
        parse_target("cat")
