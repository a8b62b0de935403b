"""MaxBoxAcc (V1), MaxBoxAccV2 and top-1 localization as a mergeable accumulator."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from attribmap.errors import AttribmapError
from attribmap.evaluate.accumulator import taus_for
from attribmap.evaluate.framing import Frame
from attribmap.evaluate.metric import Column, Metric, MetricInfo, Plot
from attribmap.evaluate.threshold_boxes import best_ious_batch, resolve_engine

__all__ = ["BoxAccuracy"]

#: Maps scored per compiled call in :meth:`BoxAccuracy.update` (keeps the per-tau IoU
#: arrays at a few MB however large the batch).
_CHUNK = 256


class BoxAccuracy(Metric):
    """Box accuracy of the official WSOL protocol (wsolevaluation's BoxEvaluator).

    For every image and every threshold tau in ``arange(0, 1, delta)`` the map (bicubic
    to ``image_size``, min-max, ``floor(255 x)``) is cut at ``int(tau * max)``; V1 keeps
    the contour of largest polygon area, V2 every contour; the image counts as a hit at
    (tau, IoU threshold d) when a kept box has inclusive IoU >= d with any GT box.

    Parameters
    ----------
    delta : float
        Threshold step (0.001 default, 0.01 for quick runs).
    iou_thresholds : sequence of int
        IoU thresholds in percent (30, 50, 70). MaxBoxAcc (V1) is reported at 50.
    image_size : int
        Side of the square evaluation frame.
    engine : {"auto", "tree", "opencv", "numpy"}
        Contour engine (identical numbers; see :mod:`attribmap.evaluate.threshold_boxes`).

    Notes
    -----
    State (int64): ``count``, ``v1_hits`` / ``v2_hits`` (D, T), and for top-1
    localization ``predicted`` (images that came with a prediction flag),
    ``v1_top1_hits`` / ``v2_top1_hits`` (D, T).

    References
    ----------
    Choe et al., "Evaluating Weakly Supervised Object Localization Methods Right", CVPR 2020.
    """

    name = "boxes"

    def __init__(self, delta: float = 0.001, iou_thresholds: Sequence[int] = (30, 50, 70),
                 image_size: int = 224, engine: str = "auto") -> None:
        self.delta = float(delta)
        self.taus = taus_for(self.delta)
        thresholds = tuple(int(t) for t in iou_thresholds)
        if not thresholds or any(not (0 < t <= 100) for t in thresholds):
            raise AttribmapError(f"iou_thresholds must be percents in (0, 100]; got {tuple(iou_thresholds)}")
        self.iou_thresholds = thresholds
        self.image_size = int(image_size)
        self.engine = resolve_engine(engine)
        super().__init__()

    def _config(self) -> tuple:
        return (self.delta, self.iou_thresholds, self.image_size)

    def _new_state(self) -> dict[str, np.ndarray]:
        shape = (len(self.iou_thresholds), len(self.taus))
        return {
            "count": np.zeros((), dtype=np.int64),
            "predicted": np.zeros((), dtype=np.int64),
            "v1_hits": np.zeros(shape, dtype=np.int64),
            "v2_hits": np.zeros(shape, dtype=np.int64),
            "v1_top1_hits": np.zeros(shape, dtype=np.int64),
            "v2_top1_hits": np.zeros(shape, dtype=np.int64),
        }

    @property
    def info(self) -> MetricInfo:
        ious = self.iou_thresholds
        columns = []
        if 50 in ious:
            columns.append(Column("MaxBoxAcc", "MaxBoxAcc"))
        columns.append(Column("MaxBoxAccV2", "MaxBoxAccV2"))
        columns += [Column("MaxBoxAccV2_per_iou", f"V2@{t}", sub=str(t)) for t in ious]
        if 50 in ious:
            columns.append(Column("Top1Loc", "top-1 loc"))
        columns.append(Column("Top1LocV2", "top-1 loc V2", headline=False))
        columns += [Column("best_tau", f"tau V2@{t}", sub=str(t), headline=False, digits=3, unit="")
                    for t in ious]
        curves = ("tau",) + tuple(f"BoxAccV1@{t}" for t in ious) + tuple(f"BoxAccV2@{t}" for t in ious)
        plot = Plot("boxacc_curves.png", "BoxAcc(tau)", "tau", tuple(f"BoxAccV2@{t}" for t in ious),
                    tuple(f"BoxAcc, IoU >= {t / 100:.1f}" for t in ious), "CAM threshold tau", "BoxAcc (%)",
                    ylim=(0.0, 100.0))
        return MetricInfo(
            name=self.name, title="Box accuracy (MaxBoxAcc, MaxBoxAccV2, top-1 localization)",
            family="localization", needs=("boxes",), columns=tuple(columns),
            extras=("MaxBoxAcc_per_iou", "best_tau_v1", "Top1LocV2_per_iou"), curves=curves, plots=(plot,),
            reference="Choe et al., CVPR 2020 (clovaai/wsolevaluation)", default_in=("official",),
            default_with=("boxes",), per_class=True)

    def update(self, frame: Frame) -> "BoxAccuracy":
        """Add a batch.

        Parameters
        ----------
        frame : Frame
            The batch in the official frame (:class:`~attribmap.evaluate.framing.Frame`, maps
            (N, S, S)) with its GT boxes; with ``correct`` (top-1 flags) it also counts top-1
            localization.
        """
        self.check_inputs(frame)
        count = frame.count
        gt_boxes, flags = frame.boxes, frame.correct
        cuts = np.asarray(self.iou_thresholds, dtype=np.float64)[:, None, None] / 100
        for start in range(0, count, _CHUNK):  # bounded memory: (D, chunk, T) at a time
            part = slice(start, min(start + _CHUNK, count))
            v1_iou, v2_iou = best_ious_batch(frame.maps[part], gt_boxes[part], self.taus, self.engine)
            v1 = v1_iou[None] >= cuts  # (D, n, T)
            v2 = v2_iou[None] >= cuts
            self._state["v1_hits"] += v1.sum(axis=1)
            self._state["v2_hits"] += v2.sum(axis=1)
            if flags is not None:
                self._state["v1_top1_hits"] += v1[:, flags[part]].sum(axis=1)
                self._state["v2_top1_hits"] += v2[:, flags[part]].sum(axis=1)
        self._state["count"] += count
        if flags is not None:
            self._state["predicted"] += count
        return self

    def _max_per_iou(self, hits: np.ndarray, count: int):
        curves = hits * 100.0 / float(count)
        best = {t: float(curves[i].max()) for i, t in enumerate(self.iou_thresholds)}
        best_tau = {t: float(self.taus[int(np.argmax(curves[i]))]) for i, t in enumerate(self.iou_thresholds)}
        return curves, best, best_tau

    def compute(self) -> dict:
        """Scores in percent.

        Returns
        -------
        dict with ``MaxBoxAcc`` (V1 at IoU 50, when 50 is among the thresholds),
        ``MaxBoxAcc_per_iou`` and ``best_tau_v1`` ({iou: value}), ``MaxBoxAccV2`` (mean over
        the IoU thresholds of each one's max over tau), ``MaxBoxAccV2_per_iou``,
        ``best_tau`` ({iou: tau of V2's maximum}), ``Top1Loc`` / ``Top1LocV2`` /
        ``Top1LocV2_per_iou`` when every image came with ``correct``, ``num_images`` and
        ``curves`` = {"tau": (T,), "BoxAccV1": {iou: (T,)}, "BoxAccV2": {iou: (T,)}}.
        """
        count = self._count()
        v1_curves, v1_best, v1_tau = self._max_per_iou(self._state["v1_hits"], count)
        v2_curves, v2_best, v2_tau = self._max_per_iou(self._state["v2_hits"], count)
        result = {
            "MaxBoxAcc_per_iou": v1_best,
            "best_tau_v1": v1_tau,
            "MaxBoxAccV2": float(np.average([v2_best[t] for t in self.iou_thresholds])),
            "MaxBoxAccV2_per_iou": v2_best,
            "best_tau": v2_tau,
            "num_images": count,
            "delta": self.delta,
            "curves": {
                "tau": self.taus.copy(),
                "BoxAccV1": {t: v1_curves[i] for i, t in enumerate(self.iou_thresholds)},
                "BoxAccV2": {t: v2_curves[i] for i, t in enumerate(self.iou_thresholds)},
            },
        }
        if 50 in self.iou_thresholds:
            result["MaxBoxAcc"] = v1_best[50]
        if int(self._state["predicted"]) == count:
            _, top1_v1, _ = self._max_per_iou(self._state["v1_top1_hits"], count)
            _, top1_v2, _ = self._max_per_iou(self._state["v2_top1_hits"], count)
            if 50 in self.iou_thresholds:
                result["Top1Loc"] = top1_v1[50]
            result["Top1LocV2"] = float(np.average([top1_v2[t] for t in self.iou_thresholds]))
            result["Top1LocV2_per_iou"] = top1_v2
        return result

    def series(self, result) -> dict:
        """``tau`` and ``BoxAccV1@<iou>`` / ``BoxAccV2@<iou>`` (percent) from the curves of ``result`` (:meth:`compute`)."""
        curves = result["curves"]
        out = {"tau": np.asarray(curves["tau"])}
        for version in ("BoxAccV1", "BoxAccV2"):
            out.update({f"{version}@{t}": np.asarray(v) for t, v in curves[version].items()})
        return out

