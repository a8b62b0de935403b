"""Pieces shared by the task runners: run options, model building with ``init``, the fit call."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Tuple, Union

import torch
from torch import nn

from attribmap.train.loop import FitResult, fit
from attribmap.train.optim import head_parameter_groups

if TYPE_CHECKING:  # pragma: no cover
    from attribmap.distributed import DistributedContext
    from attribmap.train.data import TrainingData
    from attribmap.train.recipe import Recipe

__all__ = [
    "RunOptions",
    "check_out_path",
    "summarize",
    "FrozenAware",
    "freeze",
    "mean_over_loader",
    "evaluation_dir",
    "open_data",
    "build_initialised",
    "fit_recipe",
]

PathArg = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class RunOptions:
    """How a recipe runs (not what it trains): the keyword arguments of :func:`attribmap.train.train`.

    Attributes
    ----------
    device : str or torch.device
        Training device.
    resume : bool
        Continue from the *last* checkpoint when there is one.
    progress : bool, optional
        Progress bar (default: when stderr is a terminal).
    log : callable, optional
        Receives one line per epoch and evaluation (rank 0).
    num_workers : int
        DataLoader workers.
    metadata_root : path, optional
        A separate wsolevaluation metadata directory.
    """

    device: Union[str, torch.device] = "cpu"
    resume: bool = False
    progress: Optional[bool] = None
    log: Optional[Callable[[str], None]] = None
    num_workers: int = 0
    metadata_root: Optional[PathArg] = None

    def say(self, line: str, ctx: "DistributedContext") -> None:
        """Log ``line`` on rank 0 of ``ctx``."""
        if self.log is not None and ctx.is_main:
            self.log(line)


def check_out_path(out: "os.PathLike[str] | str") -> Path:
    """The checkpoint path ``out``, checked: not an existing folder; its parent folder is created later."""
    path = Path(out)
    if path.is_dir():
        raise IsADirectoryError(f"--out must be a checkpoint file path, {str(path)!r} is a folder")
    if str(path) in ("", "."):
        raise ValueError(f"--out must be a checkpoint file path, got {str(out)!r}")
    return path


def summarize(result: FitResult) -> Dict[str, Any]:
    """The small history dict returned by every recipe, from the loop's ``result``."""
    return {
        "epochs": [dict(h) for h in result.history],
        "evaluations": [dict(e) for e in result.evaluations],
        "best_epoch": result.best_epoch,
        "best_step": result.best_step,
        "best_score": result.best_score,
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
        "last_checkpoint": str(result.last_checkpoint) if result.last_checkpoint else None,
    }


def freeze(module: nn.Module) -> nn.Module:
    """Eval mode and ``requires_grad=False`` on every parameter; returns ``module``."""
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


class FrozenAware(nn.Module):
    """Base for training objectives holding frozen helpers that must stay in eval mode.

    Sub-classes list the names of frozen children in ``frozen_children``; ``train()`` puts
    everything else in train mode and keeps those in eval mode (BatchNorm statistics and
    dropout of a frozen classifier never change).
    """

    frozen_children: Tuple[str, ...] = ()

    def train(self, mode: bool = True) -> "FrozenAware":
        """Put the module in train ``mode`` (or eval), keeping the ``frozen_children`` in eval mode; returns self."""
        super().train(mode)
        for name in self.frozen_children:
            getattr(self, name).eval()
        return self


def mean_over_loader(loader: Any, device: torch.device,
                     per_batch: Callable[[Dict[str, Any]], torch.Tensor]) -> float:
    """Mean of ``per_batch(batch)`` values (one value per image) over ``loader`` on ``device``, no grad."""
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in loader:
            batch = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
            values = per_batch(batch).detach().double()
            total += float(values.sum().item())
            count += int(values.numel())
    if count == 0:
        raise ValueError("the held-out loader gave no image")
    return total / count


def evaluation_dir(out: PathArg) -> Path:
    """Where ``save_evaluations`` puts the model of every evaluation of checkpoint ``out``: ``wm.pt`` -> ``wm.evals/``.

    The folder holds ``epoch<E>_step<S>.pt`` checkpoints and ``index.json`` (one entry per
    file: epoch, step, position, score and the diagnostics of that evaluation).
    """
    out = Path(out)
    return out.with_name(f"{out.stem}.evals")


