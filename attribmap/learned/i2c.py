"""I2C (inter-image communication, Zhang, Wei & Yang, ECCV 2020): seeds, SC/GC losses, centres.

Formulas as implemented (PROTOCOL.md section 2). For pair i (images 2i and 2i+1, class y_i)
with K seed vectors f_b^k = feat[b, :, seed_b^k] (C-vectors):

* ``L_SC = mean_{i,k} || f_{2i}^k - f_{2i+1}^k ||_2``
* ``c_i = mean of the 2K seed vectors of the pair``
* ``L_GC = mean over counted pairs of || C[y_i].detach() - c_i ||_2`` where a pair is counted
  only if class y_i had been seen before this batch (``counts[y_i] > 0`` at batch start);
  every pair of the batch is compared with the bank *as it was at the start of the batch*.
* bank update, after the losses, without gradient, once per batch and class y present in
  it, as the I2C slides write it: ``a^y`` = mean of all ``K * |B^y|`` seed vectors of
  class y in the batch, ``eta = exp(-alpha * t_y)``, ``C[y] <- (1 - eta) C[y] + eta a^y``,
  ``t_y += 1``. The first update of a class has eta = 1, so it copies a^y.

References
----------
Zhang, Wei & Yang, "Inter-Image Communication for Weakly Supervised Localization", ECCV 2020
(slides: global consistency, ``a^y = 1/(K|B^y|) sum_k V_k^y``, ``w^y = (1 - eta) w^y + eta a^y``,
``eta = exp(-alpha t^y)``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attribmap.errors import AttribmapError

__all__ = ["I2CLoss", "select_seeds", "seed_scores", "SEED_SAMPLING"]

SEED_SAMPLING = ("random", "first")


def seed_scores(class_maps: Tensor, labels: Tensor, size: tuple[int, int]) -> Tensor:
    """Min-max normalised map of each image's label class at resolution ``size``.

    Parameters
    ----------
    class_maps : Tensor (N,K,h',w')
    labels : LongTensor (N,)
    size : (h, w)
        Resolution of the feature map; the class map is resized bilinearly
        (align_corners=False) *before* normalisation when (h',w') differs.

    Returns
    -------
    Tensor (N, h*w), float, in [0, 1], raster order; a constant or non-finite map gives 0s.
    """
    n = class_maps.shape[0]
    maps = class_maps.detach()[torch.arange(n, device=class_maps.device), labels]  # (N,h',w')
    maps = maps.float().unsqueeze(1)
    if tuple(maps.shape[-2:]) != tuple(size):
        maps = F.interpolate(maps, size=size, mode="bilinear", align_corners=False)
    flat = maps.flatten(1)
    lo = flat.min(dim=1, keepdim=True).values
    hi = flat.max(dim=1, keepdim=True).values
    span = hi - lo
    ok = torch.isfinite(span) & (span > 0)
    out = (flat - lo) / torch.where(ok, span, torch.ones_like(span))
    return torch.where(ok, out, torch.zeros_like(out))


def select_seeds(scores: Tensor, k: int, threshold: float, sampling: str = "random",
                 generator: torch.Generator | None = None) -> Tensor:
    """Pick ``k`` object-seed positions per image.

    Parameters
    ----------
    scores : Tensor (N, P)
        Normalised class-map values in raster order (see :func:`seed_scores`).
    k : int
        Seeds per image.
    threshold : float
        Candidates are positions with ``score > threshold``. If an image has none (only
        possible for a constant map or a map that lost its peak by resizing), its single
        candidate is the argmax position (the first one for ties).
    sampling : {"random", "first"}
        "random": ``k`` distinct candidates drawn uniformly (``torch.randperm`` with
        ``generator``, on the CPU); "first": the first ``k`` candidates in raster order.
        With fewer than ``k`` candidates the chosen order is repeated cyclically.
    generator : torch.Generator, optional
        CPU generator for reproducible random sampling.

    Returns
    -------
    LongTensor (N, k) of flat positions in [0, P), on ``scores``' device.
    """
    if sampling not in SEED_SAMPLING:
        raise AttribmapError(f"seed_sampling must be one of {SEED_SAMPLING}, got {sampling!r}")
    rows = []
    cpu_scores = scores.detach().cpu()
    for row in cpu_scores:
        cand = torch.nonzero(row > threshold).flatten()
        if cand.numel() == 0:
            cand = row.argmax().reshape(1)
        if sampling == "random":
            cand = cand[torch.randperm(cand.numel(), generator=generator)]
        reps = math.ceil(k / cand.numel())
        rows.append(cand.repeat(reps)[:k])
    return torch.stack(rows).to(scores.device)


class I2CLoss(nn.Module):
    """Stochastic (SC) and global (GC) consistency losses of I2C with a class-centre bank.

    Parameters
    ----------
    num_classes : int
        K classes (rows of the centre bank).
    feat_dim : int
        C, channels of the feature map the losses act on.
    k : int
        Seeds per image (3).
    threshold : float
        Seed threshold delta on the min-max normalised class map (0.7).
    alpha : float
        Decay of the centre update rate, ``eta = exp(-alpha * t_y)`` (0.002).
    seed_sampling : {"first", "random"}
        The first K in raster order (default, as the authors' code) or random seeds.
    generator : torch.Generator, optional
        CPU generator used for random seeds (for determinism).

    Attributes
    ----------
    centers : FloatTensor (num_classes, feat_dim)
        Buffer (saved in ``state_dict``): class centres C, zeros until a class is first seen.
    counts : LongTensor (num_classes,)
        Buffer (saved in ``state_dict``): t_y, number of updates applied to each centre.

    Notes
    -----
    The bank is local to the process: under DDP each rank keeps its own copy (identical only
    if the caller synchronises it). ``forward`` updates the bank unless ``update=False``.
    λ1, λ2 are *not* applied here; the trainer forms ``CE + λ1 L_SC + λ2 L_GC``.
    """

    centers: Tensor
    counts: Tensor

    def __init__(self, num_classes: int, feat_dim: int, k: int = 3, threshold: float = 0.7,
                 alpha: float = 0.002, seed_sampling: str = "first",
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        for name, value in (("num_classes", num_classes), ("feat_dim", feat_dim), ("k", k)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise AttribmapError(f"{name} must be a positive int, got {value!r}")
        if not 0.0 <= float(threshold) < 1.0:
            raise AttribmapError(f"threshold must be in [0, 1), got {threshold!r}")
        if not float(alpha) >= 0.0:
            raise AttribmapError(f"alpha must be >= 0, got {alpha!r}")
        if seed_sampling not in SEED_SAMPLING:
            raise AttribmapError(f"seed_sampling must be one of {SEED_SAMPLING}, "
                                 f"got {seed_sampling!r}")
        self.num_classes = num_classes
        self.feat_dim = feat_dim
        self.k = k
        self.threshold = float(threshold)
        self.alpha = float(alpha)
        self.seed_sampling = seed_sampling
        self.generator = generator
        self.register_buffer("centers", torch.zeros(num_classes, feat_dim))
        self.register_buffer("counts", torch.zeros(num_classes, dtype=torch.long))

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, feat_dim={self.feat_dim}, k={self.k}, "
                f"threshold={self.threshold}, alpha={self.alpha}, "
                f"seed_sampling={self.seed_sampling!r}")

    def _check(self, feat: Tensor, class_maps: Tensor, labels: Tensor) -> Tensor:
        if feat.dim() != 4 or feat.shape[1] != self.feat_dim:
            raise AttribmapError(f"feat must be (N,{self.feat_dim},h,w), got {tuple(feat.shape)}")
        n = feat.shape[0]
        if class_maps.dim() != 4 or class_maps.shape[:2] != (n, self.num_classes):
            raise AttribmapError(f"class_maps must be (N={n},K={self.num_classes},h,w), got "
                                 f"{tuple(class_maps.shape)}")
        labels = torch.as_tensor(labels, device=feat.device).long().reshape(-1)
        if labels.numel() != n:
            raise AttribmapError(f"labels must have N={n} entries, got {labels.numel()}")
        if n == 0 or n % 2:
            raise AttribmapError(f"I2C needs an even, non-zero batch of pairs, got N={n}")
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise AttribmapError(f"labels must lie in [0, {self.num_classes}), got "
                                 f"min {int(labels.min())}, max {int(labels.max())}")
        bad = torch.nonzero(labels[0::2] != labels[1::2]).flatten()
        if bad.numel():
            i = int(bad[0])
            raise AttribmapError(
                f"I2C batches must hold pairs of one class (items 2i and 2i+1); pair {i} has "
                f"labels {int(labels[2 * i])} and {int(labels[2 * i + 1])} - use "
                f"attribmap.learned.PairedClassBatchSampler")
        return labels

    def seed_vectors(self, feat: Tensor, class_maps: Tensor, labels: Tensor) -> Tensor:
        """Seed feature vectors f_b^k: ``feat`` (N,C,h,w) -> (N, k, C) (differentiable in ``feat``).

        The ``k`` seed positions of each image are chosen by :func:`select_seeds` from the scores
        of its ``class_maps`` (N,K,h',w') at its class in ``labels`` (N,).
        """
        h, w = feat.shape[-2:]
        scores = seed_scores(class_maps, labels, (h, w))
        idx = select_seeds(scores, self.k, self.threshold, self.seed_sampling, self.generator)
        flat = feat.flatten(2)  # (N,C,P)
        gathered = torch.gather(flat, 2, idx.unsqueeze(1).expand(-1, flat.shape[1], -1))
        return gathered.transpose(1, 2)  # (N,k,C)

    def forward(self, feat: Tensor, class_maps: Tensor, labels: Tensor,
                update: bool = True) -> tuple[Tensor, Tensor]:
        """Compute ``(l_sc, l_gc)`` for a paired batch and update the centre bank.

        Parameters
        ----------
        feat : Tensor (N,C,h,w)
            Backbone feature map (``model.feature_layer``), N even.
        class_maps : Tensor (N,K,h',w')
            Class maps (``model.class_map_layer``); only used (detached) to pick seeds.
        labels : LongTensor (N,)
            Ground-truth classes; ``labels[2i] == labels[2i+1]``.
        update : bool
            Apply the centre update (default True).

        Returns
        -------
        l_sc, l_gc : scalar Tensors
            Unweighted losses; ``l_gc`` is 0 (no graph) when no pair's class had been seen.
        """
        labels = self._check(feat, class_maps, labels)
        if self.centers.device != feat.device:  # follow the features (e.g. loss built on CPU)
            self.centers = self.centers.to(feat.device)
            self.counts = self.counts.to(feat.device)
        vectors = self.seed_vectors(feat, class_maps, labels)          # (N,k,C)
        first, second = vectors[0::2], vectors[1::2]                   # (P,k,C)
        l_sc = torch.linalg.vector_norm(first - second, dim=2).mean()
        pair_centres = torch.cat((first, second), dim=1).mean(dim=1)   # (P,C)
        pair_labels = labels[0::2]
        seen = self.counts[pair_labels] > 0
        if bool(seen.any()):
            bank = self.centers[pair_labels[seen]].detach().to(pair_centres.dtype)
            l_gc = torch.linalg.vector_norm(bank - pair_centres[seen], dim=1).mean()
        else:
            l_gc = pair_centres.new_zeros(())
        if update:
            self.update_centers(vectors.detach(), labels)
        return l_sc, l_gc

    @torch.no_grad()
    def update_centers(self, vectors: Tensor, labels: Tensor) -> None:
        """Once per class y of the batch: ``C[y] <- (1 - eta) C[y] + eta a^y``, ``t_y += 1``.

        Parameters
        ----------
        vectors : Tensor (N, k, C)
            Seed vectors of the batch (:meth:`seed_vectors`).
        labels : LongTensor (N,)
            Class of each image.

        Notes
        -----
        ``a^y`` is the mean of the ``k * |B^y|`` seed vectors of the images of class y and
        ``eta = exp(-alpha t_y)`` with ``t_y`` the updates class y had before this batch.
        """
        labels = labels.reshape(-1)
        for y in torch.unique(labels).tolist():
            a_y = vectors[labels == y].reshape(-1, vectors.shape[-1]).mean(dim=0)
            eta = math.exp(-self.alpha * int(self.counts[y]))
            self.centers[y] = (1.0 - eta) * self.centers[y] + eta * a_y.to(self.centers.dtype)
            self.counts[y] += 1
