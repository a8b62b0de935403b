"""Recipes: the weight-map generator (Shaharabany & Wolf, methods I and II) and its Siamese embedding.

Method I trains the generator g against a frozen classifier f; method II first trains a
Siamese embedding with the triplet loss (:func:`train_embedding`), then g against it.
After every epoch the mean label-free stopping score S of g's maps on a held-out part of
the *training* split picks the best checkpoint (val/test labels are never touched).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple, Union

import torch
from torch import nn

from attribmap.train.checkpoint import load_checkpoint, load_model
from attribmap.train.common import (
    FrozenAware,
    check_image_size,
    check_int,
    check_out_path,
    freeze,
    make_optim_config,
    mean_over_loader,
    summarize,
)
from attribmap.train.data import TrainingData, TripletDataset, load_training_data, make_loader
from attribmap.distributed import DistributedContext, distributed_session
from attribmap.train.loop import fit
from attribmap.train.seeding import seed_everything

__all__ = ["train_weightmap", "train_embedding", "embedding_checkpoint_path", "Method1Objective",
           "Method2Objective", "TripletObjective", "stopping_score_fn"]

PathArg = Union[str, "os.PathLike[str]"]
CLASSIFIER_TASKS = ("classifier", "i2c")


def embedding_checkpoint_path(out: PathArg) -> Path:
    """Where method II keeps its Siamese embedding: ``wm.pt`` -> ``wm.embedding.pt``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.embedding{out.suffix}")


class Method1Objective(FrozenAware):
    """``forward(images (N,3,H,W)) -> (loss, parts)`` of method I with a frozen classifier."""

    frozen_children = ("classifier",)

    def __init__(self, generator: nn.Module, classifier: nn.Module, lam: float = 1.0,
                 hard_target: bool = False) -> None:
        super().__init__()
        self.generator = generator
        self.classifier = freeze(classifier)
        self.lam = float(lam)
        self.hard_target = bool(hard_target)

    def forward(self, images: torch.Tensor):
        from attribmap.learned.weightmap import method1_loss

        return method1_loss(self.classifier, images, self.generator(images), lam=self.lam,
                            hard_target=self.hard_target)


class Method2Objective(FrozenAware):
    """``forward(anchor, positive, negative) -> (loss, parts)`` of method II, frozen embedding."""

    frozen_children = ("embed",)

    def __init__(self, generator: nn.Module, embed: nn.Module, lam: float = 1.0) -> None:
        super().__init__()
        self.generator = generator
        self.embed = freeze(embed)
        self.lam = float(lam)

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor):
        from attribmap.learned.weightmap import method2_loss

        return method2_loss(self.embed, self.generator, anchor, positive, negative, lam=self.lam)


class TripletObjective(nn.Module):
    """``forward(anchor, positive, negative) -> loss``: triplet loss of one embedding pass."""

    def __init__(self, embed: nn.Module, margin: float = 1.0) -> None:
        super().__init__()
        self.embed = embed
        self.margin = float(margin)

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        from attribmap.learned.weightmap import triplet_loss

        a, p, n = self.embed(torch.cat((anchor, positive, negative))).split(anchor.shape[0])
        return triplet_loss(a, p, n, margin=self.margin)


def _image_step(module: nn.Module, batch: Dict[str, Any]):
    loss, parts = module(batch["image"])
    return loss, parts


def _triplet_step(module: nn.Module, batch: Dict[str, Any]):
    out = module(batch["anchor"], batch["positive"], batch["negative"])
    return out if isinstance(out, tuple) else (out, {})


def stopping_score_fn(generator: nn.Module, loader: Any, device: torch.device) -> Callable[[int], float]:
    """``evaluate_fn``: mean stopping score S (in [0, 1]) of ``generator``'s maps on ``loader``."""
    from attribmap.learned.weightmap import stopping_score

    def evaluate(epoch: int) -> float:
        return mean_over_loader(loader, device, lambda b: stopping_score(generator(b["image"])[:, 0]))
    return evaluate


def _triplet_loader(parts: TrainingData, batch_size: int, ctx: DistributedContext, seed: int,
                    num_workers: int):
    triplets = TripletDataset(parts.train, parts.train_labels, seed=seed)
    return make_loader(triplets, batch_size, ctx, seed, num_workers=num_workers)


