"""The benchmark loop: :func:`run_benchmark`.

One pass over the split: per batch, one forward plus shared gradients serve every post-hoc
method, captum and learned extractors run on the same images, and every raw map goes to
its extractor's accumulators. Under ``torchrun`` each process scores every
``world_size``-th batch and the counts are summed with ``all_reduce`` at the end, so the
numbers equal a single-process run. Progress is saved every ``save_every`` batches and a
run started again with ``resume=True`` continues from there.
"""
from __future__ import annotations

import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from attribmap.bench.config import BenchConfig
from attribmap.bench.dataset import batch_items, batch_plan
from attribmap.bench.extractors import SHARED_GROUP, BatchMaps, ExtractorSuite, build_suite
from attribmap.bench.report import jsonable, write_report
from attribmap.bench.resume import load_progress, progress_path, save_progress
from attribmap.bench.scoring import ExtractorScores
from attribmap.data.formats import open_dataset
from attribmap.errors import AttribmapError

__all__ = ["run_benchmark", "BenchInterrupted", "software_versions"]


class BenchInterrupted(RuntimeError):
    """Raised when ``stop_after_batches`` stops a run early (its progress is saved)."""


def software_versions() -> Dict[str, str]:
    """Versions of attribmap and the libraries that shape the numbers."""
    import attribmap

    versions = {"attribmap": attribmap.__version__, "python": platform.python_version(),
                "torch": torch.__version__, "numpy": np.__version__, "platform": platform.platform()}
    for name in ("torchvision", "captum", "cv2", "matplotlib"):
        try:
            module = __import__(name)
            versions[name] = str(getattr(module, "__version__", "?"))
        except ImportError:
            versions[name] = "not installed"
    return versions


def _protocol_settings(config: BenchConfig) -> Dict[str, Any]:
    if config.protocol == "legacy":
        settings = {"name": "legacy", "tau": config.tau, "resize": 256, "crop": 224, "iou_threshold": 0.5,
                    "maps": "ground-truth class (GT-known)", "box": "largest contour [x, y, x+w, y+h]"}
    else:
        settings = {"name": "official", "delta": config.delta, "iou_thresholds": list(config.iou_thresholds),
                    "frame_size": config.frame_size, "pointing_tolerance": config.pointing_tolerance,
                    "maps": "ground-truth class (GT-known)",
                    "reference": "clovaai/wsolevaluation (Choe et al., CVPR 2020)"}
    faithfulness = config.faithfulness_names()
    if faithfulness:
        settings["faithfulness"] = {
            "metrics": list(faithfulness), "target": "ground-truth class (softmax probability)",
            "steps": config.steps, "deletion_baseline": config.deletion_baseline,
            "insertion_baseline": config.insertion_baseline, "road_percents": list(config.road_percents),
            "road_noise": config.road_noise, "batch_size": _faithfulness_batch_size(config)}
    if config.metric_settings:  # --metric-option values, which win over the named fields above
        settings["metric_options"] = {k: list(v) if isinstance(v, tuple) else v for k, v in config.settings().items()}
    return settings


def _faithfulness_batch_size(config: BenchConfig) -> int:
    """The perturbed images per forward pass: the configured number, else the device's default."""
    from attribmap.evaluate.perturbation import default_batch_size

    given = config.faithfulness_batch_size
    return default_batch_size(config.device) if given is None else given


def _progress_bar(total: int, initial: int, enabled: bool, desc: str = "bench", unit: str = "img"):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit=unit, desc=desc, disable=not enabled,
                dynamic_ncols=True, leave=False)


def _extractor_model(extractor, suite: ExtractorSuite) -> torch.nn.Module:
    """The classifier an extractor's maps explain: its own explainer's model, else the main model."""
    explainer = getattr(extractor, "explainer", None)
    return explainer.model if explainer is not None else suite.model


