"""One in-memory record per image, the dataset that serves them, and the batch collate.

Readers (:mod:`attribmap.data.wsol_metadata`, :mod:`attribmap.data.cub`) parse and validate
their files into :class:`ImageRecord` objects when the dataset is opened; everything here
assumes the records are already valid.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from attribmap.data.errors import MetadataError

__all__ = ["ImageRecord", "RecordDataset", "collate_wsol", "load_binary_mask", "size_mismatch"]


@dataclass(frozen=True)
class ImageRecord:
    """Everything known about one image before it is read.

    Attributes
    ----------
    image_id
        The image's id as written in the metadata (its path relative to the data root).
    path
        Absolute path of the image file.
    label
        Class index, ``0 <= label < num_classes``.
    size
        ``(W, H)`` of the original image, or ``None`` when the metadata gives none (then it
        is read from the file).
    boxes
        int64 array ``(k, 4)`` of inclusive ``x0, y0, x1, y1`` boxes in original pixels
        (``k = 0`` when the split has no boxes).
    mask_paths
        Absolute paths of the instance masks (empty when the split has no masks).
    ignore_path
        Absolute path of the ignore mask, or ``None``.
    origin
        Where the metadata says each thing, as ``"file:line"``: ``"image"`` (the line listing
        the image), ``"label"``, ``"size"`` and ``"boxes"`` (a tuple, one per box), where
        known; used to name the line in errors.
    """

    image_id: str
    path: str
    label: int
    size: Optional[Tuple[int, int]] = None
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), dtype=np.int64))
    mask_paths: Tuple[str, ...] = ()
    ignore_path: Optional[str] = None
    origin: Dict[str, Any] = field(default_factory=dict)

    def where(self, what: str) -> str:
        """``"file:line"`` of ``what`` (``"image"``, ``"label"``, ``"size"``), else the image id."""
        return str(self.origin.get(what, f"image {self.image_id!r}"))


def load_binary_mask(path: str, shape: Optional[Tuple[int, int]] = None, threshold: float = 0.5) -> np.ndarray:
    """Read a mask PNG as a bool array, foreground = grey value > ``threshold``.

    The default 0.5 (on 0..255 grey values) is wsolevaluation's rule: any non-zero pixel.

    Parameters
    ----------
    path
        Mask image (any mode PIL reads; converted to 8-bit grey by
        :func:`attribmap.inputs.load_image`, 16-bit masks scaled by their bit depth).
    shape
        ``(H, W)`` to bring the mask to with nearest-neighbour resampling, or ``None`` to keep
        the file's own size.
    threshold
        Grey level (0..255 scale) a foreground pixel must exceed.

    Returns
    -------
    numpy.ndarray
        bool ``(H, W)``.

    Raises
    ------
    attribmap.errors.ImageReadError
        The file cannot be decoded (the message names it).
    """
    from PIL import Image

    from attribmap.inputs import load_image

    grey = load_image(path, mode="L")
    if shape is not None and grey.size != (shape[1], shape[0]):
        grey = grey.resize((shape[1], shape[0]), Image.NEAREST)
    return np.asarray(grey) > threshold


class RecordDataset(Dataset):
    """A map-style dataset of validated :class:`ImageRecord` objects.

    An item is a dict:

    * ``image``: the output of ``transform`` (default: float tensor ``(3, 224, 224)`` in the
      official frame, ImageNet-normalized);
    * ``label``: int;
    * ``boxes``: int64 tensor ``(k, 4)``, inclusive ``x0, y0, x1, y1`` in original pixels;
    * ``size``: ``(W, H)`` of the original image (tuple of ints);
    * ``mask``: bool tensor ``(H_m, W_m)``, the union of the instance masks at the masks' own
      resolution (normally the image's), only where the dataset has masks;
    * ``ignore``: bool tensor like ``mask``: the ignore region minus the foreground (all
      False when the image has no ignore mask), only where the dataset has masks;
    * ``id``: the image id (path relative to the data root).

    Parameters
    ----------
    records
        The images, already validated.
    transform
        PIL RGB image -> anything (normally a tensor); ``None`` gives
        :func:`attribmap.data.official_transform` (224).
    num_classes
        Number of classes; ``None`` = ``max(label) + 1``.
    has_masks
        Whether items carry ``mask`` / ``ignore``.
    mask_threshold
        Grey level (0..255) an instance-mask pixel must exceed to be foreground; 0.5 is
        wsolevaluation's rule. Ignore masks always use 0.5.
    """

    def __init__(self, records: Sequence[ImageRecord], transform: Optional[Callable[[Any], Any]] = None,
                 num_classes: Optional[int] = None, has_masks: bool = False,
                 mask_threshold: float = 0.5) -> None:
        if transform is None:
            from attribmap.data.transforms import official_transform

            transform = official_transform(224)
        self.records: List[ImageRecord] = list(records)
        self.transform = transform
        self.has_masks = bool(has_masks)
        self.mask_threshold = float(mask_threshold)
        self.has_boxes = any(len(r.boxes) for r in self.records)
        largest = max((r.label for r in self.records), default=-1)
        if num_classes is None:
            num_classes = largest + 1
        elif largest >= num_classes:
            first = next(r for r in self.records if r.label >= num_classes)
            raise MetadataError(f"{first.where('label')}: image {first.image_id!r} has label {first.label}, out of "
                                f"range for num_classes={num_classes} (expected 0..{num_classes - 1})")
        self.num_classes: int = int(num_classes)

    @property
    def labels(self) -> List[int]:
        """Class index of every image, in dataset order."""
        return [r.label for r in self.records]

    @property
    def ids(self) -> List[str]:
        """Image id of every image, in dataset order."""
        return [r.image_id for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        from attribmap.inputs import load_image

        record = self.records[index]
        image = load_image(record.path)
        if record.size is not None and tuple(record.size) != image.size:
            raise MetadataError(size_mismatch(record, image.size))
        size = record.size if record.size is not None else image.size
        item: Dict[str, Any] = {
            "image": self.transform(image),
            "label": record.label,
            "boxes": torch.from_numpy(np.array(record.boxes, dtype=np.int64).reshape(-1, 4)),
            "size": (int(size[0]), int(size[1])),
            "id": record.image_id,
        }
        if self.has_masks:
            mask, ignore = self._read_masks(record, size)
            item["mask"] = torch.from_numpy(mask)
            item["ignore"] = torch.from_numpy(ignore)
        return item

    def _read_masks(self, record: ImageRecord, size: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
        """Union of the instance masks and the ignore region minus it, bool ``(H, W)`` each.

        Instance masks of different sizes are brought to the first one's size (nearest).
        """
        if not record.mask_paths:
            empty = np.zeros((size[1], size[0]), dtype=bool)
            return empty, empty.copy()
        mask = load_binary_mask(record.mask_paths[0], threshold=self.mask_threshold)
        for path in record.mask_paths[1:]:
            mask = mask | load_binary_mask(path, mask.shape, self.mask_threshold)
        if record.ignore_path:
            ignore = load_binary_mask(record.ignore_path, mask.shape) & ~mask
        else:
            ignore = np.zeros_like(mask)
        return mask, ignore


def size_mismatch(record: ImageRecord, real: Tuple[int, int]) -> str:
    """The message for an image whose file is not the size its metadata gives.

    Parameters
    ----------
    record : ImageRecord
        The image's record (its metadata size and ``file:line``).
    real : (int, int)
        ``(W, H)`` of the file.
    """
    return (f"{record.where('size')}: image {record.image_id!r} is {real[0]} x {real[1]} pixels (W x H) but the "
            f"metadata gives (W, H) = ({record.size[0]}, {record.size[1]})")


def collate_wsol(batch: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Batch WSOL items whose box counts and mask sizes differ.

    Parameters
    ----------
    batch
        Items of a :class:`RecordDataset` (or any dicts with the same keys).

    Returns
    -------
    dict
        ``image``: stacked ``(N, 3, H, W)`` when every image is a tensor of one shape, else a
        list; ``label``: int64 ``(N,)``; ``size``: int64 ``(N, 2)`` as ``(W, H)``; ``boxes``,
        ``mask``, ``ignore``, ``id`` and any other key: lists of length N.
    """
    if len(batch) == 0:
        raise ValueError("collate_wsol got an empty batch")
    keys = list(batch[0].keys())
    for position, item in enumerate(batch):
        if list(item.keys()) != keys:
            raise ValueError(f"batch item {position} has keys {sorted(item)}, expected {sorted(keys)}")
    out: Dict[str, Any] = {}
    for key in keys:
        values = [item[key] for item in batch]
        if key == "image" and all(isinstance(v, torch.Tensor) for v in values) \
                and len({tuple(v.shape) for v in values}) == 1:
            out[key] = torch.stack(values)
        elif key == "label":
            out[key] = torch.as_tensor([int(v) for v in values], dtype=torch.int64)
        elif key == "size":
            out[key] = torch.as_tensor([[int(v[0]), int(v[1])] for v in values], dtype=torch.int64)
        else:
            out[key] = values
    return out
