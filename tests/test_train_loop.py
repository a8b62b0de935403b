"""The shared training loop: checkpoints, best selection, evaluations, resume, optimizer options."""
from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from attribmap.train import (
    CheckpointError,
    OptimConfig,
    TrainingError,
    fit,
    head_parameter_groups,
    last_checkpoint_path,
    load_checkpoint,
    save_checkpoint,
)
from attribmap.train.checkpoint import capture_rng_state, restore_rng_state
from attribmap.train.optim import build_optimizer, build_scheduler

torch.set_num_threads(1)


class TinyNet(nn.Module):
    """4 -> 8 -> 3 classifier with dropout (so the loop's RNG handling matters)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.3))
        self.fc = nn.Linear(8, 3)
        self.num_classes = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))


class StepCounter(nn.Module):
    """A buffer-only module updated by the step (stands in for the I2C centre bank)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("count", torch.zeros((), dtype=torch.long))
        self.register_buffer("running", torch.zeros(3))


def make_data(n: int = 48, seed: int = 0) -> TensorDataset:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=gen)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    return TensorDataset(x, y)


def ce_step(module: nn.Module, batch):
    x, y = batch
    logits = module(x)
    loss = nn.functional.cross_entropy(logits, y)
    return loss, {"acc": (logits.argmax(1) == y).float().mean()}


def build(seed: int = 0) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet()


def test_fit_writes_best_and_last_checkpoints_that_load_weights_only(tmp_path):
    model = build()
    loader = DataLoader(make_data(), batch_size=8, shuffle=True)
    out = tmp_path / "run" / "tiny.pt"
    result = fit(model, ce_step, loader, epochs=3, checkpoint=out, task="toy",
                 arch={"arch": "tiny", "num_classes": 3, "kwargs": {}},
                 optim=OptimConfig(lr=0.2), progress=False)
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    assert all(h["steps"] == 6 for h in result.history)
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert result.best_epoch == 3 and result.best_score is None
    last = last_checkpoint_path(out)
    assert last == tmp_path / "run" / "tiny.last.pt"
    # plain torch.load with weights_only=True must accept both files
    raw = torch.load(out, weights_only=True)
    assert raw["format"] == "attribmap-ckpt" and raw["kind"] == "best" and raw["optimizer"] is None
    state = load_checkpoint(last)
    assert state["kind"] == "last" and state["epoch"] == 3 and state["task"] == "toy"
    assert state["optimizer"]["state"], "momentum buffers are saved"
    assert len(state["history"]) == 3
    for key, value in model.state_dict().items():
        assert torch.equal(state["model"][key], value)
        assert torch.equal(raw["model"][key], value)
    assert not [p for p in os.listdir(out.parent) if p.endswith(".tmp")]


def test_best_checkpoint_holds_the_highest_scoring_epoch(tmp_path):
    model = build()
    loader = DataLoader(make_data(), batch_size=8, shuffle=True)
    scores = {1: 0.1, 2: 0.7, 3: 0.3}
    snapshots = {}

    def evaluate(epoch: int) -> float:
        assert not model.training, "evaluate_fn runs in eval mode"
        snapshots[epoch] = {k: v.clone() for k, v in model.state_dict().items()}
        return scores[epoch]

    out = tmp_path / "best.pt"
    result = fit(model, ce_step, loader, epochs=3, checkpoint=out, evaluate_fn=evaluate, progress=False)
    assert result.best_epoch == 2 and result.best_score == pytest.approx(0.7)
    assert [h["best"] for h in result.history] == [True, True, False]
    best = load_checkpoint(out)
    assert best["epoch"] == 2 and best["best_score"] == pytest.approx(0.7)
    for key, value in snapshots[2].items():
        assert torch.equal(best["model"][key], value)
    assert not torch.equal(best["model"]["fc.weight"], snapshots[3]["fc.weight"])
    assert load_checkpoint(last_checkpoint_path(out))["epoch"] == 3


def test_ties_keep_the_earlier_epoch_unless_later_wins_ties(tmp_path):
    loader = DataLoader(make_data(16), batch_size=8)
    flat = fit(build(), ce_step, loader, epochs=3, evaluate_fn=lambda e: 1.0, progress=False,
               checkpoint=tmp_path / "a.pt")
    assert flat.best_epoch == 1 and load_checkpoint(tmp_path / "a.pt")["epoch"] == 1
    later = fit(build(), ce_step, loader, epochs=3, evaluate_fn=lambda e: 1.0, progress=False,
                later_wins_ties=True, checkpoint=tmp_path / "b.pt")
    assert later.best_epoch == 3 and load_checkpoint(tmp_path / "b.pt")["epoch"] == 3


class Interrupted(Exception):
    pass


