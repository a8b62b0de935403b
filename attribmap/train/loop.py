"""The one training loop shared by every recipe (classifier, I2C, weight map, embedding).

:func:`fit` runs ``epochs`` passes of ``step_fn`` over a loader with an optimizer and a
per-epoch schedule, shows a tqdm bar, scores the model with ``evaluate_fn`` once or several
times per epoch (higher is better), writes checkpoints atomically and can resume bit-for-bit.
Under torchrun it wraps the trained module in ``DistributedDataParallel``.
"""
from __future__ import annotations

import json
import math
import sys
import warnings
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

import torch
from torch import nn

from attribmap.errors import AttribmapError
from attribmap.fileio import atomic_write_text
from attribmap.train.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    CheckpointError,
    capture_rng_state,
    last_checkpoint_path,
    load_checkpoint,
    restore_rng_state,
    restore_training_state,
    save_checkpoint,
)
from attribmap.distributed import (
    DistributedContext,
    all_reduce_mean,
    barrier,
    broadcast_float,
    distributed_session,
)
from attribmap.train.fit_options import EvaluateFn, FitOptions
from attribmap.train.optim import OptimConfig, build_optimizer, build_scheduler
from attribmap.train.seeding import begin_epoch

__all__ = ["fit", "FitOptions", "FitResult", "TrainingError", "move_to_device"]

StepFn = Callable[[nn.Module, Any], Tuple[torch.Tensor, Mapping[str, Any]]]


