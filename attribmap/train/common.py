"""Pieces shared by the task recipes: argument checks, optimizer config, result summary."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Dict, Tuple

import torch
from torch import nn

from attribmap.train.loop import FitResult
from attribmap.train.optim import OptimConfig

__all__ = [
    "check_int",
    "check_image_size",
    "check_out_path",
    "make_optim_config",
    "summarize",
    "FrozenAware",
    "freeze",
    "mean_over_loader",
]


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``, or a ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_image_size(value: Any, multiple: int = 1) -> int:
    """Image side >= 32 and a multiple of ``multiple`` (32 for the weight-map generator)."""
    size = check_int("image_size", value, 32)
    if size % multiple:
        raise ValueError(f"image_size must be a multiple of {multiple}, got {size}")
    return size


def check_out_path(out: "os.PathLike[str] | str") -> Path:
    """Checkpoint path: not an existing folder; its parent folder is created later."""
    path = Path(out)
    if path.is_dir():
        raise IsADirectoryError(f"--out must be a checkpoint file path, {str(path)!r} is a folder")
    if str(path) in ("", "."):
        raise ValueError(f"--out must be a checkpoint file path, got {str(out)!r}")
    return path


def make_optim_config(optimizer: str, lr: float, momentum: float, weight_decay: float,
                      schedule: str, step_size: int = 30) -> OptimConfig:
    """Validated :class:`OptimConfig` from recipe keyword arguments."""
    if isinstance(lr, bool) or not isinstance(lr, (int, float)):
        raise ValueError(f"lr must be a number > 0, got {lr!r}")
    if isinstance(step_size, bool) or not isinstance(step_size, int):
        raise ValueError(f"lr_step_size must be an integer >= 1 (epochs), got {step_size!r}")
    return OptimConfig(name=optimizer, lr=float(lr), momentum=float(momentum),
                       weight_decay=float(weight_decay), schedule=schedule, step_size=step_size).validate()


def summarize(result: FitResult) -> Dict[str, Any]:
    """The small history dict returned by every recipe."""
    return {
        "epochs": [dict(h) for h in result.history],
        "best_epoch": result.best_epoch,
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
        super().train(mode)
        for name in self.frozen_children:
            getattr(self, name).eval()
        return self


def mean_over_loader(loader: Any, device: torch.device,
                     per_batch: Callable[[Dict[str, Any]], torch.Tensor]) -> float:
    """Mean of ``per_batch(batch)`` values (one value per image) over a loader, no grad."""
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
