"""The one training entry: :func:`train` runs any recipe, dispatching on its task."""
from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Type, Union

import torch

from attribmap.train.common import RunOptions, check_out_path
from attribmap.train.recipe import TASKS, Recipe, RecipeError

__all__ = ["train", "train_with", "RUN_OPTIONS"]

PathArg = Union[str, "os.PathLike[str]"]


def train(recipe: Recipe, data: PathArg, out: PathArg, *, device: Union[str, torch.device] = "cpu",
          resume: bool = False, progress: Optional[bool] = None, log: Optional[Callable[[str], None]] = None,
          num_workers: int = 0, metadata_root: Optional[PathArg] = None) -> Tuple[Path, Dict[str, Any]]:
    """Train the model a recipe describes on ``recipe.split`` of ``data``; write ``out``.

    Parameters
    ----------
    recipe : Recipe
        A :class:`ClassifierRecipe`, :class:`I2CRecipe`, :class:`WeightMapRecipe` or
        :class:`EmbeddingRecipe` (its task picks the training objective). It is recorded,
        as a plain dict, in every checkpoint written (``state["recipe"]``;
        :func:`attribmap.models.checkpoint.read_recipe` reads it back).
    data : path
        Dataset root in any format :mod:`attribmap.data.formats` reads: the wsolevaluation
        layout (e.g. written by ``attribmap synth``) or CUB-200-2011 as distributed.
    out : path
        Best-checkpoint path; the resumable state goes to ``<stem>.last<suffix>`` and, with
        ``save_evaluations``, every evaluation's model to ``<stem>.evals/``.
    device : str or torch.device
        Training device (``cuda`` becomes ``cuda:LOCAL_RANK`` under torchrun).
    resume : bool
        Continue from ``<stem>.last<suffix>`` when it exists.
    progress : bool, optional
        tqdm bar (default: when stderr is a terminal).
    log : callable, optional
        Receives one line per epoch and per evaluation (and the init report).
    num_workers : int
        DataLoader workers (0 = load in the main process).
    metadata_root : path, optional
        Metadata folder when not ``data/metadata``.

    Returns
    -------
    (pathlib.Path, dict)
        The best checkpoint path and ``{"epochs": [...], "evaluations": [...],
        "best_epoch", "best_step", "best_score", "checkpoint", "last_checkpoint"}``
        (weight-map method II adds ``"embedding"``, the history of its embedding).

    Example
    -------
    ::

        from attribmap.train import ClassifierRecipe, I2CRecipe, train

        pre, _ = train(ClassifierRecipe(split="pretrain", epochs=4), "suite", "runs/pretrain.pt")
        ce, _ = train(I2CRecipe(init=str(pre), lr=0.01, lambda_sc=0, lambda_gc=0), "suite", "runs/i2c_ce.pt")
        i2c, _ = train(I2CRecipe(init=str(ce)), "suite", "runs/i2c.pt")
    """
    if not isinstance(recipe, Recipe) or not recipe.task:
        raise RecipeError(f"recipe must be a task recipe (ClassifierRecipe, I2CRecipe, ...), got {recipe!r}")
    out = check_out_path(out)
    if not os.path.isdir(os.fspath(data)):
        raise FileNotFoundError(f"data folder not found: {os.fspath(data)!r}")
    if recipe.init is not None and not os.path.isfile(recipe.init):
        raise FileNotFoundError(f"init checkpoint not found: {recipe.init!r}")
    options = RunOptions(device=device, resume=bool(resume), progress=progress, log=log,
                         num_workers=int(num_workers), metadata_root=metadata_root)
    return TASKS[recipe.task].run_function()(recipe, data, out, options)


#: Keyword arguments of :func:`train` that are not recipe fields.
RUN_OPTIONS = tuple(name for name, p in inspect.signature(train).parameters.items()
                    if p.kind is inspect.Parameter.KEYWORD_ONLY)


def train_with(cls: Type[Recipe], data: PathArg, out: PathArg,
               options: Mapping[str, Any]) -> Tuple[Path, Dict[str, Any]]:
    """Split ``options`` into run options and recipe fields, build ``cls`` and :func:`train` it on ``data`` into ``out``.

    The keyword-argument entry points (``train_classifier`` and friends) call this, so their
    accepted names are exactly the recipe's fields plus :data:`RUN_OPTIONS`.
    """
    run = {k: v for k, v in options.items() if k in RUN_OPTIONS}
    fields = {k: v for k, v in options.items() if k not in RUN_OPTIONS}
    unknown = sorted(set(fields) - set(cls.field_names()))
    if unknown:
        raise RecipeError(f"unknown option(s) {unknown} for {cls.task} training; recipe fields: "
                          f"{', '.join(cls.field_names())}; run options: {', '.join(RUN_OPTIONS)}")
    return train(cls.from_dict(fields), data, out, **run)
