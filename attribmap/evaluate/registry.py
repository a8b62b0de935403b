"""The metric registry: every metric by name, and how to build a set of them from options.

A new metric is its own module plus **one** line in :data:`BUILTIN` (or a call to
:func:`register_metric` from outside attribmap); the evaluator, the benchmark and the
report find everything else in its :class:`~attribmap.evaluate.metric.MetricInfo`.
"""
from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional

from attribmap.errors import AttribmapError

__all__ = ["BUILTIN", "FAITHFULNESS", "register_metric", "metric_factory", "metric_names", "create_metric",
           "create_metrics", "metric_parameters",
           "options_for"]

#: name -> "module:Class" of the metrics attribmap ships (imported on first use).
BUILTIN: Dict[str, str] = {
    "boxes": "attribmap.evaluate.box_accuracy:BoxAccuracy",
    "pxap": "attribmap.evaluate.pxap:PxAP",
    "peak_iou": "attribmap.evaluate.peak_iou:PeakIoU",
    "pointing": "attribmap.evaluate.pointing:PointingGame",
    "energy_pointing": "attribmap.evaluate.energy_pointing:EnergyPointing",
    "grid_pointing": "attribmap.evaluate.grid_pointing:GridPointing",
    "legacy": "attribmap.evaluate.legacy:LegacyLocalization",
    "top1": "attribmap.evaluate.top1:ClassifierAccuracy",
    "deletion": "attribmap.evaluate.deletion:Deletion",
    "insertion": "attribmap.evaluate.insertion:Insertion",
    "drop": "attribmap.evaluate.confidence:AverageDrop",
    "road": "attribmap.evaluate.road:ROAD",
}

#: The metrics that perturb the images and need the model (off unless asked for).
FAITHFULNESS = ("deletion", "insertion", "drop", "road")

_EXTRA: Dict[str, Callable[..., Any]] = {}


def register_metric(name: str, factory: Callable[..., Any]) -> None:
    """Make ``factory(**options)`` (a :class:`~attribmap.evaluate.metric.Metric` class) available as ``name``."""
    if not isinstance(name, str) or not name or name in BUILTIN:
        raise AttribmapError(f"metric name {name!r} is empty or taken by a built-in metric")
    _EXTRA[name] = factory


def metric_names() -> List[str]:
    """Every registered metric name."""
    return list(BUILTIN) + [n for n in _EXTRA if n not in BUILTIN]


def metric_factory(name: str) -> Callable[..., Any]:
    """The class registered as ``name``."""
    if name in _EXTRA:
        return _EXTRA[name]
    if name not in BUILTIN:
        raise AttribmapError(f"unknown metric {name!r}; known: {', '.join(metric_names())}")
    module, _, attribute = BUILTIN[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def metric_parameters(factory: Callable[..., Any]) -> List[str]:
    """The keyword arguments the metric constructor ``factory`` takes."""
    return [p.name for p in inspect.signature(factory).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def create_metric(name: str, options: Optional[Mapping[str, Any]] = None):
    """Build metric ``name`` with the options its constructor takes.

    ``options`` may hold generic keys (``delta``: given to every metric that takes a
    ``delta``) and ``"<metric>.<key>"`` keys for one metric (``"deletion.baseline"``).
    """
    return create_metrics([name], options)[0]


def create_metrics(names: Iterable[str], options: Optional[Mapping[str, Any]] = None) -> list:
    """Build several metrics; an option no chosen metric takes is an error.

    Parameters
    ----------
    names : iterable of str
        Registered metric names, in report order; repeats are dropped.
    options : mapping, optional
        Constructor arguments, generic or ``"<metric>.<key>"``.

    Returns
    -------
    list of Metric
    """
    options = dict(options or {})
    names = list(dict.fromkeys(names))
    used = set()
    built = []
    for name in names:
        factory = metric_factory(name)
        accepted = metric_parameters(factory)
        kwargs = {}
        for key in accepted:
            if f"{name}.{key}" in options:
                kwargs[key] = options[f"{name}.{key}"]
                used.add(f"{name}.{key}")
            elif key in options:
                kwargs[key] = options[key]
                used.add(key)
        built.append(factory(**kwargs))
    unused = sorted(set(options) - used)
    if unused:
        raise AttribmapError(f"metric option(s) {', '.join(unused)} are taken by none of the metrics "
                             f"{', '.join(names) or '(none)'}")
    return built


def options_for(names: Iterable[str], settings: Mapping[str, Any]) -> Dict[str, Any]:
    """The part of ``settings`` that the metrics ``names`` take.

    Generic keys are kept when some metric's constructor takes them, ``"<metric>.<key>"``
    keys when that metric is among ``names``: the result can go to :func:`create_metrics`
    without tripping its check for unused options.
    """
    names = list(names)
    accepted = {name: metric_parameters(metric_factory(name)) for name in names}
    kept = {}
    for key, value in settings.items():
        metric, dot, option = key.partition(".")
        if dot:
            if metric in accepted and option in accepted[metric]:
                kept[key] = value
        elif any(key in taken for taken in accepted.values()):
            kept[key] = value
    return kept
