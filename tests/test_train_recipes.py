"""The task recipes on a tiny synthetic suite: classifier, I2C, weight map (methods I and II)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from attribmap.train import (
    CheckpointError,
    ClassifierRecipe,
    read_recipe,
    embedding_checkpoint_path,
    last_checkpoint_path,
    load_checkpoint,
    load_model,
    train_classifier,
    train_i2c,
    train_weightmap,
)
from attribmap.train.data import TripletDataset, split_holdout

torch.set_num_threads(1)
TINY = dict(batch_size=4, image_size=32, progress=False)


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    from attribmap.data.synthetic import generate_suite

    root = tmp_path_factory.mktemp("suite")
    generate_suite(root, classes=2, per_class=6, size=40, seed=0, val_per_class=0, test_per_class=0)
    return root


@pytest.fixture(scope="module")
def classifier_ckpt(suite, tmp_path_factory):
    out = tmp_path_factory.mktemp("cls") / "cls.pt"
    path, history = train_classifier(suite, out, epochs=2, holdout_fraction=0.25, **TINY)
    return path, history


def test_classifier_end_to_end(classifier_ckpt):
    path, history = classifier_ckpt
    assert path.is_file() and last_checkpoint_path(path).is_file()
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]
    assert history["best_epoch"] in (1, 2) and 0.0 <= history["best_score"] <= 1.0
    raw = torch.load(path, weights_only=True)
    assert raw["task"] == "classifier" and raw["epoch"] == history["best_epoch"]
    assert raw["arch"] == {"arch": "resnet18_narrow", "num_classes": 2, "kwargs": {"width": 32}}
    assert raw["recipe"]["task"] == "classifier" and raw["recipe"]["image_size"] == 32
    assert read_recipe(path) == raw["recipe"] == ClassifierRecipe(
        epochs=2, holdout_fraction=0.25, batch_size=4, image_size=32).to_dict()
    model = load_model(path)
    assert not model.training and model.arch == "resnet18_narrow"
    for key, value in model.state_dict().items():
        assert torch.equal(value, raw["model"][key]), key
    assert model(torch.zeros(3, 3, 32, 32)).shape == (3, 2)
    # 12 images, 25% held out per class -> 8 training images -> 2 steps of 4
    assert all(e["steps"] == 2 for e in history["epochs"])


def test_classifier_resume_continues_bit_for_bit(suite, tmp_path):
    opts = dict(TINY, schedule="step", seed=3)
    straight, _ = train_classifier(suite, tmp_path / "a.pt", epochs=2, **opts)
    train_classifier(suite, tmp_path / "b.pt", epochs=1, **opts)
    resumed, history = train_classifier(suite, tmp_path / "b.pt", epochs=2, resume=True, **opts)
    assert len(history["epochs"]) == 2
    a, b = load_checkpoint(straight)["model"], load_checkpoint(resumed)["model"]
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_i2c_one_epoch_saves_the_centre_bank(suite, tmp_path):
    from attribmap.data import WSOLDataset
    from attribmap.learned import PairedClassBatchSampler

    path, history = train_i2c(suite, tmp_path / "i2c.pt", epochs=1, **TINY)
    state = load_checkpoint(path)
    bank = state["extra"]["i2c_bank"]
    assert state["task"] == "i2c" and state["arch"]["arch"] == "resnet18_narrow_i2c"
    # 6 images per class -> 3 pairs per class; batches of 2 pairs, drop_last -> 3 batches
    assert history["epochs"][0]["steps"] == 3
    # the bank moves once per batch and class present in it
    labels = list(WSOLDataset(suite, "train").labels)
    sampler = PairedClassBatchSampler(labels, 4, seed=0)
    sampler.set_epoch(0)
    expected = np.zeros(2, dtype=int)
    for batch in sampler:
        for cls in {labels[i] for i in batch}:
            expected[cls] += 1
    assert bank["counts"].tolist() == expected.tolist() and bank["centers"].shape == (2, 256)
    assert torch.all(bank["centers"].abs().sum(1) > 0), "both classes were seen"
    assert state["recipe"]["lambda_sc"] == 0.008 and state["recipe"]["lambda_gc"] == 0.001
    assert state["recipe"]["dropout"] == 0.5 and state["arch"]["kwargs"]["dropout"] == 0.5
    model = load_model(path)
    logits, feat, maps = model.forward_features(torch.zeros(2, 3, 32, 32))
    assert logits.shape == (2, 2) and maps.shape[:2] == (2, 2) and feat.shape[1] == 256


def test_recipe_arguments_are_checked(suite, tmp_path, classifier_ckpt):
    with pytest.raises(ValueError, match="batch_size must be even"):
        train_i2c(suite, tmp_path / "x.pt", epochs=1, batch_size=3)
    with pytest.raises(ValueError, match="not an I2C architecture"):
        train_i2c(suite, tmp_path / "x.pt", epochs=1, arch="resnet18_small", **TINY)
    with pytest.raises(FileNotFoundError, match="data folder not found"):
        train_classifier(tmp_path / "nowhere", tmp_path / "x.pt", epochs=1)
    with pytest.raises(ValueError, match="method 1 needs a trained classifier"):
        train_weightmap(suite, tmp_path / "x.pt", method=1)
    with pytest.raises(ValueError, match=r"method must be one of \[1, 2\], got 3"):
        train_weightmap(suite, tmp_path / "x.pt", method=3)
    with pytest.raises(ValueError, match="multiple of 32.*, got 40"):
        train_weightmap(suite, tmp_path / "x.pt", classifier=classifier_ckpt[0], image_size=40)
    with pytest.raises(FileNotFoundError, match="classifier checkpoint not found"):
        train_weightmap(suite, tmp_path / "x.pt", classifier=tmp_path / "none.pt")
    with pytest.raises(ValueError, match="expected one of \\['embedding'\\]"):
        train_weightmap(suite, tmp_path / "x.pt", method=2, classifier=classifier_ckpt[0], **TINY)
    with pytest.raises(ValueError, match="must be a number > 0, got -1.0"):
        train_classifier(suite, tmp_path / "x.pt", lr=-1.0)
    with pytest.raises(IsADirectoryError):
        train_classifier(suite, tmp_path, epochs=1)
    with pytest.raises(ValueError, match="step_size must be an integer >= 1, got 0"):
        train_classifier(suite, tmp_path / "x.pt", schedule="step", lr_step_size=0)
    with pytest.raises(ValueError, match="lr_step_size must be an integer"):
        train_i2c(suite, tmp_path / "x.pt", schedule="step", lr_step_size=1.5)
    with pytest.raises(CheckpointError, match="not an attribmap checkpoint"):
        torch.save({"weights": torch.ones(1)}, tmp_path / "foreign.pt")
        load_model(tmp_path / "foreign.pt")


def test_weightmap_method1_keeps_the_best_stopping_score(suite, tmp_path, classifier_ckpt):
    path, history = train_weightmap(suite, tmp_path / "wm.pt", classifier=classifier_ckpt[0], method=1,
                                    epochs=2, holdout_fraction=0.25, **TINY)
    scores = [e["score"] for e in history["epochs"]]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert history["best_score"] == max(scores)
    # no tie rule: the first evaluation reaching the best score is kept
    assert history["best_epoch"] == min(i + 1 for i, s in enumerate(scores) if s == max(scores))
    for entry in history["evaluations"]:   # both variants at every evaluation, robust selects
        assert entry["score"] == entry["S_robust"] and 0.0 <= entry["S_paper"] <= 1.0
        assert {"floor", "above", "above_robust"} <= set(entry)
    state = load_checkpoint(path)
    assert state["task"] == "weightmap" and state["recipe"]["method"] == 1
    assert state["epoch"] == history["best_epoch"]
    generator = load_model(path)
    maps = generator(torch.zeros(2, 3, 32, 32))
    assert maps.shape == (2, 1, 32, 32) and bool(((maps > 0) & (maps < 1)).all())


def test_weightmap_method1_freezes_the_classifier(suite, tmp_path, classifier_ckpt):
    before = load_checkpoint(classifier_ckpt[0])["model"]
    path, _ = train_weightmap(suite, tmp_path / "wm.pt", classifier=classifier_ckpt[0], method=1,
                              epochs=1, holdout_fraction=0.0, **TINY)
    after = load_checkpoint(classifier_ckpt[0])["model"]
    for key in before:
        assert torch.equal(before[key], after[key])
    generator = load_model(path)
    assert type(generator).__name__ == "WeightMapGenerator"


def test_weightmap_method2_trains_the_embedding_first(suite, tmp_path):
    out = tmp_path / "wm2.pt"
    path, history = train_weightmap(suite, out, method=2, epochs=1, embedding_epochs=1,
                                    holdout_fraction=0.25, **TINY)
    embed_path = embedding_checkpoint_path(out)
    assert embed_path.name == "wm2.embedding.pt" and embed_path.is_file()
    assert load_checkpoint(embed_path)["task"] == "embedding"
    assert len(history["embedding"]["epochs"]) == 1
    assert {"inner", "outer", "reg"} <= set(history["epochs"][0])
    assert load_model(embed_path)(torch.zeros(2, 3, 32, 32)).shape == (2, 200)
    assert load_checkpoint(path)["recipe"]["method"] == 2


def test_holdout_split_is_stratified_deterministic_and_disjoint():
    labels = [0] * 10 + [1] * 5 + [2] * 1
    train, held = split_holdout(labels, 0.2, seed=1)
    assert sorted(train + held) == list(range(16)) and not set(train) & set(held)
    counts = np.bincount([labels[i] for i in held], minlength=3)
    assert counts.tolist() == [2, 1, 0]  # round(2.0), round(1.0) (>= 1), a lone image stays
    assert split_holdout(labels, 0.2, seed=1) == (train, held)
    assert split_holdout(labels, 0.2, seed=2) != (train, held)
    assert split_holdout(labels, 0.0, seed=1) == (list(range(16)), [])
    with pytest.raises(ValueError, match="holdout_fraction must be in \\[0, 1\\), got 1.0"):
        split_holdout(labels, 1.0, seed=0)


def test_triplets_pair_same_and_other_classes_per_epoch():
    images = [{"image": torch.full((3, 2, 2), float(i))} for i in range(9)]
    labels = [0, 0, 0, 1, 1, 1, 2, 2, 2]
    triplets = TripletDataset(images, labels, seed=0)
    first = [triplets.triplet_indices(i) for i in range(9)]
    for a, p, n in first:
        assert labels[p] == labels[a] and p != a and labels[n] != labels[a]
    triplets.set_epoch(1)
    assert [triplets.triplet_indices(i) for i in range(9)] != first
    triplets.set_epoch(0)
    assert [triplets.triplet_indices(i) for i in range(9)] == first
    item = triplets[4]
    a, p, n = first[4]
    assert float(item["anchor"][0, 0, 0]) == a and float(item["positive"][0, 0, 0]) == p
    assert float(item["negative"][0, 0, 0]) == n and int(item["label"]) == 1
    with pytest.raises(ValueError, match="at least 2 classes"):
        TripletDataset(images[:3], labels[:3])


def test_step_schedule_decays_every_lr_step_size_epochs(suite, tmp_path):
    _, history = train_classifier(suite, tmp_path / "step.pt", epochs=3, lr=0.01, schedule="step",
                                  lr_step_size=2, **TINY)
    lrs = [entry["lr"] for entry in history["epochs"]]
    assert lrs == pytest.approx([0.01, 0.01, 0.001])


def test_weightmap_evaluates_several_times_per_epoch_and_saves_each_generator(suite, tmp_path, classifier_ckpt):
    import json

    from attribmap.train import evaluation_dir

    lines = []
    out = tmp_path / "wm.pt"
    path, history = train_weightmap(suite, out, classifier=classifier_ckpt[0], epochs=1, holdout_fraction=0.25,
                                    evaluations_per_epoch=2, save_evaluations=True, stopping="paper",
                                    log=lines.append, **TINY)
    folder = evaluation_dir(out)
    assert folder == tmp_path / "wm.evals"
    index = json.loads((folder / "index.json").read_text())
    assert [(e["epoch"], e["step"]) for e in index] == [(1, 1), (1, 2)]   # 8 training images / 4
    for entry in index:
        assert entry["score"] == entry["S_paper"] and 0 <= entry["S_robust"] <= 1
        generator = load_model(entry["file"])
        assert generator(torch.zeros(1, 3, 32, 32)).shape == (1, 1, 32, 32)
    evals = [line for line in lines if line.startswith("weightmap eval")]
    assert len(evals) == 2
    for word in ("S_paper=", "S_robust=", "floor=", "above=", "above_robust="):
        assert word in evals[0], word
    assert history["evaluations"] == load_checkpoint(last_checkpoint_path(path))["evaluations"]
