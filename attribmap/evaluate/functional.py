"""One-call evaluation of a set of maps: :func:`evaluate_maps` (an :class:`Evaluator` underneath)."""
from __future__ import annotations

from typing import Any, List, Mapping, Optional, Sequence

from attribmap.errors import AttribmapError
from attribmap.evaluate.evaluator import Evaluator
from attribmap.evaluate.registry import options_for

__all__ = ["evaluate_maps", "default_metrics", "PROTOCOLS"]

PROTOCOLS = ("official", "legacy")


def default_metrics(protocol: str = "official", has_boxes: bool = True, has_masks: bool = False) -> List[str]:
    """The localization metrics a ``protocol`` reports for the data it has.

    ``"official"``: ``boxes`` (MaxBoxAcc, MaxBoxAccV2, top-1 loc) with boxes, ``pxap`` and
    ``peak_iou`` with masks, ``pointing`` and ``energy_pointing`` with boxes (in that
    order, the report's column order). ``"legacy"``: ``legacy``. ``has_boxes`` and
    ``has_masks`` say what the data provides.
    """
    if protocol not in PROTOCOLS:
        raise AttribmapError(f"protocol must be one of {PROTOCOLS}; got {protocol!r}")
    if protocol == "legacy":
        return ["legacy"]
    names = ["boxes"] if has_boxes else []
    names += ["pxap", "peak_iou"] if has_masks else []
    return names + (["pointing", "energy_pointing"] if has_boxes else [])


def evaluate_maps(maps, boxes=None, image_sizes=None, masks=None, ignore=None, correct=None,
                  delta: float = 0.001, protocol: str = "official", tau: float = 0.2,
                  image_size: int = 224, iou_thresholds: Sequence[int] = (30, 50, 70),
                  pointing_tolerance: float = 15.0, engine: str = "auto", metrics: Optional[Sequence[str]] = None,
                  inputs=None, options: Optional[Mapping[str, Any]] = None) -> dict:
    """Score maps with the WSOL protocol in one call.

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
    metrics : sequence of str, optional
        Registered metric names (default :func:`default_metrics` of the protocol and data);
        ``"deletion"``, ``"insertion"``, ``"drop"``, ``"road"`` need ``inputs``.
    inputs : ModelInputs, optional
        The model, the images the maps explain and their target classes.
    options : mapping, optional
        More metric options (``{"deletion.steps": 20}``, ...).

    Returns
    -------
    dict, percentages. Official protocol with boxes: ``MaxBoxAcc``, ``MaxBoxAcc_per_iou``,
    ``MaxBoxAccV2``, ``MaxBoxAccV2_per_iou`` ({30, 50, 70}), ``best_tau``, ``best_tau_v1``,
    ``PointingGame``, ``EnergyPointing``, ``curves``, and ``Top1Loc`` / ``Top1LocV2`` with
    ``correct``; with masks: ``PxAP``, ``pr_curve``, ``PeakIoU``, ``PeakIoU_tau``; the
    faithfulness metrics' numbers when asked for; every curve by name under ``series``.
    Legacy: ``GTKnownLoc`` and ``Top1Loc`` with ``correct``. Always ``protocol`` and
    ``num_images``.
    """
    if protocol not in PROTOCOLS:
        raise AttribmapError(f"protocol must be one of {PROTOCOLS}; got {protocol!r}")
    if boxes is None and masks is None:
        raise AttribmapError("evaluate_maps needs boxes, masks, or both")
    if protocol == "legacy" and (boxes is None or image_sizes is None):
        raise AttribmapError("the legacy protocol needs boxes and image_sizes")
    names = list(metrics) if metrics is not None else default_metrics(protocol, boxes is not None, masks is not None)
    settings = {"delta": delta, "tau": tau, "iou_thresholds": iou_thresholds, "tolerance": pointing_tolerance,
                "engine": engine}
    chosen = options_for(names, settings)  # the protocol settings go to the metrics that take them
    chosen.update(options or {})
    size = 224 if protocol == "legacy" else image_size
    evaluator = Evaluator(names, image_size=size, options=chosen)
    frame = evaluator.update(maps, boxes=boxes, image_sizes=image_sizes, masks=masks, ignore=ignore, correct=correct,
                     inputs=inputs)
    results = evaluator.compute()
    if protocol == "legacy" and list(results) == ["legacy"]:
        return results["legacy"]
    merged: dict = {"protocol": protocol, "num_images": frame.count, "delta": float(delta)}
    for name, result in results.items():
        if name == "boxes":
            merged.update(result)
        elif name == "pxap":
            merged["PxAP"] = result["PxAP"]
            merged["pr_curve"] = {k: v for k, v in result.items() if k != "PxAP"}
        else:
            merged.update(evaluator.metrics[name].scores(result))
    merged["series"] = evaluator.series(results)
    return merged

