"""Top-1 accuracy of the classifier behind the maps, as a metric."""
from __future__ import annotations

import numpy as np

from attribmap.evaluate.framing import Frame
from attribmap.evaluate.metric import Column, Metric, MetricInfo

__all__ = ["ClassifierAccuracy"]


class ClassifierAccuracy(Metric):
    """Share of images whose top-1 prediction is the label (from the frame's ``correct`` flags)."""

    name = "top1"

    def _new_state(self) -> dict:
        return {"count": np.zeros((), np.int64), "hits": np.zeros((), np.int64)}

    def _config(self) -> tuple:
        return ()

    @property
    def info(self) -> MetricInfo:
        return MetricInfo(name=self.name, title="Classifier top-1 accuracy", family="classifier",
                          needs=("correct",), columns=(Column("ClassifierTop1", "classifier top-1", headline=False),),
                          default_in=("official", "legacy"), default_with=("correct",))

    def update(self, frame: Frame) -> "ClassifierAccuracy":
        """Add ``frame``, a :class:`~attribmap.evaluate.framing.Frame` with ``correct``."""
        self.check_inputs(frame)
        self._state["count"] += frame.count
        self._state["hits"] += int(frame.correct.sum())
        return self

    def compute(self) -> dict:
        """``{"ClassifierTop1": percent, "num_images": N}``."""
        count = self._count()
        return {"ClassifierTop1": 100.0 * int(self._state["hits"]) / count, "num_images": count}
