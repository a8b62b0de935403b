"""Boxes of a thresholded map with OpenCV's contour semantics, without OpenCV.

``cv2.findContours(mask, RETR_TREE, CHAIN_APPROX_SIMPLE)`` returns

* one outer border per 8-connected foreground component, and
* one hole border per hole: a 4-connected background region that does not touch the
  image edge (OpenCV pads the image with background before tracing).

Facts this module relies on (each checked against OpenCV in the tests):

* the bounding rectangle of an outer border is the bounding box of its component; the
  bounding rectangle of a hole border is the hole's bounding box grown by one pixel;
* ``cv2.contourArea`` of an outer border (the polygon through the border pixel centres)
  equals the *bit-quad area* of the component with its holes filled: over every 2x2
  window of the zero-padded filled component, a window with 4 pixels in counts 1 and a
  window with 3 pixels in counts 1/2;
* the largest polygon area is always reached by the outer border of an *outermost*
  component (a hole border lies inside its component's outer border, and a component
  inside a hole lies inside that hole border); OpenCV lists outermost components in
  reverse raster order of their first pixel, so among equal areas Python's ``max``
  picks the outermost component whose first pixel comes last in raster order.

Boxes follow wsolevaluation: ``[x, y, min(x + w, W - 1), min(y + h, H - 1)]`` with
``(x, y, w, h)`` the bounding rectangle, i.e. one pixel larger than the blob.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from attribmap.errors import AttribmapError

__all__ = [
    "EMPTY_BOX",
    "MaskContours",
    "mask_contours",
    "largest_contour_box",
    "threshold_levels",
]

EMPTY_BOX = (0, 0, 0, 0)
_EIGHT = np.ones((3, 3), dtype=bool)
_FOUR = ndimage.generate_binary_structure(2, 1)


class MaskContours:
    """Contour boxes of one binary mask.

    Attributes
    ----------
    outer_boxes : ndarray, int64, shape (k, 4)
        Boxes of the outer borders (one per 8-connected component), reference rule.
    hole_boxes : ndarray, int64, shape (m, 4)
        Boxes of the hole borders (one per 4-connected hole), reference rule.
    largest_box : ndarray, int64, shape (4,)
        Box of the contour with the largest polygon area (the V1 box); ``[0,0,0,0]``
        when the mask is empty.
    largest_area : float
        ``cv2.contourArea`` of that contour (0.0 for an empty mask).
    largest_rect : tuple (x, y, w, h) or None
        Its bounding rectangle, unclipped (used by the legacy protocol).
    """

    __slots__ = ("outer_boxes", "hole_boxes", "largest_box", "largest_area", "largest_rect")

    def __init__(self, outer_boxes, hole_boxes, largest_box, largest_area, largest_rect):
        self.outer_boxes = outer_boxes
        self.hole_boxes = hole_boxes
        self.largest_box = largest_box
        self.largest_area = largest_area
        self.largest_rect = largest_rect

    @property
    def all_boxes(self) -> np.ndarray:
        """Outer and hole boxes together, shape (k + m, 4); ``[[0,0,0,0]]`` if empty."""
        if len(self.outer_boxes) == 0:
            return np.zeros((1, 4), dtype=np.int64)
        return np.concatenate([self.outer_boxes, self.hole_boxes], axis=0)


def _slices_to_rects(slices) -> np.ndarray:
    """find_objects slices -> (n, 4) int64 rows (x, y, w, h)."""
    rects = np.empty((len(slices), 4), dtype=np.int64)
    for i, (rows, cols) in enumerate(slices):
        rects[i] = (cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
    return rects


def _rects_to_boxes(rects: np.ndarray, height: int, width: int) -> np.ndarray:
    """(x, y, w, h) -> [x, y, min(x + w, W - 1), min(y + h, H - 1)]."""
    boxes = np.empty_like(rects)
    boxes[:, 0] = rects[:, 0]
    boxes[:, 1] = rects[:, 1]
    boxes[:, 2] = np.minimum(rects[:, 0] + rects[:, 2], width - 1)
    boxes[:, 3] = np.minimum(rects[:, 1] + rects[:, 3], height - 1)
    return boxes


def _bitquad_area2(filled: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """Twice the polygon area of every filled component: (count + 1,) int64, index = label."""
    padded = np.pad(filled, 1).astype(np.int8)
    lab = np.pad(labels, 1)
    in_window = padded[:-1, :-1] + padded[:-1, 1:] + padded[1:, :-1] + padded[1:, 1:]
    weight = np.where(in_window == 4, 2, np.where(in_window == 3, 1, 0))
    owner = np.maximum(np.maximum(lab[:-1, :-1], lab[:-1, 1:]), np.maximum(lab[1:, :-1], lab[1:, 1:]))
    keep = weight > 0
    return np.bincount(owner[keep], weights=weight[keep], minlength=count + 1).astype(np.int64)


def mask_contours(mask: np.ndarray) -> MaskContours:
    """Contour boxes of a binary mask with ``cv2.findContours(RETR_TREE)`` semantics.

    Parameters
    ----------
    mask : ndarray, shape (H, W)
        Foreground where nonzero.

    Returns
    -------
    MaskContours
    """
    fg = np.asarray(mask).astype(bool)
    if fg.ndim != 2 or fg.size == 0:
        raise AttribmapError(f"mask must be a non-empty 2-D array; got shape {fg.shape}")
    height, width = fg.shape
    empty = np.zeros((0, 4), dtype=np.int64)
    labels, count = ndimage.label(fg, structure=_EIGHT)
    if count == 0:
        return MaskContours(empty, empty, np.zeros(4, dtype=np.int64), 0.0, None)
    outer_rects = _slices_to_rects(ndimage.find_objects(labels))
    outer_boxes = _rects_to_boxes(outer_rects, height, width)

    background, n_background = ndimage.label(~fg, structure=_FOUR)
    hole_boxes = empty
    filled = fg
    if n_background:
        edge = np.concatenate([background[0], background[-1], background[:, 0], background[:, -1]])
        is_hole = np.ones(n_background + 1, dtype=bool)
        is_hole[0] = False
        is_hole[edge] = False
        hole_ids = np.flatnonzero(is_hole)
        if len(hole_ids):
            hole_slices = ndimage.find_objects(background)
            rects = _slices_to_rects([hole_slices[i - 1] for i in hole_ids])
            grown = rects + np.array([-1, -1, 2, 2], dtype=np.int64)
            hole_boxes = _rects_to_boxes(grown, height, width)
            filled = fg | is_hole[background]

    if filled is fg:
        fill_labels, fill_count = labels, count
        fill_rects = outer_rects
    else:
        fill_labels, fill_count = ndimage.label(filled, structure=_EIGHT)
        fill_rects = _slices_to_rects(ndimage.find_objects(fill_labels))
    area2 = _bitquad_area2(filled, fill_labels, fill_count)[1:]
    tied = np.flatnonzero(area2 == area2.max())
    winner = int(tied[0])
    if len(tied) > 1:
        # OpenCV lists outermost components in reverse raster order of their first pixel,
        # so Python's max() keeps the tied component whose first pixel comes last.
        first_pixel = ndimage.minimum(np.arange(fg.size).reshape(fg.shape), fill_labels, tied + 1)
        winner = int(tied[int(np.argmax(first_pixel))])
    rect = fill_rects[winner]
    box = _rects_to_boxes(rect[None], height, width)[0]
    return MaskContours(outer_boxes, hole_boxes, box, float(area2[winner]) / 2.0, tuple(int(v) for v in rect))


def largest_contour_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Box of the largest contour of a binary mask (MaxBoxAcc V1 semantics), without cv2.

    Parameters
    ----------
    mask : ndarray of bool (or nonzero = foreground), shape (H, W)

    Returns
    -------
    (x0, y0, x1, y1) ints: the bounding rectangle (x, y, w, h) of the contour with the
    largest ``cv2.contourArea`` turned into ``(x, y, min(x + w, W - 1), min(y + h, H - 1))``;
    ``(0, 0, 0, 0)`` when the mask has no foreground.
    """
    box = mask_contours(mask).largest_box
    return tuple(int(v) for v in box)


def threshold_levels(max_value: int, taus: np.ndarray) -> np.ndarray:
    """Integer cut levels ``int(tau * max_value)`` for each tau of ``taus`` (``max_value`` = max of the uint8 map s8); foreground is ``s8 > level``."""
    return (np.asarray(taus, dtype=np.float64) * np.uint8(max_value)).astype(np.int64)
