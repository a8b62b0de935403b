"""Training data for the recipes: a training split, a held-out part of it, loaders, triplets."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, Subset

from attribmap.distributed import DistributedContext

__all__ = ["TrainingData", "load_training_data", "split_holdout", "make_loader", "TripletDataset"]


@dataclass
class TrainingData:
    """The train split seen twice: augmented for training, plain for held-out scoring.

    Attributes
    ----------
    train : Dataset
        Items used for training (augmented with ``train_transform``).
    holdout : Dataset or None
        Held-out training images with the deterministic ``official_transform`` (never
        val/test), or None when ``holdout_fraction`` is 0.
    train_labels, holdout_labels : list of int
        Labels of those items, in order.
    num_classes : int
        Number of classes of the train split.
    """

    train: Dataset
    holdout: Optional[Dataset]
    train_labels: List[int]
    holdout_labels: List[int]
    num_classes: int


def split_holdout(labels: Sequence[int], fraction: float, seed: int) -> Tuple[List[int], List[int]]:
    """Deterministic class-stratified split of indices into (train, holdout).

    Each class gives ``round(fraction * count)`` images to the holdout (at least 1 when
    ``fraction > 0`` and the class has 2 or more images), chosen by a numpy generator seeded
    with ``seed``. Both lists are sorted.

    Parameters
    ----------
    labels : sequence of int
        Label of every training image.
    fraction : float
        Share of each class held out, in [0, 1).
    seed : int
        Seed of the choice.
    """
    if not 0.0 <= float(fraction) < 1.0:
        raise ValueError(f"holdout_fraction must be in [0, 1), got {fraction!r}")
    labels = np.asarray(list(labels), dtype=np.int64)
    if fraction == 0 or labels.size == 0:
        return list(range(labels.size)), []
    rng = np.random.default_rng(seed)
    holdout: List[int] = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        take = int(round(fraction * members.size))
        if members.size >= 2:
            take = min(max(take, 1), members.size - 1)
        else:
            take = 0
        holdout.extend(int(i) for i in rng.choice(members, size=take, replace=False))
    holdout_set = set(holdout)
    train = [i for i in range(labels.size) if i not in holdout_set]
    return train, sorted(holdout)


def load_training_data(
    data: "os.PathLike[str] | str", image_size: int, holdout_fraction: float = 0.0, seed: int = 0,
    metadata_root: "os.PathLike[str] | str | None" = None, split: str = "train",
) -> TrainingData:
    """Open a training split of a dataset folder and hold out part of it.

    Parameters
    ----------
    data : path
        Dataset root in any format :mod:`attribmap.data.formats` reads: the wsolevaluation
        layout (``metadata/train/...``, e.g. a folder written by
        :func:`attribmap.data.synthetic.generate_suite`) or CUB-200-2011 as distributed.
    image_size : int
        Side of the square training crops / held-out frames.
    holdout_fraction : float
        Share of each class kept aside for label-free model selection (see
        :func:`split_holdout`).
    seed : int
        Seed of the holdout choice.
    metadata_root : path, optional
        Metadata folder when it is not ``data/metadata``.
    split : str
        The split trained on: ``"train"``, or e.g. ``"pretrain"`` (the synthetic suite's
        disjoint pretraining images; CUB: ``train``, ``test``, ``all``). Held-out images come
        from the same split.
    """
    from attribmap.data import official_transform, train_transform
    from attribmap.data.formats import open_split

    if not os.path.isdir(os.fspath(data)):
        raise FileNotFoundError(f"data folder not found: {os.fspath(data)!r}")
    root = os.fspath(data)
    metadata = None if metadata_root is None else os.fspath(metadata_root)
    augmented, _ = open_split(root, split, train_transform(image_size), metadata)
    plain, _ = open_split(root, split, official_transform(image_size), metadata)
    for dataset in (augmented, plain):
        dataset.has_masks = False  # training never reads masks: skip loading them
    labels = list(augmented.labels)
    if len(labels) == 0:
        raise ValueError(f"the {split} split of {os.fspath(data)!r} has no images")
    train_idx, holdout_idx = split_holdout(labels, holdout_fraction, seed)
    return TrainingData(
        train=Subset(augmented, train_idx),
        holdout=Subset(plain, holdout_idx) if holdout_idx else None,
        train_labels=[labels[i] for i in train_idx],
        holdout_labels=[labels[i] for i in holdout_idx],
        num_classes=int(augmented.num_classes),
    )


def make_loader(
    dataset: Dataset, batch_size: int, ctx: DistributedContext, seed: int, *,
    shuffle: bool = True, shard: bool = True, num_workers: int = 0, collate_fn: Optional[Callable[[list], Any]] = None,
    batch_sampler: Any = None,
) -> DataLoader:
    """A DataLoader over ``dataset`` for one process: sharded with ``DistributedSampler`` under DDP.

    Training loaders (``shuffle=True``) use ``drop_last`` whenever this process's shard holds
    at least one full batch of ``batch_size`` (a trailing batch of one image breaks
    BatchNorm). ``shard=False`` gives every process the whole dataset (held-out scoring). With
    ``batch_sampler`` given, it is used as is (it shards itself). Shuffling draws from the
    global torch generator, which the training loop re-seeds every epoch (from ``seed``).
    ``ctx`` is this process's :class:`~attribmap.distributed.DistributedContext`;
    ``num_workers`` and ``collate_fn`` go to the DataLoader.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    common: Dict[str, Any] = {"num_workers": int(num_workers), "collate_fn": collate_fn}
    if batch_sampler is not None:
        return DataLoader(dataset, batch_sampler=batch_sampler, **common)
    sharded = shard and ctx.enabled
    per_process = len(dataset) // (ctx.world_size if sharded else 1)  # type: ignore[arg-type]
    drop_last = shuffle and per_process >= batch_size
    if sharded:
        sampler = DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank,
                                     shuffle=shuffle, seed=seed, drop_last=True)
    elif shuffle:
        sampler = RandomSampler(dataset)
    else:
        sampler = None
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last, **common)