def _common_checks(out: PathArg, epochs: int, batch_size: int, image_size: int, seed: int,
                   multiple: int) -> Tuple[Path, int, int, int]:
    out = check_out_path(out)
    epochs = check_int("epochs", epochs)
    batch_size = check_int("batch_size", batch_size, 2)
    image_size = check_image_size(image_size, multiple)
    check_int("seed", seed, 0)
    return out, epochs, batch_size, image_size


def train_embedding(
    data: PathArg, out: PathArg, *, arch: str = "siamese_resnet18", embedding_dim: int = 200,
    epochs: int = 4, batch_size: int = 16, lr: float = 1e-3, image_size: int = 64, margin: float = 1.0,
    optimizer: str = "adam", momentum: float = 0.9, weight_decay: float = 1e-4, schedule: str = "none",
    weights: Any = None, holdout_fraction: float = 0.1, seed: int = 0, resume: bool = False,
    progress: Optional[bool] = None, device: Union[str, torch.device] = "cpu", num_workers: int = 0,
    metadata_root: Optional[PathArg] = None, grad_clip: Optional[float] = None,
    log: Optional[Callable[[str], None]] = None,
) -> Tuple[Path, Dict[str, Any]]:
    """Train the Siamese embedding of method II with the triplet loss (margin 1).

    Triplets come from :class:`attribmap.train.data.TripletDataset` over the training images
    left after holding out ``holdout_fraction`` (the same split as :func:`train_weightmap`
    with the same ``seed``). The last epoch is kept. Parameters and return value as in
    :func:`attribmap.train.train_classifier`; ``embedding_dim`` is the output size.
    """
    out, epochs, batch_size, image_size = _common_checks(out, epochs, batch_size, image_size, seed, 1)
    optim = make_optim_config(optimizer, lr, momentum, weight_decay, schedule)
    from attribmap.models import arch_config, build_model

    with distributed_session(device) as ctx:
        seed_everything(seed)
        parts = load_training_data(data, image_size, holdout_fraction, seed, metadata_root)
        embed = build_model(arch, 0, weights=weights, embedding_dim=embedding_dim)
        loader = _triplet_loader(parts, batch_size, ctx, seed, num_workers)
        result = fit(
            embed, _triplet_step, loader, epochs=epochs, optim=optim,
            train_module=TripletObjective(embed, margin), checkpoint=out, task="embedding",
            arch=arch_config(embed),
            extra={"image_size": image_size, "holdout_fraction": float(holdout_fraction),
                   "margin": float(margin), "data": os.path.abspath(os.fspath(data))},
            seed=seed, resume=resume, progress=progress, device=ctx.device, grad_clip=grad_clip, log=log,
        )
    return out, summarize(result)


def _load_frozen(path: PathArg, tasks: Tuple[str, ...], role: str, device: torch.device) -> nn.Module:
    state = load_checkpoint(path)
    if state["task"] not in tasks:
        raise ValueError(f"{role} checkpoint {os.fspath(path)!r} holds a {state['task']!r} model; "
                         f"expected one of {list(tasks)}")
    return freeze(load_model(path, device=device))


