"""Recipes as data: validation, dict / TOML round trips, the CLI and checkpoints record them."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from attribmap.cli import main
from attribmap.train import (
    RECIPES,
    ClassifierRecipe,
    EmbeddingRecipe,
    I2CRecipe,
    RecipeError,
    WeightMapRecipe,
    load_checkpoint,
    load_recipe,
    read_recipe,
    recipe_from_dict,
    train_classifier,
)

torch.set_num_threads(1)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "training.rst"


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    from attribmap.data.synthetic import generate_suite

    root = tmp_path_factory.mktemp("suite")
    generate_suite(root, classes=2, per_class=4, size=32, seed=1, val_per_class=0, test_per_class=0)
    return root


NON_DEFAULT = {
    "classifier": dict(arch="resnet18_small", split="pretrain", init="a.pt", grad_clip=2.5,
                       blank_kinds=("grey", "mean"), blank_fraction=0.25, head_lr_mult=3.0),
    "i2c": dict(lambda_sc=0.0, lambda_gc=0.0, k=5, seed_sampling="random", dropout=0.0, lr=0.01),
    "weightmap": dict(method=2, lam=0.5, hard_target=True, embedding_epochs=3, stopping="paper",
                      stopping_floor="percentile", stopping_margin=0, evaluations_per_epoch=4,
                      save_evaluations=True),
    "embedding": dict(embedding_dim=16, margin=0.5, weights="DEFAULT"),
}


@pytest.mark.parametrize("task", sorted(RECIPES))
def test_dict_and_toml_round_trips_give_equal_recipes(task, tmp_path):
    cls = RECIPES[task]
    recipe = cls(**NON_DEFAULT[task])
    as_dict = recipe.to_dict()
    assert as_dict["task"] == task and list(as_dict)[1:] == cls.field_names()
    assert recipe_from_dict(as_dict) == recipe and cls.from_dict(as_dict) == recipe
    path = tmp_path / "r.toml"
    path.write_text(recipe.to_toml())
    assert load_recipe(path) == recipe
    assert cls() == recipe_from_dict(cls().to_dict())
    for spec in dataclasses.fields(cls):  # every Optional field defaults to None: omitted in TOML
        if getattr(cls(), spec.name) is None:
            assert f"\n{spec.name} =" not in "\n" + cls().to_toml()


def test_bad_values_name_the_field_and_the_value():
    cases = [
        (ClassifierRecipe, dict(epochs=0), "epochs must be an integer >= 1, got 0"),
        (ClassifierRecipe, dict(lr="fast"), "lr must be a finite number, got 'fast'"),
        (ClassifierRecipe, dict(momentum=1.0), "momentum must be in [0, 1), got 1.0"),
        (ClassifierRecipe, dict(optimizer="rmsprop"), "optimizer must be one of ['sgd', 'adam'], got 'rmsprop'"),
        (ClassifierRecipe, dict(blank_kinds=["grey", "noise"]), "blank_kinds must be made of ['grey', 'mean']"),
        (ClassifierRecipe, dict(arch="weightmap_resnet18"), "'weightmap_resnet18' is not a classifier"),
        (ClassifierRecipe, dict(seed=True), "seed must be an integer, got True"),
        (I2CRecipe, dict(batch_size=6, arch="resnet18_narrow"), "is not an I2C architecture"),
        (I2CRecipe, dict(threshold=1.0), "threshold must be in [0, 1), got 1.0"),
        (WeightMapRecipe, dict(image_size=48), "multiple of 32 for the generator, got 48"),
        (WeightMapRecipe, dict(stopping="median"), "stopping must be one of ['robust', 'paper'], got 'median'"),
        (EmbeddingRecipe, dict(margin=0), "margin must be a number > 0, got 0.0"),
        (ClassifierRecipe, dict(evaluations_per_epoch=2), "need held-out images: set holdout_fraction > 0"),
    ]
    for cls, values, message in cases:
        with pytest.raises(RecipeError) as info:
            cls(**values)
        assert message in str(info.value), (values, str(info.value))


def test_unknown_keys_and_wrong_tasks_are_errors_that_list_the_valid_fields(tmp_path):
    with pytest.raises(RecipeError, match=r"unknown classifier recipe field\(s\) \['lambda_sc', 'nope'\]; "
                                          r"valid fields: arch, split"):
        ClassifierRecipe.from_dict({"nope": 1, "lambda_sc": 0.1})
    with pytest.raises(RecipeError, match="this is a 'i2c' recipe, the mapping says task = 'weightmap'"):
        I2CRecipe.from_dict({"task": "weightmap"})
    with pytest.raises(RecipeError, match="names no task"):
        recipe_from_dict({"epochs": 2})
    with pytest.raises(RecipeError, match="unknown task 'gan'"):
        recipe_from_dict({"task": "gan"})
    with pytest.raises(RecipeError, match="unknown option\\(s\\) \\['epoch'\\] for classifier training"):
        train_classifier(tmp_path, tmp_path / "x.pt", epoch=3)
    nested = tmp_path / "nested.toml"
    nested.write_text('task = "i2c"\n[losses]\nlambda_sc = 0.1\n')
    with pytest.raises(RecipeError, match=r"found tables \['losses'\]"):
        load_recipe(nested)
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = = 3\n")
    with pytest.raises(RecipeError, match="is not valid TOML"):
        load_recipe(bad, task="classifier")
    with pytest.raises(RecipeError, match="is a 'i2c' recipe, not 'weightmap'"):
        path = tmp_path / "i2c.toml"
        path.write_text(I2CRecipe().to_toml())
        load_recipe(path, task="weightmap")


def test_replace_validates_and_keeps_the_other_fields():
    base = I2CRecipe(epochs=3)
    ablation = base.replace(lambda_sc=0.0, lambda_gc=0.0)
    assert ablation.epochs == 3 and ablation.lambda_sc == 0.0 and base.lambda_sc == 0.008
    with pytest.raises(RecipeError, match="lambda_gc must be a number >= 0"):
        base.replace(lambda_gc=-1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.epochs = 4  # type: ignore[misc]


def test_a_toml_recipe_round_trips_through_the_cli_into_the_checkpoint(suite, tmp_path, capsys):
    config = tmp_path / "cls.toml"
    config.write_text('task = "classifier"\nepochs = 3\nbatch_size = 4\nimage_size = 32\nlr = 0.05\n'
                      'blank_kinds = ["grey", "mean"]\nschedule = "step"\nlr_step_size = 2\n')
    out = tmp_path / "runs" / "cls.pt"
    status = main(["train", "--config", str(config), "--data", str(suite), "--out", str(out),
                   "--epochs", "1", "--seed", "3", "--no-progress"])
    assert status == 0, capsys.readouterr().err
    expected = load_recipe(config).replace(epochs=1, seed=3)
    state = load_checkpoint(out)
    assert state["recipe"] == expected.to_dict() == read_recipe(out)
    assert recipe_from_dict(state["recipe"]) == expected
    assert state["optim_config"]["lr"] == 0.05 and state["seed"] == 3 and state["epoch"] == 1
    assert read_recipe(out.with_name("cls.last.pt")) == expected.to_dict()
    # the checkpoint's recipe, printed as TOML by the CLI, loads back to the same recipe
    capsys.readouterr()
    assert main(["train", "classifier", "--config", str(config), "--epochs", "1", "--seed", "3",
                 "--print-recipe"]) == 0
    printed = tmp_path / "printed.toml"
    printed.write_text(capsys.readouterr().out)
    assert load_recipe(printed) == expected


def test_flags_override_a_config_and_foreign_fields_are_refused(tmp_path, capsys):
    config = tmp_path / "wm.toml"
    config.write_text(WeightMapRecipe(lam=0.5).to_toml())
    assert main(["train", "--config", str(config), "--lam", "2", "--print-recipe"]) == 0
    printed = tmp_path / "p.toml"
    printed.write_text(capsys.readouterr().out)
    assert load_recipe(printed) == WeightMapRecipe(lam=2.0)
    status = main(["train", "--config", str(config), "--lambda-sc", "0.1", "--print-recipe"])
    assert status == 2
    assert "unknown weightmap recipe field(s) ['lambda_sc']" in capsys.readouterr().err


def test_read_recipe_is_none_for_a_checkpoint_without_one(tmp_path):
    from attribmap.train import save_checkpoint

    path = save_checkpoint({"format": "attribmap-ckpt", "version": 1, "task": "classifier",
                            "arch": {"arch": "resnet18_narrow", "num_classes": 2, "kwargs": {}},
                            "model": {}, "epoch": 1}, tmp_path / "old.pt")
    assert read_recipe(path) is None


def test_the_docs_list_every_recipe_field():
    text = DOCS.read_text()
    for cls in RECIPES.values():
        for name in cls.field_names():
            assert f"``{name}``" in text, f"docs/training.rst does not document {cls.__name__}.{name}"