class TripletDataset(Dataset):
    """(anchor, positive, negative) image triplets for the Siamese embedding / method II.

    Item ``i`` uses image ``i`` as the anchor, a different image of its class as the positive
    (the anchor itself if it is alone in its class) and an image of another class as the
    negative, drawn from ``numpy.random.default_rng([seed, epoch, i])``: fixed within an
    epoch, different across epochs (``set_epoch``), identical after a resume.

    Parameters
    ----------
    images : Dataset
        Items are dicts with ``image`` (3,H,W) tensors (e.g. a :class:`WSOLDataset` subset).
    labels : sequence of int
        Label of each item of ``images``; at least two classes.
    seed : int
        Seed of the triplet choice.

    Notes
    -----
    Items: ``{"anchor": (3,H,W), "positive": (3,H,W), "negative": (3,H,W), "label": int}``.
    """

    def __init__(self, images: Dataset, labels: Sequence[int], seed: int = 0) -> None:
        self.images = images
        self.labels = [int(v) for v in labels]
        if len(self.labels) != len(images):  # type: ignore[arg-type]
            raise ValueError(f"{len(self.labels)} labels for {len(images)} images")  # type: ignore[arg-type]
        by_class: Dict[int, List[int]] = {}
        for index, label in enumerate(self.labels):
            by_class.setdefault(label, []).append(index)
        if len(by_class) < 2:
            raise ValueError(f"triplets need images of at least 2 classes, got classes {sorted(by_class)}")
        self._by_class = {c: np.asarray(v) for c, v in by_class.items()}
        self._all = np.arange(len(self.labels))
        self._label_array = np.asarray(self.labels)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the triplets of ``epoch`` (called by the training loop)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.labels)

    def triplet_indices(self, index: int) -> Tuple[int, int, int]:
        """(anchor, positive, negative) indices of item ``index`` in this epoch."""
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        label = self.labels[index]
        same = self._by_class[label]
        same = same[same != index] if same.size > 1 else same
        others = self._all[self._label_array != label]
        return int(index), int(rng.choice(same)), int(rng.choice(others))

    def __getitem__(self, index: int) -> Dict[str, Any]:
        a, p, n = self.triplet_indices(index)
        return {
            "anchor": self.images[a]["image"],
            "positive": self.images[p]["image"],
            "negative": self.images[n]["image"],
            "label": torch.tensor(self.labels[a]),
        }