def train_weightmap(
    data: PathArg, out: PathArg, *, classifier: Optional[PathArg] = None, method: int = 1,
    encoder: str = "resnet18", encoder_weights: Any = None, epochs: int = 6, batch_size: int = 16,
    lr: float = 1e-3, image_size: int = 64, lam: float = 1.0, hard_target: bool = False,
    embedding_epochs: Optional[int] = None, optimizer: str = "adam", momentum: float = 0.9,
    weight_decay: float = 1e-4, schedule: str = "none", holdout_fraction: float = 0.1, seed: int = 0,
    resume: bool = False, progress: Optional[bool] = None, device: Union[str, torch.device] = "cpu",
    num_workers: int = 0, metadata_root: Optional[PathArg] = None, grad_clip: Optional[float] = None,
    log: Optional[Callable[[str], None]] = None,
) -> Tuple[Path, Dict[str, Any]]:
    """Train a weight-map generator g (U-Net, ResNet encoder) with method I or II.

    Parameters
    ----------
    data, out : path
        Dataset root and best-checkpoint path (see :func:`attribmap.train.train_classifier`).
    classifier : path, optional
        Method I: a ``classifier`` or ``i2c`` checkpoint, required; it is frozen (eval mode,
        ``requires_grad=False``). Method II: an ``embedding`` checkpoint to reuse; when None
        one is trained first into :func:`embedding_checkpoint_path` (``embedding_epochs``,
        default ``epochs``).
    method : {1, 2}
        Method I (CE to the classifier's soft prediction + ``lam`` mean(M)) or method II
        (inner/outer triplet losses + ``lam`` mean(M_a)).
    encoder : {"resnet18", "resnet34", "resnet50"}
        Generator encoder; ``encoder_weights`` (e.g. ``"DEFAULT"``) loads torchvision weights.
    image_size : int
        Multiple of 32 (the generator downsamples 5 times).
    lam : float
        Weight of the area term mean(M).
    hard_target : bool
        Method I with the argmax of the classifier's prediction as target.
    holdout_fraction : float
        Share of each training class held out for the stopping score S; the checkpoint with
        the highest mean S is kept at ``out`` (the last epoch when 0). Among epochs with the
        same mean S the later one is kept: an almost uniform early map also scores S = 1,
        and training makes maps more specific until S drops (over-segmentation).

    Returns
    -------
    (pathlib.Path, dict)
        Best checkpoint (task ``"weightmap"``; :func:`attribmap.train.load_model` gives the
        generator) and the history dict; method II adds ``"embedding"`` (its history).
    """
    if method not in (1, 2) or isinstance(method, bool):
        raise ValueError(f"method must be 1 or 2, got {method!r}")
    out, epochs, batch_size, image_size = _common_checks(out, epochs, batch_size, image_size, seed, 32)
    optim = make_optim_config(optimizer, lr, momentum, weight_decay, schedule)
    if method == 1 and classifier is None:
        raise ValueError("method 1 needs a trained classifier checkpoint (--classifier CKPT)")
    if classifier is not None and not os.path.isfile(os.fspath(classifier)):
        raise FileNotFoundError(f"classifier checkpoint not found: {os.fspath(classifier)!r}")
    from attribmap.data import collate_wsol
    from attribmap.models import arch_config, build_model

    with distributed_session(device) as ctx:
        summary_extra: Dict[str, Any] = {}
        if method == 1:
            frozen = _load_frozen(classifier, CLASSIFIER_TASKS, "classifier", ctx.device)
            frozen_path = os.path.abspath(os.fspath(classifier))
        elif classifier is not None:
            frozen = _load_frozen(classifier, ("embedding",), "embedding", ctx.device)
            frozen_path = os.path.abspath(os.fspath(classifier))
        else:
            embed_path, embed_summary = train_embedding(
                data, embedding_checkpoint_path(out), epochs=embedding_epochs or epochs,
                batch_size=batch_size, image_size=image_size, holdout_fraction=holdout_fraction,
                seed=seed, resume=resume, progress=progress, device=ctx.device,
                num_workers=num_workers, metadata_root=metadata_root, grad_clip=grad_clip, log=log)
            frozen = _load_frozen(embed_path, ("embedding",), "embedding", ctx.device)
            frozen_path = os.path.abspath(embed_path)
            summary_extra["embedding"] = embed_summary

        seed_everything(seed)
        parts = load_training_data(data, image_size, holdout_fraction, seed, metadata_root)
        generator = build_model(f"weightmap_{encoder}", 0, weights=encoder_weights)
        if method == 1:
            objective: nn.Module = Method1Objective(generator, frozen, lam, hard_target)
            loader = make_loader(parts.train, batch_size, ctx, seed, num_workers=num_workers,
                                 collate_fn=collate_wsol)
            step = _image_step
        else:
            objective = Method2Objective(generator, frozen, lam)
            loader = _triplet_loader(parts, batch_size, ctx, seed, num_workers)
            step = _triplet_step
        evaluate_fn = None
        if parts.holdout is not None:
            holdout_loader = make_loader(parts.holdout, batch_size, ctx, seed, shuffle=False, shard=False,
                                         num_workers=num_workers, collate_fn=collate_wsol)
            evaluate_fn = stopping_score_fn(generator, holdout_loader, ctx.device)
        result = fit(
            generator, step, loader, epochs=epochs, optim=optim, train_module=objective,
            checkpoint=out, task="weightmap", arch=arch_config(generator),
            extra={"method": int(method), "encoder": encoder, "lam": float(lam),
                   "hard_target": bool(hard_target), "image_size": image_size,
                   "holdout_fraction": float(holdout_fraction), "frozen_model": frozen_path,
                   "data": os.path.abspath(os.fspath(data)),
                   "selection": "mean stopping score S on held-out training images"},
            evaluate_fn=evaluate_fn, later_wins_ties=True, seed=seed, resume=resume,
            progress=progress, device=ctx.device, grad_clip=grad_clip, log=log,
        )
    return out, {**summarize(result), **summary_extra}
