"""Each training task is registered once; the recipe table, the runners, the CLI help and the post-hoc tasks derive from it."""
from __future__ import annotations

import pytest

from attribmap.train import RECIPES, TASKS, RecipeError, TrainingTask, register_task
from attribmap.train.tasks import posthoc_tasks


def test_tables_derive_from_the_task_registry():
    assert list(TASKS) == ["classifier", "i2c", "weightmap", "embedding"]
    assert RECIPES == {name: task.recipe for name, task in TASKS.items()}
    assert posthoc_tasks() == ("classifier", "i2c")
    for name, task in TASKS.items():
        assert task.name == task.checkpoint_task == task.recipe.task == name
        assert callable(task.run_function()) and task.help


def test_cli_help_is_the_task_help():
    import argparse

    from attribmap.commands import train as command

    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    text = parser._subparsers._group_actions[0].choices["train"].format_help()
    for task in TASKS.values():
        assert task.help.split("(")[0].strip()[:30] in " ".join(text.split())


def test_a_task_registers_once():
    with pytest.raises(RecipeError, match="already registered"):
        register_task(TrainingTask(TASKS["classifier"].recipe, "attribmap.train.classifier:run_classifier", "again"))