def _model_inputs(config: BenchConfig, scores: Dict[str, ExtractorScores], models: Dict[str, torch.nn.Module],
                  batch: Dict[str, Any], device: torch.device, progress) -> Dict[int, Any]:
    """One :class:`~attribmap.evaluate.ModelInputs` per distinct model of the extractors whose
    metrics perturb the images (their shared forwards - clean images, baselines - run once)."""
    from attribmap.evaluate import ModelInputs

    inputs: Dict[int, Any] = {}
    for name, score in scores.items():
        model = models[name]
        if score.needs_model and id(model) not in inputs:
            inputs[id(model)] = ModelInputs(model, batch["image"].to(device), batch["label"],
                                            batch_size=_faithfulness_batch_size(config), progress=progress)
    return inputs


# ~100 lines on purpose: the batch loop and its except clause share the resume bookkeeping (position, saved_at, scoring).
def run_benchmark(config: BenchConfig, out_dir: os.PathLike | str, *, resume: bool = False,
                  progress: Optional[bool] = None, save_every: int = 10,
                  stop_after_batches: Optional[int] = None, grid_images: int = 4,
                  write_figures: bool = True, log: Optional[Callable[[str], None]] = None) -> Dict[str, Any]:
    """Score every extractor of ``config`` on its dataset split and write the report.

    Parameters
    ----------
    config : BenchConfig
        Data, model, extractors and protocol.
    out_dir : path
        Report directory: ``results.json``, ``results.md``, ``curves.npz`` and figures
        (written by rank 0), plus the resume file while the run is unfinished.
    resume : bool
        Continue from the resume file of an interrupted run with the same settings (a
        missing file starts from the beginning; different settings raise).
    progress : bool, optional
        Progress bar with images/s on stderr (default: when stderr is a terminal).
    save_every : int
        Save the resume file every this many batches.
    stop_after_batches : int, optional
        Stop (raising :class:`BenchInterrupted`) after scoring this many batches in this
        call, once the resume file is saved: simulates an interruption.
    grid_images : int
        Images in the qualitative figure (0 = no figure).
    write_figures : bool
        Draw the matplotlib figures (results.json / results.md are always written).
    log : callable, optional
        Receives one-line messages (default: nothing).

    Returns
    -------
    dict
        The content of ``results.json`` (every process gets it).
    """
    from attribmap.distributed import barrier, distributed_session
    from attribmap.fileio import check_output_dir
    from attribmap.models.input_size import INPUT_SIZE_SOURCES

    config = config.validated()
    if isinstance(save_every, bool) or not isinstance(save_every, int) or save_every < 1:
        raise AttribmapError(f"save_every must be a positive int; got {save_every!r}")
    say = log or (lambda line: None)
    out_dir = check_output_dir(out_dir, "report directory (--out)")
    with distributed_session(config.device) as ctx:
        torch.manual_seed(config.seed)
        np.random.seed(config.seed)
        dataset, data_format = open_dataset(config.data, config.split, config.protocol, config.input_size,
                                            config.metadata)
        say(f"input size {config.input_size} px ({INPUT_SIZE_SOURCES.get(config.input_size_from)})")
        suite = build_suite(config, ctx.device)
        names = suite.names
        probe = batch_items(dataset, [0])["image"].to(ctx.device)
        _check_labels(dataset, suite.model, probe)
        layers = suite.layers(probe)
        scores = {n: ExtractorScores(config, dataset.has_boxes, dataset.has_masks, dataset.num_classes) for n in names}
        models = {e.label: _extractor_model(e, suite) for e in suite.extractors}
        plan = batch_plan(len(dataset), config.batch_size, ctx.rank, ctx.world_size)
        fingerprint = config.fingerprint(ctx.world_size)
        resume_file = progress_path(out_dir, ctx.rank, ctx.world_size)
        state = {"position": 0, "images": 0, "evaluate_s": 0.0, "wall_s": 0.0}
        group_seconds: Dict[str, float] = {}
        if resume:
            group_seconds = _resume(resume_file, fingerprint, scores, state, len(plan), say)

        def checkpoint(position: int) -> None:
            extra = {"images": state["images"], "evaluate_s": state["evaluate_s"], "wall_s": state["wall_s"],
                     **{f"group:{k}": v for k, v in group_seconds.items()}}
            save_progress(resume_file, fingerprint, position,
                          {n: s.state() for n, s in scores.items()}, extra)

        shown = progress if progress is not None else sys.stderr.isatty()
        my_images = sum(len(indices) for _, indices in plan)
        bar = _progress_bar(my_images, state["images"], shown and ctx.is_main)
        perturbed = sum(s.forwards_per_image() for s in scores.values())
        faithful_bar = _progress_bar(perturbed * my_images, perturbed * state["images"],
                                     shown and ctx.is_main and perturbed > 0, desc="faithfulness", unit="fwd")
        scored_now = 0
        saved_at = state["position"]
        scoring = False  # True while some extractor's counts hold part of the current batch
        position = state["position"]
        try:
            for position in range(state["position"], len(plan)):
                started = time.perf_counter()
                _, indices = plan[position]
                batch, batch_maps = _extract_batch(suite, dataset, indices, ctx.device, group_seconds)
                scoring_start = time.perf_counter()
                inputs = _model_inputs(config, scores, models, batch, ctx.device, faithful_bar.update)
                scoring = True
                _update_scores(scores, models, batch_maps, batch, inputs, indices, group_seconds)
                now = time.perf_counter()
                state["evaluate_s"] += now - scoring_start
                state["wall_s"] += now - started
                state["images"] += len(indices)
                scored_now += 1
                bar.update(len(indices))
                scoring = False
                finished = position + 1
                stopping = stop_after_batches is not None and scored_now >= stop_after_batches and finished < len(plan)
                if finished % save_every == 0 or stopping:
                    checkpoint(finished)
                    saved_at = finished
                if stopping:
                    raise BenchInterrupted(f"stopped after {scored_now} batches as asked; progress saved to "
                                           f"{resume_file}")
        except BenchInterrupted:
            raise
        except (Exception, KeyboardInterrupt) as exc:
            # keep every finished batch: save unless the failing batch was half counted
            if not scoring and position > saved_at:
                checkpoint(position)
                saved_at = position
            noted = _with_progress_note(exc, saved_at, len(plan), resume_file)
            if noted is exc:
                raise
            raise noted from exc
        finally:
            bar.close()
            faithful_bar.close()
        for score in scores.values():
            score.sync()
        computed = {name: score.compute() for name, score in scores.items()}
        metrics = {name: numbers for name, (numbers, _) in computed.items()}
        results = _assemble(config, data_format, dataset, suite, layers, metrics, state, group_seconds,
                            ctx.world_size, fingerprint)
        results["metrics"] = scores[names[0]].infos()
        if ctx.is_main:
            curves = {name: series for name, (_, series) in computed.items()}
            _write_results(results, curves, config, suite, dataset, out_dir, ctx.device, grid_images, write_figures)
        barrier(ctx)
        if resume_file.exists():
            resume_file.unlink()
    return results


