"""Recipes: the weight-map generator (Shaharabany & Wolf, methods I and II) and its Siamese embedding.

Method I trains the generator g against a frozen classifier f; method II first trains a
Siamese embedding with the triplet loss (:func:`train_embedding`), then g against it.
At every evaluation (``evaluations_per_epoch`` per epoch) both label-free stopping scores
(the paper's S and the robust variant) of g's maps on a held-out part of the *training*
split are computed; the one the recipe names picks the best checkpoint (val/test labels
are never touched).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Tuple, Union

import numpy as np
import torch
from torch import nn

from attribmap.distributed import DistributedContext, distributed_session
from attribmap.train.checkpoint import load_checkpoint, load_model
from attribmap.train.common import (
    FrozenAware,
    RunOptions,
    build_initialised,
    fit_recipe,
    freeze,
    open_data,
    summarize,
)
from attribmap.train.data import TrainingData, TripletDataset, make_loader
from attribmap.train.recipe import posthoc_tasks
from attribmap.train.seeding import seed_everything

if TYPE_CHECKING:  # pragma: no cover
    from attribmap.train.recipe import EmbeddingRecipe, WeightMapRecipe

__all__ = ["train_weightmap", "train_embedding", "run_weightmap", "run_embedding",
           "embedding_checkpoint_path", "Method1Objective", "Method2Objective", "TripletObjective",
           "stopping_score_fn"]

PathArg = Union[str, "os.PathLike[str]"]


def embedding_checkpoint_path(out: PathArg) -> Path:
    """Where method II keeps its Siamese embedding for the weight-map checkpoint ``out``: ``wm.pt`` -> ``wm.embedding.pt``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.embedding{out.suffix}")


class Method1Objective(FrozenAware):
    """``forward(images (N,3,H,W)) -> (loss, parts)`` of method I with a frozen classifier.

    Parameters
    ----------
    generator : nn.Module
        The weight-map generator trained.
    classifier : nn.Module
        The classifier, frozen here.
    lam : float
        Weight of the area term mean(M) (:func:`attribmap.learned.method1_loss`).
    hard_target : bool
        Use the argmax of the classifier's prediction as a hard label instead of the soft target.
    """

    frozen_children = ("classifier",)

    def __init__(self, generator: nn.Module, classifier: nn.Module, lam: float = 1.0,
                 hard_target: bool = False) -> None:
        super().__init__()
        self.generator = generator
        self.classifier = freeze(classifier)
        self.lam = float(lam)
        self.hard_target = bool(hard_target)

    def forward(self, images: torch.Tensor):
        """Method I's ``(loss, parts)`` for ``images`` (N,3,H,W)."""
        from attribmap.learned.weightmap import method1_loss

        return method1_loss(self.classifier, images, self.generator(images), lam=self.lam,
                            hard_target=self.hard_target)


class Method2Objective(FrozenAware):
    """``forward(anchor, positive, negative) -> (loss, parts)`` of method II, frozen embedding.

    Parameters
    ----------
    generator : nn.Module
        The weight-map generator trained.
    embed : nn.Module
        The Siamese embedding, frozen here.
    lam : float
        Weight of the area term (:func:`attribmap.learned.method2_loss`).
    """

    frozen_children = ("embed",)

    def __init__(self, generator: nn.Module, embed: nn.Module, lam: float = 1.0) -> None:
        super().__init__()
        self.generator = generator
        self.embed = freeze(embed)
        self.lam = float(lam)

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor):
        """Method II's ``(loss, parts)`` for triplets of images ``anchor``, ``positive``, ``negative`` (N,3,H,W) each."""
        from attribmap.learned.weightmap import method2_loss

        return method2_loss(self.embed, self.generator, anchor, positive, negative, lam=self.lam)


class TripletObjective(nn.Module):
    """``forward(anchor, positive, negative) -> loss``: triplet loss (``margin``) of one pass of the embedding ``embed``."""

    def __init__(self, embed: nn.Module, margin: float = 1.0) -> None:
        super().__init__()
        self.embed = embed
        self.margin = float(margin)

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        """The triplet loss of images ``anchor``, ``positive``, ``negative`` (N,3,H,W) each, embedded in one pass."""
        from attribmap.learned.weightmap import triplet_loss

        a, p, n = self.embed(torch.cat((anchor, positive, negative))).split(anchor.shape[0])
        return triplet_loss(a, p, n, margin=self.margin)


def _image_step(module: nn.Module, batch: Dict[str, Any]):
    loss, parts = module(batch["image"])
    return loss, parts


def _triplet_step(module: nn.Module, batch: Dict[str, Any]):
    out = module(batch["anchor"], batch["positive"], batch["negative"])
    return out if isinstance(out, tuple) else (out, {})


