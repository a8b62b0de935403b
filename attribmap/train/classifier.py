"""Task ``classifier``: cross-entropy on a WSOL split, with blank images of uniform target."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from attribmap.train.common import (
    RunOptions,
    build_initialised,
    fit_recipe,
    mean_over_loader,
    open_data,
    summarize,
)

if TYPE_CHECKING:  # pragma: no cover
    from attribmap.train.recipe import ClassifierRecipe

__all__ = ["train_classifier", "run_classifier", "classification_step", "classification_loss",
           "with_blanks", "holdout_accuracy_fn"]


def with_blanks(images: Tensor, fraction: float, kinds: Sequence[str]) -> Tensor:
    """``images`` (N,3,H,W) followed by ``blank_count(N, fraction)`` blank images of the ``kinds`` in turn (:func:`attribmap.models.blank_images`)."""
    from attribmap.models.blank import blank_count, blank_images

    count = blank_count(images.shape[0], fraction)
    if count == 0:
        return images
    return torch.cat((images, blank_images(images, count, kinds)))


def classification_loss(logits: Tensor, labels: Tensor) -> Tuple[Tensor, Dict[str, Tensor]]:
    """Cross-entropy of the first ``len(labels)`` rows, uniform-target CE of the rest (blanks).

    Parameters
    ----------
    logits : Tensor (N + B, K)
        Real images first, then ``B >= 0`` blank images.
    labels : LongTensor (N,)

    Returns
    -------
    loss : scalar Tensor
        Mean over all N + B images of ``-log p_y`` (real) and ``-(1/K) sum_c log p_c``
        (blank; smallest for the uniform prediction). Plain ``F.cross_entropy`` when B = 0.
    metrics : dict
        ``acc`` (top-1 on the real images) and, with blanks, ``blank_ce``.
    """
    n = labels.shape[0]
    real = logits[:n]
    metrics = {"acc": (real.detach().argmax(1) == labels).float().mean()}
    if logits.shape[0] == n:
        return F.cross_entropy(real, labels), metrics
    blank_ce = -logits[n:].log_softmax(dim=1).mean(dim=1)
    loss = (F.cross_entropy(real, labels, reduction="sum") + blank_ce.sum()) / logits.shape[0]
    metrics["blank_ce"] = blank_ce.detach().mean()
    return loss, metrics


def classification_step(blank_fraction: float = 0.0, blank_kinds: Sequence[str] = ("grey",)) -> Callable:
    """``step_fn`` for :func:`attribmap.train.fit`: CE on ``module(images + blanks)``, the blanks made by :func:`with_blanks` with ``blank_fraction`` and ``blank_kinds``."""
    def step(module: nn.Module, batch: Dict[str, Any]) -> Tuple[Tensor, Dict[str, Tensor]]:
        logits = module(with_blanks(batch["image"], blank_fraction, blank_kinds))
        return classification_loss(logits, batch["label"])
    return step


def holdout_accuracy_fn(model: nn.Module, loader: DataLoader, device: torch.device) -> Callable[[int], float]:
    """``evaluate_fn`` for :func:`attribmap.train.fit`: top-1 accuracy (in [0, 1]) of ``model`` on ``loader``, run on ``device``."""
    def evaluate(epoch: int) -> float:
        return mean_over_loader(
            loader, device, lambda b: (model(b["image"]).argmax(1) == b["label"]).float())
    return evaluate


def run_classifier(recipe: "ClassifierRecipe", data: Union[str, "os.PathLike[str]"], out: Path,
                   options: RunOptions) -> Tuple[Path, Dict[str, Any]]:
    """Train a :class:`attribmap.train.ClassifierRecipe` (see :func:`attribmap.train.train`).

    ``recipe`` is trained on ``data`` (dataset root) into ``out`` (best-checkpoint path) with
    the run ``options`` (:class:`RunOptions`); returns what :func:`attribmap.train.train` does.
    """
    from attribmap.data import collate_wsol
    from attribmap.distributed import distributed_session
    from attribmap.train.data import make_loader
    from attribmap.train.seeding import seed_everything

    with distributed_session(options.device) as ctx:
        seed_everything(recipe.seed)
        parts = open_data(recipe, data, options)
        model, init = build_initialised(recipe, parts.num_classes, options, ctx)
        loader = make_loader(parts.train, recipe.batch_size, ctx, recipe.seed,
                             num_workers=options.num_workers, collate_fn=collate_wsol)
        evaluate_fn = None
        if parts.holdout is not None:
            holdout = make_loader(parts.holdout, recipe.batch_size, ctx, recipe.seed, shuffle=False,
                                  shard=False, num_workers=options.num_workers, collate_fn=collate_wsol)
            evaluate_fn = holdout_accuracy_fn(model, holdout, ctx.device)
        result = fit_recipe(recipe, model, classification_step(recipe.blank_fraction, recipe.blank_kinds),
                            loader, out, data, options, ctx, evaluate_fn=evaluate_fn, init=init,
                            head_groups=True)
    return out, summarize(result)


def train_classifier(data: Union[str, "os.PathLike[str]"], out: Union[str, "os.PathLike[str]"],
                     **options: Any) -> Tuple[Path, Dict[str, Any]]:
    """Train a classifier: :func:`attribmap.train.train` of a ``ClassifierRecipe(**fields)``.

    Parameters
    ----------
    data, out : path
        Dataset root (wsolevaluation layout) and best-checkpoint path.
    **options
        Fields of :class:`attribmap.train.ClassifierRecipe` (``arch``, ``epochs``, ``lr``,
        ``blank_fraction``, ...) and the run options of :func:`attribmap.train.train`
        (``device``, ``resume``, ``progress``, ``log``, ``num_workers``,
        ``metadata_root``). An unknown name raises :class:`attribmap.train.RecipeError`
        listing the valid fields.

    Returns
    -------
    (pathlib.Path, dict)
        As :func:`attribmap.train.train`.

    Example
    -------
    ::

        path, history = train_classifier("suite", "runs/cls.pt", epochs=8, init="runs/pretrain.pt")
    """
    from attribmap.train.recipe import ClassifierRecipe
    from attribmap.train.runner import train_with

    return train_with(ClassifierRecipe, data, out, options)
