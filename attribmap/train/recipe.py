"""Training recipes as data: one frozen dataclass per task, shared fields in the base class.

A recipe says *how* a model is trained (architecture, data split, initial weights,
optimiser, schedule, budget, losses and their weights); *what* it is trained on and where it
goes (``data``, ``out``) and the machinery (device, workers, progress) are arguments of
:func:`attribmap.train.train`. Every checkpoint records ``recipe.to_dict()`` under
``"recipe"``; :func:`recipe_from_dict` and :func:`load_recipe` (TOML) rebuild it.

>>> from attribmap.train.recipe import I2CRecipe, recipe_from_dict
>>> recipe = I2CRecipe(epochs=4, lambda_sc=0.0, lambda_gc=0.0)
>>> recipe_from_dict(recipe.to_dict()) == recipe
True
"""
from __future__ import annotations

import dataclasses
import os
import sys
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Tuple, Type, Union

from attribmap.errors import AttribmapError
from attribmap.train.fields import RecipeError, check_range, coerce_value, option, split_optional
from attribmap.train.tasks import RECIPES, TASKS, TrainingTask, posthoc_tasks, register_task

__all__ = [
    "RecipeError",
    "Recipe",
    "ClassifierRecipe",
    "I2CRecipe",
    "WeightMapRecipe",
    "EmbeddingRecipe",
    "RECIPES",
    "TASKS",
    "TrainingTask",
    "register_task",
    "posthoc_tasks",
    "recipe_class",
    "recipe_from_dict",
    "load_recipe",
    "recipe_to_toml",
    "recipe_fields",
    "split_optional",
]

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Recipe:
    """Fields every task shares; sub-classes add their losses and change defaults.

    Construct a task's recipe (:class:`ClassifierRecipe`, :class:`I2CRecipe`,
    :class:`WeightMapRecipe`, :class:`EmbeddingRecipe`) with keyword arguments; every value is
    checked on construction and a bad one raises :class:`RecipeError` naming the field and the
    value. Recipes are frozen: derive variants with :meth:`replace`.

    Attributes
    ----------
    arch : str
        Architecture name for :func:`attribmap.models.build_model`.
    split : str
        Dataset split trained on (``"train"``; ``"pretrain"`` for the pretraining stand-in).
    image_size : int
        Side of the square training crops (>= 32).
    init : str, optional
        Checkpoint whose weights initialise the model: every parameter and buffer with the
        same name and shape is copied, the rest (e.g. a new head) keeps its fresh
        initialisation; the log line reports the loaded / new key counts.
    weights : str, optional
        torchvision pretrained weights for the backbone (e.g. ``"DEFAULT"``).
    epochs, batch_size : int
        Budget and batch size (per process under DDP).
    optimizer, lr, momentum, weight_decay, schedule, lr_step_size, lr_gamma, min_lr
        Optimiser and per-epoch schedule (:class:`attribmap.train.OptimConfig`).
    head_lr_mult : float, optional
        Learning-rate factor of the new head; default 10 with ``weights``, else 1.
    grad_clip : float, optional
        Clip the global gradient norm.
    holdout_fraction : float
        Share of each class of the split held out for checkpoint selection.
    evaluations_per_epoch : int
        Held-out evaluations per epoch (evenly spaced in steps, the last at the epoch's end).
    save_evaluations : bool
        Also save the model at every evaluation (``<out stem>.evals/``).
    seed : int
        Seeds initialisation, holdout choice and every epoch's randomness.
    """

    task: ClassVar[str] = ""

    arch: str = option("resnet18_narrow", "architecture (attribmap.models.available_archs)")
    split: str = option("train", "dataset split to train on (e.g. train, pretrain)")
    image_size: int = option(128, "side of the square training crops in pixels", minimum=32)
    init: Optional[str] = option(None, "checkpoint whose matching weights initialise the model")
    weights: Optional[str] = option(None, "torchvision pretrained backbone weights, e.g. DEFAULT")
    epochs: int = option(8, "number of epochs", minimum=1)
    batch_size: int = option(16, "batch size per process", minimum=1)
    optimizer: str = option("sgd", "optimizer", choices=("sgd", "adam"))
    lr: float = option(0.01, "base learning rate", above=0)
    momentum: float = option(0.9, "SGD momentum", minimum=0, below=1)
    weight_decay: float = option(1e-4, "L2 weight decay", minimum=0)
    schedule: str = option("cosine", "per-epoch learning-rate schedule", choices=("none", "step", "cosine"))
    lr_step_size: int = option(30, "epochs between decays of the step schedule", minimum=1)
    lr_gamma: float = option(0.1, "decay factor of the step schedule", above=0, maximum=1)
    min_lr: float = option(0.0, "final learning rate of the cosine schedule", minimum=0)
    head_lr_mult: Optional[float] = option(None, "learning-rate factor of the new head "
                                                  "(default 10 with --weights, else 1)", above=0)
    grad_clip: Optional[float] = option(None, "clip the global gradient norm to this value", above=0)
    holdout_fraction: float = option(0.0, "share of each class held out for checkpoint selection",
                                      minimum=0, below=1)
    evaluations_per_epoch: int = option(1, "held-out evaluations per epoch", minimum=1)
    save_evaluations: bool = option(False, "save the model at every evaluation (<out stem>.evals/)")
    seed: int = option(0, "random seed", minimum=0)

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for spec in dataclasses.fields(self):
            value = coerce_value(spec.name, getattr(self, spec.name), hints[spec.name])
            check_range(spec.name, value, spec.metadata)
            object.__setattr__(self, spec.name, value)
        self._check_together()

    def _check_together(self) -> None:
        """Checks that involve several fields (sub-classes extend them)."""
        from attribmap.models.registry import check_arch

        try:
            check_arch(self.arch)
        except AttribmapError as exc:
            raise RecipeError(str(exc)) from exc
        self.optim_config()
        if self.holdout_fraction == 0 and (self.evaluations_per_epoch > 1 or self.save_evaluations):
            raise RecipeError("evaluations_per_epoch > 1 and save_evaluations need held-out images: "
                              "set holdout_fraction > 0")

    # -- conversions -------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        """Plain-type view (``task`` first; tuples as lists), as stored in checkpoints."""
        out: Dict[str, Any] = {"task": self.task}
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            out[spec.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "Recipe":
        """Build a recipe of this class from ``values``, a mapping of field values.

        ``task`` may be present (it must then name this class's task; on :class:`Recipe`
        itself it chooses the class). Unknown keys raise :class:`RecipeError` naming them and
        the valid ones; missing keys take the defaults.
        """
        if not isinstance(values, Mapping):
            raise RecipeError(f"a recipe must be a mapping of field values, got {type(values).__name__}")
        values = dict(values)
        task = values.pop("task", None)
        target = cls
        if cls is Recipe:
            if task is None:
                raise RecipeError(f"the recipe names no task: add task = one of {sorted(RECIPES)}")
            target = recipe_class(task)
        elif task is not None and task != cls.task:
            raise RecipeError(f"this is a {cls.task!r} recipe, the mapping says task = {task!r}")
        valid = target.field_names()
        unknown = sorted(set(values) - set(valid))
        if unknown:
            raise RecipeError(f"unknown {target.task} recipe field(s) {unknown}; valid fields: "
                              f"{', '.join(valid)}")
        return target(**values)

    @classmethod
    def field_names(cls) -> List[str]:
        """The recipe's field names, in declaration order."""
        return [spec.name for spec in dataclasses.fields(cls)]

    def replace(self, **changes: Any) -> "Recipe":
        """A copy with ``changes`` applied (validated; unknown names raise RecipeError)."""
        return type(self).from_dict({**self.to_dict(), **changes})

    def optim_config(self):
        """The :class:`attribmap.train.OptimConfig` of this recipe (validated)."""
        from attribmap.train.optim import OptimConfig

        try:
            return OptimConfig(name=self.optimizer, lr=self.lr, momentum=self.momentum,
                               weight_decay=self.weight_decay, schedule=self.schedule,
                               step_size=self.lr_step_size, gamma=self.lr_gamma,
                               min_lr=self.min_lr).validate()
        except ValueError as exc:
            raise RecipeError(str(exc)) from exc

    def to_toml(self) -> str:
        """The recipe as a TOML document (``None`` fields are left out: they are the defaults)."""
        return recipe_to_toml(self)


@dataclass(frozen=True)
class ClassifierRecipe(Recipe):
    """Cross-entropy classifier; blank images with a uniform target leave no default class.

    Attributes
    ----------
    blank_fraction : float
        Blank images appended to every batch, as a share of its real images (rounded, at
        least one when > 0; 0 turns them off). Their target is the uniform distribution, so
        a blank image carries no class evidence.
    blank_kinds : tuple of str
        ``"grey"``: the mean-grey image (all zeros in the normalized input space);
        ``"mean"``: each real image's mean colour, constant over the image. Blanks cycle
        through the kinds.
    """

    task: ClassVar[str] = "classifier"

    blank_fraction: float = option(0.125, "blank images per real image in a batch (0 = none)",
                                    minimum=0, maximum=1)
    blank_kinds: Tuple[str, ...] = option(("grey",), "kinds of blank images (grey, mean)",
                                           choices=("grey", "mean"))

    def _check_together(self) -> None:
        super()._check_together()
        from attribmap.models.zoo import NO_CLASSIFIER

        if self.arch in NO_CLASSIFIER:
            raise RecipeError(f"arch {self.arch!r} is not a classifier; use e.g. 'resnet18_narrow'")
        if not self.blank_kinds:
            raise RecipeError("blank_kinds must name at least one kind (grey, mean)")


@dataclass(frozen=True)
class I2CRecipe(ClassifierRecipe):
    """I2C (Zhang, Wei & Yang, ECCV 2020): CE + ``lambda_sc`` L_SC + ``lambda_gc`` L_GC.

    The defaults are the fine-tuning stage as the authors ran it: start from a converged CE
    model (``init``), lr 0.001, head dropout 0.5, the first K seeds in raster order. The CE
    stage is the same recipe with ``lambda_sc = lambda_gc = 0`` (and a larger lr).

    Attributes
    ----------
    lambda_sc, lambda_gc : float
        Weights of the stochastic and global consistency losses (0.008, 0.001).
    k : int
        Seeds per image (3).
    threshold : float
        Seed threshold on the min-max normalized class map (0.7).
    alpha : float
        Decay of the centre update rate ``eta = exp(-alpha t_y)`` (0.002).
    seed_sampling : {"first", "random"}
        The first K candidates in raster order (the authors' code) or K random ones.
    dropout : float
        Dropout after each ReLU of the I2C head (0.5).
    """

    task: ClassVar[str] = "i2c"

    arch: str = option("resnet18_narrow_i2c", "I2C architecture (*_i2c)")
    lr: float = option(0.001, "base learning rate (0.001: fine-tuning a CE model)", above=0)
    lambda_sc: float = option(0.008, "weight of the stochastic consistency loss L_SC", minimum=0)
    lambda_gc: float = option(0.001, "weight of the global consistency loss L_GC", minimum=0)
    k: int = option(3, "object seeds per image", minimum=1)
    threshold: float = option(0.7, "seed threshold on the min-max class map", minimum=0, below=1)
    alpha: float = option(0.002, "decay of the centre update rate", minimum=0)
    seed_sampling: str = option("first", "first K seeds in raster order, or random ones",
                                 choices=("first", "random"))
    dropout: float = option(0.5, "dropout after each ReLU of the I2C head", minimum=0, below=1)

    def _check_together(self) -> None:
        super()._check_together()
        if self.batch_size < 2 or self.batch_size % 2:
            raise RecipeError(f"batch_size must be even for I2C (pairs of one class), got {self.batch_size}")
        if not self.arch.endswith("_i2c"):
            raise RecipeError(f"arch {self.arch!r} is not an I2C architecture; use one whose name "
                              "ends in '_i2c', e.g. 'resnet18_narrow_i2c'")


@dataclass(frozen=True)
class _WeightMapFamily(Recipe):
    """Defaults shared by the weight map and its embedding: Adam 1e-3, constant rate, 10 % held out."""

    optimizer: str = option("adam", "optimizer", choices=("sgd", "adam"))
    lr: float = option(1e-3, "base learning rate", above=0)
    schedule: str = option("none", "per-epoch learning-rate schedule", choices=("none", "step", "cosine"))
    holdout_fraction: float = option(0.1, "share of each class held out (stopping score; the embedding "
                                           "uses the weight map's split)", minimum=0, below=1)

    def _check_together(self) -> None:
        super()._check_together()
        if self.batch_size < 2:
            raise RecipeError(f"batch_size must be an integer >= 2, got {self.batch_size}")


@dataclass(frozen=True)
class WeightMapRecipe(_WeightMapFamily):
    """Weight-map generator (Shaharabany & Wolf), method I or II, with label-free stopping.

    Attributes
    ----------
    arch : str
        ``weightmap_<encoder>``; ``init`` may be a classifier of the same ResNet, whose body
        then initialises the encoder.
    method : {1, 2}
        Method I (frozen classifier) or II (frozen Siamese embedding, triplet losses).
    classifier : str, optional
        Method I: the frozen classifier checkpoint (required). Method II: an embedding
        checkpoint; when absent one is trained first (``embedding_epochs``).
    lam : float
        Weight of the area term mean(M).
    hard_target : bool
        Method I with the argmax of f's prediction as target.
    embedding_epochs : int, optional
        Method II: epochs of the embedding trained first (default ``epochs``).
    stopping : {"robust", "paper"}
        Which stopping score selects the checkpoint: S as the paper defines it, or the
        robust variant (floor subtracted, border margin). Both are computed and logged.
    stopping_floor : {"min", "percentile"}
        Robust S: the floor subtracted from each map (its minimum, or a low percentile).
    stopping_percentile : float
        The percentile of ``stopping_floor = "percentile"``.
    stopping_margin : int
        Robust S: pixels within this distance of the border are ignored.
    """

    task: ClassVar[str] = "weightmap"

    arch: str = option("weightmap_resnet18_narrow", "generator architecture weightmap_<encoder>")
    epochs: int = option(6, "number of epochs", minimum=1)
    method: int = option(1, "method I (frozen classifier) or II (Siamese embedding)", choices=(1, 2))
    classifier: Optional[str] = option(None, "frozen classifier (method 1) or embedding (method 2) checkpoint")
    lam: float = option(1.0, "weight of the area term mean(M)", minimum=0)
    hard_target: bool = option(False, "method 1: argmax of the classifier's prediction as target")
    embedding_epochs: Optional[int] = option(None, "method 2: epochs of the embedding trained first",
                                              minimum=1)
    stopping: str = option("robust", "stopping score that selects the checkpoint",
                            choices=("robust", "paper"))
    stopping_floor: str = option("min", "robust S: floor subtracted from each map",
                                  choices=("min", "percentile"))
    stopping_percentile: float = option(5.0, "robust S: percentile used as the floor", minimum=0,
                                         maximum=100)
    stopping_margin: int = option(2, "robust S: border margin in pixels ignored", minimum=0)

    def _check_together(self) -> None:
        super()._check_together()
        if not self.arch.startswith("weightmap_"):
            raise RecipeError(f"arch {self.arch!r} is not a weight-map generator; use weightmap_<encoder>, "
                              "e.g. 'weightmap_resnet18_narrow'")
        if self.image_size % 32:
            raise RecipeError(f"image_size must be a multiple of 32 for the generator, got {self.image_size}")


@dataclass(frozen=True)
class EmbeddingRecipe(_WeightMapFamily):
    """Siamese embedding of weight-map method II, trained with the triplet loss.

    Attributes
    ----------
    embedding_dim : int
        Output size (200).
    margin : float
        Triplet margin (1).
    """

    task: ClassVar[str] = "embedding"

    arch: str = option("siamese_resnet18_narrow", "embedding architecture (siamese_resnet18[_narrow])")
    epochs: int = option(4, "number of epochs", minimum=1)
    embedding_dim: int = option(200, "embedding size", minimum=1)
    margin: float = option(1.0, "triplet margin", above=0)


# -- the built-in tasks (each registered once; see attribmap.train.tasks) ---------------------
register_task(TrainingTask(
    ClassifierRecipe, "attribmap.train.classifier:run_classifier",
    "cross-entropy classifier (blank images with a uniform target by default)", posthoc=True))
register_task(TrainingTask(
    I2CRecipe, "attribmap.train.i2c:run_i2c",
    "I2C classifier: CE + SC + GC losses on paired-class batches (fine-tuning defaults)", posthoc=True))
register_task(TrainingTask(
    WeightMapRecipe, "attribmap.train.weightmap:run_weightmap",
    "weight-map generator (Shaharabany & Wolf), method I or II"))
register_task(TrainingTask(
    EmbeddingRecipe, "attribmap.train.weightmap:run_embedding",
    "Siamese embedding of weight-map method II (triplet loss)"))


def recipe_class(task: str) -> Type[Recipe]:
    """The recipe class of ``task`` (``classifier``, ``i2c``, ``weightmap``, ``embedding``)."""
    if task not in RECIPES:
        raise RecipeError(f"unknown task {task!r}: expected one of {sorted(RECIPES)}")
    return RECIPES[task]


def recipe_from_dict(values: Mapping[str, Any]) -> Recipe:
    """A recipe from ``values``, a mapping that names its ``task`` (e.g. a checkpoint's ``"recipe"``)."""
    return Recipe.from_dict(values)


def recipe_fields(cls: Type[Recipe]) -> List[Tuple[str, Any, Any, Dict[str, Any]]]:
    """``(name, type hint, default, metadata)`` of every field of ``cls`` (CLI and docs)."""
    hints = typing.get_type_hints(cls)
    return [(spec.name, hints[spec.name], spec.default, dict(spec.metadata))
            for spec in dataclasses.fields(cls)]


def _read_toml(path: PathLike) -> Dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python < 3.11 only
        import tomli as tomllib
    with open(os.fspath(path), "rb") as handle:
        try:
            return tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise RecipeError(f"{os.fspath(path)!r} is not valid TOML: {exc}") from exc


def load_recipe(path: PathLike, task: Optional[str] = None) -> Recipe:
    """Read a recipe from a TOML file (flat ``field = value`` lines and ``task = "..."``).

    Parameters
    ----------
    path : path
        The TOML file.
    task : str, optional
        The task when the file names none (e.g. the CLI's ``attribmap train i2c --config``);
        when both are given they must agree.

    Returns
    -------
    Recipe
        Of the class of the task.

    Example
    -------
    A file ``i2c.toml``::

        task = "i2c"
        init = "runs/i2c_ce.pt"
        epochs = 4
        lambda_sc = 0.008
    """
    if not os.path.isfile(os.fspath(path)):
        raise FileNotFoundError(f"recipe file not found: {os.fspath(path)!r}")
    values = _read_toml(path)
    nested = sorted(k for k, v in values.items() if isinstance(v, dict))
    if nested:
        raise RecipeError(f"{os.fspath(path)!r}: a recipe is flat field = value lines, found tables {nested}")
    named = values.get("task")
    if task is not None and named is not None and named != task:
        raise RecipeError(f"{os.fspath(path)!r} is a {named!r} recipe, not {task!r}")
    if named is None and task is not None:
        values["task"] = task
    return recipe_from_dict(values)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")  # pragma: no cover


def recipe_to_toml(recipe: Recipe) -> str:
    """TOML text of ``recipe`` that :func:`load_recipe` reads back to an equal recipe."""
    lines = [f"{key} = {_toml_value(value)}" for key, value in recipe.to_dict().items()
             if value is not None]
    return "\n".join(lines) + "\n"
