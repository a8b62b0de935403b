"""Peak IoU and its threshold (the LID challenge's measure; "mIoU" in the DGL slides)."""
from __future__ import annotations

import numpy as np

from attribmap.evaluate.metric import Column, MetricInfo, Plot
from attribmap.evaluate.pxap import PooledHistograms

__all__ = ["PeakIoU"]


class PeakIoU(PooledHistograms):
    """Best pixel IoU between the thresholded maps and the masks, pooled over the dataset.

    From the same pooled foreground / background histograms as PxAP (bin edges
    ``arange(0, 1, delta)`` then 1, 2, 3; ignore pixels left out): at every threshold tau
    (a pixel is predicted when its score is >= tau), TP and FP are the foreground and
    background pixels predicted, FN the foreground pixels missed, and
    IoU(tau) = TP / (TP + FP + FN). The result is 100 x the maximum over tau and the tau
    that reaches it (the highest one on ties). Both histograms are computed once per batch
    and shared with :class:`~attribmap.evaluate.PxAP` when both are evaluated.

    Parameters
    ----------
    delta : float
        Bin width, as for PxAP.
    image_size : int
        Side of the evaluation frame.

    References
    ----------
    Wei et al., "LID 2020: The Learning from Imperfect Data Challenge Results" (peak IoU);
    reported as mIoU in the DGL slides (Tan et al., ACM MM 2020).
    """

    name = "peak_iou"

    @property
    def info(self) -> MetricInfo:
        plot = Plot("peak_iou_curves.png", "Pixel IoU(tau)", "iou_tau", ("iou",), ("Pixel IoU against masks",),
                    "score threshold tau", "IoU (%)", ylim=(0.0, 100.0))
        return MetricInfo(name=self.name, title="Peak IoU", family="localization", needs=("masks",),
                          columns=(Column("PeakIoU", "peak IoU"),
                                   Column("PeakIoU_tau", "peak IoU tau", headline=False, digits=3, unit="")),
                          curves=("iou_tau", "iou"), plots=(plot,),
                          reference="LID challenge 2020 (Wei et al.); DGL slides (mIoU)",
                          default_in=("official",), default_with=("masks",))

    def compute(self) -> dict:
        """``PeakIoU`` (percent), ``PeakIoU_tau``, and the curve ``iou`` (percent) over ``iou_tau``.

        The curve runs over the thresholds in increasing order: ``iou_tau`` = the bin edges
        ``arange(0, 1, delta)`` then 1.
        """
        positives = self._positives()
        fg = self._state["foreground"]
        bg = self._state["background"]
        tp = fg[::-1].cumsum()[::-1]  # predicted foreground at "score >= edges[j]"
        fp = bg[::-1].cumsum()[::-1]
        iou = 100.0 * tp / (positives + fp)  # TP + FP + FN = positives + FP
        thresholds = self.edges[:-1]
        keep = thresholds <= 1.0  # the bin from 2 on is empty for maps in [0, 1]
        iou, thresholds = iou[keep], thresholds[keep]
        best = len(iou) - 1 - int(np.argmax(iou[::-1]))  # the highest threshold on ties
        return {"PeakIoU": float(iou[best]), "PeakIoU_tau": float(thresholds[best]),
                "iou_tau": thresholds.copy(), "iou": iou}

    def series(self, result) -> dict:
        """``iou_tau`` and ``iou`` (percent) of ``result``."""
        return {"iou_tau": np.asarray(result["iou_tau"]), "iou": np.asarray(result["iou"])}
