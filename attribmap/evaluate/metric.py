"""The contract every metric shares: :class:`Metric`, and the metadata it declares.

A metric is an :class:`~attribmap.evaluate.accumulator.Accumulator` (int64 state that sums
exactly: ``merge``, ``sync``, ``state`` / ``load_state``, ``reset``) with

* ``update(frame)`` - add one :class:`~attribmap.evaluate.framing.Frame`;
* ``compute()`` - its results (a dict);
* ``info`` - a :class:`MetricInfo`: its name, family, what it needs from the frame, when it
  is on by default, the columns it produces (which are headline, which direction is better)
  and the curves it can plot; the registry adds its options (read from the constructor).

Reports (``results.json``, ``results.md``, figures), the default metric sets, the benchmark
configuration and its command line are built from ``info`` alone, so a new metric needs
nothing but its own module and one line in :mod:`attribmap.evaluate.registry`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

from attribmap.errors import AttribmapError
from attribmap.evaluate.accumulator import Accumulator
from attribmap.evaluate.options import MetricOption

__all__ = ["Column", "Plot", "MetricInfo", "Metric"]


@dataclass(frozen=True)
class Column:
    """One number a metric reports.

    Attributes
    ----------
    key : str
        Key in the metric's :meth:`Metric.compute` result.
    label : str
        Column title in tables.
    sub : str, optional
        For a result that is a dict (``MaxBoxAccV2_per_iou``): the entry shown.
    headline : bool
        Shown in the main results table (others only in results.json and the details table).
    higher_is_better : bool
        Direction of improvement.
    digits : int
        Decimals in tables.
    unit : str
        ``"%"`` (percent) or ``""`` (a fraction, a probability, a threshold).
    """

    key: str
    label: str
    sub: Optional[str] = None
    headline: bool = True
    higher_is_better: bool = True
    digits: int = 1
    unit: str = "%"

    def value(self, scores: Mapping[str, Any]) -> Any:
        """This column's value in the flat score dict ``scores`` (None when absent)."""
        value = scores.get(self.key)
        if self.sub is not None:
            value = None if not isinstance(value, Mapping) else value.get(self.sub, value.get(_int_or(self.sub)))
        return value


