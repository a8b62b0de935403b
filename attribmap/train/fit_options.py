"""The options of :func:`attribmap.train.loop.fit`, grouped in one frozen dataclass."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Union

import torch
from torch import nn

from attribmap.train.optim import OptimConfig, ParamGroups

__all__ = ["FitOptions", "EvaluateFn"]

#: ``evaluate_fn(epoch) -> score`` or ``-> {"score": ..., other diagnostics}``.
EvaluateFn = Callable[[int], Union[float, Mapping[str, float]]]


@dataclass(frozen=True)
class FitOptions:
    """Everything :func:`fit` takes besides the model, the step, the loader and the epochs.

    Pass it as ``fit(..., options=FitOptions(...))``, or pass its fields as keywords of
    :func:`fit` (keywords override the fields of ``options``).

    Attributes
    ----------
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
    """

    optim: Optional[OptimConfig] = None
    params: Optional[ParamGroups] = None
    train_module: Optional[nn.Module] = None
    checkpoint: Union[str, Path, None] = None
    task: str = "custom"
    arch: Optional[Mapping[str, Any]] = None
    extra: Optional[Mapping[str, Any]] = None
    extra_modules: Optional[Mapping[str, nn.Module]] = None
    recipe: Optional[Mapping[str, Any]] = None
    evaluate_fn: Optional[EvaluateFn] = None
    evaluations_per_epoch: int = 1
    evaluation_dir: Union[str, Path, None] = None
    later_wins_ties: bool = False
    seed: int = 0
    resume: bool = False
    progress: Optional[bool] = None
    device: Union[str, torch.device] = "cpu"
    grad_clip: Optional[float] = None
    log: Optional[Callable[[str], None]] = None
