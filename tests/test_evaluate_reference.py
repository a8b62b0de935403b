"""attribmap's evaluation against the reference algorithm of clovaai/wsolevaluation
(rewritten on OpenCV in :mod:`tests.reference.wsolevaluation`)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.reference.wsolevaluation import (
    reference_contour_boxes,
    reference_iou,
    reference_best_ious,
    reference_normalize,
    reference_scoremap,
    reference_histograms,
    reference_pxap,
    reference_box_scores,
    blobby_map,
)

def _random_masks(rng, count):
    from scipy import ndimage

    for index in range(count):
        height, width = (int(v) for v in rng.integers(2, 40, 2))
        kind = index % 4
        if kind == 0:
            yield rng.random((height, width)) < rng.uniform(0.2, 0.8)
        elif kind == 1:
            yield ndimage.gaussian_filter(rng.normal(size=(height, width)), rng.uniform(0.5, 3)) > 0
        elif kind == 2:
            smooth = ndimage.gaussian_filter(rng.normal(size=(height, width)), 1.5)
            yield (smooth > 0.05) & (smooth < 0.3)
        else:
            seeds = ndimage.binary_dilation(rng.random((height, width)) < 0.1)
            yield seeds ^ (rng.random((height, width)) < 0.1)


def test_mask_contours_match_opencv_on_random_masks():
    from attribmap.evaluate.contours import mask_contours

    rng = np.random.default_rng(0)
    for mask in _random_masks(rng, 300):
        boxes, largest = reference_contour_boxes(mask.astype(np.uint8), 0)
        found = mask_contours(mask)
        ours = found.all_boxes
        assert len(ours) == len(boxes)
        assert np.array_equal(np.unique(ours, axis=0), np.unique(boxes, axis=0))
        assert np.array_equal(found.largest_box, largest)
        contours = cv2.findContours(mask.astype(np.uint8), cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[-2]
        best_area = max((cv2.contourArea(c) for c in contours), default=0.0)
        assert found.largest_area == best_area


@pytest.mark.parametrize("engine", ["opencv", "numpy"])
def test_best_ious_match_reference_on_blobby_maps(engine):
    from attribmap.evaluate.threshold_boxes import best_ious_per_tau

    rng = np.random.default_rng(1)
    taus = np.arange(0, 1, 0.01 if engine == "numpy" else 0.001)
    for _ in range(2 if engine == "numpy" else 6):
        scoremap = reference_normalize(blobby_map(rng, size=96 if engine == "numpy" else 224))
        gt = np.array([[10, 12, 60, 70], [40, 5, 90, 50]])
        ref_v1, ref_v2 = reference_best_ious(scoremap, gt, taus)
        v1, v2 = best_ious_per_tau((scoremap * 255).astype(np.uint8), gt, taus, engine=engine)
        assert np.array_equal(v1, ref_v1)
        assert np.array_equal(v2, ref_v2)
