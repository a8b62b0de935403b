"""One-call evaluation of a set of maps: :func:`evaluate_maps`."""
from __future__ import annotations

from typing import Sequence

from attribmap.errors import AttribmapError
from attribmap.evaluate.box_accuracy import BoxAccuracy
from attribmap.evaluate.frame import frame_scoremaps
from attribmap.evaluate.legacy import LegacyLocalization
from attribmap.evaluate.pointing import PointingGame
from attribmap.evaluate.pxap import PxAP

__all__ = ["evaluate_maps"]

PROTOCOLS = ("official", "legacy")


def evaluate_maps(maps, boxes=None, image_sizes=None, masks=None, ignore=None, correct=None,
                  delta: float = 0.001, protocol: str = "official", tau: float = 0.2,
                  image_size: int = 224, iou_thresholds: Sequence[int] = (30, 50, 70),
                  pointing_tolerance: float = 15.0, engine: str = "auto") -> dict:
    """Score maps with the WSOL protocol in one call (built on the accumulators).

    Parameters
    ----------
    maps : Tensor (any device) or ndarray, shape (N, h, w)
        Raw maps of the ground-truth class, any resolution.
    boxes : sequence of N array-likes (k_i, 4), optional
        GT boxes, inclusive x0, y0, x1, y1, in original-image pixels.
    image_sizes : array-like (N, 2) as (W, H), optional
        Original image sizes; None = boxes are already in frame pixels (official only).
    masks, ignore : sequence of N arrays (Hm, Wm) or (k, Hm, Wm), or array (N, Hm, Wm)
        Foreground / ignore regions (> 0.5; 0/1, bool and 0/255 masks all work).
    correct : array-like (N,) of bool, optional
        Top-1 prediction == label, for top-1 localization.
    delta : float
        Threshold step, 0.001 (default) or 0.01.
    protocol : {"official", "legacy"}
    tau : float
        Fixed threshold of the legacy protocol.
    image_size : int
        Evaluation frame side (official protocol).
    iou_thresholds : sequence of int
        IoU thresholds in percent for MaxBoxAccV2.
    pointing_tolerance : float
        Pointing-game tolerance in frame pixels.
    engine : {"auto", "tree", "opencv", "numpy"}
        Contour engine for the box metrics (same numbers).

    Returns
    -------
    dict, percentages. Official protocol with boxes: ``MaxBoxAcc``, ``MaxBoxAcc_per_iou``,
    ``MaxBoxAccV2``, ``MaxBoxAccV2_per_iou`` ({30, 50, 70}), ``best_tau``, ``best_tau_v1``,
    ``PointingGame``, ``curves``, and ``Top1Loc`` / ``Top1LocV2`` with ``correct``; with
    masks: ``PxAP`` and ``pr_curve``. Legacy: ``GTKnownLoc`` and ``Top1Loc`` with
    ``correct``. Always ``protocol`` and ``num_images``.
    """
    if protocol not in PROTOCOLS:
        raise AttribmapError(f"protocol must be one of {PROTOCOLS}; got {protocol!r}")
    if boxes is None and masks is None:
        raise AttribmapError("evaluate_maps needs boxes, masks, or both")
    if protocol == "legacy":
        if boxes is None or image_sizes is None:
            raise AttribmapError("the legacy protocol needs boxes and image_sizes")
        legacy = LegacyLocalization(tau=tau).update(maps, boxes, image_sizes, correct)
        return legacy.compute()

    frame = frame_scoremaps(maps, image_size)
    result: dict = {"protocol": "official", "num_images": int(frame.shape[0]), "delta": float(delta)}
    if boxes is not None:
        boxes_metric = BoxAccuracy(delta, iou_thresholds, image_size, engine)
        boxes_metric.update(frame, boxes, image_sizes, correct, preprocessed=True)
        result.update(boxes_metric.compute())
        pointing = PointingGame(pointing_tolerance, image_size)
        result.update(pointing.update(frame, boxes, image_sizes, preprocessed=True).compute())
    if masks is not None:
        pixel = PxAP(delta, image_size).update(frame, masks, ignore, preprocessed=True).compute()
        result["PxAP"] = pixel.pop("PxAP")
        result["pr_curve"] = pixel
    return result
