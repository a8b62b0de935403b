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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

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
from attribmap.train.optim import OptimConfig, ParamGroups, build_optimizer, build_scheduler
from attribmap.train.seeding import begin_epoch

__all__ = ["fit", "FitResult", "TrainingError", "move_to_device"]

StepFn = Callable[[nn.Module, Any], Tuple[torch.Tensor, Mapping[str, Any]]]
EvaluateFn = Callable[[int], Union[float, Mapping[str, float]]]


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


# 23 keyword parameters: the documented keyword API of fit, kept as is; the steps are helpers (_resume_from, _run_epoch, ...).
def fit(
    model: nn.Module,
    step_fn: StepFn,
    loader: Iterable,
    *,
    epochs: int,
    optim: Optional[OptimConfig] = None,
    params: Optional[ParamGroups] = None,
    train_module: Optional[nn.Module] = None,
    checkpoint: Union[str, Path, None] = None,
    task: str = "custom",
    arch: Optional[Mapping[str, Any]] = None,
    extra: Optional[Mapping[str, Any]] = None,
    extra_modules: Optional[Mapping[str, nn.Module]] = None,
    recipe: Optional[Mapping[str, Any]] = None,
    evaluate_fn: Optional[EvaluateFn] = None,
    evaluations_per_epoch: int = 1,
    evaluation_dir: Union[str, Path, None] = None,
    later_wins_ties: bool = False,
    seed: int = 0,
    resume: bool = False,
    progress: Optional[bool] = None,
    device: Union[str, torch.device] = "cpu",
    grad_clip: Optional[float] = None,
    log: Optional[Callable[[str], None]] = None,
) -> FitResult:
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
    optim : OptimConfig, optional
        Optimizer and schedule (default: SGD lr 0.01, momentum 0.9, no schedule).
    params : iterable of Parameter or list of dict, optional
        What to optimize; torch-style groups may carry ``lr_mult`` (see
        :func:`attribmap.train.optim.head_parameter_groups`). Default: ``model``'s trainable
        parameters.
    train_module : nn.Module, optional
        The module ``step_fn`` calls (default ``model``): e.g. a wrapper holding the model,
        a loss with buffers and frozen helpers. It is the module put in train mode and
        wrapped by DDP.
    checkpoint : str or path, optional
        Best-checkpoint path ``CKPT``; ``CKPT`` minus suffix + ``.last`` + suffix holds the
        resumable state (see :func:`attribmap.train.checkpoint.last_checkpoint_path`).
        Written on rank 0 only, atomically: the last file after every epoch, the best file
        whenever an evaluation improves (every epoch without ``evaluate_fn``).
    task : str
        Recorded in the checkpoint (``load_model`` and resume check it).
    arch : dict, optional
        ``{"arch", "num_classes", "kwargs"}`` rebuild recipe recorded in the checkpoint.
    extra : dict, optional
        Plain-type metadata stored under ``"extra"``.
    extra_modules : dict of str to nn.Module, optional
        Modules whose ``state_dict`` is stored under ``extra[name]`` and restored on resume
        (e.g. ``{"i2c_bank": criterion}``).
    recipe : dict, optional
        The training recipe (plain types, :meth:`attribmap.train.Recipe.to_dict`), stored
        under ``"recipe"``.
    evaluate_fn : callable, optional
        ``evaluate_fn(epoch) -> float`` or ``-> dict`` with a ``"score"`` and any other
        floats (diagnostics kept in the evaluation history and logged); ``epoch`` is the
        1-based epoch in progress. Called with the model in eval mode, under
        ``torch.no_grad()``, with every random generator saved and restored around it (an
        evaluation never changes the training run); higher is better. Rank 0's score
        decides the best checkpoint.
    evaluations_per_epoch : int
        Evaluations per epoch, after ``round(i * steps / n)`` steps for ``i = 1..n`` (the
        last at the epoch's end; only that one for a loader without ``len``).
    evaluation_dir : str or path, optional
        Save the model at every evaluation into this folder
        (``epoch<E>_step<S>.pt``, loadable with :func:`attribmap.train.load_model`) and list
        them, with their scores, in ``index.json`` there.
    later_wins_ties : bool
        When a later evaluation equals the best score, it becomes the best (default: the
        earlier one stays).
    seed : int
        Every epoch starts from generators seeded by ``(seed, epoch, rank)``.
    resume : bool
        Continue from the last checkpoint when it exists. When it does not, training starts
        from the first epoch and says so: one line to ``log``, or a ``RuntimeWarning``
        without one.
    progress : bool, optional
        Show a tqdm bar (default: only when stderr is a terminal; never on rank > 0).
    device : str or torch.device
        Training device (``cuda`` becomes ``cuda:LOCAL_RANK`` under torchrun).
    grad_clip : float, optional
        Clip the global gradient norm to this value.
    log : callable, optional
        Receives one summary line per epoch, and one per evaluation when there are several
        per epoch or ``evaluate_fn`` returns diagnostics (rank 0 only).

    Returns
    -------
    FitResult
    """
    _validate(epochs, checkpoint, resume, step_fn)
    if isinstance(evaluations_per_epoch, bool) or not isinstance(evaluations_per_epoch, int) \
            or evaluations_per_epoch < 1:
        raise ValueError(f"evaluations_per_epoch must be an integer >= 1, got {evaluations_per_epoch!r}")
    optim = (optim or OptimConfig()).validate()
    arch = dict(arch or {"arch": type(model).__name__, "num_classes": None, "kwargs": {}})
    train_module = train_module if train_module is not None else model
    extra_modules = dict(extra_modules or {})
    best_path = Path(checkpoint) if checkpoint is not None else None
    last_path = last_checkpoint_path(best_path) if best_path is not None else None

    with distributed_session(device) as ctx:
        train_module.to(ctx.device)
        model.to(ctx.device)
        optimizer = build_optimizer(params if params is not None else model.parameters(), optim)
        scheduler = build_scheduler(optimizer, optim, epochs)
        result = FitResult(checkpoint=best_path, last_checkpoint=last_path)
        start_epoch = 0
        if resume:
            start_epoch = _resume_from(last_path, ctx, task, arch, model, extra_modules, optimizer, scheduler,
                                       result, log)
        if start_epoch > epochs:
            raise CheckpointError(
                f"{str(last_path)!r} already holds {start_epoch} epochs, more than epochs={epochs}"
            )

        def snapshot(epoch: int, step: int, kind: str) -> Dict[str, Any]:
            return {
                "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "task": task,
                "arch": arch, "model": model.state_dict(), "epoch": epoch, "step": step, "kind": kind,
                "best_score": result.best_score, "best_epoch": result.best_epoch,
                "best_step": result.best_step, "history": [dict(h) for h in result.history],
                "evaluations": [dict(e) for e in result.evaluations], "optim_config": optim.to_dict(),
                "seed": int(seed), "recipe": dict(recipe) if recipe is not None else None,
                "extra": {**dict(extra or {}), **{k: m.state_dict() for k, m in extra_modules.items()}},
                "optimizer": None, "scheduler": None, "rng": None,
            }

        evaluator = None
        if evaluate_fn is not None:
            evaluator = _Evaluator(evaluate_fn, train_module, result, ctx, snapshot, best_path,
                                   Path(evaluation_dir) if evaluation_dir is not None else None,
                                   later_wins_ties, task, log, evaluations_per_epoch > 1)

        runner: nn.Module = train_module
        if ctx.enabled:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
            runner = DistributedDataParallel(train_module, device_ids=device_ids)

        show = _show_progress(progress, ctx)
        for epoch in range(start_epoch, epochs):
            marks = _evaluation_steps(loader, evaluations_per_epoch) if evaluator else set()
            before = len(result.evaluations)
            entry = _run_epoch(runner, train_module, step_fn, loader, optimizer, ctx, seed, epoch,
                               epochs, task, show, grad_clip,
                               (lambda step, total: evaluator(epoch + 1, step, total)) if marks else None,
                               marks)
            steps = int(entry["steps"])
            if evaluator is not None:
                evaluator(epoch + 1, steps, steps)
            if scheduler is not None:
                scheduler.step()
            new = result.evaluations[before:]
            improved = any(e["best"] for e in new) if evaluator is not None else True
            if evaluator is None:
                result.best_epoch, result.best_step = epoch + 1, steps
            entry.update(score=new[-1]["score"] if new else None, best=bool(improved))
            result.history.append(entry)
            if ctx.is_main and best_path is not None:
                if evaluator is None:
                    save_checkpoint(snapshot(epoch + 1, steps, "best"), best_path)
                save_checkpoint({**snapshot(epoch + 1, steps, "last"), "optimizer": optimizer.state_dict(),
                                 "scheduler": scheduler.state_dict() if scheduler is not None else None,
                                 "rng": capture_rng_state()}, last_path)
            if log and ctx.is_main:
                log(_epoch_line(task, epoch, epochs, entry, improved))
            barrier(ctx)
    return result


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
