"""attribmap mosaic: the writer round-trips through the WSOL reader, and attribmap bench scores it."""
from __future__ import annotations

import filecmp
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from attribmap.data import WSOLDataset
from attribmap.data.mosaic import MosaicPhoto, check_photos, plan_mosaics, write_mosaic_dataset
from attribmap.errors import AttribmapError
from attribmap.inputs import IMAGENET_MEAN, IMAGENET_STD

COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0)}


class ColourNet(nn.Module):
    """Class k = colour k of COLOURS: a 1x1 conv whose channel k fires on colour k only."""

    def __init__(self) -> None:
        super().__init__()
        v = torch.tensor([[(c / 255.0 - m) / s for c, m, s in zip(rgb, IMAGENET_MEAN, IMAGENET_STD)]
                          for rgb in COLOURS.values()])
        w = v / v.norm(dim=1, keepdim=True)
        responses = w @ v.T  # (k, j): channel k on colour j
        own = responses.diag()
        other = (responses - torch.diag(torch.full((len(v),), 1e9))).max(dim=1).values
        self.conv = nn.Conv2d(3, len(v), 1)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(len(v), len(v))
        with torch.no_grad():
            self.conv.weight.copy_(w[:, :, None, None])
            self.conv.bias.copy_(-(own + other) / 2)
            self.fc.weight.copy_(torch.diag(40.0 / (own - other)))
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(self.pool(self.relu(self.conv(x))).flatten(1))


def _photos():
    rng = np.random.default_rng(0)
    out = []
    for label, (name, rgb) in enumerate(COLOURS.items()):
        image = np.clip(np.array(rgb)[None, None] + rng.integers(-10, 11, size=(20, 24, 3)), 0, 255)
        out.append(MosaicPhoto(name, image.astype(np.uint8), (label,)))
    out.append(MosaicPhoto("grey", np.full((20, 20, 3), 128, np.uint8), (0,)))   # no channel fires: p = 1/4
    out.append(MosaicPhoto("wrong", np.full((20, 20, 3), (0, 0, 255), np.uint8), (0,)))  # blue, labelled red
    return out


def test_check_photos_and_plan():
    checks = check_photos(ColourNet(), _photos(), threshold=0.99, cell_size=16)
    assert [c.passed for c in checks] == [True, True, True, True, False, False]
    assert [c.predicted for c in checks[:4]] == [0, 1, 2, 3]
    assert checks[5].predicted == 2 and not checks[5].correct
    plans = plan_mosaics(checks, grid=2, count=5, seed=3)
    assert plans == plan_mosaics(checks, grid=2, count=5, seed=3)
    assert all(sorted(p) == [0, 1, 2, 3] for p in plans)
    assert len({tuple(p) for p in plans}) > 1


def test_too_few_confident_photos_is_one_line_naming_them():
    checks = check_photos(ColourNet(), _photos(), threshold=0.99, cell_size=16)
    with pytest.raises(AttribmapError) as info:
        plan_mosaics(checks, grid=3, count=1, seed=0)
    message = str(info.value)
    assert "\n" not in message and "4 of 6 passed" in message and "red" in message and "grey" not in message
    with pytest.raises(AttribmapError, match="threshold must be a probability"):
        check_photos(ColourNet(), _photos(), threshold=1.5)