def stopping_score_fn(generator: nn.Module, loader: Any, device: torch.device, select: str = "robust",
                      floor: str = "min", percentile: float = 5.0,
                      margin: int = 2) -> Callable[[int], Dict[str, float]]:
    """``evaluate_fn``: both mean stopping scores of ``generator``'s maps on ``loader``.

    Returns a function giving ``{"score", "S_paper", "S_robust", "floor", "above",
    "above_robust"}`` (means over the held-out images, see
    :func:`attribmap.learned.stopping_diagnostics`, which takes ``floor``, ``percentile``
    and ``margin``); ``score`` is ``S_<select>``. The maps are computed on ``device``.
    """
    from attribmap.learned.weightmap import stopping_diagnostics

    if select not in ("robust", "paper"):
        raise ValueError(f"select must be 'robust' or 'paper', got {select!r}")

    def evaluate(epoch: int) -> Dict[str, float]:
        parts: Dict[str, list] = {}
        with torch.no_grad():
            for batch in loader:
                maps = generator(batch["image"].to(device))[:, 0]
                for key, values in stopping_diagnostics(maps, floor, percentile, margin).items():
                    parts.setdefault(key, []).append(values)
        if not parts:
            raise ValueError("the held-out loader gave no image")
        means = {key: float(np.concatenate(chunks).mean()) for key, chunks in parts.items()}
        return {"score": means[f"S_{select}"], **means}
    return evaluate


def _triplet_loader(parts: TrainingData, batch_size: int, ctx: DistributedContext, seed: int,
                    num_workers: int):
    triplets = TripletDataset(parts.train, parts.train_labels, seed=seed)
    return make_loader(triplets, batch_size, ctx, seed, num_workers=num_workers)


def run_embedding(recipe: "EmbeddingRecipe", data: PathArg, out: Path, options: RunOptions) -> Tuple[Path, Dict[str, Any]]:
    """Train an :class:`attribmap.train.EmbeddingRecipe`: triplets of the training split, last epoch kept.

    Triplets come from :class:`attribmap.train.data.TripletDataset` over the images left
    after holding out ``holdout_fraction`` (the same split as the weight map's with the
    same ``seed``).

    ``recipe`` is trained on ``data`` (dataset root) into ``out`` (best-checkpoint path) with
    the run ``options`` (:class:`RunOptions`); returns what :func:`attribmap.train.train` does.
    """
    with distributed_session(options.device) as ctx:
        seed_everything(recipe.seed)
        parts = open_data(recipe, data, options)
        embed, init = build_initialised(recipe, 0, options, ctx, embedding_dim=recipe.embedding_dim)
        loader = _triplet_loader(parts, recipe.batch_size, ctx, recipe.seed, options.num_workers)
        result = fit_recipe(recipe, embed, _triplet_step, loader, out, data, options, ctx,
                            train_module=TripletObjective(embed, recipe.margin), init=init)
    return out, summarize(result)


def _load_frozen(path: PathArg, tasks: Tuple[str, ...], role: str, device: torch.device) -> nn.Module:
    state = load_checkpoint(path)
    if state["task"] not in tasks:
        raise ValueError(f"{role} checkpoint {os.fspath(path)!r} holds a {state['task']!r} model; "
                         f"expected one of {list(tasks)}")
    return freeze(load_model(path, device=device))


def _embedding_recipe(recipe: "WeightMapRecipe") -> "EmbeddingRecipe":
    """The embedding that method II trains first: the weight map's split, size, batch and seed."""
    from attribmap.train.recipe import EmbeddingRecipe

    return EmbeddingRecipe(split=recipe.split, image_size=recipe.image_size, batch_size=recipe.batch_size,
                           epochs=recipe.embedding_epochs or recipe.epochs,
                           holdout_fraction=recipe.holdout_fraction, seed=recipe.seed,
                           grad_clip=recipe.grad_clip)


