"""One evaluator for a collection of metrics: :class:`Evaluator`.

It frames every batch once (:class:`~attribmap.evaluate.framing.Framer`) and hands the
frame to each metric's ``update(frame)``; ``compute``, ``merge``, ``state`` / ``load_state``,
``sync`` and ``reset`` act on every metric. ``evaluate_maps`` and ``attribmap bench`` both
score through it.

Examples
--------
>>> from attribmap.evaluate import Evaluator
>>> evaluator = Evaluator(["boxes", "pointing", "pxap"], options={"delta": 0.01})    # doctest: +SKIP
>>> for maps, boxes, sizes, masks in loader:                                         # doctest: +SKIP
...     evaluator.update(maps, boxes=boxes, image_sizes=sizes, masks=masks)
>>> evaluator.sync()                                                                 # doctest: +SKIP
>>> results = evaluator.compute()      # {"boxes": {...}, "pointing": {...}, "pxap": {...}}
>>> evaluator.scores(results)["MaxBoxAccV2"]                                         # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional

import numpy as np

from attribmap.errors import AttribmapError
from attribmap.evaluate.framing import Frame, Framer
from attribmap.evaluate.metric import Metric, MetricInfo
from attribmap.evaluate.registry import create_metrics, metric_factory, metric_parameters

__all__ = ["Evaluator"]


class Evaluator:
    """Metrics fed by one framing per batch.

    Parameters
    ----------
    metrics : iterable of str or Metric
        Registered names (built with ``options``) or metric objects, in report order.
    image_size : int
        Side of the evaluation frame (224).
    options : mapping, optional
        Constructor options of the named metrics (see
        :func:`~attribmap.evaluate.registry.create_metrics`); ``image_size`` is added for
        the metrics that take it.
    """

    def __init__(self, metrics: Iterable[Any], image_size: int = 224,
                 options: Optional[Mapping[str, Any]] = None) -> None:
        self.framer = Framer(image_size)
        items = list(metrics)
        names = [m for m in items if isinstance(m, str)]
        options = dict(options or {})
        if names and any(_takes_image_size(n) for n in names):
            options.setdefault("image_size", self.framer.image_size)
        built = iter(create_metrics(names, options) if names else [])
        self.metrics: Dict[str, Metric] = {}
        for item in items:
            metric = next(built) if isinstance(item, str) else item
            if not isinstance(metric, Metric):
                raise AttribmapError(f"metrics must be names or Metric objects; got {type(metric).__name__}")
            if metric.info.name in self.metrics:
                raise AttribmapError(f"metric {metric.info.name!r} is listed twice")
            self.metrics[metric.info.name] = metric
        if not self.metrics:
            raise AttribmapError("an Evaluator needs at least one metric")
        self._seen = 0

    @property
    def image_size(self) -> int:
        """Side of the evaluation frame."""
        return self.framer.image_size

    @property
    def needs(self) -> List[str]:
        """Every frame input some metric needs."""
        return sorted({need for metric in self.metrics.values() for need in metric.info.needs})

    def infos(self) -> List[MetricInfo]:
        """The metrics' metadata, in order."""
        return [metric.info for metric in self.metrics.values()]

    def frame(self, maps, **inputs) -> Frame:
        """Frame one batch of ``maps`` with the keyword ``**inputs`` of :meth:`Framer.frame` (boxes, sizes, masks, ...); images count from the last one framed when ``indices`` is not given."""
        if inputs.get("indices") is None:
            count = len(maps) if not hasattr(maps, "shape") else int(maps.shape[0])
            inputs["indices"] = np.arange(self._seen, self._seen + count)
        frame = self.framer.frame(maps, **inputs)
        self._seen += frame.count
        return frame

    def update(self, maps, **inputs) -> Frame:
        """Frame one batch once and add it to every metric; returns the frame.

        Parameters
        ----------
        maps : Frame, or Tensor / ndarray (N, h, w)
            Raw maps of the target class (or a frame built by :meth:`frame`).
        **inputs
            ``boxes``, ``image_sizes``, ``masks``, ``ignore``, ``correct``, ``inputs`` (a
            :class:`~attribmap.evaluate.perturbation.ModelInputs`), ``indices``,
            ``preprocessed``: see :meth:`~attribmap.evaluate.framing.Framer.frame`.
        """
        frame = maps if isinstance(maps, Frame) else self.frame(maps, **inputs)
        for metric in self.metrics.values():  # every input checked before any metric counts
            metric.check_inputs(frame)
        for metric in self.metrics.values():
            metric.update(frame)
        return frame

    def compute(self) -> Dict[str, Dict[str, Any]]:
        """Each metric's :meth:`~attribmap.evaluate.metric.Metric.compute`, by metric name."""
        return {name: metric.compute() for name, metric in self.metrics.items()}

    def scores(self, results: Optional[Mapping[str, Mapping[str, Any]]] = None) -> Dict[str, Any]:
        """The reportable numbers of every metric in one flat dict (columns and extras) of ``results`` (default: :meth:`compute`)."""
        results = self.compute() if results is None else results
        flat: Dict[str, Any] = {}
        for name, metric in self.metrics.items():
            flat.update(metric.scores(results[name]))
        return flat

    def series(self, results: Optional[Mapping[str, Mapping[str, Any]]] = None) -> Dict[str, np.ndarray]:
        """Every metric's curves in one flat dict (series name -> 1-D array) of ``results`` (default: :meth:`compute`)."""
        results = self.compute() if results is None else results
        flat: Dict[str, np.ndarray] = {}
        for name, metric in self.metrics.items():
            flat.update(metric.series(results[name]))
        return flat

    def merge(self, other: "Evaluator") -> "Evaluator":
        """Add the counts of ``other``, an evaluator with the same metrics and settings; returns self."""
        if list(other.metrics) != list(self.metrics):
            raise AttribmapError(f"cannot merge an evaluator of {list(other.metrics)} into one of "
                                 f"{list(self.metrics)}")
        for name, metric in self.metrics.items():
            metric.merge(other.metrics[name])
        return self

    def sync(self, process_group=None) -> "Evaluator":
        """Sum every metric's state across the torch.distributed ranks of ``process_group`` (None: the default group; no-op in one process)."""
        for metric in self.metrics.values():
            metric.sync(process_group)
        return self

    def reset(self) -> "Evaluator":
        """Forget everything accumulated."""
        for metric in self.metrics.values():
            metric.reset()
        self._seen = 0
        return self

    def state(self) -> Dict[str, Dict[str, np.ndarray]]:
        """Every metric's int64 state, by metric name (for resume files)."""
        return {name: metric.state() for name, metric in self.metrics.items()}

    def load_state(self, state: Mapping[str, Mapping[str, Any]]) -> "Evaluator":
        """Restore the ``state`` that :meth:`state` returned."""
        if set(state) != set(self.metrics):
            raise AttribmapError(f"saved scores hold {sorted(state)}, expected {sorted(self.metrics)}")
        for name, metric in self.metrics.items():
            metric.load_state(state[name])
        return self


def _takes_image_size(name: str) -> bool:
    return "image_size" in metric_parameters(metric_factory(name))
