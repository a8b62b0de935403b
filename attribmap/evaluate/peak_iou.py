"""Peak IoU and its threshold (the LID challenge's measure; "mIoU" in the DGL slides)."""
from __future__ import annotations

import numpy as np

from attribmap.errors import AttribmapError
from attribmap.evaluate.framing import Frame
from attribmap.evaluate.metric import Column, Metric, MetricInfo, Plot
from attribmap.evaluate.pxap import pxap_edges

__all__ = ["PeakIoU"]


class PeakIoU(Metric):
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

    def __init__(self, delta: float = 0.001, image_size: int = 224) -> None:
        self.delta = float(delta)
        self.edges = pxap_edges(self.delta)
        self.image_size = int(image_size)
        super().__init__()

    def _config(self) -> tuple:
        return (self.delta, self.image_size)

    def _new_state(self) -> dict:
        bins = len(self.edges) - 1
        return {"foreground": np.zeros(bins, dtype=np.int64), "background": np.zeros(bins, dtype=np.int64)}

    @property
    def info(self) -> MetricInfo:
        plot = Plot("peak_iou_curves.png", "Pixel IoU(tau)", "iou_tau", ("iou",), ("Pixel IoU against masks",),
                    "score threshold tau", "IoU (%)", ylim=(0.0, 100.0))
        return MetricInfo(name=self.name, title="Peak IoU", family="localization", needs=("masks",),
                          columns=(Column("PeakIoU", "peak IoU"),
                                   Column("PeakIoU_tau", "peak IoU tau", headline=False, digits=3, unit="")),
                          curves=("iou_tau", "iou"), plots=(plot,),
                          reference="LID challenge 2020 (Wei et al.); DGL slides (mIoU)")

    def update(self, frame: Frame) -> "PeakIoU":
        """Add a :class:`~attribmap.evaluate.framing.Frame` (with masks)."""
        self.check_inputs(frame)
        foreground, background = frame.histograms(self.edges)
        self._state["foreground"] += foreground
        self._state["background"] += background
        return self

    def compute(self) -> dict:
        """``PeakIoU`` (percent), ``PeakIoU_tau``, and the curve ``iou`` (percent) over ``iou_tau``.

        The curve runs over the thresholds in increasing order: ``iou_tau`` = the bin edges
        ``arange(0, 1, delta)`` then 1.
        """
        fg = self._state["foreground"]
        bg = self._state["background"]
        positives = int(fg.sum())
        if positives <= 0:
            raise AttribmapError("PeakIoU needs at least one foreground pixel in the masks")
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
        """``iou_tau`` and ``iou`` (percent)."""
        return {"iou_tau": np.asarray(result["iou_tau"]), "iou": np.asarray(result["iou"])}
