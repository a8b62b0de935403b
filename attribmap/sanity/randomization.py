"""Model-parameter randomization tests (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018).

* **Cascading**: stage 0 is the trained model; stage k re-initialises one more block, from
  the logits downwards (the classifier, then the last block, ..., down to the stem), keeping
  the earlier ones randomized; the last stage has every block randomized.
* **Independent**: each block alone re-initialised, the rest trained.

``stages`` limits both tests to named blocks (the maps of the others are not computed; the
cascade still re-initialises them on its way down), for methods too costly to run at every
stage.

Every block is re-initialised with its modules' own default initialiser
(``reset_parameters``; batch norm also resets its running statistics), from a seed of its
own derived from ``seed`` and the block's name: a block gets the same weights in both tests.
The user's model is never modified: the tests run on deep copies, in eval mode.

At every stage each method's maps of the **same target classes** (the trained model's top-1
unless ``target`` is given) are compared with the trained model's maps, image by image
(:mod:`attribmap.sanity.similarity`): Spearman rank correlation of the signed and of the
absolute values, SSIM and HOG-feature Pearson correlation, all on the raw maps upsampled
bilinearly to the input. A constant map has no rank or HOG correlation: it is left out of
those means and counted (``n_constant``); a stage where every map is constant has no mean
(None), never a number.
"""
from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from attribmap.errors import AttribmapError
from attribmap.inputs import model_input_size, to_batch
from attribmap.sanity.blocks import check_blocks, randomization_blocks, reinitialise
from attribmap.sanity.stage_cache import StageCache
from attribmap.sanity.similarity import compare, is_constant

__all__ = ["SanityResult", "model_randomization", "MEASURES"]

#: The similarity measures reported per stage.
MEASURES = ("spearman", "spearman_abs", "ssim", "hog")


@dataclass
class SanityResult:
    """What :func:`model_randomization` measured.

    Attributes
    ----------
    blocks : list of str
        The blocks, from the input to the logits.
    stages : list of str
        Cascading stages: ``"original"``, then ``"<block>"`` meaning "this block and every block
        above it randomized", from the logits down.
    methods : dict
        method -> ``{"stages": stages, "spearman": [...], "spearman_abs": [...], "ssim": [...],
        "hog": [...], "n_constant": [...], "n_images": N}``; each list one value per stage,
        the mean over images (None where no image has a defined value).
    independent : dict
        The same for the independent test (stages: one block each), or empty.
    maps : dict
        method -> float32 array (S, H, W): the first image's map at every cascading stage
        (:func:`~attribmap.sanity.similarity.as_image` scale), for the figure.
    image : Tensor (C, H, W)
        The first image (for the figure).
    targets : list of int
        The class explained for each image.
    skipped : list of str
        Modules holding parameters without ``reset_parameters`` (left trained; should be empty).
    seed : int
    seconds : float
        Wall time.
    """

    blocks: List[str]
    stages: List[str]
    methods: Dict[str, Dict[str, Any]]
    independent: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    maps: Dict[str, np.ndarray] = field(default_factory=dict)
    image: Optional[torch.Tensor] = None
    targets: List[int] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    seed: int = 0
    seconds: float = 0.0

    def as_dict(self) -> Dict[str, Any]:
        """JSON-ready form (what ``attribmap sanity`` writes to ``sanity.json``)."""
        return {"methods": self.methods, "independent": self.independent, "blocks": self.blocks,
                "stages": self.stages, "targets": self.targets, "skipped": self.skipped, "seed": self.seed,
                "seconds": round(self.seconds, 2),
                "notes": "cascading randomization from the logits down; values are means over images of the "
                         "similarity to the trained model's maps; spearman / spearman_abs / hog leave out "
                         "constant maps, counted in n_constant (null: every map constant)"}

    def table(self, measure: str = "spearman_abs", independent: bool = False) -> str:
        """A plain-text table: one row per method, one column per stage, ``measure`` values
        (``-`` where undefined) with the count of constant maps in brackets where there are any;
        the cascading test, or the ``independent`` one."""
        if measure not in MEASURES:
            raise AttribmapError(f"measure must be one of {MEASURES}; got {measure!r}")
        results = self.independent if independent else self.methods
        if not results:
            return "(no independent randomization run)" if independent else "(no method)"
        stages = next(iter(results.values()))["stages"]
        width = max(8, *(len(m) for m in results))
        column = max(9, *(len(s) for s in stages))
        head = f"{measure:<{width}} " + " ".join(f"{s:>{column}}" for s in stages)
        lines = [head]
        for method, entry in results.items():
            cells = []
            for value, constant in zip(entry[measure], entry["n_constant"]):
                text = "-" if value is None else f"{value:.2f}"
                if constant and measure != "ssim":
                    text += f"[{constant}]"
                cells.append(f"{text:>{column}}")
            lines.append(f"{method:<{width}} " + " ".join(cells))
        return "\n".join(lines)


