"""Optimizer and per-epoch learning-rate schedule built from one small config."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

__all__ = ["OptimConfig", "build_optimizer", "build_scheduler", "head_parameter_groups"]

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("none", "step", "cosine")

ParamGroups = Union[Iterable[nn.Parameter], Sequence[Dict[str, Any]]]


@dataclass
class OptimConfig:
    """Optimizer and schedule settings.

    Attributes
    ----------
    name : {"sgd", "adam"}
        Optimizer.
    lr : float
        Base learning rate (> 0); a parameter group's rate is ``lr * lr_mult``.
    momentum : float
        SGD momentum in [0, 1).
    weight_decay : float
        L2 penalty (>= 0).
    nesterov : bool
        SGD Nesterov momentum.
    betas : tuple of float
        Adam betas.
    schedule : {"none", "step", "cosine"}
        Per-epoch schedule: constant; ``lr * gamma ** (epoch // step_size)``; or cosine
        annealing from ``lr`` to ``min_lr`` over the run's epochs.
    step_size : int
        Epochs between decays of the step schedule.
    gamma : float
        Decay factor of the step schedule.
    min_lr : float
        Final learning rate of the cosine schedule.
    """

    name: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    nesterov: bool = False
    betas: Tuple[float, float] = (0.9, 0.999)
    schedule: str = "none"
    step_size: int = 30
    gamma: float = 0.1
    min_lr: float = 0.0

    def validate(self) -> "OptimConfig":
        """Raise ``ValueError`` naming the first bad field; return ``self`` when valid."""
        if self.name not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.name!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"learning rate must be a number > 0, got {self.lr!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.schedule == "step" and (int(self.step_size) != self.step_size or self.step_size < 1):
            raise ValueError(f"step_size must be an integer >= 1, got {self.step_size!r}")
        if not 0 < self.gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma!r}")
        return self

    def to_dict(self) -> Dict[str, Any]:
        """Plain-type view, stored in checkpoints."""
        out = asdict(self)
        out["betas"] = list(self.betas)
        return out


def _default_head_names(model: nn.Module) -> List[str]:
    """Newly added layers of an attribmap model, else the last layer with K outputs."""
    modules = dict(model.named_modules())
    names = [n for n in ("head", getattr(model, "classifier_layer", None)) if n and n in modules]
    if names:
        return names
    num_classes = getattr(model, "num_classes", None)
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            outputs = module.out_features
        elif isinstance(module, nn.Conv2d) and tuple(module.kernel_size) == (1, 1):
            outputs = module.out_channels
        else:
            continue
        if num_classes is None or outputs == num_classes:
            last = name
    return [last] if last is not None else []


def head_parameter_groups(model: nn.Module, head_lr_mult: float = 10.0,
                          head_names: Optional[Sequence[str]] = None) -> List[Dict[str, Any]]:
    """Split a model's trainable parameters into backbone and (new) head groups.

    Parameters
    ----------
    model : nn.Module
        The model to optimize.
    head_lr_mult : float
        Learning-rate factor of the head (the usual x10 for new layers on a pretrained
        backbone).
    head_names : sequence of str, optional
        Dotted module names forming the head. Default: the modules ``head`` (the new conv
        layers of the WSOL and I2C archs) and ``model.classifier_layer`` when they exist;
        otherwise the last ``nn.Linear`` / 1x1 ``nn.Conv2d`` with ``model.num_classes``
        outputs.

    Returns
    -------
    list of dict
        ``[{"params": [...], "lr_mult": 1.0, "name": "backbone"},
        {"params": [...], "lr_mult": head_lr_mult, "name": "head"}]`` (empty groups dropped).
    """
    names = list(head_names) if head_names is not None else _default_head_names(model)
    modules = dict(model.named_modules())
    unknown = [n for n in names if n not in modules]
    if unknown:
        raise ValueError(f"head module(s) {unknown} not found in {type(model).__name__}")
    head_ids = {id(p) for n in names for p in modules[n].parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in trainable if id(p) not in head_ids], "lr_mult": 1.0, "name": "backbone"},
        {"params": [p for p in trainable if id(p) in head_ids], "lr_mult": float(head_lr_mult), "name": "head"},
    ]
    return [g for g in groups if g["params"]]


def _normalise_groups(params: ParamGroups) -> List[Dict[str, Any]]:
    params = list(params)
    if not params:
        raise ValueError("no parameters to optimize")
    if not isinstance(params[0], dict):
        params = [{"params": params}]
    groups, seen = [], set()
    for index, group in enumerate(params):
        if not isinstance(group, dict) or "params" not in group:
            raise ValueError(f"parameter group {index} must be a dict with 'params', got {group!r}")
        members = [p for p in group["params"] if p.requires_grad]
        for p in members:
            if id(p) in seen:
                raise ValueError(f"a parameter appears in more than one group (group {index})")
            seen.add(id(p))
        if members:
            groups.append({**group, "params": members, "lr_mult": float(group.get("lr_mult", 1.0))})
    if not groups:
        raise ValueError("no trainable parameters (every parameter has requires_grad=False)")
    return groups


def build_optimizer(params: ParamGroups, config: OptimConfig) -> torch.optim.Optimizer:
    """Create the optimizer; each group's lr is ``config.lr * group["lr_mult"]``.

    Parameters
    ----------
    params : iterable of Parameter, or list of dict
        Parameters, or torch-style groups with an optional ``lr_mult`` (default 1) and
        ``name``. Parameters with ``requires_grad=False`` are skipped.
    config : OptimConfig
        Settings (validated here).
    """
    config.validate()
    groups = _normalise_groups(params)
    for group in groups:
        group["lr"] = config.lr * group["lr_mult"]
    if config.name == "sgd":
        return torch.optim.SGD(
            groups, lr=config.lr, momentum=config.momentum,
            weight_decay=config.weight_decay, nesterov=config.nesterov and config.momentum > 0,
        )
    return torch.optim.Adam(groups, lr=config.lr, betas=tuple(config.betas), weight_decay=config.weight_decay)


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: OptimConfig, epochs: int
) -> Optional[torch.optim.lr_scheduler.LRScheduler]:
    """Per-epoch schedule of ``optimizer`` from ``config`` over ``epochs`` (``scheduler.step()`` once after each epoch); ``None`` for "none"."""
    config.validate()
    if config.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=int(config.step_size), gamma=config.gamma)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, int(epochs)), eta_min=config.min_lr)
    return None