def _counting_step(counter: StepCounter, stop_at_step=None):
    def step(module, batch):
        if stop_at_step is not None and int(counter.count) == stop_at_step:
            raise Interrupted  # the process dies in the middle of an epoch
        loss, metrics = ce_step(module, batch)
        with torch.no_grad():
            counter.count += 1
            counter.running.mul_(0.9).add_(torch.rand(3))  # consumes the global RNG too
        return loss, metrics
    return step


def _run(folder, resume: bool, first_seed: int, stop_at_step=None):
    model = build(first_seed)  # a resumed run must not depend on the fresh init
    counter = StepCounter()
    loader = DataLoader(make_data(), batch_size=8, shuffle=True)
    optim = OptimConfig(name="sgd", lr=0.1, momentum=0.9, weight_decay=1e-3, schedule="cosine")
    result = fit(model, _counting_step(counter, stop_at_step), loader, epochs=3, optim=optim,
                 checkpoint=folder / "ck.pt", resume=resume, seed=7,
                 extra_modules={"counter": counter}, evaluate_fn=lambda e: float(-e), progress=False)
    return model, counter, result


def test_resume_continues_bit_for_bit(tmp_path):
    straight_model, straight_counter, straight = _run(tmp_path / "a", resume=False, first_seed=0)
    with pytest.raises(Interrupted):
        _run(tmp_path / "b", resume=False, first_seed=0, stop_at_step=8)  # dies in epoch 2
    assert load_checkpoint(tmp_path / "b" / "ck.last.pt")["epoch"] == 1
    # noise between the two halves (as a restarted process would have)
    random.random(), np.random.rand(), torch.rand(5)
    resumed_model, resumed_counter, resumed = _run(tmp_path / "b", resume=True, first_seed=123)
    for (name, a), (_, b) in zip(straight_model.state_dict().items(), resumed_model.state_dict().items()):
        assert torch.equal(a, b), name
    assert torch.equal(straight_counter.running, resumed_counter.running)
    assert int(resumed_counter.count) == 18 == int(straight_counter.count)
    assert [h["loss"] for h in straight.history] == [h["loss"] for h in resumed.history]
    assert resumed.best_epoch == 1 and resumed.best_score == -1.0
    assert [h["lr"] for h in resumed.history] == [h["lr"] for h in straight.history]
    assert resumed.history[1]["lr"] < resumed.history[0]["lr"]  # cosine schedule restored
    fresh_model, _, _ = _run(tmp_path / "c", resume=False, first_seed=123)
    assert not torch.equal(fresh_model.fc.weight, resumed_model.fc.weight)


def test_resume_without_checkpoint_starts_fresh_and_finished_run_is_a_no_op(tmp_path):
    model = build()
    loader = DataLoader(make_data(), batch_size=8)
    first = fit(model, ce_step, loader, epochs=1, checkpoint=tmp_path / "x.pt", resume=True, progress=False)
    assert len(first.history) == 1
    before = {k: v.clone() for k, v in model.state_dict().items()}
    again = fit(model, ce_step, loader, epochs=1, checkpoint=tmp_path / "x.pt", resume=True, progress=False)
    assert len(again.history) == 1
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])


def test_resume_refuses_a_checkpoint_of_another_task(tmp_path):
    loader = DataLoader(make_data(), batch_size=8)
    fit(build(), ce_step, loader, epochs=1, checkpoint=tmp_path / "t.pt", task="a", progress=False)
    with pytest.raises(CheckpointError, match="task='a'"):
        fit(build(), ce_step, loader, epochs=2, checkpoint=tmp_path / "t.pt", task="b", resume=True, progress=False)
    fit(build(), ce_step, loader, epochs=2, checkpoint=tmp_path / "t2.pt", task="a", progress=False)
    with pytest.raises(CheckpointError, match="more than epochs=1"):
        fit(build(), ce_step, loader, epochs=1, checkpoint=tmp_path / "t2.pt", task="a", resume=True, progress=False)


def test_bad_arguments_and_bad_losses_raise_clear_errors(tmp_path):
    loader = DataLoader(make_data(), batch_size=8)
    with pytest.raises(ValueError, match="epochs must be an integer >= 1, got 0"):
        fit(build(), ce_step, loader, epochs=0)
    with pytest.raises(ValueError, match="resume=True needs a checkpoint"):
        fit(build(), ce_step, loader, epochs=1, resume=True)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        fit(build(), ce_step, loader, epochs=1, optim=OptimConfig(name="rmsprop"))
    with pytest.raises(TrainingError, match="non-finite loss"):
        fit(build(), lambda m, b: (ce_step(m, b)[0] * float("nan"), {}), loader, epochs=1, progress=False)
    empty = DataLoader(make_data(4), batch_size=8, drop_last=True)
    with pytest.raises(TrainingError, match="no batch"):
        fit(build(), ce_step, empty, epochs=1, progress=False)


