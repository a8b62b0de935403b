"""The grid pointing game (Rao, Boehle, Schiele, CVPR 2022) on the raw maps, as a mergeable metric.

On an n x n mosaic of photos of different classes, the map explaining the class of one cell
should put its positive attribution in that cell. The score of one (mosaic, target cell)
pair is

    sum of A+ inside the target cell / sum of A+ over the whole mosaic,

with A+ the positive part of the **raw** map (before any min-max normalisation, which would
turn negative regions into positive mass), upsampled bilinearly to the frame first when it is
a layer map. A uniform map scores 1 / n^2. The target cell is the entry's GT box (one per
entry in a mosaic dataset, ``attribmap mosaic``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from attribmap.evaluate.exact_sum import exact_add, exact_mean, exact_zeros
from attribmap.evaluate.metric import Column, Metric, MetricInfo

__all__ = ["GridPointing", "positive_share", "upsample_bilinear"]


def upsample_bilinear(maps: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize (half-pixel centres, no antialias) of ``maps`` to ``size x size``.

    Parameters
    ----------
    maps : ndarray, float64, shape (N, h, w)
    size : int

    Returns
    -------
    ndarray, float64, shape (N, size, size); ``maps`` itself when already that size.
    """
    if maps.shape[1:] == (size, size):
        return maps
    import torch
    import torch.nn.functional as F

    tensor = torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float64))[:, None]
    return F.interpolate(tensor, size=(size, size), mode="bilinear", align_corners=False)[:, 0].numpy()


def positive_share(maps: np.ndarray, boxes: Sequence[np.ndarray]) -> tuple:
    """Share of each map's positive mass inside the union of its boxes.

    Parameters
    ----------
    maps : ndarray, float64, shape (N, S, S)
        Raw maps already at the boxes' resolution (any sign, any scale).
    boxes : sequence of N int arrays (k_i, 4)
        Inclusive x0, y0, x1, y1 in the maps' pixels.

    Returns
    -------
    (shares, empty)
        ``shares``: float64 (N,) in [0, 1], 0 for a map with no positive value;
        ``empty``: bool (N,), which maps had no positive value (their share is undefined
        and scored 0).
    """
    shares = np.zeros(len(maps), dtype=np.float64)
    empty = np.zeros(len(maps), dtype=bool)
    for index, (scoremap, gt) in enumerate(zip(maps, boxes)):
        positive = np.maximum(scoremap, 0.0)
        total = positive.sum()
        if not total > 0:
            empty[index] = True
            continue
        inside = np.zeros(scoremap.shape, dtype=bool)
        for x0, y0, x1, y1 in np.asarray(gt, dtype=np.int64).reshape(-1, 4).tolist():
            inside[y0:y1 + 1, x0:x1 + 1] = True
        shares[index] = min(1.0, positive[inside].sum() / total)
    return shares, empty


class GridPointing(Metric):
    """Mean share of the raw map's positive mass inside the target cell (grid pointing game).

    Per (mosaic, cell) entry: the raw map (as the extractor returned it, before min-max) is
    upsampled bilinearly to the ``image_size`` frame, its positive part summed inside the
    entry's GT box (the target cell, rescaled to the frame like every box) and divided by its
    sum over the frame. A map with no positive value scores 0 and is counted in
    ``GridPointing_empty``. The result is 100 x the mean over entries, summed exactly
    (:mod:`attribmap.evaluate.exact_sum`), so batches, shards and processes merge to the
    same number. A uniform map scores 100 / n^2 on an n x n mosaic.

    Parameters
    ----------
    image_size : int
        Side of the evaluation frame the raw maps are upsampled to.

    References
    ----------
    Rao, Boehle, Schiele, "Towards Better Understanding Attribution Methods", CVPR 2022.
    """

    name = "grid_pointing"
    _exact_state = ("share",)

    def __init__(self, image_size: int = 224) -> None:
        self.image_size = int(image_size)
        super().__init__()

    def _config(self) -> tuple:
        return (self.image_size,)

    def _new_state(self) -> dict:
        return {"count": np.zeros((), dtype=np.int64), "empty": np.zeros((), dtype=np.int64),
                "share": exact_zeros()}

    @property
    def info(self) -> MetricInfo:
        return MetricInfo(name=self.name, title="Grid pointing game", family="localization", needs=("boxes", "raw"),
                          columns=(Column("GridPointing", "grid pointing"),),
                          extras=("GridPointing_empty",),
                          reference="Rao, Boehle, Schiele, CVPR 2022", default_in=("official",),
                          default_with=("boxes", "mosaic"))

    def update(self, frame) -> "GridPointing":
        """Add ``frame``, a :class:`~attribmap.evaluate.framing.Frame` of raw maps with boxes."""
        self.check_inputs(frame)
        maps = upsample_bilinear(frame.raw_maps(), self.image_size)
        shares, empty = positive_share(maps, frame.boxes)
        exact_add(self._state["share"], shares)
        self._state["count"] += frame.count
        self._state["empty"] += int(empty.sum())
        return self

    def compute(self) -> dict:
        """``{"GridPointing": percent, "GridPointing_empty": maps without positive mass, "num_images": N}``."""
        count = self._count()
        return {"GridPointing": 100.0 * exact_mean(self._state["share"], count),
                "GridPointing_empty": int(self._state["empty"]), "num_images": count}
