"""The extractors of a benchmark, built from their specs and run together on one batch.

Every extractor is named by a spec ``NAME[@LAYER][=CHECKPOINT][:KEY=VALUE...]``
(:mod:`attribmap.methods.spec`) and resolved through the one registry
(:func:`attribmap.methods.lookup`). What happens next depends only on what the registry
entry declares, never on the name:

* a post-hoc :class:`~attribmap.methods.base.Method` that declares the shared cost
  (``cost="shared"``), without a checkpoint and without ``scales`` / ``close``, joins the
  **shared** pass: one tapped forward of the main model and one batched backward serve all
  of them (each at its own layer: ``dgl@layer3`` beside ``cam`` costs one forward);
* a post-hoc method **with** a checkpoint runs on that checkpoint's model (an I2C
  classifier's class maps: ``i2c=runs/i2c.pt``); its top-1 flags come from that model;
* a learned extractor registered with a checkpoint builder (``weightmap=runs/wm.pt``) is
  built from its file;
* everything else (post-hoc methods that declare extra passes such as Score-CAM or
  FullGrad, captum methods, ``scales`` / ``close``) runs alone on the main model.

Each non-shared extractor is timed on its own; the shared ones as the group ``posthoc``.
Every map is the map of the ground-truth class (GT-known protocol): targets are the labels.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
from torch import nn

from attribmap.errors import MethodError
from attribmap.methods.base import SHARED_PASS, ExtractorResult, Method
from attribmap.methods.registry import lookup
from attribmap.methods.spec import ExtractorSpec
from attribmap.train.recipe import posthoc_tasks

__all__ = ["ExtractorSuite", "BatchMaps", "BenchExtractor", "build_suite", "SHARED_GROUP"]

#: Timing group of the extractors served by the shared pass.
SHARED_GROUP = "posthoc"


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
        Wall time of each timing group (``posthoc`` and one per other extractor).
    """

    maps: Dict[str, torch.Tensor] = field(default_factory=dict)
    correct: Dict[str, torch.Tensor] = field(default_factory=dict)
    seconds: Dict[str, float] = field(default_factory=dict)


@dataclass
class BenchExtractor:
    """One extractor of the suite.

    Attributes
    ----------
    spec : ExtractorSpec
        As named by the user.
    shared : bool
        Served by the shared pass of the main model.
    run : callable or None
        For the others: ``run(images, labels) -> ExtractorResult``.
    info : dict
        What results.json records: kind, checkpoint, its task and recipe.
    explainer : Explainer or None
        The explainer whose model the extractor reads (None for learned extractors).
    """

    spec: ExtractorSpec
    shared: bool
    run: Optional[Callable[[torch.Tensor, torch.Tensor], ExtractorResult]] = None
    info: Dict[str, Any] = field(default_factory=dict)
    explainer: Any = None

    @property
    def label(self) -> str:
        """The extractor's name in results (its spec without the checkpoint)."""
        return self.spec.label

    @property
    def group(self) -> str:
        """Timing group."""
        return SHARED_GROUP if self.shared else self.label


def _passes(spec: ExtractorSpec) -> bool:
    """Whether the spec asks for passes of its own (multi-scale or closing)."""
    return bool({"scales", "close"} & set(spec.generic_options))


def _method_label(spec: ExtractorSpec) -> str:
    """The spec as :meth:`attribmap.Explainer.explain_many` takes it: no checkpoint, no
    generic options (those become call arguments)."""
    return ExtractorSpec(spec.name, spec.layer, None, tuple(spec.method_options.items())).label


def _explainer_run(explainer, spec: ExtractorSpec, own_logits: bool):
    """``run`` of a method on ``explainer``'s model (the main model or a checkpoint's)."""
    label = _method_label(spec)
    generic = spec.generic_options
    raw = not generic.get("close")

    def run(images: torch.Tensor, labels: torch.Tensor) -> ExtractorResult:
        maps, logits = explainer.explain_many(images, [label], target=labels, raw=raw, return_logits=True,
                                              scales=generic.get("scales"), close=generic.get("close"))
        return ExtractorResult(maps[label], logits if own_logits else None)
    return run


def _checkpoint_info(path: str) -> Dict[str, Any]:
    from attribmap.models.checkpoint import load_checkpoint

    state = load_checkpoint(path)
    return {"checkpoint": path, "task": state.get("task"), "recipe": state.get("recipe"),
            "arch": state.get("arch", {}).get("arch")}


