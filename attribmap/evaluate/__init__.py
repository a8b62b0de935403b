"""WSOL evaluation (clovaai/wsolevaluation's protocol, same numbers, faster) and more metrics.

One :class:`Evaluator` frames each batch once (:class:`Framer` -> :class:`Frame`: maps,
boxes and masks in the official frame) and feeds a collection of metrics that share one
contract (``update(frame)``, ``compute``, ``merge``, ``sync``, ``state`` / ``load_state``,
metadata in ``info``; :class:`Metric`), registered by name (:mod:`attribmap.evaluate.registry`):

* localization: ``boxes`` (:class:`BoxAccuracy`: MaxBoxAcc, MaxBoxAccV2, top-1 loc),
  ``pxap`` (:class:`PxAP`), ``peak_iou`` (:class:`PeakIoU`), ``pointing``
  (:class:`PointingGame`), ``energy_pointing`` (:class:`EnergyPointing`), ``grid_pointing``
  (:class:`GridPointing`, on the raw maps; mosaics), ``legacy``
  (:class:`LegacyLocalization`), ``top1`` (:class:`ClassifierAccuracy`);
* faithfulness (the model and its images, :class:`ModelInputs`): ``deletion``
  (:class:`Deletion`), ``insertion`` (:class:`Insertion`), ``drop`` (:class:`AverageDrop`),
  ``road`` (:class:`ROAD`).

Every metric's ``update`` takes a :class:`Frame`; raw maps with boxes, masks and keywords go
through :func:`evaluate_maps` (or an :class:`Evaluator`), which frame them once.
:data:`FAITHFULNESS` (the faithfulness family) and :func:`default_metrics` are read from the
registry (:func:`metric_info`).

One-call entry point: :func:`evaluate_maps`. Helpers: :func:`largest_contour_box`,
:func:`official_maps`, :func:`rescale_boxes`, :func:`inclusive_iou`.
"""
from __future__ import annotations

from attribmap.evaluate.box_accuracy import BoxAccuracy
from attribmap.evaluate.confidence import AverageDrop
from attribmap.evaluate.contours import largest_contour_box, mask_contours
from attribmap.evaluate.deletion import Deletion
from attribmap.evaluate.energy_pointing import EnergyPointing
from attribmap.evaluate.evaluator import Evaluator
from attribmap.evaluate.frame import official_maps, rescale_boxes, resize_bicubic, normalize_minmax
from attribmap.evaluate.framing import Frame, Framer
from attribmap.evaluate.functional import default_metrics, evaluate_maps
from attribmap.evaluate.grid_pointing import GridPointing
from attribmap.evaluate.insertion import Insertion
from attribmap.evaluate.iou import inclusive_iou
from attribmap.evaluate.legacy import LegacyLocalization
from attribmap.evaluate.metric import Column, Metric, MetricInfo, Plot
from attribmap.evaluate.options import MetricOption
from attribmap.evaluate.peak_iou import PeakIoU
from attribmap.evaluate.perturbation import ModelInputs
from attribmap.evaluate.pointing import PointingGame
from attribmap.evaluate.pxap import PxAP
from attribmap.evaluate import registry as _registry
from attribmap.evaluate.registry import (create_metrics, metric_info, metric_names, register_metric,
                                         unregister_metric)
from attribmap.evaluate.road import ROAD
from attribmap.evaluate.top1 import ClassifierAccuracy

__all__ = [
    "Evaluator",
    "Framer",
    "Frame",
    "ModelInputs",
    "Metric",
    "MetricInfo",
    "Column",
    "Plot",
    "MetricOption",
    "register_metric",
    "unregister_metric",
    "metric_info",
    "create_metrics",
    "metric_names",
    "FAITHFULNESS",
    "default_metrics",
    "BoxAccuracy",
    "PxAP",
    "PeakIoU",
    "PointingGame",
    "EnergyPointing",
    "GridPointing",
    "LegacyLocalization",
    "ClassifierAccuracy",
    "Deletion",
    "Insertion",
    "AverageDrop",
    "ROAD",
    "evaluate_maps",
    "largest_contour_box",
    "mask_contours",
    "official_maps",
    "rescale_boxes",
    "resize_bicubic",
    "normalize_minmax",
    "inclusive_iou",
]


def __getattr__(name: str):
    # read from the registry when asked for, so that registered metrics count
    if name == "FAITHFULNESS":
        return _registry.FAITHFULNESS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
