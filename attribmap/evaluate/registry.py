"""The metric registry: every metric by name, its metadata, and how to build a set of them.

A new metric is its own module plus **one** line in :data:`BUILTIN` (or a call to
:func:`register_metric` from outside attribmap); the evaluator, the default metric sets
(:func:`~attribmap.evaluate.functional.default_metrics`), :data:`FAITHFULNESS`, the
benchmark configuration, ``attribmap bench --metrics`` / ``--metric-option`` and the report
find everything else in its :class:`~attribmap.evaluate.metric.MetricInfo`
(:func:`metric_info`: family, defaults, needs, options read from the constructor).
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from attribmap.errors import AttribmapError
from attribmap.evaluate.options import options_of

__all__ = ["BUILTIN", "FAITHFULNESS", "register_metric", "unregister_metric", "metric_factory", "metric_names",
           "metric_info", "create_metric", "create_metrics", "metric_parameters", "options_for",
           "parse_metric_names", "parse_metric_option"]

#: name -> "module:Class" of the metrics attribmap ships (imported on first use), in report
#: order (the order of the default metric sets and of the report's columns).
BUILTIN: Dict[str, str] = {
    "top1": "attribmap.evaluate.top1:ClassifierAccuracy",
    "boxes": "attribmap.evaluate.box_accuracy:BoxAccuracy",
    "pxap": "attribmap.evaluate.pxap:PxAP",
    "peak_iou": "attribmap.evaluate.peak_iou:PeakIoU",
    "pointing": "attribmap.evaluate.pointing:PointingGame",
    "energy_pointing": "attribmap.evaluate.energy_pointing:EnergyPointing",
    "grid_pointing": "attribmap.evaluate.grid_pointing:GridPointing",
    "legacy": "attribmap.evaluate.legacy:LegacyLocalization",
    "deletion": "attribmap.evaluate.deletion:Deletion",
    "insertion": "attribmap.evaluate.insertion:Insertion",
    "drop": "attribmap.evaluate.confidence:AverageDrop",
    "road": "attribmap.evaluate.road:ROAD",
}

_EXTRA: Dict[str, Callable[..., Any]] = {}
_INFOS: Dict[Tuple[str, Callable[..., Any]], Any] = {}


def __getattr__(name: str):
    # FAITHFULNESS is read from the registry when asked for (registered metrics included)
    if name == "FAITHFULNESS":
        return tuple(metric_names("faithfulness"))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register_metric(name: str, factory: Callable[..., Any]) -> None:
    """Make ``factory(**options)`` (a :class:`~attribmap.evaluate.metric.Metric` class) available as ``name``.

    This one call is all a metric defined outside attribmap needs: its
    :class:`~attribmap.evaluate.metric.MetricInfo` (``factory()``'s, built with the
    defaults) tells the evaluator, the benchmark, ``--metrics`` / ``--metric-option`` and
    the report the rest.

    Raises
    ------
    AttribmapError
        ``name`` is empty, taken by a built-in metric, or differs from the built metric's
        ``info.name``; ``factory()`` cannot be built with its defaults.
    """
    if not isinstance(name, str) or not name or name in BUILTIN:
        raise AttribmapError(f"metric name {name!r} is empty or taken by a built-in metric")
    try:
        built = factory()
    except TypeError as exc:
        raise AttribmapError(f"metric {name!r}: factory() must build the metric with its defaults ({exc})") from None
    if built.info.name != name:
        raise AttribmapError(f"metric registered as {name!r} calls itself {built.info.name!r} in its info; "
                             "give the same name")
    _EXTRA[name] = factory


def unregister_metric(name: str) -> None:
    """Remove the metric ``name`` added by :func:`register_metric` (built-in ones stay)."""
    if name not in _EXTRA:
        raise AttribmapError(f"metric {name!r} was not added by register_metric; added: "
                             f"{', '.join(_EXTRA) or 'none'}")
    del _EXTRA[name]


def metric_names(family: Optional[str] = None) -> List[str]:
    """Every registered metric name, in report order, or those of one ``family``
    (``"localization"``, ``"faithfulness"``, ``"classifier"``)."""
    names = list(BUILTIN) + [n for n in _EXTRA if n not in BUILTIN]
    if family is None:
        return names
    return [n for n in names if metric_info(n).family == family]


def metric_info(name: str):
    """The :class:`~attribmap.evaluate.metric.MetricInfo` of metric ``name`` built with its
    defaults, with its ``options`` (kinds and defaults from the constructor's signature)."""
    factory = metric_factory(name)
    key = (name, factory)
    if key not in _INFOS:
        _INFOS[key] = dataclasses.replace(factory().info, options=options_of(factory))
    return _INFOS[key]


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


def parse_metric_names(text: str) -> Tuple[str, ...]:
    """``"boxes, pointing"`` -> ``("boxes", "pointing")`` (repeats dropped, order kept).

    Parameters
    ----------
    text : str
        Comma-separated registered metric names (``--metrics``).

    Raises
    ------
    AttribmapError
        An unknown name (the message lists the known ones) or an empty list.
    """
    names = tuple(dict.fromkeys(t.strip() for t in str(text).split(",") if t.strip()))
    if not names:
        raise AttribmapError(f"--metrics needs at least one metric name; known: {', '.join(metric_names())}")
    for name in names:
        metric_factory(name)  # unknown -> one-line error listing the known ones
    return names


def parse_metric_option(text: str) -> Tuple[str, Any]:
    """``"deletion.steps=20"`` -> ``("deletion.steps", 20)``, the value read as the option's kind.

    Parameters
    ----------
    text : str
        One ``NAME.KEY=VALUE`` item (``--metric-option``).

    Raises
    ------
    AttribmapError
        Not of the form ``NAME.KEY=VALUE``, an unknown metric or key, or a value that does not
        read as the option's kind (one line naming it and what was expected).
    """
    key, equals, value = str(text).partition("=")
    metric, dot, option = key.strip().partition(".")
    if not equals or not dot or not metric or not option:
        raise AttribmapError(f"metric option {text!r}: expected NAME.KEY=VALUE, e.g. deletion.steps=20")
    declared = metric_info(metric).option(option)
    return f"{metric}.{option}", declared.parse(value, f"{metric}.{option}")


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
