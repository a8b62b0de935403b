"""CUB-200-2011 as distributed (Wah et al. 2011), read without any conversion.

Files read from ``root`` (the ``CUB_200_2011`` directory)::

    images.txt              <image_id> <path under images/>
    image_class_labels.txt  <image_id> <class_id>          1-based, returned 0-based
    train_test_split.txt    <image_id> <is_training_image> 1 = train, 0 = test
    bounding_boxes.txt      <image_id> <x> <y> <width> <height>   floats
    classes.txt             <class_id> <name>                     optional
    images/<path>
    segmentations/<path with .png>                                optional

A box becomes ``(int(x), int(y), int(x + width), int(y + height))``, the convention of the
wsolevaluation CUB metadata. Item ids are the ``images.txt`` paths, as in that metadata.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np

from attribmap.data.errors import MetadataError, line_error
from attribmap.data.records import ImageRecord, RecordDataset
from attribmap.data.wsol_metadata import check_box

__all__ = ["CUBDataset"]

PathLike = Union[str, "os.PathLike[str]"]
_SPLITS = ("train", "test", "all")


def _table(path: str, columns: int, what: str) -> Dict[str, Tuple[List[str], int]]:
    """``{image_id: (other columns, line number)}`` of a whitespace-separated CUB file."""
    if not os.path.isfile(path):
        raise MetadataError(f"missing CUB file {path}")
    rows: Dict[str, Tuple[List[str], int]] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != columns:
                raise line_error(path, number, f"expected {what}, got {line.rstrip()!r}")
            if parts[0] in rows:
                raise line_error(path, number, f"duplicate image id {parts[0]!r} "
                                 f"(first on line {rows[parts[0]][1]})")
            rows[parts[0]] = (parts[1:], number)
    if not rows:
        raise MetadataError(f"{path}: the file is empty")
    return rows


def _number(path: str, line: int, text: str, what: str, kind: type = float) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise line_error(path, line, f"{what} must be a number, got {text!r}") from None


class CUBDataset(RecordDataset):
    """CUB-200-2011 read from its own files.

    Parameters
    ----------
    root
        The ``CUB_200_2011`` directory.
    split
        ``"train"`` or ``"test"`` (from ``train_test_split.txt``), or ``"all"``.
    transform
        PIL RGB image -> item ``image``; default :func:`attribmap.data.official_transform`.
    segmentations
        Directory of the segmentation PNGs; default ``root/segmentations`` when it exists,
        else no masks. Pass ``False`` to ignore masks.
    segmentation_threshold
        Grey level (0..255) a mask pixel must exceed. CUB masks are the mean of five workers'
        masks (0, 51, ..., 255); the default 127 keeps pixels most workers marked.

    Raises
    ------
    MetadataError
        A malformed line (file and line number named), an id missing from one of the files,
        a missing image or segmentation (path named), or a box outside its image.

    Notes
    -----
    Items are dicts, see :class:`attribmap.data.records.RecordDataset`; labels are 0-based
    (``class_id - 1``), ``num_classes`` is 200 for the full dataset (``max(class_id)``), and
    ``class_names`` holds the names from ``classes.txt`` when present. Image sizes are read
    from the image headers when the dataset is opened (needed to check the boxes).
    """

    def __init__(self, root: PathLike, split: str = "test", transform: Optional[Callable[[Any], Any]] = None,
                 segmentations: Union[PathLike, bool, None] = None, segmentation_threshold: float = 127) -> None:
        root = os.path.abspath(os.fspath(root))
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
        if not os.path.isdir(root):
            raise MetadataError(f"CUB root {root} is not a directory")
        self.root = root
        self.split = split
        if segmentations is None:
            default = os.path.join(root, "segmentations")
            segmentations = default if os.path.isdir(default) else False
        self.segmentations_dir: Optional[str] = (os.path.abspath(os.fspath(segmentations))
                                                 if segmentations is not False else None)
        records, num_classes = self._read_records()
        self.class_names = self._read_class_names()
        super().__init__(records, transform=transform, num_classes=num_classes,
                         has_masks=self.segmentations_dir is not None, mask_threshold=segmentation_threshold)

    def _read_records(self) -> Tuple[List[ImageRecord], int]:
        join = lambda name: os.path.join(self.root, name)  # noqa: E731
        images = _table(join("images.txt"), 2, "'<image_id> <path>'")
        classes = _table(join("image_class_labels.txt"), 2, "'<image_id> <class_id>'")
        splits = _table(join("train_test_split.txt"), 2, "'<image_id> <is_training_image>'")
        boxes = _table(join("bounding_boxes.txt"), 5, "'<image_id> <x> <y> <width> <height>'")
        for name, table in (("image_class_labels.txt", classes), ("train_test_split.txt", splits),
                            ("bounding_boxes.txt", boxes)):
            missing = [image_id for image_id in images if image_id not in table]
            if missing:
                raise MetadataError(f"{join(name)}: no entry for image id {missing[0]} "
                                    f"({len(missing)} ids of images.txt missing)")
        records: List[ImageRecord] = []
        largest_class = 0
        for image_id, ((relative,), image_line) in images.items():
            (class_text,), class_line = classes[image_id]
            class_id = _number(join("image_class_labels.txt"), class_line, class_text, "class id", int)
            if class_id < 1:
                raise line_error(join("image_class_labels.txt"), class_line,
                                 f"class id must be >= 1 (1-based), got {class_id}")
            largest_class = max(largest_class, class_id)
            (flag,), flag_line = splits[image_id]
            if flag not in ("0", "1"):
                raise line_error(join("train_test_split.txt"), flag_line, f"is_training_image must be 0 or 1, "
                                 f"got {flag!r}")
            if self.split != "all" and (flag == "1") != (self.split == "train"):
                continue
            origin = {"image": f"{join('images.txt')}:{image_line}",
                      "label": f"{join('image_class_labels.txt')}:{class_line}"}
            records.append(self._record(relative, class_id - 1, boxes[image_id], origin))
        return records, largest_class

    def _record(self, relative: str, label: int, box_row: Tuple[List[str], int], origin: Dict[str, Any]) -> ImageRecord:
        from attribmap.inputs import image_size

        path = os.path.join(self.root, "images", relative)
        if not os.path.exists(path):
            raise MetadataError(f"{origin['image']}: image {relative!r} not found at {path}")
        size = image_size(path)
        box_file = os.path.join(self.root, "bounding_boxes.txt")
        values, line = box_row
        x, y, w, h = (_number(box_file, line, text, name) for text, name in zip(values, "xywh"))
        if w < 0 or h < 0:
            raise line_error(box_file, line, f"box (x, y, width, height) = {(x, y, w, h)} has a negative side")
        box = (int(x), int(y), int(x + w), int(y + h))
        check_box(box, size, f"{box_file}:{line} (image {relative})")
        mask_paths: Tuple[str, ...] = ()
        if self.segmentations_dir is not None:
            mask = os.path.join(self.segmentations_dir, os.path.splitext(relative)[0] + ".png")
            if not os.path.exists(mask):
                raise MetadataError(f"segmentation of image {relative!r} not found at {mask}")
            mask_paths = (mask,)
        origin["boxes"] = (f"{box_file}:{line}",)
        return ImageRecord(image_id=relative, path=path, label=label, size=size,
                           boxes=np.array([box], dtype=np.int64), mask_paths=mask_paths, origin=origin)

    def _read_class_names(self) -> Optional[List[str]]:
        path = os.path.join(self.root, "classes.txt")
        if not os.path.isfile(path):
            return None
        names: Dict[int, str] = {}
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    parts = line.split(maxsplit=1)
                    if len(parts) != 2:
                        raise line_error(path, number, f"expected '<class_id> <name>', got {line.rstrip()!r}")
                    names[_number(path, number, parts[0], "class id", int)] = parts[1].strip()
        return [names.get(i, str(i)) for i in range(1, max(names) + 1)]
