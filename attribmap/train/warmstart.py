"""Initialise a model from another checkpoint: every tensor whose name and shape match.

This is how the recipes start from a pretraining stand-in (``init=``): a GAP classifier's
body initialises an I2C classifier (its new head stays freshly initialised), a classifier's
ResNet body initialises the weight-map generator's encoder (same module names), and a
classifier with another number of classes keeps its fresh ``fc``.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Union

import torch
from torch import nn

from attribmap.models.checkpoint import CheckpointError, load_checkpoint

__all__ = ["InitReport", "load_matching_weights"]


@dataclass
class InitReport:
    """What :func:`load_matching_weights` did.

    Attributes
    ----------
    source : str
        The checkpoint read (absolute path).
    source_task, source_arch : str
        Its task and architecture name.
    loaded : list of str
        State-dict keys copied from it.
    new : list of str
        Keys of the model that kept their fresh initialisation (absent, or another shape).
    unused : list of str
        Keys of the checkpoint the model has no place for.
    """

    source: str
    source_task: str
    source_arch: str
    loaded: List[str] = field(default_factory=list)
    new: List[str] = field(default_factory=list)
    unused: List[str] = field(default_factory=list)

    def summary(self) -> Dict[str, Any]:
        """Plain-type counts and the first new keys, as stored in checkpoints."""
        out = asdict(self)
        out.update(loaded=len(self.loaded), new=len(self.new), unused=len(self.unused),
                   new_keys=self.new[:20])
        return out

    def line(self) -> str:
        """One log line: ``init from PATH (task arch): L keys loaded, N new, U unused``."""
        return (f"init from {self.source} ({self.source_task} {self.source_arch}): "
                f"{len(self.loaded)} keys loaded, {len(self.new)} new, {len(self.unused)} unused")


def load_matching_weights(model: nn.Module, path: Union[str, "os.PathLike[str]"],
                          log: Optional[Callable[[str], None]] = None) -> InitReport:
    """Copy every tensor of a checkpoint whose key and shape match into ``model`` (in place).

    Parameters
    ----------
    model : nn.Module
        A freshly built model (its own initialisation stays where nothing matches).
    path : path
        An attribmap checkpoint (best, last or evaluation file of any task).
    log : callable, optional
        Receives :meth:`InitReport.line`.

    Returns
    -------
    InitReport

    Raises
    ------
    CheckpointError
        The file is not a checkpoint, or not a single parameter of it fits the model (an
        ``init`` that initialises nothing is a mistake, not a fresh start).

    Example
    -------
    ::

        net = build_model("resnet18_narrow_i2c", 8)
        report = load_matching_weights(net, "runs/pretrain.pt")   # body loaded, head new
    """
    state = load_checkpoint(path)
    source: Dict[str, torch.Tensor] = state["model"]
    own = model.state_dict()
    report = InitReport(os.path.abspath(os.fspath(path)), str(state["task"]), str(state["arch"].get("arch")))
    update = {}
    for key, value in own.items():
        theirs = source.get(key)
        if isinstance(theirs, torch.Tensor) and tuple(theirs.shape) == tuple(value.shape):
            update[key] = theirs.to(dtype=value.dtype)
            report.loaded.append(key)
        else:
            report.new.append(key)
    report.unused = [key for key in source if key not in own]
    parameters = {name for name, _ in model.named_parameters()}
    if not parameters & set(update):  # BatchNorm step counters (shape ()) always match: not enough
        raise CheckpointError(
            f"init checkpoint {os.fspath(path)!r} ({report.source_task} {report.source_arch}) shares no "
            f"parameter name and shape with {getattr(model, 'arch', type(model).__name__)!r}")
    model.load_state_dict({**own, **update})
    if log is not None:
        log(report.line())
    return report
