"""The synthetic WSOL suite: versions, determinism, layout, ground truth, and a reader round trip."""
from __future__ import annotations

import filecmp
import hashlib
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from attribmap.cli import main as cli_main
from attribmap.data import WSOLDataset, collate_wsol
from attribmap.data.synthetic import (
    SceneConfig,
    SceneConfigV2,
    body_bayes_accuracy,
    generate_suite,
    part_style,
    render_scene,
    render_scene_v2,
)
from attribmap.errors import AttribmapError

TINY = dict(classes=3, per_class=4, val_per_class=1, test_per_class=2, pretrain_per_class=2, size=48)

# Made by the generator at commit 209468c (before version 2 existed), with
# generate_suite(out, classes=3, per_class=2, val_per_class=1, test_per_class=2, size=48, seed=5).
V1_CONTENT_SHA256 = "5edaec44c820d0705398e9d819e73775f1df75d3e813689f580990bc4711f721"
V1_SUITE_JSON_SHA256 = "b99ed62328c75407715aa3adf63805924bdb1f5ec743447c36d53614958b97d9"
V1_LOCALIZATION_SHA256 = "789497b60284be2013054f81eed928ab0ea2efdc4e6c309382d799acef2dfee0"


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("suite"))
    summary = generate_suite(out, seed=7, **TINY)
    return out, summary


def _tree(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files)


