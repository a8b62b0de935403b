"""The extractors of a benchmark, run together on one batch.

Groups, each timed on its own:

* ``posthoc``: the registered post-hoc methods (cam, gradcam, gradcampp, dgl, dgl-psb,
  dgl-cem, ...) of the main model: one tapped forward and shared gradients for all of them;
* ``captum:<Name>``: each captum method runs its own passes on the main model;
* ``i2c``: the class maps of an I2C classifier (its own checkpoint, or the main model
  when that is an I2C model); top-1 flags come from that classifier's own logits;
* ``weightmap``: a trained generator's map (class-agnostic); top-1 flags are the main
  model's.

Every map is the map of the ground-truth class (GT-known protocol): targets are the labels.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from attribmap.errors import MethodError

__all__ = ["ExtractorSuite", "BatchMaps", "build_suite", "extractor_kind"]


def extractor_kind(name: str) -> str:
    """``"captum"``, ``"i2c"``, ``"weightmap"`` or ``"posthoc"``."""
    if name.startswith("captum:"):
        return "captum"
    if name in ("i2c", "weightmap"):
        return name
    return "posthoc"


@dataclass
class BatchMaps:
    """What the extractors produced for one batch.

    Attributes
    ----------
    maps : dict of str to Tensor (N, h, w)
        Raw maps of the ground-truth class, on the CPU.
    correct : dict of str to Tensor (N,) bool
        Whether the classifier behind each extractor predicted the label (top-1 loc).
    seconds : dict of str to float
        Wall time of each group (``posthoc``, ``captum:<Name>``, ``i2c``, ``weightmap``).
    """

    maps: Dict[str, torch.Tensor] = field(default_factory=dict)
    correct: Dict[str, torch.Tensor] = field(default_factory=dict)
    seconds: Dict[str, float] = field(default_factory=dict)


class ExtractorSuite:
    """A main classifier plus optional learned extractors, producing raw maps per batch.

    Parameters
    ----------
    model : nn.Module
        The classifier in eval mode.
    layer : str, optional
        Layer tapped by the post-hoc and captum layer methods (None = automatic).
    methods : sequence of str
        Post-hoc names and ``captum:<Name>``; ``"i2c"`` here means the main model is an I2C model.
    i2c_model : nn.Module, optional
        A separate I2C classifier scored as ``"i2c"``.
    generator : nn.Module, optional
        A weight-map generator scored as ``"weightmap"``.
    """

    def __init__(self, model: nn.Module, layer: Optional[str], methods, i2c_model: Optional[nn.Module] = None,
                 generator: Optional[nn.Module] = None) -> None:
        import attribmap
        from attribmap.learned import WeightMapExtractor

        self.model = model
        self.layer = layer
        names = list(methods)
        for name in names:
            attribmap.get_method(name)  # unknown names fail before any work
        self.posthoc = [n for n in names if extractor_kind(n) == "posthoc"]
        self.captum = [n for n in names if extractor_kind(n) == "captum"]
        if "i2c" in names and i2c_model is None:
            if not getattr(model, "class_map_layer", None):
                raise MethodError("'i2c' needs an I2C model: pass an i2c checkpoint (--i2c CKPT), or a main "
                                  "model with a fully convolutional head (model.class_map_layer)")
            i2c_model = model
        self.i2c_model = i2c_model
        self.weightmap = WeightMapExtractor(generator) if generator is not None else None
        self.explainer = attribmap.Explainer(model, layer)
        self.i2c_explainer = attribmap.Explainer(i2c_model) if i2c_model is not None else None

    @property
    def names(self) -> List[str]:
        """Extractor names in table order."""
        names = self.posthoc + self.captum
        if self.i2c_model is not None:
            names.append("i2c")
        if self.weightmap is not None:
            names.append("weightmap")
        return names

    def run(self, images: torch.Tensor, labels: torch.Tensor) -> BatchMaps:
        """Raw maps of every extractor for one batch.

        Parameters
        ----------
        images : Tensor (N, 3, H, W), normalized, on the models' device
        labels : LongTensor (N,), the ground-truth classes (the maps' targets)
        """
        out = BatchMaps()
        labels = labels.to(images.device)
        start = time.perf_counter()
        if self.posthoc:
            maps, logits = self.explainer.explain_many(images, self.posthoc, target=labels, raw=True,
                                                       return_logits=True)
            out.maps.update({n: m.detach().cpu() for n, m in maps.items()})
        else:
            with torch.no_grad():
                from attribmap.tap import logits_of

                logits = logits_of(self.model(images))
        main_correct = (logits.argmax(1) == labels).cpu()
        out.seconds["posthoc"] = time.perf_counter() - start
        for name in self.posthoc + self.captum:
            out.correct[name] = main_correct
        for name in self.captum:
            start = time.perf_counter()
            maps = self.explainer.explain_many(images, [name], target=labels, raw=True)
            out.maps[name] = maps[name].detach().cpu()
            out.seconds[name] = time.perf_counter() - start
        if self.i2c_explainer is not None:
            start = time.perf_counter()
            maps, i2c_logits = self.i2c_explainer.explain_many(images, ["i2c"], target=labels, raw=True,
                                                               return_logits=True)
            out.maps["i2c"] = maps["i2c"].detach().cpu()
            out.correct["i2c"] = (i2c_logits.argmax(1) == labels).cpu()
            out.seconds["i2c"] = time.perf_counter() - start
        if self.weightmap is not None:
            start = time.perf_counter()
            out.maps["weightmap"] = self.weightmap(images, None, labels).detach().cpu()
            out.correct["weightmap"] = main_correct
            out.seconds["weightmap"] = time.perf_counter() - start
        return out

    def group_of(self, name: str) -> str:
        """The timing group an extractor belongs to (post-hoc methods share ``posthoc``)."""
        return "posthoc" if extractor_kind(name) == "posthoc" else name


def _load_learned(path: str, device: torch.device, tasks: Tuple[str, ...], what: str) -> nn.Module:
    from attribmap.models.checkpoint import CheckpointError, load_checkpoint, load_model

    task = load_checkpoint(path).get("task")
    if task not in tasks:
        raise CheckpointError(f"{path!r} is a {task!r} checkpoint; --{what} needs one of {tasks}")
    return load_model(path, device=device)


def build_suite(config, device: torch.device) -> ExtractorSuite:
    """Load the models named by a :class:`~attribmap.bench.config.BenchConfig` and build the suite."""
    from attribmap.models.loading import load_classifier

    model = load_classifier(config.model, config.weights, config.checkpoint).to(device).eval()
    i2c_model = _load_learned(config.i2c, device, ("i2c",), "i2c") if config.i2c else None
    generator = _load_learned(config.weightmap, device, ("weightmap",), "weightmap") if config.weightmap else None
    methods = [m for m in config.methods if not (m == "i2c" and i2c_model is not None)]
    return ExtractorSuite(model, config.layer, methods, i2c_model=i2c_model, generator=generator)