class ExtractorSuite:
    """A main classifier plus the extractors of a benchmark, producing raw maps per batch.

    Parameters
    ----------
    model : nn.Module
        The main classifier, in eval mode.
    layer : str, optional
        Default layer of the post-hoc and captum layer methods (None = automatic).
    specs : sequence of ExtractorSpec or str
        The extractors, in table order.
    device : torch.device
        Where checkpoint models are loaded.

    Raises
    ------
    MethodError
        Unknown names, two extractors with one label, a checkpoint of the wrong task, or a
        name that needs a checkpoint given none.
    """

    def __init__(self, model: nn.Module, layer: Optional[str], specs: Sequence, device=None) -> None:
        import attribmap

        self.model = model
        self.layer = layer
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.explainer = attribmap.Explainer(model, layer)
        self.extractors: List[BenchExtractor] = []
        seen = set()
        for item in specs:
            spec = item if isinstance(item, ExtractorSpec) else ExtractorSpec.parse(item)
            if spec.label in seen:
                raise MethodError(f"two extractors are both named {spec.label!r}; give each a different layer "
                                  "or options")
            seen.add(spec.label)
            self.extractors.append(self._build(spec))

    def _build(self, spec: ExtractorSpec) -> BenchExtractor:
        import attribmap
        from attribmap.models.checkpoint import CheckpointError, load_model

        entry = lookup(spec.name)
        if spec.checkpoint is None:
            if entry.extractor is None:
                raise MethodError(f"{spec.name!r} is built from its checkpoint: name it as "
                                  f"{spec.name}=CHECKPOINT (e.g. --extractor {spec.name}=runs/{spec.name}.pt)")
            shared = isinstance(entry.extractor, Method) and entry.extractor.cost == SHARED_PASS \
                and not _passes(spec)
            kind = "shared" if shared else "standalone"
            run = None if shared else _explainer_run(self.explainer, spec, own_logits=False)
            return BenchExtractor(spec, shared, run, {"kind": kind, "checkpoint": None}, self.explainer)
        info = _checkpoint_info(spec.checkpoint)
        task = info["task"]
        if entry.from_checkpoint is not None and (not entry.checkpoint_tasks or task in entry.checkpoint_tasks):
            built = entry.from_checkpoint(spec.checkpoint, self.device, **spec.method_options)
            if _passes(spec):
                raise MethodError(f"{spec.label!r}: scales / close are not supported for {spec.name!r}, "
                                  "a learned extractor built from its checkpoint")

            def run(images: torch.Tensor, labels: torch.Tensor, built=built) -> ExtractorResult:
                return built.run(images, self.model, labels)
            return BenchExtractor(spec, False, run, {"kind": "learned", **info})
        classifiers = posthoc_tasks()
        if entry.extractor is None or task not in classifiers:
            accepted = entry.checkpoint_tasks if entry.from_checkpoint is not None else classifiers
            raise CheckpointError(f"{spec.checkpoint!r} is a {task!r} checkpoint; {spec.name!r} needs one of "
                                  f"{tuple(accepted)}")
        own = attribmap.Explainer(load_model(spec.checkpoint, device=self.device))
        return BenchExtractor(spec, False, _explainer_run(own, spec, own_logits=True),
                              {"kind": "own-model", **info}, own)

    @property
    def names(self) -> List[str]:
        """Extractor labels in table order."""
        return [e.label for e in self.extractors]

    def group_of(self, name: str) -> str:
        """The timing group of extractor ``name``."""
        return next(e.group for e in self.extractors if e.label == name)

    def layers(self, images: torch.Tensor) -> Dict[str, Optional[str]]:
        """The layer each extractor taps on ``images`` (None for those that tap none)."""
        out: Dict[str, Optional[str]] = {}
        for extractor in self.extractors:
            out[extractor.label] = None
            if extractor.explainer is not None:
                try:
                    out[extractor.label] = extractor.explainer.layer_for(_method_label(extractor.spec), images)
                except MethodError:
                    pass
        return out

    def run(self, images: torch.Tensor, labels: torch.Tensor) -> BatchMaps:
        """Raw maps of every extractor for one batch.

        Parameters
        ----------
        images : Tensor (N, 3, H, W), normalized, on the models' device
        labels : LongTensor (N,), the ground-truth classes (the maps' targets)
        """
        out = BatchMaps()
        labels = labels.to(images.device)
        shared = [e.label for e in self.extractors if e.shared]
        start = time.perf_counter()
        if shared:
            maps, logits = self.explainer.explain_many(images, shared, target=labels, raw=True, return_logits=True)
            out.maps.update({n: m.detach().cpu() for n, m in maps.items()})
        else:
            from attribmap.tap import logits_of

            with torch.no_grad():
                logits = logits_of(self.model(images))
        main_correct = (logits.argmax(1) == labels).cpu()
        out.seconds[SHARED_GROUP] = time.perf_counter() - start
        for extractor in self.extractors:
            if extractor.shared:
                out.correct[extractor.label] = main_correct
                continue
            start = time.perf_counter()
            result = extractor.run(images, labels)
            out.maps[extractor.label] = result.maps.detach().cpu()
            out.correct[extractor.label] = main_correct if result.logits is None else \
                (result.logits.argmax(1) == labels).cpu()
            out.seconds[extractor.group] = time.perf_counter() - start
        return out


def build_suite(config, device: torch.device) -> ExtractorSuite:
    """Load the models named by ``config`` (a :class:`~attribmap.bench.config.BenchConfig`) on ``device`` and build the suite."""
    from attribmap.models.loading import load_classifier

    model = load_classifier(config.model, config.weights, config.checkpoint).to(device).eval()
    return ExtractorSuite(model, config.layer, config.extractor_specs(), device)
