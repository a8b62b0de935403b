"""Reference rows of a version-2 suite: maps made from the ground truth, scored like any method's.

Each row is a set of raw maps, one per image of a split, built from that image's ground truth
and scored by :func:`attribmap.evaluate.evaluate_maps` exactly as an extractor's maps are
(against the whole-object boxes and masks):

``object``
    the whole-object mask (the union of the image's objects);
``parts``
    the parts only: the best a map that finds nothing but the discriminative parts can do;
``body``
    the bodies only (objects minus parts);
``centre``
    a centred Gaussian, one fixed map for every image, with standard deviation
    :data:`CENTRE_SIGMA` x the frame side: a prior that knows nothing of the image;
``pooled``
    the whole-object mask area-averaged to the CAM grid (``grid x grid``, default 8), a raw
    map that the protocol upsamples bicubically like a CAM: what a perfect method limited to
    the CAM layer's resolution could reach.

The first four are ``(N, 224, 224)`` maps in the official frame (masks resized with
nearest-neighbour sampling, as the protocol resizes ground truth), so the protocol's resize
leaves them unchanged. See :mod:`attribmap.data.synthetic.suite_check` for the validity
check built on these rows.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from attribmap.data.errors import MetadataError
from attribmap.data.records import load_binary_mask
from attribmap.data.wsol_metadata import WSOLDataset, read_localization

__all__ = ["REFERENCE_ROWS", "CENTRE_SIGMA", "DEFAULT_GRID", "ReferenceGroundTruth", "load_reference_ground_truth",
           "maps_from_ground_truth",
           "reference_maps", "score_reference_rows", "row_title", "centre_prior"]

REFERENCE_ROWS = ("object", "parts", "body", "centre", "pooled")
#: Standard deviation of the centre prior, as a fraction of the frame side.
CENTRE_SIGMA = 0.25
#: CAM grid of the ``pooled`` row (an 8x8 CAM layer: ``resnet18_small`` at 128 px).
DEFAULT_GRID = 8
PathLike = Union[str, "os.PathLike[str]"]
_REGION_FILES = {"parts": "localization_parts.txt", "body": "localization_body.txt"}


def row_title(name: str, grid: int = DEFAULT_GRID) -> str:
    """Human-readable title of reference row ``name`` (e.g. for tables); the pooled row names its ``grid``."""
    titles = {"object": "whole object (GT mask)", "parts": "parts only", "body": "body only",
              "centre": f"centre prior (Gaussian, sigma {CENTRE_SIGMA:g} side)",
              "pooled": f"whole object pooled to {grid}x{grid}"}
    if name not in titles:
        raise MetadataError(f"unknown reference row {name!r}; expected one of {REFERENCE_ROWS}")
    return titles[name]


@dataclass
class ReferenceGroundTruth:
    """The ground truth of the images of a split that the reference rows need.

    Attributes
    ----------
    ids
        Image ids, in row order.
    sizes
        int64 ``(N, 2)``: ``(W, H)`` of each image.
    boxes
        N int64 arrays ``(k, 4)``: inclusive whole-object boxes in original pixels.
    objects, parts, body
        N bool arrays ``(k, H, W)``: per object, its whole / parts / body mask.
    ignore
        N bool arrays ``(H, W)``: the ignore region minus the objects (as datasets give it).
    """

    ids: List[str]
    sizes: np.ndarray
    boxes: List[np.ndarray]
    objects: List[np.ndarray]
    parts: List[np.ndarray]
    body: List[np.ndarray]
    ignore: List[np.ndarray]

    def union(self, kind: str = "objects") -> List[np.ndarray]:
        """Per image, the union over objects of ``kind`` (``objects``, ``parts`` or ``body``): bool (H, W)."""
        return [masks.any(axis=0) for masks in getattr(self, kind)]


def _stack(paths: Sequence[str], root: str) -> np.ndarray:
    return np.stack([load_binary_mask(os.path.join(root, p) if not os.path.isabs(p) else p) for p in paths])


def load_reference_ground_truth(root: PathLike, split: str = "test", image_ids: Optional[Sequence[str]] = None
                                ) -> ReferenceGroundTruth:
    """Read boxes and whole / parts / body masks of a version-2 suite split.

    Parameters
    ----------
    root
        Suite directory (``attribmap synth OUT_DIR``, generator version 2).
    split
        Split name.
    image_ids
        Images to read, in this order (default: the split's order); every id must be in
        the split.

    Raises
    ------
    MetadataError
        The split has no masks, no ``localization_parts.txt`` / ``localization_body.txt``
        (a version-1 suite), an id is unknown, or an image's parts / body masks do not match
        its objects.
    """
    dataset = WSOLDataset(root, split)
    if not dataset.has_masks or not dataset.has_boxes:
        raise MetadataError(f"split {split!r} of {dataset.root} has no boxes and masks; reference rows need both")
    regions = {}
    for kind, name in _REGION_FILES.items():
        path = os.path.join(dataset.metadata_dir, name)
        if not os.path.isfile(path):
            raise MetadataError(f"missing {path}: reference rows need the parts and body masks of a "
                                "version-2 suite (attribmap synth --generator 2)")
        regions[kind] = read_localization(path)[1]
    records = {record.image_id: record for record in dataset.records}
    wanted = list(records) if image_ids is None else [str(i) for i in image_ids]
    gt = ReferenceGroundTruth([], np.zeros((len(wanted), 2), dtype=np.int64), [], [], [], [], [])
    for position, image_id in enumerate(wanted):
        if image_id not in records:
            raise MetadataError(f"image id {image_id!r} is not in split {split!r} of {dataset.root}")
        record = records[image_id]
        objects = _stack(record.mask_paths, dataset.root)
        gt.ids.append(image_id)
        gt.sizes[position] = record.size
        gt.boxes.append(np.asarray(record.boxes, dtype=np.int64))
        gt.objects.append(objects)
        for kind in ("parts", "body"):
            paths = regions[kind].get(image_id, ([], ""))[0]
            if len(paths) != len(objects):
                raise MetadataError(f"{os.path.join(dataset.metadata_dir, _REGION_FILES[kind])}: image {image_id!r} "
                                    f"has {len(paths)} {kind} masks for {len(objects)} objects")
            getattr(gt, kind).append(_stack(paths, dataset.root))
        ignore = load_binary_mask(record.ignore_path) if record.ignore_path else np.zeros(objects.shape[1:], bool)
        gt.ignore.append(ignore & ~objects.any(axis=0))
    return gt


def centre_prior(image_size: int = 224, sigma: float = CENTRE_SIGMA) -> torch.Tensor:
    """The centre prior's map: float32 ``(image_size, image_size)``, a Gaussian of std ``sigma`` x side."""
    centres = (torch.arange(image_size, dtype=torch.float64) + 0.5) / image_size - 0.5
    squared = centres[:, None] ** 2 + centres[None, :] ** 2
    return torch.exp(-squared / (2 * sigma ** 2)).float()


def _frame(masks: List[np.ndarray], image_size: int) -> torch.Tensor:
    from attribmap.evaluate.frame import union_mask

    return torch.from_numpy(np.stack([union_mask(m, image_size) for m in masks]).astype(np.float32))


def _check_grid(grid: int, image_size: int) -> int:
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or not 1 <= grid <= image_size:
        raise MetadataError(f"grid must be an int in [1, {image_size}], got {grid!r}")
    return int(grid)


def maps_from_ground_truth(gt: ReferenceGroundTruth, grid: int = DEFAULT_GRID, image_size: int = 224,
                           rows: Sequence[str] = REFERENCE_ROWS) -> Dict[str, torch.Tensor]:
    """:func:`reference_maps` from ground truth already read (see there).

    Parameters
    ----------
    gt : ReferenceGroundTruth
        The split's masks, boxes and parts.
    grid : int
        Side of the grid of the pooled row.
    image_size : int
        Side of the maps.
    rows : sequence of str
        The rows to make.
    """
    grid = _check_grid(grid, image_size)
    unknown = [name for name in rows if name not in REFERENCE_ROWS]
    if unknown:
        raise MetadataError(f"unknown reference rows {unknown}; expected names from {REFERENCE_ROWS}")
    maps: Dict[str, torch.Tensor] = {}
    objects = _frame(gt.objects, image_size) if {"object", "pooled"} & set(rows) else None
    for name in rows:
        if name == "object":
            maps[name] = objects
        elif name in ("parts", "body"):
            maps[name] = _frame(getattr(gt, name), image_size)
        elif name == "centre":
            maps[name] = centre_prior(image_size).expand(len(gt.ids), image_size, image_size)
        else:
            maps[name] = F.adaptive_avg_pool2d(objects[:, None], grid)[:, 0]
    return maps


def reference_maps(root: PathLike, split: str = "test", image_ids: Optional[Sequence[str]] = None,
                   grid: int = DEFAULT_GRID, image_size: int = 224,
                   rows: Sequence[str] = REFERENCE_ROWS) -> Dict[str, torch.Tensor]:
    """Raw maps of the reference rows, ready for :func:`attribmap.evaluate.evaluate_maps`.

    Parameters
    ----------
    root, split, image_ids
        As in :func:`load_reference_ground_truth`.
    grid
        Side of the CAM grid of the ``pooled`` row.
    image_size
        Side of the official frame (224).
    rows
        Which rows (default all of :data:`REFERENCE_ROWS`).

    Returns
    -------
    dict
        name -> float32 tensor: ``(N, image_size, image_size)`` in [0, 1] for ``object``,
        ``parts``, ``body``, ``centre`` (the same map for every image, an expanded view),
        ``(N, grid, grid)`` for ``pooled`` (fraction of each cell covered by the objects).

    Example
    -------
    >>> maps = reference_maps("suite", "test")  # doctest: +SKIP
    >>> evaluate_maps(maps["parts"], boxes=..., image_sizes=..., masks=...)  # doctest: +SKIP
    """
    return maps_from_ground_truth(load_reference_ground_truth(root, split, image_ids), grid, image_size, rows)


def score_reference_rows(root: PathLike, split: str = "test", image_ids: Optional[Sequence[str]] = None,
                         grid: int = DEFAULT_GRID, delta: float = 0.001, image_size: int = 224,
                         rows: Sequence[str] = REFERENCE_ROWS, engine: str = "auto") -> Dict[str, dict]:
    """Score the reference rows with the official protocol.

    Parameters
    ----------
    root, split, image_ids, grid, image_size, rows
        As in :func:`reference_maps`.
    delta
        Threshold step of the protocol (0.001 official, 0.01 coarse).
    engine
        Contour engine of :func:`~attribmap.evaluate.evaluate_maps` (same numbers).

    Returns
    -------
    dict
        name -> the :func:`~attribmap.evaluate.evaluate_maps` result of that row (``MaxBoxAcc``,
        ``MaxBoxAccV2``, ``MaxBoxAccV2_per_iou``, ``PxAP``, ...), in the order of ``rows``.
    """
    from attribmap.evaluate import evaluate_maps

    gt = load_reference_ground_truth(root, split, image_ids)
    masks, scores = gt.union("objects"), {}
    for name in rows:  # one row's maps at a time
        maps = maps_from_ground_truth(gt, grid, image_size, (name,))[name]
        scores[name] = evaluate_maps(maps, boxes=gt.boxes, image_sizes=gt.sizes, masks=masks, ignore=gt.ignore,
                                     delta=delta, image_size=image_size, engine=engine)
    return scores
