"""Warm starts: the pretrain split, ``init`` from a checkpoint (matching keys), the I2C fine-tune path."""
from __future__ import annotations


import pytest
import torch

from attribmap.models import build_model
from attribmap.train import (
    CheckpointError,
    I2CRecipe,
    load_checkpoint,
    load_matching_weights,
    train,
    train_classifier,
    train_i2c,
    train_weightmap,
)

torch.set_num_threads(1)
TINY = dict(batch_size=4, image_size=32, progress=False)


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    from attribmap.data.synthetic import generate_suite

    root = tmp_path_factory.mktemp("suite")
    # suite v2 writes a pretrain split of other images of the same generator
    generate_suite(root, classes=2, per_class=4, size=40, seed=0, val_per_class=0, test_per_class=0,
                   pretrain_per_class=6)
    return root


@pytest.fixture(scope="module")
def pretrained(suite, tmp_path_factory):
    out = tmp_path_factory.mktemp("pre") / "pretrain.pt"
    path, history = train_classifier(suite, out, split="pretrain", epochs=1, **TINY)
    return path, history


def test_the_pretrain_split_is_what_split_pretrain_trains_on(pretrained):
    path, history = pretrained
    assert history["epochs"][0]["steps"] == 3          # 12 pretrain images / 4 (the train split has 8)
    assert load_checkpoint(path)["recipe"]["split"] == "pretrain"


def test_init_loads_the_body_and_keeps_the_new_head_fresh(pretrained, suite, tmp_path):
    lines = []
    path, _ = train_i2c(suite, tmp_path / "i2c_ce.pt", init=str(pretrained[0]), epochs=1, lr=0.01,
                        lambda_sc=0.0, lambda_gc=0.0, log=lines.append, **TINY)
    net = build_model("resnet18_narrow_i2c", 2)
    source = load_checkpoint(pretrained[0])["model"]
    body = [k for k in net.state_dict() if k in source]
    new = [k for k in net.state_dict() if k not in source]
    assert body and all(k.startswith(("head.", "classifier.")) for k in new)
    report = load_checkpoint(path)["extra"]["init"]
    assert (report["loaded"], report["new"], report["unused"]) == (len(body), len(new), 2)  # fc.weight, fc.bias
    assert report["source_task"] == "classifier" and report["source_arch"] == "resnet18_narrow"
    line = [x for x in lines if x.startswith("init from")]
    assert line == [f"init from {pretrained[0]} (classifier resnet18_narrow): {len(body)} keys loaded, "
                    f"{len(new)} new, 2 unused"]


def test_init_into_another_head_size_and_into_the_generator_encoder(tmp_path):
    from attribmap.train import save_checkpoint

    torch.manual_seed(0)
    source = build_model("resnet18_narrow", 3)
    path = save_checkpoint({"format": "attribmap-ckpt", "version": 1, "task": "classifier",
                            "arch": {"arch": "resnet18_narrow", "num_classes": 3, "kwargs": {"width": 32}},
                            "model": source.state_dict(), "epoch": 1}, tmp_path / "src.pt")
    torch.manual_seed(1)
    target = build_model("resnet18_narrow", 5)              # fc has another shape: stays fresh
    fresh_fc = target.fc.weight.detach().clone()
    report = load_matching_weights(target, path)
    assert report.new == ["fc.weight", "fc.bias"] and report.unused == []
    for key, value in target.state_dict().items():
        if key.startswith("fc."):
            continue
        assert torch.equal(value, source.state_dict()[key]), key
    assert torch.equal(target.fc.weight, fresh_fc)

    generator = build_model("weightmap_resnet18_narrow", 0)
    report = load_matching_weights(generator, path)
    assert all(k.startswith("decoder.") for k in report.new) and report.unused == ["fc.weight", "fc.bias"]
    assert torch.equal(generator.layer4[1].conv2.weight, source.layer4[1].conv2.weight)

    with pytest.raises(CheckpointError, match="shares no parameter name and shape"):
        load_matching_weights(build_model("resnet18_small", 4), path)   # width 64: every shape differs


def test_the_i2c_fine_tune_starts_from_the_ce_checkpoint(pretrained, suite, tmp_path):
    """CE stage from the pretraining classifier, then fine-tune and its CE-only ablation from it."""
    ce, _ = train_i2c(suite, tmp_path / "ce.pt", init=str(pretrained[0]), epochs=1, lr=0.01,
                      lambda_sc=0.0, lambda_gc=0.0, **TINY)
    recipe = I2CRecipe(init=str(ce), epochs=1, batch_size=4, image_size=32)
    fine, _ = train(recipe, suite, tmp_path / "i2c.pt")
    ablation, _ = train(recipe.replace(lambda_sc=0.0, lambda_gc=0.0), suite, tmp_path / "abl.pt")
    n_keys = len(build_model("resnet18_narrow_i2c", 2).state_dict())
    for path in (fine, ablation):
        state = load_checkpoint(path)
        assert state["extra"]["init"]["loaded"] == n_keys and state["extra"]["init"]["new"] == 0
        assert state["extra"]["init"]["source_task"] == "i2c"
        assert state["recipe"]["lr"] == 0.001 and state["recipe"]["dropout"] == 0.5
        assert state["recipe"]["seed_sampling"] == "first"
    assert load_checkpoint(fine)["recipe"]["lambda_sc"] == 0.008
    assert load_checkpoint(ablation)["recipe"]["lambda_sc"] == 0.0
    # same start, same data order and seeds: only the losses differ
    a, b = load_checkpoint(fine)["model"], load_checkpoint(ablation)["model"]
    assert not torch.equal(a["layer4.1.conv2.weight"], b["layer4.1.conv2.weight"])


def test_the_weightmap_encoder_starts_from_the_pretraining_classifier(pretrained, suite, tmp_path):
    classifier, _ = train_classifier(suite, tmp_path / "cls.pt", init=str(pretrained[0]), epochs=1, **TINY)
    path, _ = train_weightmap(suite, tmp_path / "wm.pt", classifier=str(classifier), init=str(pretrained[0]),
                              epochs=1, holdout_fraction=0.25, **TINY)
    report = load_checkpoint(path)["extra"]["init"]
    generator = build_model("weightmap_resnet18_narrow", 0).state_dict()
    assert report["loaded"] == sum(1 for k in generator if not k.startswith("decoder."))
    assert report["new"] == sum(1 for k in generator if k.startswith("decoder."))


def test_a_missing_init_file_is_a_clear_error(suite, tmp_path):
    with pytest.raises(FileNotFoundError, match="init checkpoint not found"):
        train_classifier(suite, tmp_path / "x.pt", init=str(tmp_path / "none.pt"), epochs=1, **TINY)
