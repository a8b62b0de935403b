"""``attribmap train``: argument errors become one line + exit 2; a tiny run writes checkpoints."""
from __future__ import annotations

import pytest
import torch

from attribmap.cli import main
from attribmap.train import load_checkpoint

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    from attribmap.data.synthetic import generate_suite

    root = tmp_path_factory.mktemp("suite")
    generate_suite(root, classes=2, per_class=4, size=32, seed=1, val_per_class=0, test_per_class=0)
    return root


@pytest.mark.parametrize("argv, message", [
    (["train"], "choose what to train"),
    (["train", "classifier", "--data", "{missing}", "--out", "{out}"], "--data folder not found"),
    (["train", "classifier", "--data", "{suite}", "--out", "{out}", "--epochs", "0"],
     "epochs must be an integer >= 1, got 0"),
    (["train", "i2c", "--data", "{suite}", "--out", "{out}", "--batch-size", "5"], "batch_size must be even"),
    (["train", "weightmap", "--data", "{suite}", "--out", "{out}"], "method 1 needs a trained classifier"),
    (["train", "weightmap", "--data", "{suite}", "--out", "{out}", "--classifier", "{missing}"],
     "classifier checkpoint not found"),
    (["train", "weightmap", "--data", "{suite}", "--out", "{out}", "--method", "2", "--arch",
      "resnet18_narrow"], "'resnet18_narrow' is not a weight-map generator"),
    (["train", "--data", "{suite}", "--out", "{out}", "--epochs", "1"], "choose what to train"),
    (["train", "classifier", "--out", "{out}"], "--data is required"),
    (["train", "--config", "{missing}", "--data", "{suite}", "--out", "{out}"], "recipe file not found"),
    (["train", "classifier", "--data", "{suite}", "--out", "{out}", "--arch", "resnet81_small"],
     "unknown arch 'resnet81_small'"),
    (["train", "classifier", "--data", "{suite}", "--out", "{out}", "--device", "gpu"],
     "device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
    (["train", "classifier", "--data", "{suite}", "--out", "{out}", "--holdout-fraction", "1.5"],
     "holdout_fraction must be in [0, 1), got 1.5"),
    (["train", "classifier", "--data", "{suite}", "--out", "{out}", "--schedule", "step",
      "--lr-step-size", "0"], "step_size must be an integer >= 1, got 0"),
])
def test_bad_arguments_give_one_line_and_exit_2(argv, message, suite, tmp_path, capsys):
    values = {"missing": str(tmp_path / "missing"), "out": str(tmp_path / "o.pt"), "suite": str(suite)}
    status = main([a.format(**values) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1 and err[0].startswith("attribmap: error: ") and message in err[0]
    assert not (tmp_path / "o.pt").exists()


def test_argparse_rejects_an_unknown_method(suite, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "weightmap", "--data", str(suite), "--out", str(tmp_path / "o.pt"), "--method", "3"])
    assert exc.value.code == 2


def test_train_classifier_from_the_command_line(suite, tmp_path, capsys):
    out = tmp_path / "runs" / "cls.pt"
    status = main(["train", "classifier", "--data", str(suite), "--out", str(out), "--epochs", "1",
                   "--batch-size", "4", "--image-size", "32", "--lr", "0.05", "--seed", "2",
                   "--schedule", "step", "--lr-step-size", "15", "--no-progress"])
    captured = capsys.readouterr()
    assert status == 0
    assert f"best checkpoint: {out}" in captured.out
    assert "classifier epoch 1/1" in captured.err
    state = load_checkpoint(out)
    assert state["task"] == "classifier" and state["epoch"] == 1 and state["seed"] == 2
    assert state["optim_config"]["lr"] == 0.05 and state["optim_config"]["step_size"] == 15
    assert (tmp_path / "runs" / "cls.last.pt").is_file()