class TrainingError(AttribmapError):
    """Training cannot go on (non-finite loss, empty loader, ...)."""


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes
    ----------
    history : list of dict
        One entry per completed epoch (including epochs done before a resume):
        ``epoch`` (1-based), ``loss`` (mean over steps and processes), each metric's mean,
        ``lr`` (first group's rate during the epoch), ``score`` (of the epoch's last
        evaluation, or None), ``best`` (an evaluation of this epoch became the best).
    evaluations : list of dict
        One entry per held-out evaluation: ``epoch`` (1-based, the epoch in progress),
        ``step`` (steps done in it), ``steps`` (steps per epoch), ``position``
        (``epoch - 1 + step / steps``), ``score``, the other values ``evaluate_fn``
        returned, ``best`` (bool) and ``file`` (the saved model, or None).
    best_score : float or None
        Highest score (None without ``evaluate_fn``).
    best_epoch : int
        1-based epoch of the best checkpoint (the last epoch without ``evaluate_fn``).
    best_step : int
        Steps into ``best_epoch`` at which the best checkpoint was taken.
    checkpoint : pathlib.Path or None
        Best checkpoint path (None when no checkpoint was asked for).
    last_checkpoint : pathlib.Path or None
        Resumable last checkpoint path.
    """

    history: List[Dict[str, Any]] = field(default_factory=list)
    evaluations: List[Dict[str, Any]] = field(default_factory=list)
    best_score: Optional[float] = None
    best_epoch: int = 0
    best_step: int = 0
    checkpoint: Optional[Path] = None
    last_checkpoint: Optional[Path] = None


def move_to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor inside the nested dicts / lists / tuples of ``batch`` to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {key: move_to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(value, device) for value in batch)
    return batch


def _to_float(value: Any) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().mean().item())
    return float(value)


def _show_progress(progress: Optional[bool], ctx: DistributedContext) -> bool:
    if not ctx.is_main:
        return False
    if progress is None:
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return bool(progress)


def _make_bar(loader: Iterable, enabled: bool, description: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    try:
        total = len(loader)  # type: ignore[arg-type]
    except TypeError:
        total = None
    return tqdm(total=total, desc=description, leave=False, dynamic_ncols=True)


def _validate(epochs: Any, checkpoint: Any, resume: bool, step_fn: Any) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs a checkpoint path to resume from")
    if not callable(step_fn):
        raise ValueError(f"step_fn must be callable (module, batch) -> (loss, metrics), got {step_fn!r}")


def fit(model: nn.Module, step_fn: StepFn, loader: Iterable, *, epochs: int,
        options: Optional[FitOptions] = None, **keywords: Any) -> FitResult:
    """Train ``model`` for ``epochs`` epochs; checkpoint, score and resume.

    Parameters
    ----------
    model : nn.Module
        The module whose ``state_dict`` is saved as the checkpoint's ``"model"``.
    step_fn : callable
        ``step_fn(module, batch) -> (loss, metrics)``: ``module`` is ``train_module`` (wrapped
        in ``DistributedDataParallel`` under torchrun, so call it rather than its attributes),
        ``batch`` is the loader's item moved to ``device``; ``loss`` a scalar tensor, ``metrics``
        a dict of floats / scalar tensors averaged per epoch into the history.
    loader : iterable
        Batches for one epoch (usually a ``DataLoader``; its sampler, batch sampler and
        dataset get ``set_epoch(epoch)`` when they define it; shard it yourself under DDP).
    epochs : int
        Total number of epochs (>= 1), counting epochs done before a resume.
    options : FitOptions, optional
        Optimizer, checkpoints, evaluation, resume, device, ... (see :class:`FitOptions`).
    **keywords
        Fields of :class:`FitOptions` (``optim=``, ``checkpoint=``, ``evaluate_fn=``,
        ``seed=``, ...), overriding those of ``options``.

    Returns
    -------
    FitResult

    Raises
    ------
    TypeError
        A keyword that is no field of :class:`FitOptions`.
    """
    opts = _fit_options(options, keywords)
    _validate(epochs, opts.checkpoint, opts.resume, step_fn)
    if isinstance(opts.evaluations_per_epoch, bool) or not isinstance(opts.evaluations_per_epoch, int) \
            or opts.evaluations_per_epoch < 1:
        raise ValueError(f"evaluations_per_epoch must be an integer >= 1, got {opts.evaluations_per_epoch!r}")
    with distributed_session(opts.device) as ctx:
        run = _TrainingRun(model, opts, ctx, epochs)
        evaluator = None
        if opts.evaluate_fn is not None:
            evaluator = _Evaluator(opts.evaluate_fn, run.train_module, run.result, ctx, run.snapshot,
                                   run.best_path, Path(opts.evaluation_dir) if opts.evaluation_dir is not None
                                   else None, opts.later_wins_ties, opts.task, opts.log,
                                   opts.evaluations_per_epoch > 1)
        runner = _distributed_runner(run.train_module, ctx)
        show = _show_progress(opts.progress, ctx)
        for epoch in range(run.start_epoch, epochs):
            run.train_epoch(runner, step_fn, loader, epoch, show, evaluator)
            barrier(ctx)
    return run.result


def _fit_options(options: Optional[FitOptions], keywords: Mapping[str, Any]) -> FitOptions:
    """``options`` (default: all defaults) with the fields named by ``keywords`` replaced."""
    known = {f.name for f in fields(FitOptions)}
    unknown = sorted(set(keywords) - known)
    if unknown:
        raise TypeError(f"fit() got unexpected keyword argument(s) {unknown}; expected fields of FitOptions: "
                        f"{sorted(known)}")
    return replace(options if options is not None else FitOptions(), **keywords)


def _distributed_runner(train_module: nn.Module, ctx: DistributedContext) -> nn.Module:
    """The module ``step_fn`` calls: ``train_module``, wrapped in DDP under torchrun."""
    if not ctx.enabled:
        return train_module
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(train_module, device_ids=device_ids)


class _TrainingRun:
    """The state of one :func:`fit` call: modules on the device, optimizer, schedule, result, files.

    Built inside the distributed session; restores the last checkpoint when resuming.
    """

    def __init__(self, model: nn.Module, opts: FitOptions, ctx: DistributedContext, epochs: int) -> None:
        self.model, self.opts, self.ctx, self.epochs = model, opts, ctx, epochs
        self.optim = (opts.optim or OptimConfig()).validate()
        self.arch = dict(opts.arch or {"arch": type(model).__name__, "num_classes": None, "kwargs": {}})
        self.train_module = opts.train_module if opts.train_module is not None else model
        self.extra_modules = dict(opts.extra_modules or {})
        self.best_path = Path(opts.checkpoint) if opts.checkpoint is not None else None
        self.last_path = last_checkpoint_path(self.best_path) if self.best_path is not None else None
        self.train_module.to(ctx.device)
        model.to(ctx.device)
        self.optimizer = build_optimizer(opts.params if opts.params is not None else model.parameters(), self.optim)
        self.scheduler = build_scheduler(self.optimizer, self.optim, epochs)
        self.result = FitResult(checkpoint=self.best_path, last_checkpoint=self.last_path)
        self.start_epoch = 0
        if opts.resume:
            self.start_epoch = _resume_from(self.last_path, ctx, opts.task, self.arch, model, self.extra_modules,
                                            self.optimizer, self.scheduler, self.result, opts.log)
        if self.start_epoch > epochs:
            raise CheckpointError(
                f"{str(self.last_path)!r} already holds {self.start_epoch} epochs, more than epochs={epochs}"
            )

    def snapshot(self, epoch: int, step: int, kind: str) -> Dict[str, Any]:
        """The checkpoint contents after ``step`` steps of 1-based ``epoch`` (no optimizer state)."""
        opts, result = self.opts, self.result
        return {
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "task": opts.task,
            "arch": self.arch, "model": self.model.state_dict(), "epoch": epoch, "step": step, "kind": kind,
            "best_score": result.best_score, "best_epoch": result.best_epoch,
            "best_step": result.best_step, "history": [dict(h) for h in result.history],
            "evaluations": [dict(e) for e in result.evaluations], "optim_config": self.optim.to_dict(),
            "seed": int(opts.seed), "recipe": dict(opts.recipe) if opts.recipe is not None else None,
            "extra": {**dict(opts.extra or {}), **{k: m.state_dict() for k, m in self.extra_modules.items()}},
            "optimizer": None, "scheduler": None, "rng": None,
        }

    def train_epoch(self, runner: nn.Module, step_fn: StepFn, loader: Iterable, epoch: int, show: bool,
                    evaluator: Optional["_Evaluator"]) -> None:
        """Train 0-based ``epoch``, evaluate it, step the schedule, record it, save and log it."""
        opts, result = self.opts, self.result
        marks = _evaluation_steps(loader, opts.evaluations_per_epoch) if evaluator else set()
        before = len(result.evaluations)
        entry = _run_epoch(runner, self.train_module, step_fn, loader, self.optimizer, self.ctx, opts.seed, epoch,
                           self.epochs, opts.task, show, opts.grad_clip,
                           (lambda step, total: evaluator(epoch + 1, step, total)) if marks else None,
                           marks)
        steps = int(entry["steps"])
        if evaluator is not None:
            evaluator(epoch + 1, steps, steps)
        if self.scheduler is not None:
            self.scheduler.step()
        new = result.evaluations[before:]
        improved = any(e["best"] for e in new) if evaluator is not None else True
        if evaluator is None:
            result.best_epoch, result.best_step = epoch + 1, steps
        entry.update(score=new[-1]["score"] if new else None, best=bool(improved))
        result.history.append(entry)
        if self.ctx.is_main and self.best_path is not None:
            if evaluator is None:
                save_checkpoint(self.snapshot(epoch + 1, steps, "best"), self.best_path)
            save_checkpoint({**self.snapshot(epoch + 1, steps, "last"), "optimizer": self.optimizer.state_dict(),
                             "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                             "rng": capture_rng_state()}, self.last_path)
        if opts.log and self.ctx.is_main:
            opts.log(_epoch_line(opts.task, epoch, self.epochs, entry, improved))


def _resume_from(last_path: Optional[Path], ctx: Any, task: str, arch: Dict[str, Any], model: nn.Module,
                 extra_modules: Dict[str, nn.Module], optimizer: torch.optim.Optimizer, scheduler: Any,
                 result: FitResult, log: Optional[Callable[[str], None]]) -> int:
    """Restore the last checkpoint into the model, optimizer, schedule and ``result``; returns its epoch.

    Without a resumable file, says so (one line to ``log``, or a ``RuntimeWarning``) and returns 0.
    """
    if last_path is not None and last_path.is_file():
        state = load_checkpoint(last_path, map_location=ctx.device)
        restore_training_state(state, last_path, task, arch, model, extra_modules, optimizer, scheduler)
        start_epoch = int(state["epoch"])
        result.history = [dict(h) for h in state.get("history", [])]
        result.evaluations = [dict(e) for e in state.get("evaluations", [])]
        result.best_score = state.get("best_score")
        result.best_epoch = int(state.get("best_epoch", start_epoch))
        result.best_step = int(state.get("best_step", 0))
        if log and ctx.is_main:
            log(f"resuming {task} from {last_path} after epoch {start_epoch}")
        return start_epoch
    if ctx.is_main:
        note = (f"resume: no resumable state at {last_path} (the .last file an earlier run with this "
                f"checkpoint path writes); nothing to resume, training {task} from the first epoch")
        if log:
            log(note)
        else:
            warnings.warn(note, RuntimeWarning, stacklevel=3)
    return 0


def _epoch_line(task: str, epoch: int, epochs: int, entry: Mapping[str, Any], improved: bool) -> str:
    """The log line of one finished epoch: its float metrics and its score (``*`` when it improved)."""
    metrics = " ".join(f"{k}={v:.4g}" for k, v in entry.items()
                       if k not in ("epoch", "best", "score") and isinstance(v, float))
    score = entry["score"]
    score_text = "" if score is None else f" score={score:.4f}{' *' if improved else ''}"
    return f"{task} epoch {epoch + 1}/{epochs} {metrics}{score_text}"


def _evaluation_steps(loader: Iterable, per_epoch: int) -> set:
    """Steps after which an epoch is evaluated before its end (the end itself is implicit)."""
    try:
        total = len(loader)  # type: ignore[arg-type]
    except TypeError:
        return set()
    return {max(1, round(i * total / per_epoch)) for i in range(1, per_epoch)} - {total}


class _Evaluator:
    """One held-out evaluation: score, best-checkpoint update, optional saved model, log line."""

    def __init__(self, evaluate_fn: EvaluateFn, train_module: nn.Module, result: FitResult,
                 ctx: DistributedContext, snapshot: Callable[[int, int, str], Dict[str, Any]],
                 best_path: Optional[Path], folder: Optional[Path], later_wins_ties: bool, task: str,
                 log: Optional[Callable[[str], None]], several: bool) -> None:
        self.evaluate_fn = evaluate_fn
        self.train_module = train_module
        self.result = result
        self.ctx = ctx
        self.snapshot = snapshot
        self.best_path = best_path
        self.folder = folder
        self.later_wins_ties = later_wins_ties
        self.task = task
        self.log = log
        self.several = several

    def _measure(self, epoch: int) -> Dict[str, float]:
        was_training = self.train_module.training
        rng = capture_rng_state()
        self.train_module.eval()
        try:
            with torch.no_grad():
                value = self.evaluate_fn(epoch)
        finally:
            restore_rng_state(rng)
            self.train_module.train(was_training)
        values = dict(value) if isinstance(value, Mapping) else {"score": value}
        if "score" not in values:
            raise TrainingError(f"evaluate_fn returned a mapping without 'score': {sorted(values)}")
        out = {str(k): float(v) for k, v in values.items()}
        out["score"] = broadcast_float(out["score"], self.ctx)
        if out["score"] is None or not math.isfinite(out["score"]):
            raise TrainingError(f"evaluate_fn returned a non-finite score {out['score']!r} in epoch {epoch}")
        return out

    def __call__(self, epoch: int, step: int, steps: int) -> None:
        values = self._measure(epoch)
        score, best = values["score"], self.result.best_score
        improved = best is None or score > best or (self.later_wins_ties and score == best)
        if improved:
            self.result.best_score, self.result.best_epoch, self.result.best_step = score, epoch, step
        entry: Dict[str, Any] = {"epoch": epoch, "step": step, "steps": steps,
                                 "position": epoch - 1 + step / max(steps, 1), **values,
                                 "best": bool(improved), "file": None}
        if self.folder is not None:
            entry["file"] = str(self.folder / f"epoch{epoch:03d}_step{step:05d}.pt")
        self.result.evaluations.append(entry)
        if self.ctx.is_main:
            if improved and self.best_path is not None:
                save_checkpoint(self.snapshot(epoch, step, "best"), self.best_path)
            if self.folder is not None:
                save_checkpoint({**self.snapshot(epoch, step, "evaluation"), "evaluation": dict(entry)},
                                entry["file"])
                index = [e for e in self.result.evaluations if e.get("file")]
                atomic_write_text(self.folder / "index.json", json.dumps(index, indent=1) + "\n")
            if self.log and (self.several or len(values) > 1):
                details = " ".join(f"{k}={v:.4g}" for k, v in values.items() if k != "score")
                self.log(f"{self.task} eval {entry['position']:.2f} (epoch {epoch}, step {step}/{steps}) "
                         f"score={score:.4f}{' *' if improved else ''} {details}".rstrip())


def _run_epoch(
    runner: nn.Module, train_module: nn.Module, step_fn: StepFn, loader: Iterable,
    optimizer: torch.optim.Optimizer, ctx: DistributedContext, seed: int, epoch: int, epochs: int,
    task: str, show: bool, grad_clip: Optional[float],
    evaluate: Optional[Callable[[int, int], None]] = None, marks: Optional[set] = None,
) -> Dict[str, Any]:
    begin_epoch(loader, seed, epoch, ctx.rank)
    train_module.train()
    lr = float(optimizer.param_groups[0]["lr"])
    sums: Dict[str, float] = {}
    steps = 0
    bar = _make_bar(loader, show, f"{task} {epoch + 1}/{epochs}")
    total = len(loader) if marks else 0  # type: ignore[arg-type]
    try:
        for batch in loader:
            batch = move_to_device(batch, ctx.device)
            optimizer.zero_grad(set_to_none=True)
            loss, metrics = step_fn(runner, batch)
            if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
                raise TrainingError(f"step_fn must return a scalar loss tensor, got {type(loss).__name__}")
            if not torch.isfinite(loss):
                raise TrainingError(f"non-finite loss {loss.item()} at epoch {epoch + 1}, step {steps + 1}")
            loss.backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(
                    [p for g in optimizer.param_groups for p in g["params"]], grad_clip)
            optimizer.step()
            steps += 1
            values = {"loss": float(loss.detach().item())}
            values.update({str(k): _to_float(v) for k, v in dict(metrics or {}).items()})
            for key, value in values.items():
                sums[key] = sums.get(key, 0.0) + value
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{values['loss']:.4f}", refresh=False)
            if evaluate is not None and marks and steps in marks:
                evaluate(steps, total)
    finally:
        if bar is not None:
            bar.close()
    if steps == 0:
        raise TrainingError(
            f"the loader gave no batch in epoch {epoch + 1}: the dataset (or this process's "
            "shard) is smaller than one batch with drop_last=True"
        )
    entry: Dict[str, Any] = {"epoch": epoch + 1, "lr": lr, "steps": steps}
    for key, total_value in sums.items():
        entry[key] = all_reduce_mean(total_value / steps, ctx)
    return entry