def run_weightmap(recipe: "WeightMapRecipe", data: PathArg, out: Path, options: RunOptions) -> Tuple[Path, Dict[str, Any]]:
    """Train a :class:`attribmap.train.WeightMapRecipe` (see :func:`attribmap.train.train`).

    Method I freezes ``recipe.classifier`` (a ``classifier`` or ``i2c`` checkpoint: eval mode,
    ``requires_grad=False``); method II freezes an ``embedding`` checkpoint, trained first
    into :func:`embedding_checkpoint_path` when ``recipe.classifier`` is None. Every
    evaluation computes both stopping scores on the held-out training images; the one
    ``recipe.stopping`` names picks the checkpoint (the first of equal scores: no
    tie rule favours later epochs).

    ``recipe`` is trained on ``data`` (dataset root) into ``out`` (best-checkpoint path) with
    the run ``options`` (:class:`RunOptions`); returns what :func:`attribmap.train.train` does.
    """
    from attribmap.data import collate_wsol

    if recipe.method == 1 and recipe.classifier is None:
        raise ValueError("method 1 needs a trained classifier checkpoint (classifier=CKPT, --classifier CKPT)")
    if recipe.classifier is not None and not os.path.isfile(recipe.classifier):
        raise FileNotFoundError(f"classifier checkpoint not found: {recipe.classifier!r}")
    with distributed_session(options.device) as ctx:
        summary_extra: Dict[str, Any] = {}
        if recipe.method == 1:
            frozen = _load_frozen(recipe.classifier, posthoc_tasks(), "classifier", ctx.device)
            frozen_path = os.path.abspath(recipe.classifier)
        elif recipe.classifier is not None:
            frozen = _load_frozen(recipe.classifier, ("embedding",), "embedding", ctx.device)
            frozen_path = os.path.abspath(recipe.classifier)
        else:
            embed_path, embed_summary = run_embedding(_embedding_recipe(recipe), data,
                                                      embedding_checkpoint_path(out), options)
            frozen = _load_frozen(embed_path, ("embedding",), "embedding", ctx.device)
            frozen_path = os.path.abspath(embed_path)
            summary_extra["embedding"] = embed_summary

        seed_everything(recipe.seed)
        parts = open_data(recipe, data, options)
        generator, init = build_initialised(recipe, 0, options, ctx)
        if recipe.method == 1:
            objective: nn.Module = Method1Objective(generator, frozen, recipe.lam, recipe.hard_target)
            loader = make_loader(parts.train, recipe.batch_size, ctx, recipe.seed,
                                 num_workers=options.num_workers, collate_fn=collate_wsol)
            step = _image_step
        else:
            objective = Method2Objective(generator, frozen, recipe.lam)
            loader = _triplet_loader(parts, recipe.batch_size, ctx, recipe.seed, options.num_workers)
            step = _triplet_step
        evaluate_fn = None
        if parts.holdout is not None:
            holdout = make_loader(parts.holdout, recipe.batch_size, ctx, recipe.seed, shuffle=False, shard=False,
                                  num_workers=options.num_workers, collate_fn=collate_wsol)
            evaluate_fn = stopping_score_fn(generator, holdout, ctx.device, recipe.stopping,
                                            recipe.stopping_floor, recipe.stopping_percentile,
                                            recipe.stopping_margin)
        result = fit_recipe(recipe, generator, step, loader, out, data, options, ctx, train_module=objective,
                            evaluate_fn=evaluate_fn, init=init,
                            extra={"frozen_model": frozen_path,
                                   "selection": f"mean stopping score S ({recipe.stopping}) on held-out "
                                                f"images of the {recipe.split} split"})
    return out, {**summarize(result), **summary_extra}


def train_embedding(data: PathArg, out: PathArg, **options: Any) -> Tuple[Path, Dict[str, Any]]:
    """Train the Siamese embedding of method II: :func:`attribmap.train.train` of an ``EmbeddingRecipe(**fields)``.

    Parameters
    ----------
    data, out : path
        Dataset root and checkpoint path.
    **options
        Fields of :class:`attribmap.train.EmbeddingRecipe` and the run options of
        :func:`attribmap.train.train`.

    Returns
    -------
    (pathlib.Path, dict)
        As :func:`attribmap.train.train`.
    """
    from attribmap.train.recipe import EmbeddingRecipe
    from attribmap.train.runner import train_with

    return train_with(EmbeddingRecipe, data, out, options)


def train_weightmap(data: PathArg, out: PathArg, **options: Any) -> Tuple[Path, Dict[str, Any]]:
    """Train a weight-map generator: :func:`attribmap.train.train` of a ``WeightMapRecipe(**fields)``.

    Parameters
    ----------
    data, out : path
        Dataset root and best-checkpoint path.
    **options
        Fields of :class:`attribmap.train.WeightMapRecipe` (``classifier``, ``method``,
        ``lam``, ``stopping``, ``evaluations_per_epoch``, ``save_evaluations``, ``init``, ...)
        and the run options of :func:`attribmap.train.train`; unknown names raise
        :class:`attribmap.train.RecipeError`.

    Returns
    -------
    (pathlib.Path, dict)
        Best checkpoint (task ``"weightmap"``; :func:`attribmap.train.load_model` gives the
        generator) and the history dict; method II adds ``"embedding"`` (its history).

    Example
    -------
    ::

        wm, history = train_weightmap("suite", "runs/wm.pt", classifier="runs/cls.pt",
                                      init="runs/pretrain.pt", evaluations_per_epoch=4,
                                      save_evaluations=True)
    """
    from attribmap.train.recipe import WeightMapRecipe
    from attribmap.train.runner import train_with

    return train_with(WeightMapRecipe, data, out, options)