def _resume(resume_file: Path, fingerprint: str, scores: Dict[str, ExtractorScores], state: Dict[str, Any],
            batches: int, say: Callable[[str], None]) -> Dict[str, float]:
    """Load the saved counts into ``scores`` and ``state``; returns the saved group seconds ({} without a file)."""
    saved = load_progress(resume_file, fingerprint)
    if saved is None:
        say(f"no resume file at {resume_file}; starting from the beginning")
        return {}
    for name, score in scores.items():
        score.load_state(saved["scores"][name])
    state.update(position=saved["next_position"], images=int(saved["extra"]["images"]),
                 evaluate_s=float(saved["extra"]["evaluate_s"]), wall_s=float(saved["extra"]["wall_s"]))
    say(f"resuming at batch {state['position']} of {batches} ({state['images']} images done)")
    return {k[len("group:"):]: float(v) for k, v in saved["extra"].items() if k.startswith("group:")}


def _extract_batch(suite: ExtractorSuite, dataset: Any, indices: List[int], device: torch.device,
                   group_seconds: Dict[str, float]) -> Tuple[Dict[str, Any], BatchMaps]:
    """Read one batch and run every extractor on it (their seconds added to ``group_seconds``)."""
    batch = batch_items(dataset, indices)
    _check_finite_images(batch)
    batch_maps = suite.run(batch["image"].to(device), batch["label"])
    for group, seconds in batch_maps.seconds.items():
        group_seconds[group] = group_seconds.get(group, 0.0) + seconds
    return batch, batch_maps


