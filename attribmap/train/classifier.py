"""Recipe: fine-tune / train a WSOL classifier with cross-entropy."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from attribmap.train.common import (
    check_image_size,
    check_int,
    check_out_path,
    make_optim_config,
    mean_over_loader,
    summarize,
)
from attribmap.train.data import load_training_data, make_loader
from attribmap.distributed import distributed_session
from attribmap.train.loop import fit
from attribmap.train.optim import head_parameter_groups
from attribmap.train.seeding import seed_everything

__all__ = ["train_classifier", "classification_step", "holdout_accuracy_fn"]


def classification_step(module: nn.Module, batch: Dict[str, Any]) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    """Cross-entropy on ``module(batch["image"])`` (logits (N,K)); metric ``acc`` in [0, 1]."""
    logits = module(batch["image"])
    labels = batch["label"]
    loss = F.cross_entropy(logits, labels)
    return loss, {"acc": (logits.detach().argmax(1) == labels).float().mean()}


def holdout_accuracy_fn(model: nn.Module, loader: DataLoader, device: torch.device) -> Callable[[int], float]:
    """``evaluate_fn`` for :func:`attribmap.train.fit`: top-1 accuracy (in [0, 1]) on ``loader``."""
    def evaluate(epoch: int) -> float:
        return mean_over_loader(
            loader, device, lambda b: (model(b["image"]).argmax(1) == b["label"]).float())
    return evaluate


def train_classifier(
    data: Union[str, "os.PathLike[str]"],
    out: Union[str, "os.PathLike[str]"],
    *,
    arch: str = "resnet18_small",
    epochs: int = 8,
    batch_size: int = 16,
    lr: float = 0.01,
    image_size: int = 64,
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
    """Train a classifier on the ``train`` split of a WSOL dataset with cross-entropy.

    Parameters
    ----------
    data : path
        Dataset root in the wsolevaluation layout (e.g. a synthetic suite).
    out : path
        Best-checkpoint path; the resumable state goes to ``<stem>.last<suffix>``.
    arch : str
        Any classifier of :func:`attribmap.models.available_archs` (``resnet18_small`` is
        CPU-sized; ``vgg16_gap``, ``inception_v3_spg``, ``resnet50_wsol`` are the WSOL ones).
    epochs, batch_size : int
        Training length and batch size (per process under DDP).
    lr : float
        Base learning rate; the classification head gets ``lr * head_lr_mult``.
    image_size : int
        Side of the random training crops (>= 32).
    optimizer, momentum, weight_decay, schedule
        See :class:`attribmap.train.OptimConfig` (``schedule`` in none/step/cosine).
    lr_step_size : int
        Epochs between the tenfold decays of the ``"step"`` schedule (30; the
        wsolevaluation CUB runs decay every 15).
    weights : None or str
        Pretrained backbone weights passed to :func:`attribmap.models.build_model`
        (e.g. ``"DEFAULT"``; needs the torchvision download cache).
    head_lr_mult : float, optional
        Learning-rate factor of the head; default 10 with pretrained ``weights``, else 1.
    grad_clip : float, optional
        Clip the global gradient norm to this value (off by default).
    holdout_fraction : float
        Share of each class of the train split held out; when > 0 the held-out top-1
        accuracy picks the best epoch, else the last epoch is kept.
    seed : int
        Seeds the model initialisation, holdout choice and every epoch's randomness.
    resume : bool
        Continue from ``<stem>.last<suffix>`` when it exists.
    progress : bool, optional
        tqdm bar (default: when stderr is a terminal).
    device : str or torch.device
        Training device.
    num_workers : int
        DataLoader workers (0 = load in the main process).
    metadata_root : path, optional
        Metadata folder when not ``data/metadata``.
    log : callable, optional
        Receives one line per epoch.

    Returns
    -------
    (pathlib.Path, dict)
        The best checkpoint path and ``{"epochs": [...], "best_epoch", "best_score",
        "checkpoint", "last_checkpoint"}``.
    """
    out = check_out_path(out)
    epochs = check_int("epochs", epochs)
    batch_size = check_int("batch_size", batch_size)
    image_size = check_image_size(image_size)
    check_int("seed", seed, 0)
    optim = make_optim_config(optimizer, lr, momentum, weight_decay, schedule, lr_step_size)
    from attribmap.models import arch_config, build_model

    with distributed_session(device) as ctx:
        seed_everything(seed)
        data_parts = load_training_data(data, image_size, holdout_fraction, seed, metadata_root)
        model = build_model(arch, data_parts.num_classes, weights=weights)
        from attribmap.data import collate_wsol

        loader = make_loader(data_parts.train, batch_size, ctx, seed, num_workers=num_workers,
                             collate_fn=collate_wsol)
        evaluate_fn = None
        if data_parts.holdout is not None:
            holdout_loader = make_loader(data_parts.holdout, batch_size, ctx, seed, shuffle=False,
                                         shard=False, num_workers=num_workers, collate_fn=collate_wsol)
            evaluate_fn = holdout_accuracy_fn(model, holdout_loader, ctx.device)
        mult = head_lr_mult if head_lr_mult is not None else (10.0 if weights is not None else 1.0)
        result = fit(
            model, classification_step, loader, epochs=epochs, optim=optim,
            params=head_parameter_groups(model, mult), checkpoint=out, task="classifier",
            arch=arch_config(model),
            extra={"image_size": image_size, "holdout_fraction": float(holdout_fraction),
                   "data": os.path.abspath(os.fspath(data)), "pretrained": weights is not None},
            evaluate_fn=evaluate_fn, seed=seed, resume=resume, progress=progress,
            device=ctx.device, grad_clip=grad_clip, log=log,
        )
    return out, summarize(result)