def _content_hash(root):
    """sha256 over every file: relative path, then text bytes or a PNG's mode, size and pixels.

    PNGs are hashed by their pixels so that the hash does not depend on the zlib build that
    encoded them; every other file by its bytes.
    """
    digest = hashlib.sha256()
    for relative in _tree(root):
        path = os.path.join(root, relative)
        digest.update(relative.replace(os.sep, "/").encode() + b"\0")
        if relative.endswith(".png"):
            with Image.open(path) as image:
                digest.update(f"{image.mode}{image.size}".encode())
                digest.update(np.asarray(image).tobytes())
        else:
            with open(path, "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()


def _sha256(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def test_version_1_reproduces_the_first_suite(tmp_path):
    out = str(tmp_path / "v1")
    summary = generate_suite(out, classes=3, per_class=2, val_per_class=1, test_per_class=2, size=48, seed=5,
                             version=1)
    assert summary["generator_version"] == 1 and "pretrain" not in summary["splits"]
    assert _content_hash(out) == V1_CONTENT_SHA256
    assert _sha256(os.path.join(out, "suite.json")) == V1_SUITE_JSON_SHA256
    assert _sha256(os.path.join(out, "metadata", "test", "localization.txt")) == V1_LOCALIZATION_SHA256
    assert not any("_parts" in p or "_body" in p or "pretrain" in p for p in _tree(out))


def test_layout_and_summary(suite):
    out, summary = suite
    assert summary["generator_version"] == 2
    assert {split: info["images"] for split, info in summary["splits"].items()} == \
        {"train": 12, "val": 3, "test": 6, "pretrain": 6}
    for split in ("train", "val", "test", "pretrain"):
        for name in ("image_ids.txt", "class_labels.txt", "image_sizes.txt", "localization.txt",
                     "localization_masks.txt", "localization_parts.txt", "localization_body.txt"):
            assert os.path.isfile(os.path.join(out, "metadata", split, name))
    with open(os.path.join(out, "suite.json")) as handle:
        recorded = json.load(handle)
    assert recorded["seed"] == 7 and recorded["generator_version"] == 2 and recorded["per_class"]["pretrain"] == 2
    assert recorded["scene"]["size"] == 48 and "parts" in recorded["ground_truth"]
    assert not any(".tmp" in os.path.basename(p) for p in _tree(out))
    with open(os.path.join(out, "metadata", "train", "class_labels.txt")) as handle:
        labels = [int(line.split(",")[1]) for line in handle]
    assert labels == [i % 3 for i in range(12)]
    info = summary["splits"]["test"]
    assert info["objects"] >= info["images"] and info["objects"] <= info["parts"] <= 3 * info["objects"]


def test_defaults_per_version():
    from attribmap.data.synthetic import SUITE_DEFAULTS

    assert SUITE_DEFAULTS[2]["classes"] >= 8 and SUITE_DEFAULTS[2]["size"] == 128 == SceneConfigV2().size
    assert SUITE_DEFAULTS[1]["classes"] == 4 and SUITE_DEFAULTS[1]["size"] == 96 == SceneConfig().size


def test_same_seed_same_bytes_other_seed_differs(suite, tmp_path):
    out, _ = suite
    again = str(tmp_path / "again")
    generate_suite(again, seed=7, **TINY)
    assert _tree(out) == _tree(again)
    _, mismatch, errors = filecmp.cmpfiles(out, again, _tree(out), shallow=False)
    assert mismatch == [] and errors == []
    other = str(tmp_path / "other")
    generate_suite(other, seed=8, **TINY)
    for image in ("images/test/test_00000.png", "images/pretrain/pretrain_00000.png"):
        assert not filecmp.cmp(os.path.join(out, image), os.path.join(other, image), shallow=False)


def test_pretrain_images_are_their_own(suite):
    out, _ = suite
    digests = {split: {_sha256(os.path.join(out, "images", split, name))
                       for name in os.listdir(os.path.join(out, "images", split))} for split in ("train", "pretrain")}
    assert len(digests["pretrain"]) == 6 and not digests["pretrain"] & digests["train"]
    assert len(WSOLDataset(out, "pretrain")) == 6


def test_parts_and_body_files_partition_each_object(suite):
    out, _ = suite
    dataset = WSOLDataset(out, "test")
    assert dataset.has_boxes and dataset.has_masks and dataset.num_classes == 3
    region_lines = {}
    for kind in ("parts", "body"):
        with open(os.path.join(out, "metadata", "test", f"localization_{kind}.txt")) as handle:
            region_lines[kind] = [line.strip().split(",") for line in handle]
    with open(os.path.join(out, "metadata", "test", "localization_masks.txt")) as handle:
        object_lines = [line.strip().split(",") for line in handle]
    assert len(region_lines["parts"]) == len(region_lines["body"]) == len(object_lines)
    for whole, parts, body in zip(object_lines, region_lines["parts"], region_lines["body"]):
        assert whole[0] == parts[0] == body[0] and whole[2] == parts[2] == body[2]  # same image, same ignore
        read = [np.asarray(Image.open(os.path.join(out, line[1]))) > 0 for line in (whole, parts, body)]
        obj, part, rest = read
        assert part.any() and rest.any()
        assert not (part & rest).any() and np.array_equal(part | rest, obj)


def test_reader_round_trip_matches_mask_files(suite):
    out, _ = suite
    dataset = WSOLDataset(out, "test")
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


def test_v2_scenes_sizes_placement_and_masks():
    scenes = [render_scene_v2(np.random.default_rng([3, i]), i % 8, 8) for i in range(100)]  # default 128 px
    scales = np.array([s for scene in scenes for s in scene.scales])
    assert scales.min() >= 0.15 and scales.max() <= 0.6
    assert np.quantile(scales, 0.1) < 0.25 and np.quantile(scales, 0.9) > 0.45  # the whole range is used
    assert {len(scene.boxes) for scene in scenes} == {1, 2}
    centres = []
    for scene in scenes:
        height, width = scene.image.shape[:2]
        union = np.zeros((height, width), dtype=bool)
        for whole, parts, body, box, scale, count in zip(scene.instance_masks, scene.part_masks, scene.body_masks,
                                                         scene.boxes, scene.scales, scene.part_counts):
            assert 1 <= count <= 3 and parts.any() and body.any()
            assert not (parts & body).any() and np.array_equal(parts | body, whole)
            assert not (whole & union).any()  # objects never overlap
            union |= whole
            ys, xs = np.nonzero(whole)
            assert box.tolist() == [xs.min(), ys.min(), xs.max(), ys.max()]
            assert scale == pytest.approx(np.sqrt((box[2] - box[0] + 1) * (box[3] - box[1] + 1) / (height * width)))
            assert parts.sum() < 0.4 * whole.sum()  # the parts are a small share of the object
            centres.append(((box[0] + box[2]) / 2 / width, (box[1] + box[3]) / 2 / height))
        assert not (scene.ignore & union).any() and scene.ignore.any()
    centres = np.array(centres)
    assert np.abs(centres.mean(axis=0) - 0.5).max() < 0.08
    assert centres.std(axis=0).min() > 0.12  # spread over the image, not piled in the middle
    assert (np.abs(centres - 0.5).max(axis=1) > 0.25).mean() > 0.2  # a good share lies off-centre


def test_v2_parts_carry_the_class_colour():
    config = SceneConfigV2(size=96)
    for seed in range(6):
        label = seed % 8
        scene = render_scene_v2(np.random.default_rng(seed), label, 8, config)
        target = np.round(np.array(part_style(label)[1]) * 255)
        close = np.abs(scene.image.astype(float) - target).max(axis=2) < 20
        parts = np.any(scene.part_masks, axis=0)
        assert (close & parts).sum() > 0.5 * parts.sum()
        assert (close & ~parts).sum() <= 5  # the class colour is nowhere else


def test_body_evidence_is_weak_but_present():
    config = SceneConfigV2()
    for classes in (4, 8):
        accuracy = body_bayes_accuracy(classes, config.hue_spread, config.texture_bias, samples=4000)
        assert 1.5 / classes < accuracy < 0.6


def test_v1_part_is_small_and_only_part_names_the_class():
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


def test_v1_scene_counts_and_variation():
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
    with pytest.raises(AttribmapError, match=r"version must be one of \(1, 2\), got 3"):
        generate_suite(str(tmp_path / "a"), version=3)
    with pytest.raises(AttribmapError, match="pretrain_per_class needs generator version 2"):
        generate_suite(str(tmp_path / "a"), version=1, pretrain_per_class=5)
    with pytest.raises(AttribmapError, match="takes a SceneConfigV2 config, got SceneConfig"):
        generate_suite(str(tmp_path / "a"), config=SceneConfig())
    with pytest.raises(AttribmapError, match="pretrain_per_class must be an int >= 0"):
        generate_suite(str(tmp_path / "a"), pretrain_per_class=-1)
    with pytest.raises(ValueError, match="class label must be in"):
        render_scene(np.random.default_rng(0), 3, 3)
    with pytest.raises(AttribmapError, match="class label must be in"):
        render_scene_v2(np.random.default_rng(0), 3, 3)
    assert not os.path.exists(str(tmp_path / "a"))


def test_version_switch_over_an_existing_suite_leaves_no_stale_metadata(tmp_path):
    out = str(tmp_path / "switch")
    small = dict(classes=2, per_class=1, val_per_class=0, test_per_class=1, size=40)
    generate_suite(out, pretrain_per_class=1, **small)
    assert os.path.isfile(os.path.join(out, "metadata", "test", "localization_parts.txt"))
    generate_suite(out, version=1, overwrite=True, **small)
    assert not os.path.exists(os.path.join(out, "metadata", "pretrain"))
    assert not os.path.exists(os.path.join(out, "metadata", "test", "localization_parts.txt"))
    assert len(WSOLDataset(out, "test")) == 2


def test_cli_synth(tmp_path, capsys):
    out = str(tmp_path / "cli")
    args = ["synth", out, "--classes", "2", "--per-class", "2", "--val-per-class", "0", "--test-per-class", "1",
            "--pretrain-per-class", "1", "--size", "40", "--seed", "3", "--no-check"]
    assert cli_main(args) == 0
    printed = capsys.readouterr().out
    assert "generator 2" in printed and "train 4 images" in printed and "pretrain 2 images" in printed
    assert "reference row" not in printed
    assert not os.path.exists(os.path.join(out, "metadata", "val"))
    assert len(WSOLDataset(out, "test")) == 2
    assert cli_main(args) == 2  # refuses to overwrite
    assert "already holds a dataset" in capsys.readouterr().err
    with_val = list(args)
    with_val[with_val.index("--val-per-class") + 1] = "1"
    assert cli_main(with_val + ["--overwrite"]) == 0
    assert len(WSOLDataset(out, "val")) == 2
    assert cli_main(args + ["--overwrite"]) == 0  # val skipped again: its metadata goes
    assert not os.path.exists(os.path.join(out, "metadata", "val"))
    assert cli_main(["synth", out, "--generator", "1", "--classes", "2", "--per-class", "1", "--test-per-class", "1",
                     "--size", "40", "--overwrite"]) == 0
    printed = capsys.readouterr().out
    assert "generator 1" in printed and "not scored" in printed


def test_cli_synth_prints_reference_rows_and_check(tmp_path, capsys):
    out = str(tmp_path / "cli_check")
    assert cli_main(["synth", out, "--classes", "2", "--per-class", "1", "--val-per-class", "0", "--test-per-class",
                     "3", "--pretrain-per-class", "0", "--size", "48", "--grid", "4", "--engine", "opencv"]) == 0
    printed = capsys.readouterr().out
    assert "reference rows of the test split (6 images" in printed
    for title in ("whole object (GT mask)", "parts only", "body only", "centre prior", "pooled to 4x4",
                  "validity check:", "CAM > centre prior: not checked here"):
        assert title in printed
    assert "suite valid (ground-truth part only)" in printed or "suite NOT valid" in printed
    assert not os.path.exists(os.path.join(out, "metadata", "pretrain"))
