"""PxAP (pixel average precision) as a mergeable accumulator (wsolevaluation's MaskEvaluator)."""
from __future__ import annotations

import numpy as np

from attribmap.errors import AttribmapError
from attribmap.evaluate.accumulator import Accumulator, taus_for
from attribmap.evaluate.frame import frame_scoremaps, union_mask
from attribmap.evaluate.histogram import score_bins, score_histogram, split_histograms

__all__ = ["PxAP", "score_bins", "score_histogram"]


def _per_image(masks, count: int, name: str):
    if masks is None:
        return [None] * count
    if len(masks) != count:
        raise AttribmapError(f"{name} must hold {count} masks (one per map); got {len(masks)}")
    return list(masks)


class PxAP(Accumulator):
    """Pixel average precision over a whole dataset (pooled histograms).

    Map values at foreground pixels and at background pixels (ignore pixels dropped)
    are histogrammed with bin edges ``arange(0, 1, delta)`` then 1, 2, 3; precision and
    recall are taken at every bin edge from the top; PxAP = 100 * sum of
    precision * recall increments over the edges where something is predicted.

    Parameters
    ----------
    delta : float
        Bin width (0.001 default, 0.01 available).
    image_size : int
        Side of the evaluation frame the masks are resized to (nearest neighbour).
    """

    def __init__(self, delta: float = 0.001, image_size: int = 224) -> None:
        self.delta = float(delta)
        self.taus = taus_for(self.delta)
        self.edges = np.append(self.taus, [1.0, 2.0, 3.0])
        self.image_size = int(image_size)
        super().__init__()

    def _config(self) -> tuple:
        return (self.delta, self.image_size)

    def _new_state(self) -> dict[str, np.ndarray]:
        bins = len(self.edges) - 1
        return {"foreground": np.zeros(bins, dtype=np.int64), "background": np.zeros(bins, dtype=np.int64)}

    def update(self, maps, masks, ignore=None, preprocessed: bool = False) -> "PxAP":
        """Add a batch.

        Parameters
        ----------
        maps : Tensor or ndarray, shape (N, h, w)
            Raw maps (``preprocessed=True``: (N, S, S) in [0, 1]).
        masks : sequence of N arrays (Hm, Wm) or (k, Hm, Wm), or an array (N, Hm, Wm)
            Foreground (> 0.5, union over instances), any resolution.
        ignore : same layout as ``masks``, or None
            Ignore region; its pixels outside the foreground are left out.
        """
        frame = frame_scoremaps(maps, self.image_size, preprocessed)
        count = frame.shape[0]
        mask_list = _per_image(masks, count, "masks")
        ignore_list = _per_image(ignore, count, "ignore")
        foreground = np.empty(frame.shape, dtype=bool)
        background = np.empty(frame.shape, dtype=bool)
        for index in range(count):
            foreground[index] = union_mask(mask_list[index], self.image_size)
            np.logical_not(foreground[index], out=background[index])
            if ignore_list[index] is not None:
                background[index] &= ~union_mask(ignore_list[index], self.image_size)
        # the whole batch in one pass (per-map calls cost more than the binning itself)
        split_histograms(frame, foreground, background, self.edges,
                         self._state["foreground"], self._state["background"])
        return self

    def compute(self) -> dict:
        """PxAP in percent and the PR curve.

        Returns
        -------
        dict with ``PxAP`` (float), ``precision`` and ``recall`` (B,) ordered from the
        highest score threshold down (NaN precision where nothing is predicted),
        ``score_thresholds`` (B,) the threshold of each point (score >= threshold),
        ``num_foreground`` / ``num_background`` pixel counts.
        """
        fg = self._state["foreground"].astype(np.float64)
        bg = self._state["background"].astype(np.float64)
        positives = fg.sum()
        if positives <= 0:
            raise AttribmapError("PxAP needs at least one foreground pixel in the masks")
        tp = fg[::-1].cumsum()
        fp = bg[::-1].cumsum()
        predicted = (tp + fp) != 0
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = tp / (tp + fp)
        recall = tp / (tp + (positives - tp))
        pxap = (precision[1:] * np.diff(recall))[predicted[1:]].sum() * 100
        return {
            "PxAP": float(pxap),
            "precision": precision,
            "recall": recall,
            "score_thresholds": self.edges[:-1][::-1].copy(),
            "num_foreground": int(positives),
            "num_background": int(bg.sum()),
        }
