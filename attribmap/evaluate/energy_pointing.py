"""The energy-based pointing game (Wang et al., Score-CAM, 2020)."""
from __future__ import annotations

import numpy as np

from attribmap.evaluate.exact_sum import exact_add, exact_mean, exact_zeros
from attribmap.evaluate.framing import Frame
from attribmap.evaluate.metric import Column, Metric, MetricInfo

__all__ = ["EnergyPointing", "box_energy"]


def box_energy(maps: np.ndarray, boxes) -> np.ndarray:
    """Share of each map's total inside the union of its GT boxes: (N,) float64 in [0, 1].

    Parameters
    ----------
    maps : ndarray (N, S, S), values >= 0
    boxes : sequence of N int arrays (k_i, 4), inclusive x0, y0, x1, y1 in frame pixels

    Returns
    -------
    ndarray (N,); 0 for an all-zero map (no energy anywhere, so none inside).
    """
    out = np.zeros(len(maps), dtype=np.float64)
    for index, (scoremap, gt) in enumerate(zip(maps, boxes)):
        inside = np.zeros(scoremap.shape, dtype=bool)
        for x0, y0, x1, y1 in np.asarray(gt, dtype=np.int64).reshape(-1, 4).tolist():
            inside[y0:y1 + 1, x0:x1 + 1] = True
        total = scoremap.sum()
        if total > 0:
            out[index] = scoremap[inside].sum() / total
    return out


class EnergyPointing(Metric):
    """Mean share of the map's energy that falls inside the ground-truth boxes.

    Per image: sum of the official-frame map (min-max, in [0, 1]) over the pixels of the
    union of its GT boxes, divided by the sum over the whole map (0 for an all-zero map,
    e.g. a constant one). The result is 100 x the mean over images, summed exactly
    (:mod:`attribmap.evaluate.exact_sum`), so shards and batches merge to the same number.

    Parameters
    ----------
    image_size : int
        Side of the evaluation frame.

    References
    ----------
    Wang et al., "Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural
    Networks", CVPR Workshops 2020 (energy-based pointing game).
    """

    name = "energy_pointing"
    _exact_state = ("energy",)

    def __init__(self, image_size: int = 224) -> None:
        self.image_size = int(image_size)
        super().__init__()

    def _config(self) -> tuple:
        return (self.image_size,)

    def _new_state(self) -> dict:
        return {"count": np.zeros((), dtype=np.int64), "energy": exact_zeros()}

    @property
    def info(self) -> MetricInfo:
        return MetricInfo(name=self.name, title="Energy pointing game", family="localization", needs=("boxes",),
                          columns=(Column("EnergyPointing", "energy pointing"),),
                          reference="Wang et al., Score-CAM, CVPR-W 2020", default_in=("official",),
                          default_with=("boxes",))

    def update(self, frame: Frame) -> "EnergyPointing":
        """Add ``frame``, a :class:`~attribmap.evaluate.framing.Frame` with boxes."""
        self.check_inputs(frame)
        exact_add(self._state["energy"], box_energy(frame.maps, frame.boxes))
        self._state["count"] += frame.count
        return self

    def compute(self) -> dict:
        """``{"EnergyPointing": percent, "num_images": N}``."""
        count = self._count()
        return {"EnergyPointing": 100.0 * exact_mean(self._state["energy"], count), "num_images": count}
