"""The resume file of a benchmark run: counts so far, next batch, config fingerprint.

Written atomically (temporary file in the same folder, then ``os.replace``) to
``OUT/.progress.pt`` (``OUT/.progress.rank<r>.pt`` for each process of a sharded run), and
read back with ``torch.load(weights_only=True)``: it holds only tensors, numbers and strings.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import numpy as np
import torch

from attribmap.errors import AttribmapError
from attribmap.fileio import atomic_open

__all__ = ["progress_path", "save_progress", "load_progress", "ProgressMismatch"]

PROGRESS_FORMAT = "attribmap-bench-progress"


class ProgressMismatch(AttribmapError):
    """A resume file was written by a run with other settings."""


def progress_path(out_dir: os.PathLike | str, rank: int = 0, world_size: int = 1) -> Path:
    """``OUT/.progress.pt`` under ``out_dir``, or ``OUT/.progress.rank<r>.pt`` for ``rank`` when ``world_size`` > 1."""
    name = ".progress.pt" if world_size == 1 else f".progress.rank{rank}.pt"
    return Path(out_dir) / name


def _to_tensors(tree: Any) -> Any:
    if isinstance(tree, Mapping):
        return {str(k): _to_tensors(v) for k, v in tree.items()}
    if isinstance(tree, np.ndarray):
        return torch.from_numpy(np.array(tree, dtype=np.int64, copy=True))
    return tree


def _to_arrays(tree: Any) -> Any:
    if isinstance(tree, Mapping):
        return {k: _to_arrays(v) for k, v in tree.items()}
    if isinstance(tree, torch.Tensor):
        return tree.numpy()
    return tree


def save_progress(path: os.PathLike | str, fingerprint: str, next_position: int, scores: Mapping[str, Any],
                  extra: Optional[Mapping[str, Any]] = None) -> Path:
    """Write the resume file atomically.

    Parameters
    ----------
    path : path
        Destination (see :func:`progress_path`).
    fingerprint : str
        :meth:`attribmap.bench.BenchConfig.fingerprint` of the run.
    next_position : int
        Position, in this process's batch plan, of the first batch not yet scored.
    scores : mapping
        Extractor name -> accumulator name -> state arrays (int64).
    extra : mapping, optional
        Floats and ints to carry over (timings, image counts).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": PROGRESS_FORMAT, "fingerprint": str(fingerprint), "next_position": int(next_position),
               "scores": _to_tensors(scores), "extra": dict(extra or {})}
    with atomic_open(path, "wb") as stream:
        torch.save(payload, stream)
    return path


def load_progress(path: os.PathLike | str, fingerprint: str) -> Optional[Dict[str, Any]]:
    """The saved progress at ``path``, or None when there is no file.

    Parameters
    ----------
    path : path
        The progress file (:func:`progress_path`).
    fingerprint : str
        The run's configuration fingerprint; the file must have been saved with the same.

    Raises
    ------
    ProgressMismatch
        The file belongs to a run with different settings (data, model, methods, protocol,
        batch size, number of processes, ...), or is not a progress file.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        payload = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # several exception types across torch versions
        raise ProgressMismatch(f"cannot read the resume file {str(path)!r}: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != PROGRESS_FORMAT:
        raise ProgressMismatch(f"{str(path)!r} is not an attribmap benchmark resume file")
    if payload.get("fingerprint") != fingerprint:
        raise ProgressMismatch(f"the resume file {str(path)!r} was written with other settings (data, model, "
                               "extractors, protocol, batch size or process count differ); run again without "
                               "--resume to start over")
    payload["scores"] = _to_arrays(payload["scores"])
    return payload
