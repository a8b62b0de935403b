"""Dataset formats: recognise a dataset folder and open one of its splits.

Every reader of a dataset folder (``attribmap bench``, ``attribmap check``, training) goes
through :func:`detect_format` and :func:`open_split`, so each reads every format:

* ``"wsol"`` - the wsolevaluation metadata layout (``metadata/<split>/image_ids.txt``, ...),
  which ``attribmap synth`` writes (:class:`attribmap.data.WSOLDataset`);
* ``"cub"`` - CUB-200-2011 as distributed (``images.txt``, ``bounding_boxes.txt``, ...;
  :class:`attribmap.data.CUBDataset`).

A new format is one reader class and one entry in :func:`detect_format` / :func:`open_split`.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Optional, Tuple

from attribmap.errors import AttribmapError

__all__ = ["FORMATS", "detect_format", "open_split", "open_dataset", "input_transform"]

#: The formats :func:`detect_format` recognises.
FORMATS = ("wsol", "cub")


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


def open_split(data: str, split: str, transform: Optional[Callable[[Any], Any]] = None,
               metadata: Optional[str] = None, check_sizes: bool = True) -> Tuple[Any, str]:
    """One split of a dataset folder of any format, as a :class:`attribmap.data.RecordDataset`.

    Parameters
    ----------
    data : str
        Dataset directory (see :func:`detect_format`).
    split : str
        Split name (``test``, ``val``, ``train``, ``pretrain``; CUB: ``test`` / ``train`` /
        ``all``).
    transform : callable, optional
        Applied to each PIL image.
    metadata : str, optional
        wsolevaluation metadata directory when it is not ``data/metadata``.
    check_sizes : bool
        Compare the image headers with ``image_sizes.txt`` when opening (WSOL layout).

    Returns
    -------
    (dataset, format)
        The dataset and its format (one of :data:`FORMATS`).
    """
    from attribmap.data.cub import CUBDataset
    from attribmap.data.wsol_metadata import WSOLDataset

    kind = detect_format(data, metadata)
    if kind == "cub":
        return CUBDataset(data, split, transform=transform), kind
    return WSOLDataset(data, split, metadata_root=metadata, transform=transform, check_sizes=check_sizes), kind


def input_transform(protocol: str, input_size: int):
    """PIL image -> normalized tensor (3, S, S) in the frame of ``protocol``.

    ``"official"``: squash-resize to ``input_size``. ``"legacy"``: resize to
    ``round(input_size * 256 / 224)`` then center-crop ``input_size`` (256 -> 224 at the usual
    size).
    """
    from attribmap.data.transforms import legacy_transform, official_transform

    if protocol == "legacy":
        return legacy_transform(int(round(input_size * 256 / 224)), input_size)
    return official_transform(input_size)


def open_dataset(data: str, split: str, protocol: str = "official", input_size: int = 224,
                 metadata: Optional[str] = None, check_sizes: bool = True,
                 require_localization: bool = True) -> Tuple[Any, str]:
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
    check_sizes : bool
        Compare the image headers with ``image_sizes.txt`` when opening (WSOL layout; see
        :class:`attribmap.data.WSOLDataset`).
    require_localization : bool
        Refuse a split with neither boxes nor masks (nothing to score).

    Returns
    -------
    (dataset, format)
        A :class:`attribmap.data.RecordDataset` (items: image, label, boxes, size, id and
        mask / ignore where the dataset has masks) and ``"wsol"`` or ``"cub"``.
    """
    dataset, kind = open_split(data, split, input_transform(protocol, input_size), metadata, check_sizes)
    if len(dataset) == 0:
        raise AttribmapError(f"split {split!r} of {data!r} holds no image")
    if require_localization and not dataset.has_boxes and not dataset.has_masks:
        raise AttribmapError(f"split {split!r} of {data!r} has neither boxes nor masks: nothing to score")
    return dataset, kind