def _update_scores(scores: Dict[str, ExtractorScores], models: Dict[str, Any], batch_maps: BatchMaps,
                   batch: Dict[str, Any], inputs: Dict[int, Any], indices: List[int],
                   group_seconds: Dict[str, float]) -> None:
    """Add one batch's maps to every extractor's counts, timing each under ``score:<name>``."""
    for name in scores:
        started_scoring = time.perf_counter()
        scores[name].update(batch_maps.maps[name], batch, batch_maps.correct[name],
                            inputs.get(id(models[name])), indices)
        key = f"score:{name}"
        group_seconds[key] = group_seconds.get(key, 0.0) + time.perf_counter() - started_scoring


def _write_results(results: Dict[str, Any], curves: Dict[str, Any], config: BenchConfig, suite: ExtractorSuite,
                   dataset: Any, out_dir: Path, device: torch.device, grid_images: int,
                   write_figures: bool) -> None:
    """Rank 0: add the blank-image, suite-check and mosaic reference sections to ``results`` and write the report."""
    from attribmap.bench.suite_report import blank_section, suite_section

    probe = batch_items(dataset, list(range(min(2, len(dataset)))))["image"].to(device)
    results["blank"] = blank_section(suite, config.input_size)
    results["suite_check"] = suite_section(config, suite, probe, results["extractors"])
    from attribmap.bench.mosaic_reference import mosaic_section

    results["mosaic_reference"] = mosaic_section(config, dataset)
    sample = _qualitative_sample(suite, dataset, config, results, grid_images, device) \
        if write_figures and grid_images > 0 else None
    write_report(results, curves, out_dir, sample=sample, figures=write_figures)


def _check_labels(dataset: Any, model: torch.nn.Module, probe: torch.Tensor) -> None:
    """Every label of the split is a class of the main model (one forward on one image)."""
    from attribmap.data.errors import MetadataError
    from attribmap.tap import logits_of

    with torch.no_grad():
        classes = int(logits_of(model(probe)).shape[1])
    for record in dataset.records:
        if record.label >= classes:
            raise MetadataError(f"{record.where('label')}: image {record.image_id!r} has label {record.label}, "
                                f"but the model has {classes} classes (expected labels 0..{classes - 1}): "
                                "another dataset or another model?")


def _check_finite_images(batch: Dict[str, Any]) -> None:
    """Refuse images that hold NaN / inf, naming them (a custom transform could make them)."""
    from attribmap.errors import InputError

    images = batch["image"]
    finite = torch.isfinite(images).flatten(1).all(dim=1)
    if not bool(finite.all()):
        bad = [batch["id"][i] for i in (~finite).nonzero().flatten().tolist()]
        raise InputError(f"images {bad[:5]} hold NaN or infinite values after the transform; expected finite "
                         "normalized images")


def _with_progress_note(exc: BaseException, saved_at: int, total: int, resume_file: Path) -> BaseException:
    """``exc`` with one sentence on the saved progress added to its (one-line) message, same type."""
    if saved_at == 0 or not isinstance(exc, (AttribmapError, FileNotFoundError, ValueError)):
        return exc
    note = (f"; {saved_at} of {total} batches are saved in {resume_file}: fix the problem and run the same "
            "command with --resume to continue")
    try:
        return type(exc)(f"{exc}{note}")
    except TypeError:
        return exc