def open_data(recipe: "Recipe", data: PathArg, options: RunOptions) -> "TrainingData":
    """The split of ``data`` that ``recipe`` names, at its image size, with its holdout (``options`` give the metadata root and workers)."""
    from attribmap.train.data import load_training_data

    return load_training_data(data, recipe.image_size, recipe.holdout_fraction, recipe.seed,
                              options.metadata_root, split=recipe.split)


def build_initialised(recipe: "Recipe", num_classes: int, options: RunOptions, ctx: "DistributedContext",
                      **arch_kwargs: Any) -> Tuple[nn.Module, Optional[Dict[str, Any]]]:
    """Build ``recipe.arch`` and copy the matching weights of ``recipe.init`` into it.

    Parameters
    ----------
    recipe : Recipe
        Architecture, ``init`` and ``weights``.
    num_classes : int
        Classes of the head.
    options : RunOptions
        The run's device and log.
    ctx : DistributedContext
        This process (only rank 0 logs).
    **arch_kwargs
        Passed to :func:`attribmap.models.build_model`.

    Returns
    -------
    (nn.Module, dict or None)
        The model and the init report (:meth:`attribmap.train.warmstart.InitReport.summary`),
        None without ``init``.
    """
    from attribmap.models import build_model
    from attribmap.train.warmstart import load_matching_weights

    model = build_model(recipe.arch, num_classes, weights=recipe.weights, **arch_kwargs)
    if recipe.init is None:
        return model, None
    report = load_matching_weights(model, recipe.init, log=lambda line: options.say(line, ctx))
    return model, report.summary()


def fit_recipe(recipe: "Recipe", model: nn.Module, step: Callable, loader: Any, out: Path, data: PathArg,
               options: RunOptions, ctx: "DistributedContext", *, train_module: Optional[nn.Module] = None,
               evaluate_fn: Optional[Callable] = None, init: Optional[Dict[str, Any]] = None,
               extra: Optional[Mapping[str, Any]] = None, extra_modules: Optional[Mapping[str, nn.Module]] = None,
               head_groups: bool = False) -> FitResult:
    """:func:`attribmap.train.fit` with the recipe's budget, optimiser, schedule and evaluations.

    Parameters
    ----------
    recipe : Recipe
        Budget, optimiser, schedule, evaluations, seed; recorded in every checkpoint.
    model : nn.Module
        The model saved in the checkpoints.
    step : callable
        ``step_fn(module, batch) -> (loss, parts)``.
    loader : DataLoader
        Training batches.
    out : pathlib.Path
        Best-checkpoint path.
    data : path
        The dataset (recorded).
    options : RunOptions
        Device, resume, progress, log.
    ctx : DistributedContext
        This process.
    train_module : nn.Module, optional
        The module trained and wrapped in DDP when it is not ``model`` (an objective holding
        it).
    evaluate_fn : callable, optional
        Held-out score (higher is better) that picks the best checkpoint.
    init : dict, optional
        The init report, recorded in ``extra["init"]``.
    extra : mapping, optional
        More task data for the checkpoints.
    extra_modules : mapping, optional
        Modules whose ``state_dict`` is stored under ``extra[name]`` and restored on resume.
    head_groups : bool
        Split the parameters into backbone and head (the head at ``head_lr_mult``: default 10
        with pretrained ``weights``, else 1).
    """
    from attribmap.models import arch_config

    params = None
    if head_groups:
        mult = recipe.head_lr_mult
        if mult is None:
            mult = 10.0 if recipe.weights is not None else 1.0
        params = head_parameter_groups(model, mult)
    return fit(
        model, step, loader, epochs=recipe.epochs, optim=recipe.optim_config(), params=params,
        train_module=train_module, checkpoint=out, task=recipe.task, arch=arch_config(model),
        extra={"data": os.path.abspath(os.fspath(data)), "init": init, **dict(extra or {})},
        extra_modules=extra_modules, recipe=recipe.to_dict(), evaluate_fn=evaluate_fn,
        evaluations_per_epoch=recipe.evaluations_per_epoch,
        evaluation_dir=evaluation_dir(out) if recipe.save_evaluations and evaluate_fn is not None else None,
        seed=recipe.seed, resume=options.resume, progress=options.progress, device=ctx.device,
        grad_clip=recipe.grad_clip, log=options.log,
    )
