"""Training tasks: each registered once, as a :class:`TrainingTask`; every task table derives from it.

The recipe table (:data:`RECIPES`), the runner of :func:`attribmap.train.train`, the
``attribmap train`` sub-commands and their help, the evidence pipeline's stages and the
checkpoint tasks that post-hoc methods explain (:func:`posthoc_tasks`) all read
:data:`TASKS`. The built-in tasks are registered at the end of :mod:`attribmap.train.recipe`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Dict, Tuple

from attribmap.train.fields import RecipeError

__all__ = ["TrainingTask", "TASKS", "RECIPES", "register_task", "posthoc_tasks"]


@dataclass(frozen=True)
class TrainingTask:
    """One training task, registered once with :func:`register_task`; every task table derives from it.

    Attributes
    ----------
    recipe : type
        Its :class:`attribmap.train.recipe.Recipe` sub-class; ``recipe.task`` names the task,
        on the command line (``attribmap train NAME``) and in its checkpoints
        (``state["task"]``).
    runner : str
        ``"module:function"`` of the function that trains a recipe,
        ``function(recipe, data, out, options: RunOptions) -> (path, history)``. It is named,
        not imported, here: the runner modules import :mod:`attribmap.train.runner`, which
        reads this table (:meth:`run_function` imports it on first use).
    help : str
        One line for ``attribmap train --help``.
    posthoc : bool
        Its checkpoint is a classifier that post-hoc methods explain (``attribmap bench``
        extractors, the frozen classifier of weight-map training).
    """

    recipe: type  # a Recipe sub-class (not imported here: recipe.py registers the built-ins)
    runner: str
    help: str
    posthoc: bool = False

    @property
    def name(self) -> str:
        """The task's name (``recipe.task``)."""
        return self.recipe.task

    @property
    def checkpoint_task(self) -> str:
        """The ``task`` its checkpoints record (the task's name)."""
        return self.recipe.task

    def run_function(self) -> Callable[..., Any]:
        """The runner function (imports its module)."""
        module, _, name = self.runner.partition(":")
        return getattr(importlib.import_module(module), name)


#: Task name -> :class:`TrainingTask`, in registration order.
TASKS: Dict[str, TrainingTask] = {}
#: Task name -> recipe class (derived from :data:`TASKS`).
RECIPES: Dict[str, type] = {}


def register_task(task: TrainingTask) -> TrainingTask:
    """Add ``task`` to :data:`TASKS` (and its recipe class to :data:`RECIPES`); returns it."""
    if not isinstance(task, TrainingTask) or not task.name:
        raise RecipeError(f"register_task takes a TrainingTask whose recipe names a task, got {task!r}")
    if task.name in TASKS:
        raise RecipeError(f"training task {task.name!r} is already registered")
    TASKS[task.name] = task
    RECIPES[task.name] = task.recipe
    return task


def posthoc_tasks() -> Tuple[str, ...]:
    """Checkpoint tasks whose model is a classifier that post-hoc methods explain."""
    return tuple(task.checkpoint_task for task in TASKS.values() if task.posthoc)
