"""The synthetic WSOL suite: determinism, layout, ground truth, and a reader round trip."""
from __future__ import annotations

import filecmp
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from attribmap.cli import main as cli_main
from attribmap.data import WSOLDataset, collate_wsol
from attribmap.data.synthetic import SceneConfig, generate_suite, part_style, render_scene

TINY = dict(classes=3, per_class=4, val_per_class=1, test_per_class=2, size=48)


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("suite"))
    summary = generate_suite(out, seed=7, **TINY)
    return out, summary


def _tree(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files)


def test_layout_and_summary(suite):
    out, summary = suite
    assert summary["splits"]["train"]["images"] == 12 and summary["splits"]["test"]["images"] == 6
    for split in ("train", "val", "test"):
        for name in ("image_ids.txt", "class_labels.txt", "image_sizes.txt", "localization.txt",
                     "localization_masks.txt"):
            assert os.path.isfile(os.path.join(out, "metadata", split, name))
    with open(os.path.join(out, "suite.json")) as handle:
        assert json.load(handle)["seed"] == 7
    assert not any(os.path.basename(p).startswith(".tmp-") for p in _tree(out))
    with open(os.path.join(out, "metadata", "train", "class_labels.txt")) as handle:
        labels = [int(line.split(",")[1]) for line in handle]
    assert labels == [i % 3 for i in range(12)]


def test_same_seed_same_bytes_other_seed_differs(suite, tmp_path):
    out, _ = suite
    again = str(tmp_path / "again")
    generate_suite(again, seed=7, **TINY)
    assert _tree(out) == _tree(again)
    _, mismatch, errors = filecmp.cmpfiles(out, again, _tree(out), shallow=False)
    assert mismatch == [] and errors == []
    other = str(tmp_path / "other")
    generate_suite(other, seed=8, **TINY)
    image = "images/test/test_00000.png"
    assert not filecmp.cmp(os.path.join(out, image), os.path.join(other, image), shallow=False)


def test_reader_round_trip_matches_mask_files(suite):
    out, _ = suite
    dataset = WSOLDataset(out, "test")
    assert dataset.has_boxes and dataset.has_masks and dataset.num_classes == 3
    for index in range(len(dataset)):
        item = dataset[index]
        picture = Image.open(os.path.join(out, item["id"]))
        assert item["size"] == picture.size
        stem = os.path.join(out, "masks", "test", os.path.splitext(os.path.basename(item["id"]))[0])
        union = np.zeros(item["mask"].shape, dtype=bool)
        for j, box in enumerate(item["boxes"].tolist()):
            instance = np.asarray(Image.open(f"{stem}_m{j}.png")) > 0
            ys, xs = np.nonzero(instance)
            assert box == [xs.min(), ys.min(), xs.max(), ys.max()]  # tight inclusive box
            union |= instance
        assert np.array_equal(item["mask"].numpy(), union)
        assert item["ignore"].any() and not (item["ignore"] & item["mask"]).any()


def test_part_is_small_and_only_part_names_the_class():
    config = SceneConfig(size=96, loose_part_prob=0.0)
    for seed in range(6):
        label = seed % 4
        scene = render_scene(np.random.default_rng(seed), label, 4, config)
        _, colour = part_style(label)
        target = np.round(np.array(colour) * 255)
        close = np.abs(scene.image.astype(float) - target).max(axis=2) < 20
        for mask in scene.instance_masks:
            part_pixels = (close & mask).sum()
            assert part_pixels > 0, "the class part lies on the object"
            assert part_pixels < 0.3 * mask.sum(), "the part is a small fraction of the object"
        assert not (close & ~np.any(scene.instance_masks, axis=0)).sum() > 5  # no such part elsewhere
    styles = {part_style(k) for k in range(64)}
    assert len(styles) == 64


def test_scene_counts_and_variation():
    config = SceneConfig(size=64)
    scenes = [render_scene(np.random.default_rng([1, i]), i % 3, 3, config) for i in range(40)]
    counts = [len(s.boxes) for s in scenes]
    assert set(counts) == {1, 2}
    shapes = {s.image.shape for s in scenes}
    assert len(shapes) > 5 and all(shape[2] == 3 for shape in shapes)
    widths = [b[2] - b[0] for s in scenes for b in s.boxes]
    assert max(widths) > 1.5 * min(widths)


def test_end_to_end_dataloader(suite):
    out, _ = suite
    loader = torch.utils.data.DataLoader(WSOLDataset(out, "train"), batch_size=5, collate_fn=collate_wsol)
    batch = next(iter(loader))
    assert batch["image"].shape == (5, 3, 224, 224)
    assert batch["label"].tolist() == [0, 1, 2, 0, 1]
    assert len(batch["boxes"]) == len(batch["mask"]) == 5


def test_bad_parameters(tmp_path):
    with pytest.raises(ValueError, match="classes must be an int >= 2"):
        generate_suite(str(tmp_path / "a"), classes=1)
    with pytest.raises(ValueError, match="classes must be <= 64"):
        generate_suite(str(tmp_path / "a"), classes=65)
    with pytest.raises(ValueError, match="size must be an int >= 32"):
        generate_suite(str(tmp_path / "a"), size=8)
    with pytest.raises(ValueError, match="class label must be in"):
        render_scene(np.random.default_rng(0), 3, 3)


def test_cli_synth(tmp_path, capsys):
    out = str(tmp_path / "cli")
    args = ["synth", out, "--classes", "2", "--per-class", "2", "--val-per-class", "0", "--test-per-class", "1",
            "--size", "40", "--seed", "3"]
    assert cli_main(args) == 0
    assert "train 4 images" in capsys.readouterr().out
    assert not os.path.exists(os.path.join(out, "metadata", "val"))
    assert len(WSOLDataset(out, "test")) == 2
    assert cli_main(args) == 2  # refuses to overwrite
    assert "already holds a dataset" in capsys.readouterr().err
    assert cli_main(args + ["--overwrite"]) == 0
    with_val = list(args)
    with_val[with_val.index("--val-per-class") + 1] = "1"
    assert cli_main(with_val + ["--overwrite"]) == 0
    assert len(WSOLDataset(out, "val")) == 2
    assert cli_main(args + ["--overwrite"]) == 0  # val skipped again: its metadata goes
    assert not os.path.exists(os.path.join(out, "metadata", "val"))


def test_benchmark_script_runs_end_to_end(tmp_path):
    """The suite check trains and scores a CAM (tiny settings; numbers are not asserted)."""
    import importlib.util

    path = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "synthetic_suite_check.py")
    spec = importlib.util.spec_from_file_location("synthetic_suite_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result_path = str(tmp_path / "result.json")
    assert module.main(["--classes", "2", "--per-class", "3", "--test-per-class", "2", "--size", "32",
                        "--epochs", "1", "--threads", "1", "--methods", "cam,gradcam", "--json", result_path]) == 0
    with open(result_path) as handle:
        result = json.load(handle)
    assert 0 <= result["test_accuracy"] <= 100
    assert result["suite"]["splits"]["test"]["images"] == 4
    if "evaluation" not in result:  # the evaluator exists
        for name in ("cam", "gradcam"):
            assert 0 <= result[name]["MaxBoxAccV2"] <= 100 and result[name]["num_images"] == 4