def _to_input(raw: torch.Tensor, size) -> np.ndarray:
    """Raw maps (N, h, w) -> float64 (N, H, W) at the input resolution (bilinear)."""
    maps = raw.detach().double().cpu()
    if maps.dim() != 3:
        raise AttribmapError(f"expected maps (N, h, w); a method returned shape {tuple(maps.shape)}")
    if tuple(maps.shape[-2:]) != tuple(size):
        maps = F.interpolate(maps[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
    return maps.numpy()


def _maps(model: torch.nn.Module, images: torch.Tensor, methods: Sequence[str], target: torch.Tensor,
          layer, options, cache: Optional[StageCache] = None, test: str = "", stage: str = "") -> Dict[str, np.ndarray]:
    """Each method's maps (N, H, W) at the input resolution; from ``cache`` where it holds them."""
    from attribmap.explainer import Explainer

    raw: Dict[str, torch.Tensor] = cache.load(test, stage, methods) if cache is not None else {}
    missing = [m for m in methods if m not in raw]
    if missing:
        explainer = Explainer(model, layer=layer)
        computed = explainer.explain_many(images, missing, target=target, raw=True, options=options, nonfinite="zero")
        fresh = {name: computed[name].detach() for name in missing}
        if cache is not None:
            cache.save(test, stage, fresh)
        raw.update(fresh)
    return {name: np.nan_to_num(_to_input(raw[name], images.shape[-2:]), nan=0.0, posinf=0.0, neginf=0.0)
            for name in methods}


def _summary(originals: Dict[str, np.ndarray], stages: List[Dict[str, np.ndarray]], names: List[str]
             ) -> Dict[str, Dict[str, Any]]:
    out: Dict[str, Dict[str, Any]] = {}
    for method, original in originals.items():
        entry: Dict[str, Any] = {"stages": list(names), **{m: [] for m in MEASURES}, "n_constant": [],
                                 "n_images": int(original.shape[0])}
        for maps in stages:
            values = {m: [] for m in MEASURES}
            constant = 0
            for first, other in zip(original, maps[method]):
                constant += int(is_constant(other) or is_constant(first))
                for key, value in compare(first, other).items():
                    if np.isfinite(value):
                        values[key].append(value)
            for key in MEASURES:
                entry[key].append(float(np.mean(values[key])) if values[key] else None)
            entry["n_constant"].append(constant)
        out[method] = entry
    return out


def model_randomization(model: torch.nn.Module, images, methods: Sequence[str], target=None, *,
                        blocks: Optional[Sequence[str]] = None, independent: bool = True, seed: int = 0,
                        layer=None, options: Optional[Dict[str, Dict[str, Any]]] = None,
                        size: Optional[int] = None, device: Optional[torch.device] = None,
                        stages: Optional[Sequence[str]] = None,
                        progress: Optional[Callable[[str], None]] = None,
                        cache: Optional[Union[str, os.PathLike]] = None) -> SanityResult:
    """Cascading (and independent) model-parameter randomization of ``model`` for ``methods``.

    Parameters
    ----------
    model : nn.Module
        A trained classifier (logits (N, K)); never modified (deep copies are randomized).
    images : Tensor (N, C, H, W) / (C, H, W), or PIL images, ndarrays, paths (a list)
        Tensors are used as given; other inputs go through
        :func:`attribmap.inputs.default_transform` at ``size``.
    methods : sequence of str
        Registered method names or specs (``"gradcam"``, ``"dgl@layer3"``, ``"captum:Saliency"``).
    target : None, int or sequence of N ints
        Classes explained at every stage; None: the trained model's top-1 of each image.
    blocks : sequence of str, optional
        Dotted module names from the input to the logits (default
        :func:`~attribmap.sanity.blocks.randomization_blocks`).
    independent : bool
        Also randomize each block alone. The top block alone is the cascade's first stage
        (each block's draw depends only on ``seed`` and its name): its maps are taken from the
        cascade, not computed twice.
    seed : int
        Seed of the re-initialisations.
    layer : str, optional
        Layer tapped by the post-hoc methods (default: automatic).
    options : dict, optional
        Per-method options (``{"dgl": {"alpha": 5}}``).
    size : int, optional
        Input side for non-tensor images (default: the model's ``input_size``, else 224).
    device : torch.device, optional
        Where to run (default: the model's device).
    stages : sequence of str, optional
        Blocks at which the maps are computed and compared (default: every block). The
        cascade still re-initialises every block above a named one, in order and from the
        same seeds, so a named stage's numbers equal those of a run over all stages; the
        independent test randomizes only the named blocks. ``"original"`` is always
        computed. For methods that cost thousands of forward passes per map (the Score-CAM
        family), naming the stages a table shows is what makes the run affordable.
    progress : callable, optional
        Called with one line of text after each stage's maps (which test, which stage, how
        many of how many, seconds since the start, how many methods came from ``cache``).
    cache : path, optional
        A folder that keeps every stage's raw maps, one file per test, stage and method
        (:class:`~attribmap.sanity.stage_cache.StageCache`), keyed by the model's weights, the
        images, targets, blocks, seed, layer, method options and device type. A run with the
        same settings reads them instead of computing them again: an interrupted run goes on
        from its last finished stage, and a run with more stages or methods computes only what
        is new. The numbers equal those of a run without a cache.

    Returns
    -------
    SanityResult
        Its ``methods[name]`` lists hold one value per stage: the first stage (``"original"``)
        compares the trained model with itself, the last has every block randomized (with
        ``stages``: every block down to the lowest one named).

    Raises
    ------
    AttribmapError
        No method, an unknown method or block (in ``blocks`` or ``stages``), a bad ``target``.
    """
    from attribmap.methods import ExtractorSpec
    from attribmap.methods import get_method
    from attribmap.tap import logits_of

    started = time.perf_counter()
    methods = [str(m) for m in methods]
    if not methods:
        raise AttribmapError("methods is empty: give at least one method name")
    for text in methods:
        get_method(ExtractorSpec.parse(text).name)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise AttribmapError(f"seed must be an int; got {seed!r}")
    parameter = next(model.parameters(), None)
    device = device or (parameter.device if parameter is not None else torch.device("cpu"))
    batch = to_batch(images, device=device, size=size if size is not None else model_input_size(model))
    trained = copy.deepcopy(model).to(device).eval()
    names = check_blocks(trained, blocks) if blocks is not None else randomization_blocks(trained)
    chosen = _check_stages(stages, names)
    if target is None:
        with torch.no_grad():
            targets = logits_of(trained(batch)).argmax(dim=1)
    else:
        targets = torch.as_tensor(target, device=device).reshape(-1)
        if targets.numel() == 1:
            targets = targets.expand(batch.shape[0])
        if targets.numel() != batch.shape[0] or targets.dtype in (torch.float16, torch.float32, torch.float64):
            raise AttribmapError(f"target must be an int or {batch.shape[0]} ints (one per image); got {target!r}")
    targets = targets.long()
    total, done = 1 + len(chosen) * (2 if independent else 1), 0
    store = StageCache(cache, trained, batch, targets, names, seed, layer, options, batch.device) \
        if cache is not None else None

    def report(test: str, stage: str, reused: bool = False) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            cached = f", {store.last_loaded} of {len(methods)} methods from the cache" \
                if store is not None and store.last_loaded else ""
            if reused:
                cached = ", the cascade's maps (the same weights)"
            progress(f"{test} {stage}: stage {done} of {total}, {time.perf_counter() - started:.0f} s{cached}")

    originals = _maps(trained, batch, methods, targets, layer, options, store, "trained", "original")
    report("trained", "original")
    cascade, skipped = copy.deepcopy(trained), []
    stage_maps, stage_names = [originals], ["original"]
    for block in reversed(names):
        skipped += reinitialise(cascade, block, seed)[1]
        if block not in chosen:
            continue
        stage_maps.append(_maps(cascade, batch, methods, targets, layer, options, store, "cascading", block))
        stage_names.append(block)
        report("cascading", block)
        if block == chosen[0]:
            break  # nothing below is compared: leave the lower blocks trained
    result = SanityResult(blocks=list(names), stages=stage_names, methods=_summary(originals, stage_maps, stage_names),
                          targets=[int(t) for t in targets.tolist()], skipped=sorted(set(skipped)), seed=seed,
                          image=batch[0].detach().cpu())
    result.maps = {m: np.stack([_first_image(s[m]) for s in stage_maps]).astype(np.float32) for m in methods}
    if independent:
        alone = []
        for block in reversed(chosen):
            if block == names[-1] and block in stage_names:
                # the top block alone is the cascade's first stage: the same weights (each block's
                # draw depends only on the seed and its name), so the same maps
                alone.append(stage_maps[stage_names.index(block)])
                report("independent", block, reused=True)
                continue
            single = copy.deepcopy(trained)
            reinitialise(single, block, seed)
            alone.append(_maps(single, batch, methods, targets, layer, options, store, "independent", block))
            del single
            report("independent", block)
        result.independent = _summary(originals, alone, list(reversed(chosen)))
    result.seconds = time.perf_counter() - started
    return result


def _check_stages(stages: Optional[Sequence[str]], blocks: List[str]) -> List[str]:
    """The blocks named by ``stages`` in input-to-logits order (all of ``blocks`` when None)."""
    if stages is None:
        return list(blocks)
    if isinstance(stages, str):
        raise AttribmapError(f"stages must be a sequence of block names, not the string {stages!r}")
    named = [str(s) for s in stages if str(s) != "original"]
    unknown = [s for s in named if s not in blocks]
    if unknown:
        raise AttribmapError(f"stages names {', '.join(map(repr, unknown))}, not a randomization block; "
                             f"the blocks are: {', '.join(blocks)}")
    if not named:
        raise AttribmapError("stages names no block (only 'original'): name at least one of "
                             f"{', '.join(blocks)}")
    return [b for b in blocks if b in set(named)]


def _first_image(maps: np.ndarray) -> np.ndarray:
    from attribmap.sanity.similarity import as_image

    return as_image(maps[0])
