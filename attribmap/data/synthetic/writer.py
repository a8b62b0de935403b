"""Write a synthetic WSOL suite to disk in the wsolevaluation layout.

::

    OUT_DIR/images/<split>/<split>_<i>.png
    OUT_DIR/masks/<split>/<split>_<i>_m<j>.png        whole object j (0 / 255)
    OUT_DIR/masks/<split>/<split>_<i>_m<j>_parts.png  version 2: its parts
    OUT_DIR/masks/<split>/<split>_<i>_m<j>_body.png   version 2: its body minus its parts
    OUT_DIR/masks/<split>/<split>_<i>_ignore.png      ring around the objects (0 / 255)
    OUT_DIR/metadata/<split>/image_ids.txt, class_labels.txt, image_sizes.txt,
                             localization.txt        (boxes, one line per object)
                             localization_masks.txt  (whole-object masks, wsolevaluation mask format)
                             localization_parts.txt  (version 2: parts masks, same format and order)
                             localization_body.txt   (version 2: body masks, same format and order)
    OUT_DIR/suite.json                               parameters, counts, generator version

Image ``i`` of a split has class ``i % classes`` and is drawn from its own random stream
``numpy.random.default_rng([seed, split_number, i])`` (train 0, val 1, test 2, pretrain 3),
so the output is byte-identical for a given seed, parameters and generator version. Every
file is written to a temporary name and renamed.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
from typing import Callable, Dict, List, Optional, Union

import numpy as np
from PIL import Image

from attribmap.data.synthetic.scene import MAX_CLASSES, Scene, SceneConfig, render_scene
from attribmap.data.synthetic.scene_v2 import SceneConfigV2, render_scene_v2
from attribmap.errors import AttribmapError
from attribmap.fileio import atomic_write_bytes

__all__ = ["generate_suite", "GENERATOR_VERSION", "GENERATOR_VERSIONS", "SPLITS", "SPLITS_V2",
           "SUITE_DEFAULTS"]

GENERATOR_VERSION = 2
GENERATOR_VERSIONS = (1, 2)
SPLITS = ("train", "val", "test")
SPLITS_V2 = SPLITS + ("pretrain",)
#: Defaults of each generator version (``pretrain_per_class=None`` means "as ``per_class``").
SUITE_DEFAULTS = {
    1: {"classes": 4, "per_class": 120, "val_per_class": 25, "test_per_class": 25, "size": 96},
    2: {"classes": 8, "per_class": 100, "val_per_class": 25, "test_per_class": 25, "size": 128,
        "pretrain_per_class": None},
}
PathLike = Union[str, "os.PathLike[str]"]
_METADATA_FILES = ("image_ids.txt", "class_labels.txt", "image_sizes.txt", "localization.txt",
                   "localization_masks.txt")
_REGION_FILES = ("localization_parts.txt", "localization_body.txt")


def _atomic_write_text(path: str, lines: List[str]) -> None:
    atomic_write_bytes(path, "".join(line + "\n" for line in lines).encode("utf-8"))


def _atomic_save_png(path: str, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def _positive(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise AttribmapError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def generate_suite(out_dir: PathLike, classes: Optional[int] = None, per_class: Optional[int] = None,
                   size: Optional[int] = None, seed: int = 0, val_per_class: Optional[int] = None,
                   test_per_class: Optional[int] = None,
                   config: Union[SceneConfig, SceneConfigV2, None] = None, overwrite: bool = False, *,
                   version: int = GENERATOR_VERSION, pretrain_per_class: Optional[int] = None
                   ) -> Dict[str, object]:
    """Generate the synthetic WSOL suite into ``out_dir``.

    Parameters
    ----------
    out_dir
        Output directory (created). Refused if it already holds a ``metadata`` directory,
        unless ``overwrite``.
    classes
        Number of classes K, ``2 <= K <= 64`` (default 8; version 1: 4).
    per_class
        Training images per class (default 100; version 1: 120).
    size
        Nominal image side in pixels (>= 32); overrides ``config.size`` (default: the
        config's, 128 for version 2, 96 for version 1).
    seed
        Seed of every random stream.
    val_per_class, test_per_class
        Images per class of the val and test splits (default 25 each; 0 skips the split).
    config
        Scene variation: :class:`SceneConfigV2` for version 2, :class:`SceneConfig` for
        version 1; default values when ``None``.
    overwrite
        Replace the files of an existing suite (metadata of a split not written now is
        removed; image files of an earlier, larger suite are left unreferenced).
    version
        Generator version: 2 (default; objects = weakly telling body + strongly telling
        parts, with parts / body masks and a ``pretrain`` split) or 1 (the first suite,
        reproduced byte for byte).
    pretrain_per_class
        Version 2: images per class of the ``pretrain`` split, disjoint images from the same
        generator that stand in for ImageNet pretraining (default: ``per_class``; 0 skips it).
        Must be left ``None`` (or 0) for version 1.

    Returns
    -------
    dict
        The content of ``suite.json``: parameters, scene config, image / object counts per split.

    Example
    -------
    >>> summary = generate_suite("/tmp/suite", classes=8, per_class=20, test_per_class=5)  # doctest: +SKIP
    >>> summary["generator_version"], summary["splits"]["test"]["images"]  # doctest: +SKIP
    (2, 40)
    """
    if version not in GENERATOR_VERSIONS:
        raise AttribmapError(f"version must be one of {GENERATOR_VERSIONS}, got {version!r}")
    defaults = SUITE_DEFAULTS[version]
    classes = _positive("classes", defaults["classes"] if classes is None else classes, 2)
    if classes > MAX_CLASSES:
        raise AttribmapError(f"classes must be <= {MAX_CLASSES}, got {classes}")
    counts = {"train": _positive("per_class", defaults["per_class"] if per_class is None else per_class, 0),
              "val": _positive("val_per_class", defaults["val_per_class"] if val_per_class is None else val_per_class, 0),
              "test": _positive("test_per_class",
                                defaults["test_per_class"] if test_per_class is None else test_per_class, 0)}
    if counts["train"] == 0:
        raise AttribmapError("per_class must be >= 1 (the training split cannot be empty)")
    if version == 1:
        if pretrain_per_class:
            raise AttribmapError(f"pretrain_per_class needs generator version 2 (version 1 has no pretrain "
                                 f"split), got {pretrain_per_class!r}")
    else:
        counts["pretrain"] = _positive("pretrain_per_class",
                                       counts["train"] if pretrain_per_class is None else pretrain_per_class, 0)
    config_type = SceneConfig if version == 1 else SceneConfigV2
    if config is not None and type(config) is not config_type:
        raise AttribmapError(f"generator version {version} takes a {config_type.__name__} config, "
                             f"got {type(config).__name__}")
    config = config or config_type()
    size = _positive("size", config.size if size is None else size, 32)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise AttribmapError(f"seed must be an int >= 0, got {seed!r}")
    config = dataclasses.replace(config, size=size)
    out_dir = os.path.abspath(os.fspath(out_dir))
    if os.path.exists(os.path.join(out_dir, "metadata")) and not overwrite:
        raise AttribmapError(f"{out_dir} already holds a dataset (metadata/); choose an empty directory "
                             "or pass overwrite=True (--overwrite)")
    summary: Dict[str, object] = {
        "generator_version": version, "classes": classes, "seed": int(seed), "size": size,
        "per_class": counts, "scene": dataclasses.asdict(config), "splits": {},
    }
    if version == 1:
        def render(rng: np.random.Generator, label: int) -> Scene:
            return render_scene(rng, label, classes, config)
    else:
        summary["ground_truth"] = {
            "objects": "localization.txt (boxes), localization_masks.txt (whole-object masks)",
            "parts": "localization_parts.txt (per object: the union of its parts)",
            "body": "localization_body.txt (per object: its body minus its parts)",
            "object_scale": "sqrt(box_w * box_h / (W * H)) of the tight inclusive box",
        }

        def render(rng: np.random.Generator, label: int) -> Scene:
            return render_scene_v2(rng, label, classes, config)
    for split_number, split in enumerate(SPLITS_V2):
        if counts.get(split):
            summary["splits"][split] = _write_split(out_dir, split, split_number, counts[split] * classes,
                                                    classes, int(seed), render, regions=version >= 2)
        else:
            _remove_metadata(out_dir, split, _METADATA_FILES + _REGION_FILES)  # no stale metadata of an older suite
    _atomic_write_text(os.path.join(out_dir, "suite.json"), [json.dumps(summary, indent=2, sort_keys=True)])
    return summary


def _remove_metadata(out_dir: str, split: str, names) -> None:
    directory = os.path.join(out_dir, "metadata", split)
    for name in names:
        if os.path.isfile(os.path.join(directory, name)):
            os.remove(os.path.join(directory, name))
    if os.path.isdir(directory) and not os.listdir(directory):
        os.rmdir(directory)


def _write_split(out_dir: str, split: str, split_number: int, total: int, classes: int, seed: int,
                 render: Callable[[np.random.Generator, int], Scene], regions: bool) -> Dict[str, int]:
    """Render and write one split; ``regions`` adds the parts / body masks (version 2)."""
    for sub in ("images", "masks", "metadata"):
        os.makedirs(os.path.join(out_dir, sub, split), exist_ok=True)
    ids, labels, sizes, boxes, masks = [], [], [], [], []
    region_lines: Dict[str, List[str]] = {"parts": [], "body": []}
    objects = parts = 0
    for index in range(total):
        label = index % classes
        scene = render(np.random.default_rng([seed, split_number, index]), label)
        stem = f"{split}_{index:05d}"
        image_id = f"images/{split}/{stem}.png"
        _atomic_save_png(os.path.join(out_dir, image_id), scene.image)
        ignore_id = f"masks/{split}/{stem}_ignore.png"
        _atomic_save_png(os.path.join(out_dir, ignore_id), scene.ignore.astype(np.uint8) * 255)
        for number, (instance, box) in enumerate(zip(scene.instance_masks, scene.boxes)):
            mask_id = f"masks/{split}/{stem}_m{number}.png"
            _atomic_save_png(os.path.join(out_dir, mask_id), instance.astype(np.uint8) * 255)
            boxes.append(f"{image_id},{box[0]},{box[1]},{box[2]},{box[3]}")
            masks.append(f"{image_id},{mask_id},{ignore_id if number == 0 else ''}")
            if regions:
                for kind, region in (("parts", scene.part_masks[number]), ("body", scene.body_masks[number])):
                    region_id = f"masks/{split}/{stem}_m{number}_{kind}.png"
                    _atomic_save_png(os.path.join(out_dir, region_id), region.astype(np.uint8) * 255)
                    region_lines[kind].append(f"{image_id},{region_id},{ignore_id if number == 0 else ''}")
        objects += len(scene.boxes)
        if regions:
            parts += sum(scene.part_counts)
        ids.append(image_id)
        labels.append(f"{image_id},{label}")
        height, width = scene.image.shape[:2]
        sizes.append(f"{image_id},{width},{height}")
    metadata = os.path.join(out_dir, "metadata", split)
    for name, lines in zip(_METADATA_FILES, (ids, labels, sizes, boxes, masks)):
        _atomic_write_text(os.path.join(metadata, name), lines)
    if not regions:
        _remove_metadata(out_dir, split, _REGION_FILES)  # a version-1 suite written over a version-2 one
        return {"images": total, "objects": objects}
    for name, kind in zip(_REGION_FILES, ("parts", "body")):
        _atomic_write_text(os.path.join(metadata, name), region_lines[kind])
    return {"images": total, "objects": objects, "parts": parts}
