"""Open the dataset a benchmark scores and cut it into batches shared out across processes."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

from attribmap.errors import AttribmapError

__all__ = ["open_dataset", "detect_format", "batch_plan", "input_transform"]


def detect_format(data: str, metadata: Optional[str] = None) -> str:
    """``"wsol"`` (wsolevaluation metadata, synthetic suite) or ``"cub"`` (CUB as distributed).

    Parameters
    ----------
    data : str
        The dataset directory.
    metadata : str, optional
        A separate wsolevaluation metadata directory (then the format is ``"wsol"``).

    Raises
    ------
    FileNotFoundError
        ``data`` is not a directory.
    AttribmapError
        The directory holds neither layout.
    """
    if not os.path.isdir(data):
        raise FileNotFoundError(f"dataset directory not found: {data!r}")
    if metadata is not None or os.path.isdir(os.path.join(data, "metadata")):
        return "wsol"
    if os.path.isfile(os.path.join(data, "images.txt")) and os.path.isfile(os.path.join(data, "bounding_boxes.txt")):
        return "cub"
    raise AttribmapError(f"{data!r} is not a dataset attribmap can read: expected a wsolevaluation layout "
                         "(metadata/<split>/image_ids.txt, ...) or CUB-200-2011 as distributed "
                         "(images.txt, bounding_boxes.txt, ...)")


def input_transform(protocol: str, input_size: int):
    """PIL image -> normalized tensor (3, S, S) in the frame of ``protocol``.

    ``"official"``: squash-resize to ``input_size``. ``"legacy"``: resize to
    ``round(input_size * 256 / 224)`` then center-crop ``input_size`` (256 -> 224 at the usual
    size).
    """
    from attribmap.data import legacy_transform, official_transform

    if protocol == "legacy":
        return legacy_transform(int(round(input_size * 256 / 224)), input_size)
    return official_transform(input_size)


def open_dataset(data: str, split: str, protocol: str = "official", input_size: int = 224,
                 metadata: Optional[str] = None) -> Tuple[Any, str]:
    """The split to score, its items transformed for the model.

    Parameters
    ----------
    data : str
        Dataset directory (see :func:`detect_format`).
    split : str
        Split name (``test``, ``val``, ``train``; CUB: ``test`` / ``train`` / ``all``).
    protocol : {"official", "legacy"}
        Chooses the input transform (:func:`input_transform`).
    input_size : int
        Side of the model's input in pixels.
    metadata : str, optional
        wsolevaluation metadata directory when it is not ``data/metadata``.

    Returns
    -------
    (dataset, format)
        A :class:`attribmap.data.RecordDataset` (items: image, label, boxes, size, id and
        mask / ignore where the dataset has masks) and ``"wsol"`` or ``"cub"``.
    """
    from attribmap.data import CUBDataset, WSOLDataset

    kind = detect_format(data, metadata)
    transform = input_transform(protocol, input_size)
    if kind == "cub":
        dataset = CUBDataset(data, split, transform=transform)
    else:
        dataset = WSOLDataset(data, split, metadata_root=metadata, transform=transform)
    if len(dataset) == 0:
        raise AttribmapError(f"split {split!r} of {data!r} holds no image")
    if not dataset.has_boxes and not dataset.has_masks:
        raise AttribmapError(f"split {split!r} of {data!r} has neither boxes nor masks: nothing to score")
    return dataset, kind


def batch_plan(length: int, batch_size: int, rank: int = 0, world_size: int = 1) -> List[Tuple[int, List[int]]]:
    """The batches one process scores: ``[(batch_number, indices), ...]``.

    The dataset of ``length`` images is cut into consecutive batches of ``batch_size`` (the
    last may be smaller) exactly as in a single-process run, and batch ``b`` goes to rank
    ``b % world_size``. Every image is thus scored in the same batch whatever the number of
    processes, which keeps the maps, and so the summed counts, identical to the
    single-process run.

    Parameters
    ----------
    length, batch_size : int
        Images in the split and images per batch.
    rank, world_size : int
        This process and the number of processes.
    """
    if length < 0 or batch_size < 1 or world_size < 1 or not (0 <= rank < world_size):
        raise AttribmapError(f"bad batch plan: length={length}, batch_size={batch_size}, rank={rank}, "
                             f"world_size={world_size}")
    plan = []
    for number, start in enumerate(range(0, length, batch_size)):
        if number % world_size == rank:
            plan.append((number, list(range(start, min(start + batch_size, length)))))
    return plan


def batch_items(dataset: Any, indices: List[int]) -> Dict[str, Any]:
    """Read and collate the items of one batch (``attribmap.data.collate_wsol``)."""
    from attribmap.data import collate_wsol

    return collate_wsol([dataset[i] for i in indices])