def test_atomic_save_leaves_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "a.pt"
    save_checkpoint({"format": "attribmap-ckpt", "value": torch.ones(2)}, path)

    def broken_save(obj, handle, *args, **kwargs):
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"format": "attribmap-ckpt", "value": torch.zeros(2)}, path)
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["value"], torch.ones(2))
    assert os.listdir(tmp_path) == ["a.pt"]


class _Unsafe:
    pass


def test_load_checkpoint_validates_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="not an attribmap checkpoint"):
        load_checkpoint(tmp_path / "list.pt")
    torch.save({"format": "attribmap-ckpt", "obj": _Unsafe()}, tmp_path / "pickle.pt")
    with pytest.raises(CheckpointError, match="weights_only=True failed"):
        load_checkpoint(tmp_path / "pickle.pt")
    torch.save({"format": "attribmap-ckpt", "version": 99}, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(tmp_path / "future.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "junk.pt")


def test_rng_state_round_trip_is_exact():
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.randn()  # leaves a cached gaussian in numpy's state
    state = capture_rng_state()
    expected = (random.random(), np.random.rand(), np.random.randn(), torch.rand(3))
    random.random(), np.random.rand(), torch.rand(9)
    restore_rng_state(state)
    got = (random.random(), np.random.rand(), np.random.randn(), torch.rand(3))
    assert got[:3] == expected[:3] and torch.equal(got[3], expected[3])


def test_head_groups_get_ten_times_the_rate_and_schedules_decay():
    model = build()
    groups = head_parameter_groups(model, head_lr_mult=10.0)
    assert [g["name"] for g in groups] == ["backbone", "head"]
    assert {id(p) for p in groups[1]["params"]} == {id(model.fc.weight), id(model.fc.bias)}
    optimizer = build_optimizer(groups, OptimConfig(lr=0.01, schedule="step", step_size=2, gamma=0.5))
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.01, 0.1])
    scheduler = build_scheduler(optimizer, OptimConfig(lr=0.01, schedule="step", step_size=2, gamma=0.5), 10)
    for _ in range(4):
        optimizer.step(), scheduler.step()
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.0025, 0.025])
    adam = build_optimizer(model.parameters(), OptimConfig(name="adam", lr=1e-3))
    assert isinstance(adam, torch.optim.Adam) and adam.param_groups[0]["lr"] == 1e-3
    model.fc.requires_grad_(False)
    assert [g["name"] for g in head_parameter_groups(model)] == ["backbone"]
    with pytest.raises(ValueError, match="no trainable parameters"):
        build_optimizer([p for p in model.fc.parameters()], OptimConfig())


def test_progress_bar_and_log_lines(capsys):
    lines = []
    loader = DataLoader(make_data(16), batch_size=8)
    fit(build(), ce_step, loader, epochs=2, progress=True, log=lines.append,
        evaluate_fn=lambda e: 0.5)
    err = capsys.readouterr().err
    assert "custom 1/2" in err and "2/2" in err  # tqdm writes its bar to stderr
    assert lines[0].startswith("custom epoch 1/2 ") and "score=0.5000 *" in lines[0]
    assert "loss=" in lines[1] and "acc=" in lines[1] and not lines[1].endswith("*")
    fit(build(), ce_step, loader, epochs=1, progress=False)
    assert capsys.readouterr().err == ""


# -- several held-out evaluations per epoch ------------------------------------------------

def _loader():
    return DataLoader(make_data(48), batch_size=8, shuffle=True)   # 6 steps per epoch


def _probe(model, seen):
    """evaluate_fn: a score and a diagnostic that depend on the weights; records the weights."""
    def evaluate(epoch):
        assert not model.training
        seen.append({k: v.clone() for k, v in model.state_dict().items()})
        w = float(model.fc.weight.sum())
        return {"score": -abs(w - 0.1 * len(seen)), "weight_sum": w}
    return evaluate