def test_writer_round_trips_and_is_deterministic(tmp_path):
    model = ColourNet()
    info = write_mosaic_dataset(tmp_path / "a", model, _photos(), grid=2, count=3, seed=1, threshold=0.99,
                                cell_size=16)
    write_mosaic_dataset(tmp_path / "b", model, _photos(), grid=2, count=3, seed=1, threshold=0.99, cell_size=16)
    assert info["entries"] == 12 and info["image_size"] == 32
    dataset = WSOLDataset(tmp_path / "a", "test")
    assert len(dataset) == 12 and dataset.has_boxes and dataset.has_masks
    for index in range(len(dataset)):
        item = dataset[index]
        image = np.asarray(Image.open(dataset.records[index].path).convert("RGB"))
        cell = index % 4
        x0, y0 = 16 * (cell % 2), 16 * (cell // 2)
        assert item["boxes"].tolist() == [[x0, y0, x0 + 15, y0 + 15]]
        assert item["mask"].shape[-2:] == (32, 32) and item["mask"].sum() == 256
        assert item["mask"].reshape(32, 32)[y0:y0 + 16, x0:x0 + 16].all()
        colour = np.array(COLOURS[info["mosaics"][index // 4][cell]])
        assert np.abs(image[y0 + 8, x0 + 8].astype(int) - colour).max() <= 10
        assert item["label"] == list(COLOURS).index(info["mosaics"][index // 4][cell])
    files = sorted(os.path.relpath(os.path.join(d, f), tmp_path / "a") for d, _, fs in os.walk(tmp_path / "a")
                   for f in fs)
    assert all(filecmp.cmp(tmp_path / "a" / f, tmp_path / "b" / f, shallow=False) for f in files)
    with pytest.raises(AttribmapError, match="overwrite"):
        write_mosaic_dataset(tmp_path / "a", model, _photos(), threshold=0.99, cell_size=16)


def test_bench_scores_mosaics_with_the_grid_pointing_game(tmp_path, monkeypatch):
    from attribmap.bench import BenchConfig, run_benchmark
    import attribmap.models.loading as loading

    write_mosaic_dataset(tmp_path / "mosaics", ColourNet(), _photos(), grid=2, count=2, seed=0, threshold=0.99,
                         cell_size=16)
    monkeypatch.setattr(loading, "load_classifier", lambda *a, **k: ColourNet())
    config = BenchConfig(data=str(tmp_path / "mosaics"), model="colournet", methods=("gradcam", "cam"),
                         input_size=32, frame_size=32, batch_size=3, delta=0.01)
    results = run_benchmark(config, tmp_path / "report", write_figures=False)
    for name in ("gradcam", "cam"):
        assert results["extractors"][name]["GridPointing"] > 95.0
        assert results["extractors"][name]["GridPointing_empty"] == 0
    rows = results["mosaic_reference"]["rows"]
    assert rows["uniform"]["GridPointing"] == pytest.approx(25.0, abs=1e-9)
    assert rows["cell"]["GridPointing"] == pytest.approx(100.0, abs=1e-9)
    assert rows["centre"]["GridPointing"] == pytest.approx(25.0, abs=1e-6)  # symmetric prior, even grid
    report = (tmp_path / "report" / "results.md").read_text()
    assert "grid pointing" in report and "Reference rows of the 2x2 mosaics" in report
    assert json.loads((tmp_path / "report" / "results.json").read_text())["mosaic_reference"]["grid"] == 2


def test_cli_mosaic_bad_photo_lists_names(tmp_path, capsys):
    from attribmap.cli import main

    code = main(["mosaic", str(tmp_path / "m"), "--model", "resnet18", "--photos", str(tmp_path / "nope.png")])
    assert code == 2
    err = capsys.readouterr().err
    assert "nope.png" in err and len(err.strip().splitlines()) == 1
    from attribmap.data import photos

    code = main(["mosaic", str(tmp_path / "m"), "--model", "resnet18", "--photos", "cofee"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "'cofee'" in err
    assert all(name in err for name in photos.names())


def _tree(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def test_overwrite_leaves_nothing_of_the_previous_run(tmp_path):
    model = ColourNet()
    out = tmp_path / "m"
    write_mosaic_dataset(out, model, _photos(), count=3, threshold=0.99, cell_size=16)
    (out / "notes.txt").write_text("mine")  # not written by the writer: kept
    fresh = tmp_path / "fresh"
    write_mosaic_dataset(fresh, model, _photos(), count=1, threshold=0.99, cell_size=16)
    write_mosaic_dataset(out, model, _photos(), count=1, threshold=0.99, cell_size=16, overwrite=True)
    assert _tree(out) == sorted(_tree(fresh) + ["notes.txt"])
    assert "images/test/mosaic_00002_cell0.png" not in _tree(out)
    assert all(filecmp.cmp(out / f, fresh / f, shallow=False) for f in _tree(fresh))
    # a refused request (too few photos for 3 x 3) leaves the existing split as it was
    before = {f: (out / f).read_bytes() for f in _tree(out)}
    with pytest.raises(AttribmapError, match="passed"):
        write_mosaic_dataset(out, model, _photos(), grid=3, count=1, threshold=0.99, cell_size=16, overwrite=True)
    assert {f: (out / f).read_bytes() for f in _tree(out)} == before
