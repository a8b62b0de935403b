"""Writing training checkpoints: atomic saves, the resumable *last* file, RNG states.

Reading them (format, validation, rebuilding a model) lives in
:mod:`attribmap.models.checkpoint`, so that inference code never imports the trainer.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Dict, Mapping, Union

import numpy as np
import torch
from torch import nn

from attribmap.fileio import atomic_open
from attribmap.models.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    CheckpointError,
    build_from_arch,
    load_checkpoint,
    load_model,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "last_checkpoint_path",
    "save_checkpoint",
    "load_checkpoint",
    "build_from_arch",
    "load_model",
    "capture_rng_state",
    "restore_rng_state",
    "restore_training_state",
]

PathLike = Union[str, "os.PathLike[str]"]


def last_checkpoint_path(path: PathLike) -> Path:
    """Path of the resumable *last* checkpoint that goes with the *best* checkpoint ``path``.

    ``run/model.pt`` -> ``run/model.last.pt``; ``run/model`` -> ``run/model.last``.
    """
    path = Path(path)
    if path.suffix:
        return path.with_name(f"{path.stem}.last{path.suffix}")
    return path.with_name(f"{path.name}.last")


def save_checkpoint(state: Mapping[str, Any], path: PathLike) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file in the same folder + ``os.replace``).

    A reader never sees a half-written file: either the previous file or the new one.
    The parent folder is created when missing.

    Parameters
    ----------
    state : mapping
        The checkpoint dict; must contain only types ``torch.load(weights_only=True)`` accepts.
    path : str or path-like
        Destination file.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as handle:
        torch.save(dict(state), handle)
    return path


def capture_rng_state() -> Dict[str, Any]:
    """Snapshot the torch, CUDA, numpy and python ``random`` generators as plain types.

    Returns
    -------
    dict
        ``{"torch": ByteTensor, "cuda": [ByteTensor, ...], "numpy": {...}, "python": {...}}``,
        safe for ``weights_only`` loading.
    """
    np_name, np_keys, np_pos, np_has_gauss, np_cached = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "numpy": {
            "name": str(np_name),
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_cached),
        },
        "python": {"version": int(py_version), "state": [int(v) for v in py_internal], "gauss_next": py_gauss},
    }


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Restore the generators from ``state``, the output of :func:`capture_rng_state` (CUDA only when available)."""
    torch.set_rng_state(state["torch"].cpu())
    cuda_states = state.get("cuda") or []
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["name"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    py_state = state["python"]
    random.setstate((py_state["version"], tuple(py_state["state"]), py_state["gauss_next"]))


def restore_training_state(
    state: Dict[str, Any], path: Path, task: str, arch: Mapping[str, Any], model: nn.Module,
    extra_modules: Mapping[str, nn.Module], optimizer: torch.optim.Optimizer, scheduler: Any,
) -> None:
    """Load a *last* checkpoint's ``state`` (read from ``path``) into the run that resumes it.

    Checks that it is resumable and was written for the same ``task`` and ``arch``, then
    restores ``model``, ``extra_modules``, ``optimizer``, ``scheduler`` and the random
    generators; a mismatch or missing part raises :class:`CheckpointError`.
    """
    if state.get("kind") != "last" or state.get("optimizer") is None:
        raise CheckpointError(f"{str(path)!r} is not a resumable (last) checkpoint")
    if state["task"] != task or dict(state["arch"]) != dict(arch):
        raise CheckpointError(
            f"cannot resume from {str(path)!r}: it was written for task={state['task']!r} "
            f"arch={state['arch']!r}, this run is task={task!r} arch={dict(arch)!r}"
        )
    model.load_state_dict(state["model"])
    for name, module in extra_modules.items():
        if name not in state.get("extra", {}):
            raise CheckpointError(f"cannot resume from {str(path)!r}: it has no extra state {name!r}")
        module.load_state_dict(state["extra"][name])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        if state.get("scheduler") is None:
            raise CheckpointError(f"cannot resume from {str(path)!r}: it has no lr-schedule state")
        scheduler.load_state_dict(state["scheduler"])
    if state.get("rng") is not None:
        restore_rng_state(state["rng"])
