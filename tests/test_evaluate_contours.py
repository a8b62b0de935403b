"""Contour boxes without OpenCV: hand-built masks with known boxes and areas."""
from __future__ import annotations

import numpy as np
import pytest

from attribmap.errors import AttribmapError
from attribmap.evaluate import largest_contour_box, mask_contours
from attribmap.evaluate.contours import threshold_levels


def _mask(shape, *blocks):
    mask = np.zeros(shape, dtype=bool)
    for y0, y1, x0, x1 in blocks:
        mask[y0:y1 + 1, x0:x1 + 1] = True
    return mask


def test_empty_mask_has_the_zero_box():
    found = mask_contours(np.zeros((5, 6), dtype=bool))
    assert largest_contour_box(np.zeros((5, 6), dtype=bool)) == (0, 0, 0, 0)
    assert found.all_boxes.tolist() == [[0, 0, 0, 0]] and found.largest_area == 0.0


def test_ring_gives_an_outer_box_and_a_grown_hole_box():
    mask = _mask((9, 9), (1, 7, 1, 7))
    mask[3:6, 3:6] = False
    found = mask_contours(mask)
    assert found.outer_boxes.tolist() == [[1, 1, 8, 8]]
    assert found.hole_boxes.tolist() == [[2, 2, 7, 7]]
    # polygon through the outer border pixel centres: a 6x6 square
    assert found.largest_area == 36.0 and found.largest_box.tolist() == [1, 1, 8, 8]


def test_background_touching_the_edge_is_not_a_hole():
    mask = _mask((6, 6), (0, 4, 0, 4))
    mask[2, 0:3] = False  # a notch open to the left edge
    assert len(mask_contours(mask).hole_boxes) == 0
    diagonal_hole = _mask((5, 5), (0, 4, 0, 4))
    diagonal_hole[2, 2] = False
    diagonal_hole[1, 1] = False  # 8-adjacent but not 4-adjacent background: two holes
    assert len(mask_contours(diagonal_hole).hole_boxes) == 2


def test_eight_connected_foreground_is_one_component():
    mask = np.eye(4, dtype=bool)
    found = mask_contours(mask)
    assert found.outer_boxes.tolist() == [[0, 0, 3, 3]]  # min(x + w, W - 1) clips to 3
    assert found.largest_area == 0.0


def test_largest_by_polygon_area_with_holes_filled():
    ring = _mask((12, 12), (0, 4, 0, 4))
    ring[1:4, 1:4] = False  # outer polygon area 16 even though only 16 pixels remain
    blob = _mask((12, 12), (6, 9, 6, 9))  # 16 pixels, polygon area 9
    found = mask_contours(ring | blob)
    assert found.largest_area == 16.0
    assert largest_contour_box(ring | blob) == (0, 0, 5, 5)


def test_equal_areas_resolve_to_the_last_component_in_raster_order():
    mask = _mask((8, 8), (1, 2, 1, 2), (5, 6, 5, 6), (1, 2, 5, 6))
    assert largest_contour_box(mask) == (5, 5, 7, 7)


def test_threshold_levels_truncate_tau_times_max():
    taus = np.arange(0, 1, 0.1)
    assert threshold_levels(255, taus).tolist() == [int(t * 255) for t in taus]
    assert threshold_levels(0, taus).tolist() == [0] * 10


def test_mask_must_be_two_dimensional():
    with pytest.raises(AttribmapError, match="2-D"):
        mask_contours(np.zeros((2, 2, 2)))
