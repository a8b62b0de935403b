"""The accumulators of one extractor under one protocol: :class:`ExtractorScores`.

Official protocol: :class:`~attribmap.evaluate.BoxAccuracy` and
:class:`~attribmap.evaluate.PointingGame` (where the split has boxes) and
:class:`~attribmap.evaluate.PxAP` (where it has masks). Legacy protocol:
:class:`~attribmap.evaluate.LegacyLocalization`. A raw map is brought to the evaluation
frame once per batch and handed to every accumulator as ``preprocessed``.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping

import numpy as np
import torch

from attribmap.errors import AttribmapError
from attribmap.evaluate.accumulator import Accumulator

__all__ = ["ExtractorScores", "TopOneCounter", "restore_state"]


def restore_state(accumulator: Any, state: Mapping[str, Any]) -> None:
    """Put counts saved with ``accumulator.state()`` back (see ``Accumulator.load_state``)."""
    accumulator.load_state(state)


class TopOneCounter(Accumulator):
    """Images seen and top-1 hits of a classifier; mergeable like the accumulators."""

    def _new_state(self) -> Dict[str, np.ndarray]:
        return {"count": np.zeros((), np.int64), "hits": np.zeros((), np.int64)}

    def _config(self) -> tuple:
        return ()

    def update(self, correct: torch.Tensor) -> None:
        """Add a batch of (N,) bool flags."""
        flags = np.asarray(correct.cpu().numpy(), dtype=bool).reshape(-1)
        self._state["count"] += flags.size
        self._state["hits"] += int(flags.sum())

    def compute(self) -> float:
        """Top-1 accuracy in percent."""
        count = int(self._state["count"])
        return 100.0 * int(self._state["hits"]) / count if count else float("nan")


class ExtractorScores:
    """Accumulators for one extractor.

    Parameters
    ----------
    protocol : {"official", "legacy"}
    has_boxes, has_masks : bool
        What the split provides (box metrics need boxes, PxAP needs masks).
    delta, tau, frame_size, iou_thresholds, pointing_tolerance
        Protocol settings (see :class:`attribmap.bench.BenchConfig`).

    Notes
    -----
    Legacy maps are scored in the 224 x 224 center crop of a 256 x 256 resize whatever the
    model's input size (the crop is resized back to that frame).
    """

    def __init__(self, protocol: str, has_boxes: bool, has_masks: bool, delta: float = 0.001,
                 tau: float = 0.2, frame_size: int = 224, iou_thresholds=(30, 50, 70),
                 pointing_tolerance: float = 15.0) -> None:
        from attribmap.evaluate import BoxAccuracy, LegacyLocalization, PointingGame, PxAP

        self.protocol = protocol
        self.frame_size = int(frame_size)
        self.accumulators: Dict[str, Any] = {"top1": TopOneCounter()}
        if protocol == "legacy":
            if not has_boxes:
                raise AttribmapError("the legacy protocol needs boxes; this split has masks only")
            self.accumulators["legacy"] = LegacyLocalization(tau=tau, resize_size=256, crop_size=224)
            self.frame_size = 224
        else:
            if has_boxes:
                self.accumulators["boxes"] = BoxAccuracy(delta, iou_thresholds, frame_size)
                self.accumulators["pointing"] = PointingGame(pointing_tolerance, frame_size)
            if has_masks:
                self.accumulators["pxap"] = PxAP(delta, frame_size)

    def update(self, raw_maps: torch.Tensor, batch: Mapping[str, Any], correct: torch.Tensor) -> None:
        """Add one batch: raw maps (N, h, w) of the GT class, the collated batch, top-1 flags (N,)."""
        from attribmap.evaluate import official_maps

        frame = official_maps(raw_maps, self.frame_size)
        flags = correct.cpu().numpy().astype(bool)
        sizes = batch["size"].numpy()
        boxes = [b.numpy() for b in batch["boxes"]]
        self.accumulators["top1"].update(correct)
        if "legacy" in self.accumulators:
            self.accumulators["legacy"].update(frame, boxes, sizes, flags, preprocessed=True)
        if "boxes" in self.accumulators:
            self.accumulators["boxes"].update(frame, boxes, sizes, flags, preprocessed=True)
            self.accumulators["pointing"].update(frame, boxes, sizes, preprocessed=True)
        if "pxap" in self.accumulators:
            masks = [m.numpy() for m in batch["mask"]]
            ignore = [m.numpy() for m in batch["ignore"]]
            self.accumulators["pxap"].update(frame, masks, ignore, preprocessed=True)

    def state(self) -> Dict[str, Dict[str, np.ndarray]]:
        """Every accumulator's counts (for the resume file)."""
        return {name: acc.state() for name, acc in self.accumulators.items()}

    def load_state(self, state: Mapping[str, Mapping[str, Any]]) -> None:
        """Restore counts written by :meth:`state`."""
        if set(state) != set(self.accumulators):
            raise AttribmapError(f"saved scores hold {sorted(state)}, expected {sorted(self.accumulators)}")
        for name, acc in self.accumulators.items():
            restore_state(acc, state[name])

    def sync(self) -> None:
        """Sum the counts of every process (torch.distributed; no-op in one process)."""
        for acc in self.accumulators.values():
            acc.sync()

    def compute(self) -> Dict[str, Any]:
        """Metrics (percent) and, under ``"curves"``, the arrays for the figures."""
        result: Dict[str, Any] = {"ClassifierTop1": self.accumulators["top1"].compute()}
        curves: Dict[str, Any] = {}
        if "legacy" in self.accumulators:
            legacy = self.accumulators["legacy"].compute()
            result.update({"GTKnownLoc": legacy["GTKnownLoc"], "num_images": legacy["num_images"]})
            if "Top1Loc" in legacy:
                result["Top1Loc"] = legacy["Top1Loc"]
        if "boxes" in self.accumulators:
            boxes = self.accumulators["boxes"].compute()
            curves["box"] = boxes.pop("curves")
            boxes.pop("delta", None)
            result.update(boxes)
            result["PointingGame"] = self.accumulators["pointing"].compute()["PointingGame"]
        if "pxap" in self.accumulators:
            pixel = self.accumulators["pxap"].compute()
            result["PxAP"] = pixel["PxAP"]
            curves["pr"] = {"precision": pixel["precision"], "recall": pixel["recall"]}
            result.setdefault("num_images", int(self.accumulators["top1"].state()["count"]))
        result["curves"] = curves
        return result
