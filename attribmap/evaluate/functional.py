"""One-call evaluation of a set of maps: :func:`evaluate_maps` (an :class:`Evaluator` underneath)."""
from __future__ import annotations

from typing import Any, List, Mapping, Optional, Sequence

from attribmap.errors import AttribmapError
from attribmap.evaluate.evaluator import Evaluator
from attribmap.evaluate.registry import metric_info, metric_names, options_for

__all__ = ["evaluate_maps", "default_metrics", "PROTOCOLS"]

PROTOCOLS = ("official", "legacy")


def default_metrics(protocol: str = "official", has_boxes: bool = True, has_masks: bool = False, *,
                    has_correct: bool = False, mosaic: bool = False) -> List[str]:
    """The metrics a ``protocol`` reports by default for the data it has, in report order.

    Read from the registry: a metric is on when ``protocol`` is in its
    :class:`~attribmap.evaluate.metric.MetricInfo` ``default_in`` and the data provides all
    of its ``default_with``. For the built-in metrics, ``"official"``: ``boxes`` (MaxBoxAcc,
    MaxBoxAccV2, top-1 loc) with boxes, ``pxap`` and ``peak_iou`` with masks, ``pointing``
    and ``energy_pointing`` with boxes, ``grid_pointing`` on a mosaic with boxes;
    ``"legacy"``: ``legacy``; both: ``top1`` (first) with top-1 flags.

    Parameters
    ----------
    protocol : {"official", "legacy"}
    has_boxes, has_masks : bool
        What the data provides.
    has_correct : bool
        Top-1 flags come with the maps (``attribmap bench``; not :func:`evaluate_maps`).
    mosaic : bool
        The data is an ``attribmap mosaic`` dataset.
    """
    if protocol not in PROTOCOLS:
        raise AttribmapError(f"protocol must be one of {PROTOCOLS}; got {protocol!r}")
    flags = {"boxes": has_boxes, "masks": has_masks, "correct": has_correct, "mosaic": mosaic}
    available = {kind for kind, present in flags.items() if present}
    names = []
    for name in metric_names():
        info = metric_info(name)
        if protocol in info.default_in and set(info.default_with) <= available:
            names.append(name)
    return names


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
    ``num_images``, and ``nonfinite_maps``: how many maps held NaN or
    infinite values (each is scored as an all-zero map, the reference's rule, and a
    ``RuntimeWarning`` names them).

    Raises
    ------
    AttribmapError
        Bad shapes or settings; a box with ``x1 < x0``, negative coordinates or outside its
        image (``x1 > W`` or ``y1 > H`` of ``image_sizes``; outside the frame without them),
        naming the image.
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
        return {**results["legacy"], "nonfinite_maps": evaluator.nonfinite_maps}
    merged: dict = {"protocol": protocol, "num_images": frame.count, "delta": float(delta),
                    "nonfinite_maps": evaluator.nonfinite_maps}
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