def test_evaluations_are_evenly_spaced_and_never_change_the_trained_weights(tmp_path):
    once, thrice = build(), build()
    fit(once, ce_step, _loader(), epochs=2, seed=3, progress=False, evaluate_fn=lambda e: 0.0)
    seen = []
    result = fit(thrice, ce_step, _loader(), epochs=2, seed=3, progress=False, evaluate_fn=_probe(thrice, seen),
                 evaluations_per_epoch=3, checkpoint=tmp_path / "b.pt")
    for key, value in once.state_dict().items():   # dropout + shuffling: RNG saved around each evaluation
        assert torch.equal(value, thrice.state_dict()[key]), key
    steps = [(e["epoch"], e["step"]) for e in result.evaluations]
    assert steps == [(1, 2), (1, 4), (1, 6), (2, 2), (2, 4), (2, 6)]
    assert [e["position"] for e in result.evaluations] == pytest.approx([1 / 3, 2 / 3, 1, 4 / 3, 5 / 3, 2])
    assert all("weight_sum" in e and e["file"] is None for e in result.evaluations)
    assert [h["score"] for h in result.history] == [result.evaluations[2]["score"], result.evaluations[5]["score"]]
    # the best checkpoint holds the weights of the best evaluation, even in mid-epoch
    best = max(range(6), key=lambda i: (result.evaluations[i]["score"], -i))
    state = load_checkpoint(tmp_path / "b.pt")
    assert (state["epoch"], state["step"]) == steps[best] == (result.best_epoch, result.best_step)
    for key, value in seen[best].items():
        assert torch.equal(state["model"][key], value), key
    assert len(load_checkpoint(last_checkpoint_path(tmp_path / "b.pt"))["evaluations"]) == 6


def test_equal_scores_keep_the_first_evaluation(tmp_path):
    result = fit(build(), ce_step, _loader(), epochs=2, progress=False, evaluate_fn=lambda e: 0.5,
                 evaluations_per_epoch=2, checkpoint=tmp_path / "c.pt")
    assert (result.best_epoch, result.best_step) == (1, 3)
    assert [e["best"] for e in result.evaluations] == [True, False, False, False]


def test_every_evaluation_can_be_saved_with_an_index(tmp_path):
    model, seen = build(), []
    folder = tmp_path / "run.evals"
    lines = []
    result = fit(model, ce_step, _loader(), epochs=1, progress=False, evaluate_fn=_probe(model, seen),
                 evaluations_per_epoch=2, evaluation_dir=folder, checkpoint=tmp_path / "run.pt", log=lines.append)
    index = json.loads((folder / "index.json").read_text())
    assert [entry["file"] for entry in index] == [str(folder / "epoch001_step00003.pt"),
                                                 str(folder / "epoch001_step00006.pt")]
    assert [entry["score"] for entry in index] == [e["score"] for e in result.evaluations]
    for entry, weights in zip(index, seen):
        saved = load_checkpoint(entry["file"])
        assert saved["kind"] == "evaluation" and saved["evaluation"]["step"] == entry["step"]
        for key, value in weights.items():
            assert torch.equal(saved["model"][key], value)
    evals = [x for x in lines if " eval " in x]
    assert len(evals) == 2 and "weight_sum=" in evals[0] and "(epoch 1, step 3/6)" in evals[0]


def test_resume_keeps_the_evaluation_history(tmp_path):
    common = dict(progress=False, evaluations_per_epoch=2, checkpoint=tmp_path / "r.pt", seed=1)
    straight = fit(build(), ce_step, _loader(), epochs=2, evaluate_fn=lambda e: float(e), **common)
    fit(build(), ce_step, _loader(), epochs=1, evaluate_fn=lambda e: float(e), **{**common, "checkpoint": tmp_path / "s.pt"})
    resumed = fit(build(), ce_step, _loader(), epochs=2, evaluate_fn=lambda e: float(e), resume=True,
                  **{**common, "checkpoint": tmp_path / "s.pt"})
    assert resumed.evaluations == straight.evaluations and len(resumed.evaluations) == 4
    assert (resumed.best_epoch, resumed.best_step) == (straight.best_epoch, straight.best_step) == (2, 3)


def test_bad_evaluation_settings_are_named(tmp_path):
    with pytest.raises(ValueError, match="evaluations_per_epoch must be an integer >= 1, got 0"):
        fit(build(), ce_step, _loader(), epochs=1, evaluations_per_epoch=0)
    with pytest.raises(ValueError, match="without 'score'"):
        fit(build(), ce_step, _loader(), epochs=1, progress=False, evaluate_fn=lambda e: {"S": 1.0})


def test_fit_options_object_equals_its_keywords_and_unknown_keywords_are_refused():
    from attribmap.train import FitOptions

    loader = DataLoader(make_data(), batch_size=8, shuffle=True)
    given = dict(optim=OptimConfig(lr=0.2), grad_clip=1.0, progress=False)
    by_keywords = build()
    history = fit(by_keywords, ce_step, loader, epochs=2, seed=4, **given).history
    by_object = build()
    options = FitOptions(**given, seed=0)  # the keyword overrides the field
    assert fit(by_object, ce_step, loader, epochs=2, options=options, seed=4).history == history
    for a, b in zip(by_keywords.parameters(), by_object.parameters()):
        assert torch.equal(a, b)
    with pytest.raises(TypeError, match="unexpected keyword argument.*'epoch'"):
        fit(build(), ce_step, loader, epochs=1, epoch=3)
