"""Decode every file of a dataset once and list every problem: :func:`check_images`.

Opening a dataset (:class:`~attribmap.data.WSOLDataset`, :class:`~attribmap.data.CUBDataset`)
checks its metadata and stops at the first problem; reading the images is left to the run.
This pass reads every image and mask once, up front, and reports *every* problem with the
``file:line`` of the metadata line concerned, so that a long run does not stop at the one
broken file in the middle (``attribmap check``, ``attribmap bench --check-images``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

from attribmap.data.records import ImageRecord, size_mismatch
from attribmap.errors import ImageReadError

__all__ = ["Problem", "check_images"]


@dataclass(frozen=True)
class Problem:
    """One problem of one image: ``where`` (``file:line``) and what (``message``)."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def check_images(records: Sequence[ImageRecord], progress: Optional[Callable[[int], None]] = None) -> List[Problem]:
    """Decode each image and mask of ``records`` once; return every problem found.

    Checked per image: the file decodes (not empty, an image, not truncated), its size is
    the one the metadata gives (``image_sizes.txt``), its boxes lie inside the real image
    (``x1 <= W``, ``y1 <= H``), and its mask / ignore files decode.

    Parameters
    ----------
    records : sequence of ImageRecord
        The dataset's records (``dataset.records``); open a WSOL dataset with
        ``check_sizes=False`` so that size mismatches are listed here instead of stopping
        the opening.
    progress : callable, optional
        Called with 1 after each image.

    Returns
    -------
    list of Problem
        In dataset order; empty when everything reads.
    """
    from attribmap.inputs import load_image

    problems: List[Problem] = []
    for record in records:
        try:
            size = load_image(record.path).size
        except (ImageReadError, FileNotFoundError) as exc:
            problems.append(Problem(record.where("image"), str(exc)))
            size = None
        if size is not None:
            if record.size is not None and tuple(record.size) != size:
                where, _, message = size_mismatch(record, size).partition(": ")
                problems.append(Problem(where, message))
            problems.extend(_boxes_outside(record, size))
        for mask in tuple(record.mask_paths) + ((record.ignore_path,) if record.ignore_path else ()):
            try:
                load_image(mask, mode="L")
            except (ImageReadError, FileNotFoundError) as exc:
                problems.append(Problem(record.where("image"), f"mask of image {record.image_id!r}: {exc}"))
        if progress is not None:
            progress(1)
    return problems


def _boxes_outside(record: ImageRecord, size) -> List[Problem]:
    width, height = size
    found = []
    lines = tuple(record.origin.get("boxes", ()))
    for number, box in enumerate(record.boxes.tolist()):
        x0, y0, x1, y1 = box
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            where = lines[number] if number < len(lines) else record.where("image")
            found.append(Problem(where, f"box (x0, y0, x1, y1) = {tuple(box)} of image {record.image_id!r} lies "
                                        f"outside the image file's {width} x {height} pixels (W x H)"))
    return found
