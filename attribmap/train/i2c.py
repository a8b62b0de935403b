"""Recipe: train an I2C classifier (CE + lambda1 L_SC + lambda2 L_GC on paired-class batches)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from attribmap.train.classifier import holdout_accuracy_fn
from attribmap.train.common import (
    check_image_size,
    check_int,
    check_out_path,
    make_optim_config,
    summarize,
)
from attribmap.train.data import load_training_data, make_loader
from attribmap.distributed import distributed_session
from attribmap.train.loop import fit
from attribmap.train.optim import head_parameter_groups
from attribmap.train.seeding import seed_everything

__all__ = ["train_i2c", "I2CObjective", "i2c_step"]


class I2CObjective(nn.Module):
    """The I2C training objective: one module so DDP syncs the network and the centre bank.

    Parameters
    ----------
    net : nn.Module
        An I2C classifier with ``forward_features(x) -> (logits, feat, class_maps)``.
    criterion : attribmap.learned.I2CLoss
        Seed selection, L_SC / L_GC and the centre bank (buffers ``centers``, ``counts``).
    lambda_sc, lambda_gc : float
        Loss weights (0.008 and 0.001 in the paper).

    Notes
    -----
    ``forward(images (N,3,H,W), labels (N,))`` returns ``(total, ce, l_sc, l_gc, logits)``.
    Under DDP the bank is a buffer of this module, so every step starts from rank 0's bank
    (``broadcast_buffers``): all ranks hold the same bank, updated from rank 0's pairs.
    """

    def __init__(self, net: nn.Module, criterion: nn.Module, lambda_sc: float = 0.008,
                 lambda_gc: float = 0.001) -> None:
        super().__init__()
        self.net = net
        self.criterion = criterion
        self.lambda_sc = float(lambda_sc)
        self.lambda_gc = float(lambda_gc)

    def forward(self, images: torch.Tensor, labels: torch.Tensor):
        logits, feat, class_maps = self.net.forward_features(images)
        ce = F.cross_entropy(logits, labels)
        l_sc, l_gc = self.criterion(feat, class_maps, labels)
        total = ce + self.lambda_sc * l_sc + self.lambda_gc * l_gc
        return total, ce, l_sc, l_gc, logits


def i2c_step(module: nn.Module, batch: Dict[str, Any]):
    """``step_fn`` for :func:`attribmap.train.fit` with an :class:`I2CObjective`."""
    labels = batch["label"]
    total, ce, l_sc, l_gc, logits = module(batch["image"], labels)
    acc = (logits.detach().argmax(1) == labels).float().mean()
    return total, {"ce": ce.detach(), "l_sc": l_sc.detach(), "l_gc": l_gc.detach(), "acc": acc}


def _feature_channels(net: nn.Module, image_size: int, device: torch.device) -> int:
    was_training = net.training
    net.eval()
    with torch.no_grad():
        _, feat, _ = net.forward_features(torch.zeros(1, 3, image_size, image_size, device=device))
    net.train(was_training)
    return int(feat.shape[1])


def train_i2c(
    data: Union[str, "os.PathLike[str]"],
    out: Union[str, "os.PathLike[str]"],
    *,
    arch: str = "resnet18_small_i2c",
    epochs: int = 8,
    batch_size: int = 16,
    lr: float = 0.01,
    image_size: int = 64,
    lambda_sc: float = 0.008,
    lambda_gc: float = 0.001,
    k: int = 3,
    threshold: float = 0.7,
    alpha: float = 0.002,
    seed_sampling: str = "random",
    optimizer: str = "sgd",
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    schedule: str = "cosine",
    lr_step_size: int = 30,
    weights: Any = None,
    head_lr_mult: Optional[float] = None,
    grad_clip: Optional[float] = None,
    holdout_fraction: float = 0.0,
    seed: int = 0,
    resume: bool = False,
    progress: Optional[bool] = None,
    device: Union[str, torch.device] = "cpu",
    num_workers: int = 0,
    metadata_root: Union[str, "os.PathLike[str]", None] = None,
    log: Optional[Callable[[str], None]] = None,
) -> Tuple[Path, Dict[str, Any]]:
    """Train an I2C classifier: CE + ``lambda_sc`` L_SC + ``lambda_gc`` L_GC.

    Batches come from :class:`attribmap.learned.PairedClassBatchSampler` (items 2i and 2i+1
    share a class; sharded across ranks under DDP); the losses and the centre bank are
    :class:`attribmap.learned.I2CLoss`, whose state is saved as ``extra["i2c_bank"]``.
    Parameters not listed here and the return value are as in
    :func:`attribmap.train.train_classifier`.

    Parameters
    ----------
    arch : str
        An I2C architecture (``*_i2c``; ``resnet18_small_i2c`` is CPU-sized).
    batch_size : int
        Even, >= 2 (pairs of one class).
    lambda_sc, lambda_gc : float
        Weights of the stochastic- and global-consistency losses (0.008, 0.001).
    k, threshold, alpha, seed_sampling
        :class:`attribmap.learned.I2CLoss` options: seeds per image, seed threshold on the
        min-max class map, centre-update decay, ``"random"`` or ``"first"`` seeds.
    """
    out = check_out_path(out)
    epochs = check_int("epochs", epochs)
    batch_size = check_int("batch_size", batch_size, 2)
    if batch_size % 2:
        raise ValueError(f"batch_size must be even for I2C (pairs of one class), got {batch_size}")
    image_size = check_image_size(image_size)
    check_int("seed", seed, 0)
    optim = make_optim_config(optimizer, lr, momentum, weight_decay, schedule, lr_step_size)
    from attribmap.data import collate_wsol
    from attribmap.learned import I2CLoss, PairedClassBatchSampler
    from attribmap.models import arch_config, build_model

    with distributed_session(device) as ctx:
        seed_everything(seed)
        parts = load_training_data(data, image_size, holdout_fraction, seed, metadata_root)
        net = build_model(arch, parts.num_classes, weights=weights)
        if not callable(getattr(net, "forward_features", None)):
            raise ValueError(f"arch {arch!r} is not an I2C architecture (no forward_features); "
                             "use one whose name ends in '_i2c', e.g. 'resnet18_small_i2c'")
        net.to(ctx.device)
        criterion = I2CLoss(parts.num_classes, _feature_channels(net, image_size, ctx.device), k=k,
                            threshold=threshold, alpha=alpha, seed_sampling=seed_sampling)
        objective = I2CObjective(net, criterion, lambda_sc, lambda_gc)
        sampler = PairedClassBatchSampler(parts.train_labels, batch_size, seed=seed, drop_last=True,
                                          num_replicas=ctx.world_size, rank=ctx.rank)
        loader = make_loader(parts.train, batch_size, ctx, seed, num_workers=num_workers,
                             collate_fn=collate_wsol, batch_sampler=sampler)
        evaluate_fn = None
        if parts.holdout is not None:
            holdout_loader = make_loader(parts.holdout, batch_size, ctx, seed, shuffle=False, shard=False,
                                         num_workers=num_workers, collate_fn=collate_wsol)
            evaluate_fn = holdout_accuracy_fn(net, holdout_loader, ctx.device)
        mult = head_lr_mult if head_lr_mult is not None else (10.0 if weights is not None else 1.0)
        result = fit(
            net, i2c_step, loader, epochs=epochs, optim=optim, params=head_parameter_groups(net, mult),
            train_module=objective, checkpoint=out, task="i2c", arch=arch_config(net),
            extra={"image_size": image_size, "holdout_fraction": float(holdout_fraction),
                   "data": os.path.abspath(os.fspath(data)), "pretrained": weights is not None,
                   "lambda_sc": float(lambda_sc), "lambda_gc": float(lambda_gc), "k": int(k),
                   "threshold": float(threshold), "alpha": float(alpha), "seed_sampling": seed_sampling},
            extra_modules={"i2c_bank": criterion}, evaluate_fn=evaluate_fn, seed=seed, resume=resume,
            progress=progress, device=ctx.device, grad_clip=grad_clip, log=log,
        )
    return out, summarize(result)
