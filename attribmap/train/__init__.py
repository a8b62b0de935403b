"""Training: recipes as data, one entry point, one loop shared by every task.

* :class:`ClassifierRecipe`, :class:`I2CRecipe`, :class:`WeightMapRecipe`,
  :class:`EmbeddingRecipe` - what to train and how (frozen, validated dataclasses;
  :func:`load_recipe` reads TOML, :func:`recipe_from_dict` a checkpoint's ``"recipe"``);
* :class:`TrainingTask`, :data:`TASKS` - each task (recipe class, runner, help, whether
  post-hoc methods explain its checkpoints) registered once (:func:`register_task`);
* :func:`train` - run a recipe on a WSOL dataset folder; :func:`train_classifier`,
  :func:`train_i2c`, :func:`train_weightmap`, :func:`train_embedding` take the recipe's
  fields as keyword arguments;
* :func:`fit` - the loop (optimizer, schedule, evaluations, progress bar, atomic
  checkpoints, bit-for-bit resume, DistributedDataParallel under torchrun);
* :func:`load_checkpoint`, :func:`load_model`, :func:`read_recipe` - read what they wrote.
"""
from __future__ import annotations

from attribmap.models.checkpoint import read_recipe
from attribmap.train.checkpoint import (
    CheckpointError,
    last_checkpoint_path,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from attribmap.train.classifier import train_classifier
from attribmap.train.common import evaluation_dir
from attribmap.train.i2c import train_i2c
from attribmap.train.loop import FitOptions, FitResult, TrainingError, fit
from attribmap.train.optim import OptimConfig, head_parameter_groups
from attribmap.train.recipe import (
    RECIPES,
    TASKS,
    ClassifierRecipe,
    EmbeddingRecipe,
    I2CRecipe,
    Recipe,
    RecipeError,
    TrainingTask,
    WeightMapRecipe,
    load_recipe,
    recipe_from_dict,
    register_task,
)
from attribmap.train.runner import train
from attribmap.train.seeding import seed_everything
from attribmap.train.warmstart import InitReport, load_matching_weights
from attribmap.train.weightmap import embedding_checkpoint_path, train_embedding, train_weightmap

__all__ = [
    "train",
    "Recipe",
    "ClassifierRecipe",
    "I2CRecipe",
    "WeightMapRecipe",
    "EmbeddingRecipe",
    "RECIPES",
    "TASKS",
    "TrainingTask",
    "register_task",
    "RecipeError",
    "load_recipe",
    "recipe_from_dict",
    "read_recipe",
    "fit",
    "FitOptions", "FitResult",
    "TrainingError",
    "OptimConfig",
    "head_parameter_groups",
    "seed_everything",
    "save_checkpoint",
    "load_checkpoint",
    "load_model",
    "last_checkpoint_path",
    "CheckpointError",
    "load_matching_weights",
    "InitReport",
    "evaluation_dir",
    "train_classifier",
    "train_i2c",
    "train_weightmap",
    "train_embedding",
    "embedding_checkpoint_path",
]
