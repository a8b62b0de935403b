"""Write a synthetic WSOL suite to disk in the wsolevaluation layout.

::

    OUT_DIR/images/<split>/<split>_<i>.png
    OUT_DIR/masks/<split>/<split>_<i>_m<j>.png       one per object (0 / 255)
    OUT_DIR/masks/<split>/<split>_<i>_ignore.png     ring around the objects (0 / 255)
    OUT_DIR/metadata/<split>/image_ids.txt, class_labels.txt, image_sizes.txt,
                             localization.txt        (boxes, one line per object)
                             localization_masks.txt  (masks, wsolevaluation mask format)
    OUT_DIR/suite.json                               parameters, counts, generator version

Image ``i`` of a split has class ``i % classes`` and is drawn from its own random stream
``numpy.random.default_rng([seed, split_number, i])``, so the output is byte-identical for a
given seed and parameters. Every file is written to a temporary name and renamed.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Dict, List, Optional, Union

import numpy as np
from PIL import Image

from attribmap.data.synthetic.scene import MAX_CLASSES, SceneConfig, render_scene

from attribmap.fileio import atomic_write_bytes

__all__ = ["generate_suite", "GENERATOR_VERSION", "SPLITS"]

GENERATOR_VERSION = 1
SPLITS = ("train", "val", "test")
PathLike = Union[str, "os.PathLike[str]"]
_METADATA_FILES = ("image_ids.txt", "class_labels.txt", "image_sizes.txt", "localization.txt",
                   "localization_masks.txt")


def _atomic_write_bytes(path: str, data: bytes) -> None:
    atomic_write_bytes(path, data)


def _atomic_write_text(path: str, lines: List[str]) -> None:
    _atomic_write_bytes(path, "".join(line + "\n" for line in lines).encode("utf-8"))


def _atomic_save_png(path: str, array: np.ndarray) -> None:
    import io

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    _atomic_write_bytes(path, buffer.getvalue())


def _positive(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def generate_suite(out_dir: PathLike, classes: int = 4, per_class: int = 120, size: int = 96, seed: int = 0,
                   val_per_class: int = 25, test_per_class: int = 25, config: Optional[SceneConfig] = None,
                   overwrite: bool = False) -> Dict[str, object]:
    """Generate the synthetic WSOL suite into ``out_dir``.

    Parameters
    ----------
    out_dir
        Output directory (created). Refused with a ValueError if it already holds a
        ``metadata`` directory, unless ``overwrite``.
    classes
        Number of classes K, ``2 <= K <= 64``.
    per_class
        Training images per class.
    size
        Nominal image side in pixels (>= 32); overrides ``config.size``.
    seed
        Seed of every random stream.
    val_per_class, test_per_class
        Images per class of the val and test splits (0 skips the split).
    config
        Scene variation (:class:`SceneConfig`); default values when ``None``.
    overwrite
        Replace the files of an existing suite (the metadata of a split skipped now is
        removed; image files of an earlier, larger suite are left unreferenced).

    Returns
    -------
    dict
        The content of ``suite.json``: parameters, scene config, image / object counts per split.
    """
    classes = _positive("classes", classes, 2)
    if classes > MAX_CLASSES:
        raise ValueError(f"classes must be <= {MAX_CLASSES}, got {classes}")
    counts = {"train": _positive("per_class", per_class, 0), "val": _positive("val_per_class", val_per_class, 0),
              "test": _positive("test_per_class", test_per_class, 0)}
    if counts["train"] == 0:
        raise ValueError("per_class must be >= 1 (the training split cannot be empty)")
    size = _positive("size", size, 32)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    config = dataclasses.replace(config or SceneConfig(), size=size)
    out_dir = os.path.abspath(os.fspath(out_dir))
    if os.path.exists(os.path.join(out_dir, "metadata")) and not overwrite:
        raise ValueError(f"{out_dir} already holds a dataset (metadata/); choose an empty directory "
                              "or pass overwrite=True (--overwrite)")
    summary: Dict[str, object] = {
        "generator_version": GENERATOR_VERSION, "classes": classes, "seed": int(seed), "size": size,
        "per_class": counts, "scene": dataclasses.asdict(config), "splits": {},
    }
    for split_number, split in enumerate(SPLITS):
        if counts[split]:
            summary["splits"][split] = _write_split(out_dir, split, split_number, counts[split] * classes,
                                                    classes, int(seed), config)
        else:
            _remove_metadata(out_dir, split)  # a skipped split must not keep an older suite's metadata
    _atomic_write_text(os.path.join(out_dir, "suite.json"), [json.dumps(summary, indent=2, sort_keys=True)])
    return summary


def _remove_metadata(out_dir: str, split: str) -> None:
    directory = os.path.join(out_dir, "metadata", split)
    for name in _METADATA_FILES:
        if os.path.isfile(os.path.join(directory, name)):
            os.remove(os.path.join(directory, name))
    if os.path.isdir(directory) and not os.listdir(directory):
        os.rmdir(directory)


def _write_split(out_dir: str, split: str, split_number: int, total: int, classes: int, seed: int,
                 config: SceneConfig) -> Dict[str, int]:
    for sub in ("images", "masks", "metadata"):
        os.makedirs(os.path.join(out_dir, sub, split), exist_ok=True)
    ids, labels, sizes, boxes, masks = [], [], [], [], []
    objects = 0
    for index in range(total):
        label = index % classes
        scene = render_scene(np.random.default_rng([seed, split_number, index]), label, classes, config)
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
        objects += len(scene.boxes)
        ids.append(image_id)
        labels.append(f"{image_id},{label}")
        height, width = scene.image.shape[:2]
        sizes.append(f"{image_id},{width},{height}")
    metadata = os.path.join(out_dir, "metadata", split)
    for name, lines in zip(_METADATA_FILES, (ids, labels, sizes, boxes, masks)):
        _atomic_write_text(os.path.join(metadata, name), lines)
    return {"images": total, "objects": objects}
