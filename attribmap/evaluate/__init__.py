"""WSOL evaluation (clovaai/wsolevaluation's protocol, same numbers, faster).

Accumulators (``update`` per batch, ``compute`` at the end, ``merge`` shards,
``sync`` across torch.distributed ranks): :class:`BoxAccuracy` (MaxBoxAcc, MaxBoxAccV2,
top-1 loc), :class:`PxAP`, :class:`PointingGame`, :class:`LegacyLocalization`.
One-call entry point: :func:`evaluate_maps`. Helpers: :func:`largest_contour_box`,
:func:`official_maps`, :func:`rescale_boxes`, :func:`inclusive_iou`.
"""
from __future__ import annotations

from attribmap.evaluate.box_accuracy import BoxAccuracy
from attribmap.evaluate.contours import largest_contour_box, mask_contours
from attribmap.evaluate.frame import official_maps, rescale_boxes, resize_bicubic, normalize_minmax
from attribmap.evaluate.functional import evaluate_maps
from attribmap.evaluate.iou import inclusive_iou
from attribmap.evaluate.legacy import LegacyLocalization
from attribmap.evaluate.pointing import PointingGame
from attribmap.evaluate.pxap import PxAP

__all__ = [
    "BoxAccuracy",
    "PxAP",
    "PointingGame",
    "LegacyLocalization",
    "evaluate_maps",
    "largest_contour_box",
    "mask_contours",
    "official_maps",
    "rescale_boxes",
    "resize_bicubic",
    "normalize_minmax",
    "inclusive_iou",
]
