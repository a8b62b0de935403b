"""PxAP (pixel average precision) as a mergeable accumulator (wsolevaluation's MaskEvaluator)."""
from __future__ import annotations

import numpy as np

from attribmap.errors import AttribmapError
from attribmap.evaluate.accumulator import taus_for
from attribmap.evaluate.framing import Frame
from attribmap.evaluate.histogram import score_bins, score_histogram
from attribmap.evaluate.metric import Column, Metric, MetricInfo, Plot

__all__ = ["PxAP", "PooledHistograms", "score_bins", "score_histogram", "pxap_edges"]


def pxap_edges(delta: float) -> np.ndarray:
    """PxAP's histogram bin edges: ``arange(0, 1, delta)`` followed by 1, 2, 3."""
    return np.append(taus_for(delta), [1.0, 2.0, 3.0])


class PooledHistograms(Metric):
    """Base of the metrics of the pooled foreground / background histograms (PxAP, peak IoU).

    State (int64): ``foreground`` and ``background`` counts in the bins of
    :func:`pxap_edges` (of ``delta``); a batch's histograms come from
    :meth:`~attribmap.evaluate.framing.Frame.histograms`, computed once per frame of side
    ``image_size``.
    """

    def __init__(self, delta: float = 0.001, image_size: int = 224) -> None:
        self.delta = float(delta)
        self.taus = taus_for(self.delta)
        self.edges = pxap_edges(self.delta)
        self.image_size = int(image_size)
        super().__init__()

    def _config(self) -> tuple:
        return (self.delta, self.image_size)

    def _new_state(self) -> dict[str, np.ndarray]:
        bins = len(self.edges) - 1
        return {"foreground": np.zeros(bins, dtype=np.int64), "background": np.zeros(bins, dtype=np.int64)}

    def update(self, frame: Frame) -> "PooledHistograms":
        """Add ``frame``, a :class:`~attribmap.evaluate.framing.Frame` with masks."""
        self.check_inputs(frame)
        foreground, background = frame.histograms(self.edges)
        self._state["foreground"] += foreground
        self._state["background"] += background
        return self

    def _positives(self) -> int:
        positives = int(self._state["foreground"].sum())
        if positives <= 0:
            raise AttribmapError(f"{type(self).__name__} needs at least one foreground pixel in the masks")
        return positives


class PxAP(PooledHistograms):
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

    References
    ----------
    Choe et al., "Evaluating Weakly Supervised Object Localization Methods Right", CVPR 2020.
    """

    name = "pxap"

    @property
    def info(self) -> MetricInfo:
        plot = Plot("pxap_pr_curves.png", "PxAP precision-recall", "recall", ("precision",),
                    ("Pixel precision-recall (PxAP)",), "recall", "precision", ylim=(0.0, 1.02))
        return MetricInfo(name=self.name, title="Pixel average precision (PxAP)", family="localization",
                          needs=("masks",), columns=(Column("PxAP", "PxAP"),), curves=("precision", "recall"),
                          plots=(plot,), reference="Choe et al., CVPR 2020 (clovaai/wsolevaluation)",
                          default_in=("official",), default_with=("masks",), per_class=True)

    def compute(self) -> dict:
        """PxAP in percent and the PR curve.

        Returns
        -------
        dict with ``PxAP`` (float), ``precision`` and ``recall`` (B,) ordered from the
        highest score threshold down (NaN precision where nothing is predicted),
        ``score_thresholds`` (B,) the threshold of each point (score >= threshold),
        ``num_foreground`` / ``num_background`` pixel counts.
        """
        positives = float(self._positives())
        fg = self._state["foreground"].astype(np.float64)
        bg = self._state["background"].astype(np.float64)
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

    def series(self, result) -> dict:
        """``precision`` and ``recall`` (B,) of ``result``, from the highest score threshold down."""
        return {"precision": np.asarray(result["precision"]), "recall": np.asarray(result["recall"])}