def _int_or(text: str):
    try:
        return int(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class Plot:
    """A figure: one panel per y series, one line per extractor.

    Attributes
    ----------
    file : str
        PNG file name in the report directory.
    title : str
        Figure caption in results.md.
    x : str
        Series of the x axis.
    ys : tuple of str
        Series plotted, one panel each.
    panel_titles : tuple of str
        One per series in ``ys``.
    xlabel, ylabel : str
    xlim, ylim : (float, float)
    """

    file: str
    title: str
    x: str
    ys: Tuple[str, ...]
    panel_titles: Tuple[str, ...]
    xlabel: str
    ylabel: str
    xlim: Tuple[float, float] = (0.0, 1.0)
    ylim: Tuple[float, float] = (0.0, 1.0)


@dataclass(frozen=True)
class MetricInfo:
    """What a metric is, needs and produces.

    Attributes
    ----------
    name : str
        Registry name (``"boxes"``, ``"deletion"``, ...).
    title : str
        Human name.
    family : str
        ``"localization"``, ``"faithfulness"`` or ``"classifier"``: the report groups
        columns by family; ``FAITHFULNESS`` (what ``--faithfulness`` takes) is the
        ``"faithfulness"`` family.
    needs : tuple of str
        Frame inputs it cannot do without (``"boxes"``, ``"masks"``, ``"correct"``,
        ``"images"``, ``"model"``).
    columns : tuple of Column
    extras : tuple of str
        Other keys of its result written to results.json (per-threshold dicts, taus).
    curves : tuple of str
        Series it can give (:meth:`Metric.series`), saved to curves.npz.
    plots : tuple of Plot
    reference : str
        Where the definition comes from.
    default_in : tuple of str
        Protocols (``"official"``, ``"legacy"``) under which the metric is on by default
        (:func:`~attribmap.evaluate.functional.default_metrics`; ``attribmap bench`` without
        ``--metrics``); empty: only when asked for.
    default_with : tuple of str
        What the data must provide for it to be on by default: some of ``"boxes"``,
        ``"masks"``, ``"correct"`` (top-1 flags), ``"mosaic"`` (an ``attribmap mosaic`` dataset).
    options : tuple of MetricOption
        Its constructor options with kinds and defaults; filled by
        :func:`~attribmap.evaluate.registry.metric_info` from the signature.
    per_class : bool
        Whether ``attribmap bench --per-class`` also scores it per class (a second instance per
        class, fed the same frames).
    """

    name: str
    title: str
    family: str
    needs: Tuple[str, ...]
    columns: Tuple[Column, ...]
    extras: Tuple[str, ...] = ()
    curves: Tuple[str, ...] = ()
    plots: Tuple[Plot, ...] = ()
    reference: str = ""
    default_in: Tuple[str, ...] = ()
    default_with: Tuple[str, ...] = ()
    options: Tuple[MetricOption, ...] = ()
    per_class: bool = False

    @property
    def needs_model(self) -> bool:
        """Whether the metric perturbs the images and runs the model (``"model"`` in ``needs``)."""
        return "model" in self.needs

    def option(self, key: str) -> MetricOption:
        """The option ``key``; an :class:`AttribmapError` listing the known ones when there is none."""
        for option in self.options:
            if option.name == key:
                return option
        known = ", ".join(o.name for o in self.options) or "none"
        raise AttribmapError(f"metric {self.name!r} has no option {key!r}; its options: {known}")

    def as_dict(self) -> Dict[str, Any]:
        """JSON-ready form of what a report shows (for results.json).

        The registration fields (``default_in``, ``default_with``, ``options``, ``per_class``) describe the
        registry, not a run, and are left out.
        """
        out = asdict(self)
        for name in _REGISTRATION:
            out.pop(name)
        return out

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> "MetricInfo":
        """Inverse of :meth:`as_dict`: the info described by ``data``."""
        values = dict(data)
        values["columns"] = tuple(Column(**c) for c in values.get("columns", ()))
        values["plots"] = tuple(Plot(**{k: tuple(v) if isinstance(v, list) else v for k, v in p.items()})
                                for p in values.get("plots", ()))
        for name in ("needs", "extras", "curves", "default_in", "default_with"):
            values[name] = tuple(values.get(name, ()))
        values["options"] = tuple(o if isinstance(o, MetricOption) else MetricOption(**o)
                                  for o in values.get("options", ()))
        return MetricInfo(**values)


#: The fields of :class:`MetricInfo` that describe the registry rather than a run.
_REGISTRATION = ("default_in", "default_with", "options", "per_class")


class Metric(Accumulator):
    """Base class of the metrics (see the module docstring for the contract).

    Subclasses set ``name`` (the registry name), implement ``_new_state``, ``_config``,
    ``update(frame)``, ``compute()`` and the ``info`` property, and, when they have curves,
    ``series(result)``.
    """

    name: str = ""

    @property
    def info(self) -> MetricInfo:  # pragma: no cover - abstract
        """The metric's :class:`MetricInfo`: name, needed inputs, columns, curves and plots."""
        raise NotImplementedError

    def update(self, frame) -> "Metric":  # pragma: no cover - abstract
        """Add one batch; returns self (the one update signature of every metric: raw maps are
        framed by :class:`~attribmap.evaluate.framing.Framer`, an
        :class:`~attribmap.evaluate.evaluator.Evaluator` or
        :func:`~attribmap.evaluate.functional.evaluate_maps`).

        Parameters
        ----------
        frame : Frame
            The batch in the evaluation frame (:class:`~attribmap.evaluate.framing.Frame`),
            with the inputs ``info.needs`` names.
        """
        raise NotImplementedError

    def compute(self) -> Dict[str, Any]:  # pragma: no cover - abstract
        """The metric's results from the counts so far (a dict; the columns' keys among them)."""
        raise NotImplementedError

    def check_inputs(self, frame) -> None:
        """Raise a clear error when ``frame`` lacks an input this metric needs, or has
        another frame size than the metric's ``image_size``."""
        missing = [need for need in self.info.needs if not frame.has(need)]
        if missing:
            raise AttribmapError(f"metric {self.info.name!r} needs {' and '.join(missing)}; this batch has none "
                                 f"(give {', '.join(missing)} to the evaluator, or drop {self.info.name!r})")
        size = getattr(self, "image_size", None)
        if size is not None and frame.size != size:
            raise AttribmapError(f"metric {self.info.name!r} scores a {size} px frame; this frame is "
                                 f"{frame.size} px")

    def scores(self, result: Mapping[str, Any]) -> Dict[str, Any]:
        """The reportable part of ``result``: its columns' keys and its extras."""
        keys = [c.key for c in self.info.columns] + list(self.info.extras)
        return {k: result[k] for k in dict.fromkeys(keys) if k in result}

    def series(self, result: Mapping[str, Any]) -> Dict[str, np.ndarray]:
        """Named 1-D curves of ``result`` (see ``info.curves``); none by default."""
        return {}

    def _count(self, key: str = "count") -> int:
        count = int(self._state[key])
        if count == 0:
            raise AttribmapError(f"{type(self).__name__}.compute() called before any update()")
        return count
