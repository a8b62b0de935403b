"""Deterministic seeding: global generators, per-epoch seeds, data-loader epochs."""
from __future__ import annotations

import random
from typing import Any, Iterable

import numpy as np
import torch

__all__ = ["seed_everything", "derive_seed", "begin_epoch"]


def derive_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from the integers ``*parts`` (e.g. ``(seed, epoch, rank)``), stable across runs."""
    if any(int(p) < 0 for p in parts):
        raise ValueError(f"seed parts must be >= 0, got {parts!r}")
    state = np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed python ``random``, numpy and torch (CPU and CUDA).

    Parameters
    ----------
    seed : int
        Any integer >= 0.
    deterministic : bool
        Also ask cuDNN for deterministic kernels (no effect on CPU).
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed) % (2**32))
    torch.manual_seed(int(seed))
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def _set_epoch(obj: Any, epoch: int) -> None:
    set_epoch = getattr(obj, "set_epoch", None)
    if callable(set_epoch):
        set_epoch(epoch)


def begin_epoch(loader: Iterable, seed: int, epoch: int, rank: int = 0) -> None:
    """Put every random source of one epoch in a state that depends only on (``seed``, ``epoch``, ``rank``).

    Re-seeds the global generators, a ``generator`` owned by the ``loader`` or its sampler,
    and calls ``set_epoch(epoch)`` on the loader's sampler, batch sampler and dataset when
    they have one. This is what makes an interrupted-and-resumed run identical to an
    uninterrupted one: epoch ``e`` starts from the same state either way.
    """
    epoch_seed = derive_seed(seed, epoch, rank)
    seed_everything(epoch_seed, deterministic=False)
    for owner in (loader, getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None)):
        generator = getattr(owner, "generator", None)
        if isinstance(generator, torch.Generator):
            generator.manual_seed(derive_seed(seed, epoch, rank, 1))
    for part in ("sampler", "batch_sampler", "dataset"):
        member = getattr(loader, part, None)
        if member is not None:
            _set_epoch(member, epoch)
    if getattr(loader, "sampler", None) is None:
        _set_epoch(loader, epoch)
