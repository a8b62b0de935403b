"""The metrics of one extractor in a benchmark run: :class:`ExtractorScores`.

Each extractor gets one :class:`~attribmap.evaluate.Evaluator`: the classifier's top-1
accuracy (``top1``), the protocol's localization metrics for what the split has
(:func:`~attribmap.evaluate.default_metrics`: boxes, pointing and energy pointing with
boxes; PxAP and peak IoU with masks; the legacy protocol's one metric) and the
faithfulness metrics the configuration asks for. The evaluator frames each batch once and
feeds every metric; nothing here assembles a protocol.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch

from attribmap.errors import AttribmapError

__all__ = ["ExtractorScores", "bench_metric_names"]


def bench_metric_names(config, has_boxes: bool, has_masks: bool) -> List[str]:
    """The metrics a benchmark run scores, in report order.

    Parameters
    ----------
    config : BenchConfig
        Protocol, the metrics asked for (``metrics``; None: the defaults) and the
        faithfulness metrics added (``faithfulness``).
    has_boxes, has_masks : bool
        What the split provides.

    Notes
    -----
    The defaults are :func:`~attribmap.evaluate.default_metrics` of the protocol with top-1
    flags: ``top1``, the localization metrics the split's boxes and masks allow, and on a
    mosaic dataset (``mosaic.json`` at ``config.data``, written by ``attribmap mosaic``) the
    grid pointing game.
    """
    from attribmap.evaluate import default_metrics

    from attribmap.data.mosaic import is_mosaic_dataset

    if config.protocol == "legacy" and not has_boxes:
        raise AttribmapError("the legacy protocol needs boxes; this split has masks only")
    names = list(getattr(config, "metrics", None) or default_metrics(
        config.protocol, has_boxes, has_masks, has_correct=True,
        mosaic=config.protocol == "official" and has_boxes and is_mosaic_dataset(config.data)))
    return names + [name for name in config.faithfulness if name not in names]


class ExtractorScores:
    """The evaluator of one extractor.

    Parameters
    ----------
    config : BenchConfig
        Protocol settings and the faithfulness metrics asked for.
    has_boxes, has_masks : bool
        What the split provides (box metrics need boxes, PxAP and peak IoU need masks).
    num_classes : int, optional
        Classes of the extractor's model (for the faithfulness metrics).

    Notes
    -----
    Legacy maps are scored in the 224 x 224 center crop of a 256 x 256 resize whatever the
    model's input size (the crop is resized back to that frame).
    """

    def __init__(self, config, has_boxes: bool, has_masks: bool, num_classes: int = 0) -> None:
        from attribmap.evaluate import Evaluator
        from attribmap.evaluate.registry import metric_info, options_for

        names = bench_metric_names(config, has_boxes, has_masks)
        self.frame_size = 224 if config.protocol == "legacy" else int(config.frame_size)
        self.has_masks = bool(has_masks) and config.protocol != "legacy"
        self.evaluator = Evaluator(names, image_size=self.frame_size,
                                   options=options_for(names, config.metric_options()))
        # per class: the metrics whose info says so (boxes, PxAP), on the already framed maps
        per_class = [n for n in names if metric_info(n).per_class] if getattr(config, "per_class", False) else []
        self.classes: Dict[int, Any] = {
            c: Evaluator(per_class, image_size=self.frame_size, options=options_for(per_class, config.metric_options()))
            for c in range(int(num_classes))} if per_class else {}

    @property
    def needs_model(self) -> bool:
        """Whether some metric perturbs the images (and needs the model)."""
        return "model" in self.evaluator.needs

    def forwards_per_image(self) -> int:
        """Perturbed forward passes per image of the faithfulness metrics (for the progress bar)."""
        return sum(int(getattr(m, "forwards_per_image", lambda: 0)()) for m in self.evaluator.metrics.values())

    def update(self, raw_maps: torch.Tensor, batch: Mapping[str, Any], correct: torch.Tensor, inputs=None,
               indices: Optional[List[int]] = None) -> None:
        """Add one batch.

        Parameters
        ----------
        raw_maps : Tensor (N, h, w)
            Raw maps of the ground-truth class.
        batch : mapping
            The collated batch (boxes, sizes, masks, ignore, images).
        correct : Tensor (N,)
            Top-1 flags of the extractor's model.
        inputs : ModelInputs, optional
            The extractor's model and its images (:class:`~attribmap.evaluate.ModelInputs`), for
            the faithfulness metrics.
        indices : list of int, optional
            Dataset indices of the images.
        """
        extra = {}
        if self.has_masks:
            extra = {"masks": [m.numpy() for m in batch["mask"]], "ignore": [m.numpy() for m in batch["ignore"]]}
        boxes = [b.numpy() for b in batch["boxes"]] if "boxes" in self.evaluator.needs else None
        sizes = batch["size"].numpy() if boxes else None
        flags = correct.cpu().numpy().astype(bool)
        frame = self.evaluator.update(raw_maps, boxes=boxes, image_sizes=sizes, correct=flags,
                                      inputs=inputs if self.needs_model else None, indices=indices, **extra)
        if self.classes:
            labels = batch["label"].cpu().numpy()
            for label in np.unique(labels).tolist():
                rows = np.flatnonzero(labels == label)
                pick = lambda items: None if items is None else [items[i] for i in rows]  # noqa: E731
                self.classes[int(label)].update(
                    frame.maps[rows], preprocessed=True, boxes=pick(boxes), correct=flags[rows],
                    image_sizes=None if sizes is None else sizes[rows],
                    **{k: pick(v) for k, v in extra.items()})

    def state(self) -> Dict[str, Dict[str, np.ndarray]]:
        """Every metric's state (for the resume file); per-class ones as ``class<c>.<metric>``."""
        out = dict(self.evaluator.state())
        for label, evaluator in self.classes.items():
            out.update({f"class{label}.{name}": value for name, value in evaluator.state().items()})
        return out

    def load_state(self, state: Mapping[str, Mapping[str, Any]]) -> None:
        """Restore the ``state`` that :meth:`state` returned."""
        self.evaluator.load_state({k: v for k, v in state.items() if not k.startswith("class")})
        for label, evaluator in self.classes.items():
            prefix = f"class{label}."
            evaluator.load_state({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})

    def sync(self) -> None:
        """Sum the states of every process (torch.distributed; no-op in one process)."""
        self.evaluator.sync()
        for evaluator in self.classes.values():
            evaluator.sync()

    def compute(self) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
        """The numbers (flat: every metric's columns and extras, ``num_images``, ``nonfinite_maps``:
        maps holding NaN / inf, scored as all-zero maps) and the curves."""
        results = self.evaluator.compute()
        scores = self.evaluator.scores(results)
        scores["num_images"] = int(results["top1"]["num_images"])
        scores["nonfinite_maps"] = self.evaluator.nonfinite_maps
        if self.classes:
            scores["per_class"] = {}
            for label, evaluator in self.classes.items():
                if not _counted(evaluator):
                    continue
                numbers = evaluator.scores(evaluator.compute())
                scores["per_class"][str(label)] = {k: numbers.get(k) for k in ("MaxBoxAcc", "MaxBoxAccV2", "PxAP")
                                                   if k in numbers}
        return scores, self.evaluator.series(results)

    def infos(self) -> List[Dict[str, Any]]:
        """The metrics' metadata, JSON-ready."""
        return [info.as_dict() for info in self.evaluator.infos()]


def _counted(evaluator) -> bool:
    """Whether an evaluator has seen at least one image (a class absent from this split has not)."""
    for state in evaluator.state().values():
        for key in ("count", "foreground"):  # box metrics count images; PxAP counts pixels
            if state.get(key) is not None:
                return int(np.asarray(state[key]).sum()) > 0
    return False