def _assemble(config: BenchConfig, data_format: str, dataset: Any, suite: ExtractorSuite,
              layers: Dict[str, Optional[str]], metrics: Dict[str, Any], state: Dict[str, Any],
              group_seconds: Dict[str, float], world_size: int, fingerprint: str) -> Dict[str, Any]:
    images = max(int(state["images"]), 1)
    extractors: Dict[str, Any] = {}
    for extractor in suite.extractors:
        name = extractor.label
        entry = dict(metrics[name])
        seconds = group_seconds.get(extractor.group, 0.0)
        entry["about"] = {"spec": str(extractor.spec), "layer": layers.get(name), **extractor.info}
        entry["extract_s"] = seconds
        entry["maps_per_s"] = images / seconds if seconds > 0 else float("nan")
        entry["shared_pass"] = extractor.group == SHARED_GROUP
        entry["score_s"] = group_seconds.get(f"score:{name}", 0.0)
        extractors[name] = jsonable(entry, finite=False)
    wall = float(state["wall_s"])
    return {
        "format": "attribmap-bench-results",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "protocol": _protocol_settings(config),
        "dataset": {"root": os.path.abspath(config.data), "split": config.split, "format": data_format,
                    "num_images": len(dataset), "num_classes": int(dataset.num_classes),
                    "has_boxes": bool(dataset.has_boxes), "has_masks": bool(dataset.has_masks)},
        "model": {"checkpoint": config.checkpoint, "name": config.model, "weights": config.weights,
                  "layer": config.layer, "i2c": config.i2c, "weightmap": config.weightmap},
        "config": config.as_dict(),
        "input_size": {"pixels": int(config.input_size), "from": config.input_size_from},
        "config_hash": fingerprint,
        "seed": config.seed,
        "world_size": int(world_size),
        "versions": software_versions(),
        "timing": {"wall_s": wall, "evaluate_s": float(state["evaluate_s"]),
                   "images_per_s": images / wall if wall > 0 else float("nan"),
                   "images_this_process": int(state["images"]),
                   "groups_s": {k: float(v) for k, v in sorted(group_seconds.items())
                                if not k.startswith("score:")}},
        "extractors": extractors,
    }


def _qualitative_sample(suite: ExtractorSuite, dataset: Any, config: BenchConfig, results: Dict[str, Any],
                        count: int, device: torch.device) -> Dict[str, Any]:
    """Maps, GT boxes and predicted boxes of the first ``count`` images, in the evaluation frame."""
    from attribmap.evaluate import Framer
    from attribmap.evaluate.contours import largest_contour_box
    from attribmap.evaluate.legacy import legacy_box

    indices = list(range(min(count, len(dataset))))
    batch = batch_items(dataset, indices)
    produced: BatchMaps = suite.run(batch["image"].to(device), batch["label"])
    size = 224 if config.protocol == "legacy" else config.frame_size
    images = torch.nn.functional.interpolate(batch["image"].float(), size=(size, size), mode="bilinear",
                                             align_corners=False)
    has_boxes = bool(dataset.has_boxes)
    raw_boxes = [b.numpy() for b in batch["boxes"]] if has_boxes else None
    sizes = batch["size"].numpy() if has_boxes else None
    maps, predicted, gt = {}, {}, None
    for name in suite.names:
        frame = Framer(size).frame(produced.maps[name], boxes=raw_boxes, image_sizes=sizes)
        maps[name] = torch.from_numpy(frame.maps)
        if not has_boxes:
            continue
        gt = frame.legacy_boxes(256, 224) if config.protocol == "legacy" else frame.boxes
        s8 = frame.s8()
        metric = results["extractors"][name]
        if config.protocol == "legacy":
            predicted[name] = [legacy_box(m, config.tau) for m in s8]
        else:
            tau = float(metric.get("best_tau_v1", {}).get("50", 0.5))
            predicted[name] = [np.array(largest_contour_box(m > int(tau * float(m.max())))) for m in s8]
    return {"images": images, "maps": maps, "boxes": gt, "pred_boxes": predicted if has_boxes else None,
            "ids": list(batch["id"])}
