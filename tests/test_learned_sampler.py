"""attribmap.learned.PairedClassBatchSampler: same-class pairs, determinism, DDP shares."""
from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from attribmap.errors import AttribmapError
from attribmap.learned import PairedClassBatchSampler

# class 0: 5 images (3 pairs, one padded), class 1: 4 (2 pairs), class 2: 1 (self-pair),
# class 3: 6 (3 pairs) -> 9 pairs per epoch
LABELS = [0] * 5 + [1] * 4 + [2] + [3] * 6
LABELS = [LABELS[i] for i in (3, 9, 0, 15, 4, 10, 1, 11, 5, 12, 2, 13, 6, 14, 7, 8)]


def _check_pairs(batch):
    assert len(batch) % 2 == 0
    for i in range(0, len(batch), 2):
        assert LABELS[batch[i]] == LABELS[batch[i + 1]], batch


def test_batches_hold_same_class_pairs_and_have_the_announced_length():
    sampler = PairedClassBatchSampler(LABELS, batch_size=4, seed=3)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 4          # 9 pairs // 2 pairs per batch
    for b in batches:
        assert len(b) == 4
        _check_pairs(b)


def test_every_image_appears_each_epoch_without_drop_last():
    sampler = PairedClassBatchSampler(LABELS, batch_size=4, seed=3, drop_last=False)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 5 and len(batches[-1]) == 2
    seen = Counter(i for b in batches for i in b)
    assert set(seen) == set(range(len(LABELS)))
    assert sum(seen.values()) == 18                   # 16 images + 1 padding + 1 self-pair
    lone = LABELS.index(2)
    assert seen[lone] == 2                            # the one-image class pairs with itself
    for b in batches:
        _check_pairs(b)


def test_epochs_are_deterministic_and_different():
    a = PairedClassBatchSampler(LABELS, 4, seed=5)
    b = PairedClassBatchSampler(LABELS, 4, seed=5)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    b.set_epoch(1)
    assert list(a) == list(b) != first
    assert list(a) == list(a)                         # iterating again repeats the epoch
    assert list(PairedClassBatchSampler(LABELS, 4, seed=6)) != first


@pytest.mark.parametrize("drop_last", [True, False])
def test_ranks_get_disjoint_equal_shares(drop_last):
    full = list(PairedClassBatchSampler(LABELS, 4, seed=1, drop_last=drop_last))
    shares = [PairedClassBatchSampler(LABELS, 4, seed=1, drop_last=drop_last,
                                      num_replicas=2, rank=r) for r in range(2)]
    for s in shares:
        s.set_epoch(0)
    got = [list(s) for s in shares]
    assert len(got[0]) == len(got[1]) == len(shares[0]) == len(shares[1])
    assert len(got[0]) == (2 if drop_last else 3)
    if drop_last:   # 4 batches dealt round-robin: ranks take even / odd positions
        assert got[0] == full[0::2] and got[1] == full[1::2]
    else:           # 5 batches padded to 6 with the first batch again
        assert got[0] == [full[0], full[2], full[4]] and got[1] == [full[1], full[3], full[0]]
    for b in got[0] + got[1]:
        _check_pairs(b)


def test_works_as_dataloader_batch_sampler():
    data = TensorDataset(torch.arange(len(LABELS)), torch.tensor(LABELS))
    loader = DataLoader(data, batch_sampler=PairedClassBatchSampler(LABELS, 6, seed=0))
    n = 0
    for idx, y in loader:
        assert torch.equal(y[0::2], y[1::2])
        assert torch.equal(y, torch.tensor(LABELS)[idx])
        n += 1
    assert n == 3


def test_bad_arguments():
    with pytest.raises(AttribmapError, match="even"):
        PairedClassBatchSampler(LABELS, 5)
    with pytest.raises(AttribmapError, match="even"):
        PairedClassBatchSampler(LABELS, 0)
    with pytest.raises(AttribmapError, match="non-empty"):
        PairedClassBatchSampler([], 4)
    with pytest.raises(AttribmapError, match="integers"):
        PairedClassBatchSampler([0.5, 1.0], 2)
    with pytest.raises(AttribmapError, match="rank"):
        PairedClassBatchSampler(LABELS, 4, num_replicas=2, rank=2)
