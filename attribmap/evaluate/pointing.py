"""The pointing game (Zhang et al., 2016) in the official frame, as a mergeable accumulator."""
from __future__ import annotations

import numpy as np

from attribmap.errors import AttribmapError
from attribmap.evaluate.framing import Frame
from attribmap.evaluate.metric import Column, Metric, MetricInfo

__all__ = ["PointingGame", "peak_location"]


def peak_location(scoremap: np.ndarray) -> tuple[int, int] | None:
    """(x, y) of the maximum of ``scoremap``, the first one in raster order; None for a constant map."""
    if scoremap.max() == scoremap.min():
        return None
    y, x = np.unravel_index(int(np.argmax(scoremap)), scoremap.shape)
    return int(x), int(y)


class PointingGame(Metric):
    """Share of images whose map maximum falls in (or near) a ground-truth box.

    A hit: the Euclidean distance from the peak pixel (x, y) to some GT box (inclusive
    pixels x0..x1, y0..y1) is at most ``tolerance`` pixels of the evaluation frame. A
    constant map (all zeros after normalization) has no peak and counts as a miss.

    Parameters
    ----------
    tolerance : float
        Distance in frame pixels (15 in the original pointing game).
    image_size : int
        Side of the evaluation frame.

    References
    ----------
    Zhang et al., "Top-down Neural Attention by Excitation Backprop", ECCV 2016.
    """

    name = "pointing"

    def __init__(self, tolerance: float = 15.0, image_size: int = 224) -> None:
        self.tolerance = float(tolerance)
        if not (self.tolerance >= 0):
            raise AttribmapError(f"tolerance must be >= 0 pixels; got {tolerance!r}")
        self.image_size = int(image_size)
        super().__init__()

    def _config(self) -> tuple:
        return (self.tolerance, self.image_size)

    def _new_state(self) -> dict[str, np.ndarray]:
        return {"count": np.zeros((), dtype=np.int64), "hits": np.zeros((), dtype=np.int64)}

    @property
    def info(self) -> MetricInfo:
        return MetricInfo(name=self.name, title="Pointing game", family="localization", needs=("boxes",),
                          columns=(Column("PointingGame", "pointing"),),
                          reference="Zhang et al., ECCV 2016 (excitation backprop)", default_in=("official",),
                          default_with=("boxes",))

    def update(self, frame: Frame) -> "PointingGame":
        """Add a batch.

        Parameters
        ----------
        frame : Frame
            The batch in the official frame (:class:`~attribmap.evaluate.framing.Frame`, maps
            (N, S, S)) with its GT boxes.
        """
        self.check_inputs(frame)
        for scoremap, gt in zip(frame.maps, frame.boxes):
            peak = peak_location(scoremap)
            if peak is None:
                continue
            x, y = peak
            dx = np.maximum(0, np.maximum(gt[:, 0] - x, x - gt[:, 2]))
            dy = np.maximum(0, np.maximum(gt[:, 1] - y, y - gt[:, 3]))
            if (dx * dx + dy * dy <= self.tolerance ** 2).any():
                self._state["hits"] += 1
        self._state["count"] += frame.count
        return self

    def compute(self) -> dict:
        """``{"PointingGame": percent of hits, "num_images": N}``."""
        count = self._count()
        return {"PointingGame": 100.0 * int(self._state["hits"]) / count, "num_images": count}
