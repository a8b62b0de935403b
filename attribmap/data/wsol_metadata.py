"""Datasets described by clovaai/wsolevaluation metadata files.

Layout (``metadata_root`` defaults to ``root/metadata``)::

    metadata_root/<split>/image_ids.txt      <path>                         one per image
    metadata_root/<split>/class_labels.txt   <path>,<label>                 label: int >= 0
    metadata_root/<split>/image_sizes.txt    <path>,<W>,<H>                 required with boxes
    metadata_root/<split>/localization.txt   <path>,<x0>,<y0>,<x1>,<y1>     one line per box
                                         or  <path>,<mask.png>,<ignore.png> one line per instance
    metadata_root/<split>/localization_masks.txt   (attribmap extension) mask lines as above,
                                                    read in addition to a box localization.txt

Image and mask paths are relative to ``root``. ``localization.txt`` is optional (training
splits often have none). The kind of localization is taken from the field count of its lines;
for masks the ignore path is given on an image's first line only (it may be empty).
Everything is parsed and checked when the dataset is opened.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np

from attribmap.data.errors import MetadataError, line_error
from attribmap.data.records import ImageRecord, RecordDataset

__all__ = ["WSOLDataset", "read_image_ids", "read_class_labels", "read_image_sizes",
           "read_localization", "check_box"]

PathLike = Union[str, "os.PathLike[str]"]
BoxLines = Dict[str, List[Tuple[Tuple[int, int, int, int], int]]]
MaskLines = Dict[str, Tuple[List[str], str]]


def _numbered_lines(path: str) -> List[Tuple[int, str]]:
    """Non-blank lines of a text file with their 1-based numbers (line ends stripped)."""
    if not os.path.isfile(path):
        raise MetadataError(f"missing metadata file {path}")
    with open(path, encoding="utf-8") as handle:
        return [(number, line.rstrip("\r\n")) for number, line in enumerate(handle, start=1)
                if line.strip()]


def _fields(path: str, number: int, line: str, counts: Tuple[int, ...], expected: str) -> List[str]:
    parts = [part.strip() for part in line.split(",")]
    if len(parts) not in counts:
        raise line_error(path, number, f"expected {expected}, got {line!r}")
    if not parts[0]:
        raise line_error(path, number, f"empty image path in {line!r}")
    return parts


def _integer(path: str, number: int, text: str, what: str, minimum: Optional[int] = None) -> int:
    try:
        value = int(text)
    except ValueError:
        try:
            as_float = float(text)
        except ValueError:
            as_float = float("nan")
        if not as_float.is_integer():
            raise line_error(path, number, f"{what} must be an integer, got {text!r}") from None
        value = int(as_float)
    if minimum is not None and value < minimum:
        raise line_error(path, number, f"{what} must be >= {minimum}, got {value}")
    return value


def read_image_ids(path: PathLike) -> List[str]:
    """Parse ``image_ids.txt`` at ``path``: one image path per line, no duplicates, at least one."""
    path = os.fspath(path)
    ids: List[str] = []
    seen: Dict[str, int] = {}
    for number, line in _numbered_lines(path):
        image_id = line.strip()
        if image_id in seen:
            raise line_error(path, number, f"duplicate image id {image_id!r} (first on line {seen[image_id]})")
        seen[image_id] = number
        ids.append(image_id)
    if not ids:
        raise MetadataError(f"{path}: no image ids (the file is empty)")
    return ids


def read_class_labels(path: PathLike) -> Dict[str, int]:
    """Parse ``class_labels.txt`` at ``path``: ``<path>,<label>`` with an int label >= 0."""
    path = os.fspath(path)
    labels: Dict[str, int] = {}
    for number, line in _numbered_lines(path):
        image_id, text = _fields(path, number, line, (2,), "'<path>,<label>'")
        label = _integer(path, number, text, "class label", minimum=0)
        if labels.get(image_id, label) != label:
            raise line_error(path, number, f"{image_id!r} labelled {label}, earlier {labels[image_id]}")
        labels[image_id] = label
    return labels


def read_image_sizes(path: PathLike) -> Dict[str, Tuple[int, int]]:
    """Parse ``image_sizes.txt`` at ``path``: ``<path>,<W>,<H>`` with positive ints."""
    path = os.fspath(path)
    sizes: Dict[str, Tuple[int, int]] = {}
    for number, line in _numbered_lines(path):
        image_id, w_text, h_text = _fields(path, number, line, (3,), "'<path>,<W>,<H>'")
        size = (_integer(path, number, w_text, "width", minimum=1),
                _integer(path, number, h_text, "height", minimum=1))
        if sizes.get(image_id, size) != size:
            raise line_error(path, number, f"{image_id!r} has size {size}, earlier {sizes[image_id]}")
        sizes[image_id] = size
    return sizes


def read_localization(path: PathLike) -> Tuple[str, Union[BoxLines, MaskLines]]:
    """Parse ``localization.txt`` at ``path`` (boxes or masks, detected from the first line).

    Returns
    -------
    kind, entries
        ``("boxes", {id: [((x0, y0, x1, y1), line_number), ...]})`` or
        ``("masks", {id: ([mask_path, ...], ignore_path)})`` (paths as written; ignore may be "").
    """
    path = os.fspath(path)
    lines = _numbered_lines(path)
    if not lines:
        raise MetadataError(f"{path}: no localization lines (the file is empty)")
    kind = "masks" if len(lines[0][1].split(",")) == 3 else "boxes"
    if kind == "boxes":
        boxes: BoxLines = {}
        for number, line in lines:
            parts = _fields(path, number, line, (5,), "'<path>,<x0>,<y0>,<x1>,<y1>' (box localization)")
            box = tuple(_integer(path, number, text, name) for text, name in zip(parts[1:], ("x0", "y0", "x1", "y1")))
            boxes.setdefault(parts[0], []).append((box, number))  # type: ignore[arg-type]
        return kind, boxes
    masks: MaskLines = {}
    for number, line in lines:
        image_id, mask_path, ignore_path = _fields(
            path, number, line, (3,), "'<path>,<mask.png>,<ignore.png>' (mask localization)")
        if not mask_path:
            raise line_error(path, number, f"empty mask path for {image_id!r}")
        if image_id in masks:
            if ignore_path:
                raise line_error(path, number, f"ignore mask {ignore_path!r} given again for {image_id!r}; "
                                 "only an image's first line may name one")
            masks[image_id][0].append(mask_path)
        else:
            masks[image_id] = ([mask_path], ignore_path)
    return kind, masks


def check_box(box: Tuple[int, int, int, int], size: Tuple[int, int], where: str) -> None:
    """Reject a ``box`` with ``x1 < x0`` / ``y1 < y0`` or outside its image of ``size`` ``(W, H)``.

    Coordinates are inclusive pixels; ``x1 == W`` (and ``y1 == H``) is accepted because
    boxes made as ``x + w`` (CUB) or from 1-based ImageNet ``xmax`` reach it. ``where`` names
    the box in the error message (file and line).
    """
    x0, y0, x1, y1 = box
    width, height = size
    if x1 < x0 or y1 < y0:
        raise MetadataError(f"{where}: box (x0, y0, x1, y1) = {box} has x1 < x0 or y1 < y0")
    if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
        raise MetadataError(f"{where}: box (x0, y0, x1, y1) = {box} lies outside its image "
                            f"of size (W, H) = ({width}, {height})")


def _split_dir(root: str, split: str, metadata_root: Optional[PathLike]) -> str:
    base = os.path.join(root, "metadata") if metadata_root is None else os.fspath(metadata_root)
    candidate = os.path.join(base, split)
    if os.path.isdir(candidate):
        return candidate
    if metadata_root is not None and os.path.isfile(os.path.join(base, "image_ids.txt")):
        return base
    raise MetadataError(f"no metadata for split {split!r}: expected a directory {candidate} "
                        "holding image_ids.txt, class_labels.txt, ...")


class WSOLDataset(RecordDataset):
    """A split of a dataset in the clovaai/wsolevaluation metadata layout.

    Parameters
    ----------
    root
        Data root; image and mask paths in the metadata are relative to it.
    split
        Split name, e.g. ``"train"``, ``"val"`` or ``"test"``.
    metadata_root
        Directory holding one sub-directory per split (default ``root/metadata``); a
        directory that directly holds ``image_ids.txt`` is accepted too.
    transform
        PIL RGB image -> item ``image``; default :func:`attribmap.data.official_transform`.
    num_classes
        Number of classes; default ``max(label) + 1`` over this split.

    Raises
    ------
    MetadataError
        On any malformed line (file and line number named), a missing image or mask file
        (path named), a box outside its image or with ``x1 < x0`` (values named), or an image
        without a label, size (box datasets) or localization entry.

    Notes
    -----
    Items are dicts, see :class:`attribmap.data.records.RecordDataset`. Attributes:
    ``labels`` (list of int), ``num_classes``, ``ids``, ``has_boxes``, ``has_masks``,
    ``metadata_dir`` (the split's metadata directory).
    """

    def __init__(self, root: PathLike, split: str, metadata_root: Optional[PathLike] = None,
                 transform: Optional[Callable[[Any], Any]] = None, *, num_classes: Optional[int] = None) -> None:
        root = os.path.abspath(os.fspath(root))
        if not isinstance(split, str) or not split:
            raise ValueError(f"split must be a non-empty string such as 'test', got {split!r}")
        if not os.path.isdir(root):
            raise MetadataError(f"dataset root {root} is not a directory")
        self.root = root
        self.split = split
        self.metadata_dir = _split_dir(root, split, metadata_root)
        records, has_masks = self._read_records()
        super().__init__(records, transform=transform, num_classes=num_classes, has_masks=has_masks)

    def _file(self, name: str) -> str:
        return os.path.join(self.metadata_dir, name)

    def _read_records(self) -> Tuple[List[ImageRecord], bool]:
        ids = read_image_ids(self._file("image_ids.txt"))
        labels = read_class_labels(self._file("class_labels.txt"))
        sizes_file = self._file("image_sizes.txt")
        sizes = read_image_sizes(sizes_file) if os.path.isfile(sizes_file) else None
        boxes: Optional[BoxLines] = None
        masks: Optional[MaskLines] = None
        localization_file = self._file("localization.txt")
        if os.path.isfile(localization_file):
            kind, entries = read_localization(localization_file)
            if kind == "boxes":
                boxes = entries  # type: ignore[assignment]
            else:
                masks = entries  # type: ignore[assignment]
        extra_masks_file = self._file("localization_masks.txt")
        if os.path.isfile(extra_masks_file):
            kind, entries = read_localization(extra_masks_file)
            if kind != "masks" or masks is not None:
                raise MetadataError(f"{extra_masks_file}: expected mask lines '<path>,<mask.png>,<ignore.png>' "
                                    "next to a box localization.txt")
            masks = entries  # type: ignore[assignment]
        if boxes is not None and sizes is None:
            raise MetadataError(f"missing metadata file {sizes_file} (needed to check the boxes of "
                                f"{localization_file})")
        records = [self._record(image_id, labels, sizes, boxes, masks) for image_id in ids]
        return records, masks is not None

    def _record(self, image_id: str, labels: Dict[str, int], sizes: Optional[Dict[str, Tuple[int, int]]],
                boxes: Optional[BoxLines], masks: Optional[MaskLines]) -> ImageRecord:
        path = os.path.join(self.root, image_id)
        if not os.path.exists(path):
            raise MetadataError(f"image {image_id!r} listed in {self._file('image_ids.txt')} "
                                f"not found at {path}")
        if image_id not in labels:
            raise MetadataError(f"{self._file('class_labels.txt')}: no label for image {image_id!r}")
        size = None
        if sizes is not None:
            if image_id not in sizes:
                raise MetadataError(f"{self._file('image_sizes.txt')}: no size for image {image_id!r}")
            size = sizes[image_id]
        box_array = np.zeros((0, 4), dtype=np.int64)
        if boxes is not None:
            if image_id not in boxes:
                raise MetadataError(f"{self._file('localization.txt')}: no box for image {image_id!r}")
            for box, number in boxes[image_id]:
                check_box(box, size, f"{self._file('localization.txt')}:{number}")  # type: ignore[arg-type]
            box_array = np.array([box for box, _ in boxes[image_id]], dtype=np.int64).reshape(-1, 4)
        mask_paths: Tuple[str, ...] = ()
        ignore_path = None
        if masks is not None:
            if image_id not in masks:
                raise MetadataError(f"{self.metadata_dir}: no mask for image {image_id!r}")
            relative_masks, relative_ignore = masks[image_id]
            mask_paths = tuple(self._existing(p, image_id) for p in relative_masks)
            ignore_path = self._existing(relative_ignore, image_id) if relative_ignore else None
        return ImageRecord(image_id=image_id, path=path, label=labels[image_id], size=size,
                           boxes=box_array, mask_paths=mask_paths, ignore_path=ignore_path)

    def _existing(self, relative: str, image_id: str) -> str:
        path = os.path.join(self.root, relative)
        if not os.path.exists(path):
            raise MetadataError(f"mask {relative!r} of image {image_id!r} not found at {path}")
        return path
