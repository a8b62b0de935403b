"""Mosaics for the grid pointing game (Rao, Boehle, Schiele, CVPR 2022), written as a WSOL dataset.

An n x n mosaic joins n^2 photos of **different** classes, each of which the model classifies
correctly and confidently on its own. A map explaining the class of one cell should put its
positive mass in that cell (:class:`~attribmap.evaluate.grid_pointing.GridPointing`); a prior
that knows nothing of the image cannot win, unlike boxes around centred objects.

Cell size: every cell is the photo squash-resized to ``cell_size`` x ``cell_size`` (default
224, the model's input), so a 2 x 2 mosaic is 448 px, as in Rao et al. ``attribmap bench``
feeds it at ``--input-size`` (default 224: the mosaic scaled down to one input, cells of
112 px; ``--input-size 448``: every cell at the model's own resolution, Rao et al.'s setting).
The confidence check classifies each cell alone at ``cell_size``, exactly as it appears in the
mosaic.

Layout written by :func:`write_mosaic_dataset` (wsolevaluation metadata, one split)::

    OUT/images/<split>/mosaic_00000_cell0.png     the mosaic, once per target cell
    OUT/masks/<split>/cell0.png                   cell 0 as a mask (shared by every mosaic)
    OUT/metadata/<split>/image_ids.txt, class_labels.txt, image_sizes.txt,
                         localization.txt (the cell as box), localization_masks.txt (as mask)
    OUT/mosaic.json                               settings, photos that passed, every mosaic

One entry per (mosaic, target cell); its label is the cell photo's class (the model's
prediction on the photo alone, which the photo's own labels must contain). The same photos,
model, settings and seed give byte-identical files.
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from attribmap.errors import AttribmapError
from attribmap.fileio import atomic_write_bytes, atomic_write_text

__all__ = ["MosaicPhoto", "PhotoCheck", "bundled_photos", "check_photos", "plan_mosaics", "compose_mosaic",
           "write_mosaic_dataset", "is_mosaic_dataset", "read_mosaic_info", "cell_boxes", "DEFAULT_THRESHOLD", "PAPER_THRESHOLD",
           "MOSAIC_FILE"]

#: The confidence Rao et al. ask of every cell's photo alone (softmax probability).
PAPER_THRESHOLD = 0.99
#: attribmap's default: the highest multiple of 0.05 at which the bundled photos still fill a
#: 2 x 2 mosaic on ``efficientnet_lite0`` (coffee 0.90, camera 0.94, chelsea 0.79, motorcycle
#: 0.49 pass; grace_hopper 0.39 and china 0.29 are correct but below; none reaches the paper's 0.99).
DEFAULT_THRESHOLD = 0.45
#: File at the dataset root that marks a mosaic dataset (settings and contents).
MOSAIC_FILE = "mosaic.json"

PathLike = Union[str, "os.PathLike[str]"]
#: The wsolevaluation metadata files a mosaic split consists of.
_METADATA_FILES = ("image_ids.txt", "class_labels.txt", "image_sizes.txt", "localization.txt",
                   "localization_masks.txt")


@dataclass(frozen=True)
class MosaicPhoto:
    """One candidate photo.

    Attributes
    ----------
    name : str
        Short name (file names, messages).
    image : PIL image, ndarray (H, W, 3) uint8, or path
        The photo.
    labels : tuple of int
        The classes it shows (the model's top-1 on it must be one of them); empty = any
        class is accepted.
    """

    name: str
    image: Any
    labels: Tuple[int, ...] = field(default_factory=tuple)


def bundled_photos() -> List[MosaicPhoto]:
    """Every bundled photo (:mod:`attribmap.data.photos`) whose package is installed, with its ImageNet classes."""
    from attribmap.data import photos
    from attribmap.errors import InputError

    out = []
    for name in photos.names():
        try:
            out.append(MosaicPhoto(name, photos.load(name), tuple(photos.info(name).classes)))
        except (InputError, ImportError):  # its package (scikit-learn) is missing: not a candidate
            continue
    return out


@dataclass(frozen=True)
class PhotoCheck:
    """What the model says of one photo alone.

    Attributes
    ----------
    name : str
    predicted : int
        Top-1 class.
    probability : float
        Its softmax probability.
    correct : bool
        ``predicted`` is among the photo's labels (always True without labels).
    passed : bool
        Correct and ``probability >= threshold``.
    """

    name: str
    predicted: int
    probability: float
    correct: bool
    passed: bool


def _rgb(image: Any) -> "Image.Image":
    from PIL import Image

    from attribmap.inputs import load_image, to_rgb

    if isinstance(image, (str, os.PathLike)):
        return load_image(image)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise AttribmapError(f"a photo array must be uint8 (H, W) or (H, W, 3); got {image.dtype} {image.shape}")
        image = Image.fromarray(image)
    if not isinstance(image, Image.Image):
        raise AttribmapError(f"a photo must be a PIL image, a uint8 array or a path; got {type(image).__name__}")
    return to_rgb(image)


def _cell(image: Any, cell_size: int) -> np.ndarray:
    """The photo squash-resized to the cell (bilinear): uint8 (cell, cell, 3)."""
    from PIL import Image

    return np.asarray(_rgb(image).resize((cell_size, cell_size), Image.BILINEAR), dtype=np.uint8)


def _default_transform(cell: np.ndarray) -> torch.Tensor:
    from attribmap.inputs import IMAGENET_MEAN, IMAGENET_STD

    x = torch.from_numpy(cell.copy()).permute(2, 0, 1).float() / 255.0
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    return (x - mean) / std


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise AttribmapError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def _check_threshold(threshold: Any) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= float(threshold) <= 1.0:
        raise AttribmapError(f"threshold must be a probability in [0, 1] (the paper uses {PAPER_THRESHOLD}); "
                             f"got {threshold!r}")
    return float(threshold)


def check_photos(model: torch.nn.Module, photos: Sequence[MosaicPhoto], threshold: float = DEFAULT_THRESHOLD,
                 cell_size: int = 224, transform: Optional[Callable[[np.ndarray], torch.Tensor]] = None,
                 device: Union[str, torch.device] = "cpu") -> List[PhotoCheck]:
    """Classify every photo alone, as it appears in a cell.

    Parameters
    ----------
    model : nn.Module
        Classifier (logits (N, K)); left as found (mode, gradients).
    photos : sequence of MosaicPhoto
    threshold : float
        Softmax probability the top-1 class needs (Rao et al.: 0.99).
    cell_size : int
        Side of a cell in pixels.
    transform : callable, optional
        uint8 cell (cell, cell, 3) -> model input (3, cell, cell); default: ``[0, 1]`` then
        ImageNet normalisation (:data:`attribmap.inputs.IMAGENET_MEAN` / ``STD``).
    device : str or torch.device

    Returns
    -------
    list of PhotoCheck, in the order of ``photos``.
    """
    from attribmap.tap import logits_of

    threshold = _check_threshold(threshold)
    cell_size = _check_int("cell_size", cell_size, 8)
    transform = transform or _default_transform
    if not photos:
        raise AttribmapError("no photo to check: give at least one")
    batch = torch.stack([transform(_cell(p.image, cell_size)) for p in photos]).to(device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            probabilities = torch.softmax(logits_of(model(batch)).double(), dim=1).cpu()
    finally:
        model.train(was_training)
    checks = []
    for photo, p in zip(photos, probabilities):
        predicted = int(p.argmax())
        probability = float(p[predicted])
        correct = not photo.labels or predicted in {int(label) for label in photo.labels}
        checks.append(PhotoCheck(photo.name, predicted, probability, correct, correct and probability >= threshold))
    return checks


def plan_mosaics(checks: Sequence[PhotoCheck], grid: int, count: int, seed: int) -> List[List[int]]:
    """Which photos fill each mosaic: ``count`` lists of ``grid**2`` photo indices, row-major.

    Parameters
    ----------
    checks : sequence of PhotoCheck
        What :func:`check_photos` said of every photo.
    grid : int
        Cells per side.
    count : int
        Mosaics.
    seed : int

    Only photos that passed are used; the classes within a mosaic all differ; among photos
    of the same class one is drawn. Deterministic for ``seed``.

    Raises
    ------
    AttribmapError
        Fewer passing photos of distinct classes than cells; the message says how many
        passed and which.
    """
    grid = _check_int("grid", grid, 2)
    count = _check_int("count", count, 1)
    passed = [i for i, check in enumerate(checks) if check.passed]
    by_class: Dict[int, List[int]] = {}
    for index in passed:
        by_class.setdefault(checks[index].predicted, []).append(index)
    cells = grid * grid
    if len(by_class) < cells:
        names = ", ".join(f"{checks[i].name} (class {checks[i].predicted}, p {checks[i].probability:.2f})"
                          for i in passed) or "none"
        raise AttribmapError(f"a {grid}x{grid} mosaic needs {cells} confidently and correctly classified photos of "
                             f"different classes; {len(passed)} of {len(checks)} passed ({len(by_class)} classes): "
                             f"{names}")
    rng = np.random.default_rng(seed)
    classes = sorted(by_class)
    plans = []
    for _ in range(count):
        chosen = rng.choice(len(classes), size=cells, replace=False)
        plans.append([by_class[classes[c]][int(rng.integers(len(by_class[classes[c]])))] for c in chosen.tolist()])
    return plans


def cell_boxes(grid: int, cell_size: int) -> List[Tuple[int, int, int, int]]:
    """Inclusive (x0, y0, x1, y1) of every cell of a ``grid`` x ``grid`` mosaic of ``cell_size`` px cells, row-major."""
    return [(c * cell_size, r * cell_size, (c + 1) * cell_size - 1, (r + 1) * cell_size - 1)
            for r in range(grid) for c in range(grid)]


def compose_mosaic(cells: Sequence[np.ndarray], grid: int) -> np.ndarray:
    """Tile ``cells``, ``grid**2`` equal uint8 arrays (s, s, 3), row-major, into one (grid*s, grid*s, 3) image."""
    if len(cells) != grid * grid:
        raise AttribmapError(f"a {grid}x{grid} mosaic takes {grid * grid} cells; got {len(cells)}")
    rows = [np.concatenate(cells[r * grid:(r + 1) * grid], axis=1) for r in range(grid)]
    return np.concatenate(rows, axis=0)


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _remove_previous(out: str, split: str) -> None:
    """Delete what an earlier :func:`write_mosaic_dataset` wrote for ``split`` in ``out`` (nothing else).

    The images listed in its ``image_ids.txt``, its ``cell*.png`` masks, its metadata files
    and ``mosaic.json``; the folders are removed when that leaves them empty.
    """
    metadata = os.path.join(out, "metadata", split)
    ids = os.path.join(metadata, "image_ids.txt")
    listed = []
    if os.path.isfile(ids):
        with open(ids, encoding="utf-8") as handle:
            listed = [line.strip() for line in handle if line.strip()]
    masks = os.path.join(out, "masks", split)
    cells = [os.path.join("masks", split, name) for name in (os.listdir(masks) if os.path.isdir(masks) else [])
             if name.startswith("cell") and name.endswith(".png")]
    owned = [os.path.join("metadata", split, name) for name in _METADATA_FILES] + [MOSAIC_FILE]
    for relative in listed + cells + owned:
        path = os.path.normpath(os.path.join(out, relative))
        if os.path.commonpath([os.path.abspath(path), os.path.abspath(out)]) == os.path.abspath(out) \
                and os.path.isfile(path):
            os.remove(path)
    for folder in (os.path.join(out, "images", split), masks, metadata):
        if os.path.isdir(folder) and not os.listdir(folder):
            os.rmdir(folder)


def write_mosaic_dataset(out_dir: PathLike, model: torch.nn.Module, photos: Sequence[MosaicPhoto], grid: int = 2,
                         count: int = 8, seed: int = 0, threshold: float = DEFAULT_THRESHOLD, cell_size: int = 224,
                         transform: Optional[Callable[[np.ndarray], torch.Tensor]] = None, split: str = "test",
                         device: Union[str, torch.device] = "cpu", overwrite: bool = False,
                         model_name: Optional[str] = None) -> Dict[str, Any]:
    """Build ``count`` ``grid x grid`` mosaics and write them as a wsolevaluation dataset.

    Parameters
    ----------
    out_dir : path
        Dataset directory (see the module docstring for the layout).
    model : nn.Module
        The classifier that must classify every cell's photo alone (not modified).
    photos : sequence of MosaicPhoto
        Candidates (at least ``grid**2`` of distinct classes must pass).
    grid : int
        n, cells per side (>= 2).
    count : int
        Mosaics; the dataset has ``count * grid**2`` entries.
    seed : int
        Seed of the draw of photos and their places.
    threshold : float
        Softmax probability each photo's top-1 class needs (Rao et al.: 0.99; default
        :data:`DEFAULT_THRESHOLD`).
    cell_size : int
        Side of a cell (default 224: a 2 x 2 mosaic is 448 px).
    transform : callable, optional
        Cell -> model input for the confidence check (see :func:`check_photos`).
    split : str
        Split name (``test``).
    device : str or torch.device
    overwrite : bool
        Replace an existing split of that name: once the new request has passed its checks,
        the files an earlier run wrote for the split (its images, masks, metadata and
        ``mosaic.json``) are removed, so none of them outlives the new dataset.
    model_name : str, optional
        Recorded in ``mosaic.json``.

    Returns
    -------
    dict
        What ``mosaic.json`` holds: settings, ``photos`` (every check), ``mosaics`` (photo
        names per mosaic, row-major), ``entries``.

    Raises
    ------
    AttribmapError
        Bad settings, too few confident photos (naming how many passed and which), or an
        existing split without ``overwrite``.
    """
    if not isinstance(split, str) or not split or os.sep in split or split.startswith("."):
        raise AttribmapError(f"split must be a plain folder name such as 'test'; got {split!r}")
    out = os.fspath(out_dir)
    metadata = os.path.join(out, "metadata", split)
    if os.path.isdir(metadata) and os.listdir(metadata) and not overwrite:
        raise AttribmapError(f"{metadata} already holds a split; pass overwrite=True (--overwrite) to replace it")
    checks = check_photos(model, photos, threshold, cell_size, transform, device)
    plans = plan_mosaics(checks, grid, count, seed)
    _remove_previous(out, split)  # only now: a refused request leaves the old split as it was
    cells = {index: _cell(photos[index].image, cell_size) for index in sorted({i for p in plans for i in p})}
    boxes = cell_boxes(grid, cell_size)
    side = grid * cell_size
    lines: Dict[str, List[str]] = {name: [] for name in ("ids", "labels", "sizes", "boxes", "masks")}
    for position, box in enumerate(boxes):
        mask = np.zeros((side, side), dtype=np.uint8)
        x0, y0, x1, y1 = box
        mask[y0:y1 + 1, x0:x1 + 1] = 255
        atomic_write_bytes(os.path.join(out, "masks", split, f"cell{position}.png"), _png(mask))
    for number, plan in enumerate(plans):
        data = _png(compose_mosaic([cells[i] for i in plan], grid))
        for position, (index, box) in enumerate(zip(plan, boxes)):
            image_id = f"images/{split}/mosaic_{number:05d}_cell{position}.png"
            atomic_write_bytes(os.path.join(out, image_id), data)
            lines["ids"].append(image_id)
            lines["labels"].append(f"{image_id},{checks[index].predicted}")
            lines["sizes"].append(f"{image_id},{side},{side}")
            lines["boxes"].append(f"{image_id},{box[0]},{box[1]},{box[2]},{box[3]}")
            lines["masks"].append(f"{image_id},masks/{split}/cell{position}.png,")
    for name, key in zip(_METADATA_FILES, ("ids", "labels", "sizes", "boxes", "masks")):
        atomic_write_text(os.path.join(metadata, name), "".join(line + "\n" for line in lines[key]))
    info = {"generator": "attribmap mosaic", "grid": grid, "count": len(plans), "seed": int(seed),
            "threshold": threshold, "cell_size": cell_size, "image_size": side, "split": split, "model": model_name,
            "entries": len(lines["ids"]),
            "photos": [{"name": c.name, "predicted": c.predicted, "probability": round(c.probability, 6),
                        "correct": c.correct, "passed": c.passed} for c in checks],
            "mosaics": [[checks[i].name for i in plan] for plan in plans]}
    atomic_write_text(os.path.join(out, MOSAIC_FILE), json.dumps(info, indent=1) + "\n")
    return info


def is_mosaic_dataset(root: PathLike) -> bool:
    """Whether ``root`` holds a dataset written by :func:`write_mosaic_dataset`."""
    return os.path.isfile(os.path.join(os.fspath(root), MOSAIC_FILE))


def read_mosaic_info(root: PathLike) -> Dict[str, Any]:
    """The ``mosaic.json`` of a mosaic dataset (raises when ``root`` is none)."""
    path = os.path.join(os.fspath(root), MOSAIC_FILE)
    if not os.path.isfile(path):
        raise AttribmapError(f"{os.fspath(root)!r} is not a mosaic dataset (no {MOSAIC_FILE})")
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
