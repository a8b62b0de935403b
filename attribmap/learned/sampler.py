"""Batches of same-class pairs for I2C training (items 2i and 2i+1 share a class)."""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from attribmap.errors import AttribmapError

__all__ = ["PairedClassBatchSampler"]


class PairedClassBatchSampler(Sampler[list[int]]):
    """Batch sampler whose batches are lists of dataset indices made of same-class pairs.

    Each epoch, the indices of every class are shuffled and cut into pairs; a class with an
    odd count completes its last pair with another of its own images drawn at random (the
    image itself for a one-image class), so every image appears at least once per epoch.
    All pairs are then shuffled and grouped ``batch_size // 2`` pairs per batch.

    Parameters
    ----------
    labels : sequence of int
        Class of every dataset item (length = dataset size).
    batch_size : int
        Even number >= 2 (a batch holds ``batch_size // 2`` pairs).
    seed : int
        Base seed; epoch ``e`` uses a generator seeded with ``(seed, e)``.
    drop_last : bool
        Drop the last incomplete batch (default). Otherwise it is kept (still made of pairs).
    num_replicas, rank : int
        Distributed training: the batch list (identical on every rank) is dealt out
        round-robin, rank r taking batches r, r + num_replicas, ...; ranks get disjoint
        batches. To give every rank the same count, trailing batches are dropped
        (``drop_last=True``) or the first batches are repeated (``drop_last=False``).

    Notes
    -----
    ``len(sampler)`` (batches per epoch on this rank) does not depend on the epoch.
    Call :meth:`set_epoch` before each epoch for a new, reproducible order.
    """

    def __init__(self, labels: Sequence[int], batch_size: int, seed: int = 0,
                 drop_last: bool = True, num_replicas: int = 1, rank: int = 0) -> None:
        arr = np.asarray(labels)
        if arr.ndim != 1 or arr.size == 0:
            raise AttribmapError(f"labels must be a non-empty 1-D sequence, got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.integer):
            raise AttribmapError(f"labels must be integers, got dtype {arr.dtype}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2 \
                or batch_size % 2:
            raise AttribmapError(f"batch_size must be an even int >= 2 (pairs of one class), "
                                 f"got {batch_size!r}")
        if not isinstance(num_replicas, int) or num_replicas < 1:
            raise AttribmapError(f"num_replicas must be an int >= 1, got {num_replicas!r}")
        if not isinstance(rank, int) or not 0 <= rank < num_replicas:
            raise AttribmapError(f"rank must be in [0, {num_replicas}), got {rank!r}")
        self.labels = arr.astype(np.int64)
        self.batch_size = batch_size
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self._by_class = [np.flatnonzero(self.labels == c) for c in np.unique(self.labels)]
        self._num_pairs = sum((len(ix) + 1) // 2 for ix in self._by_class)
        pairs_per_batch = batch_size // 2
        if drop_last:
            total = self._num_pairs // pairs_per_batch
            self._per_rank = total // num_replicas
        else:
            total = -(-self._num_pairs // pairs_per_batch)
            self._per_rank = -(-total // num_replicas)

    def set_epoch(self, epoch: int) -> None:
        """Select the shuffling of epoch ``epoch`` (same on every rank)."""
        self.epoch = int(epoch)

    def _pairs(self, rng: np.random.Generator) -> np.ndarray:
        pairs = []
        for ix in self._by_class:
            ix = rng.permutation(ix)
            if len(ix) % 2:
                others = ix[:-1]
                extra = rng.choice(others) if len(others) else ix[-1]
                ix = np.append(ix, extra)
            pairs.append(ix.reshape(-1, 2))
        all_pairs = np.concatenate(pairs)
        return all_pairs[rng.permutation(len(all_pairs))]

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        pairs = self._pairs(rng)
        per_batch = self.batch_size // 2
        batches = [pairs[i:i + per_batch].reshape(-1).tolist()
                   for i in range(0, len(pairs), per_batch)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        needed = self._per_rank * self.num_replicas
        if len(batches) < needed:  # only without drop_last: repeat from the start
            batches = (batches * (needed // max(len(batches), 1) + 1))[:needed]
        batches = batches[:needed]
        yield from batches[self.rank::self.num_replicas]

    def __len__(self) -> int:
        return self._per_rank
