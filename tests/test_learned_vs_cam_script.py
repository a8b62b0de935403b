"""Smoke test of benchmarks/learned_vs_cam.py on the tiny ``small`` preset (one seed, one or two epochs)."""
from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "learned_vs_cam.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("learned_vs_cam", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_mean_std_hand_computed(script):
    stats = script.mean_std([1.0, 3.0, float("nan"), None])
    assert stats["n"] == 2
    assert stats["mean"] == pytest.approx(2.0)
    assert stats["std"] == pytest.approx(math.sqrt(2.0))  # ddof = 1
    assert script.mean_std([5.0]) == {"mean": 5.0, "std": 0.0, "n": 1}
    assert script.mean_std([]).get("n") == 0


def test_bad_arguments_exit_with_usage_error(script, tmp_path):
    with pytest.raises(SystemExit) as info:
        script.main(["--out", str(tmp_path), "--epochs", "0"])
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        script.main(["--out", str(tmp_path), "--preset", "huge"])


def test_small_preset_end_to_end_and_cache(script, tmp_path, capsys):
    out = tmp_path / "run"
    assert script.main(["--out", str(out), "--preset", "small", "--seeds", "3", "--epochs", "2"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == [3]
    assert summary["settings"]["epochs"] == 2
    rows = [row[0] for row in script.ROWS]
    assert list(summary["table"]) == rows
    for row in rows:
        for metric in ("MaxBoxAccV2", "PxAP"):
            value = summary["per_seed"]["3"][row][metric]
            assert 0.0 <= value <= 100.0, (row, metric, value)
            assert summary["table"][row][metric]["n"] == 1
            assert summary["table"][row][metric]["std"] == 0.0
    # one curve entry per epoch; the kept epoch has the highest S, the earlier one on ties
    for method in ("1", "2"):
        info = summary["investigation"]["3"]["weightmap"][method]
        curve = info["per_epoch"]
        assert [e["epoch"] for e in curve] == [1, 2]
        assert all(0.0 <= e["S"] <= 1.0 for e in curve)
        assert all(0.0 < e["coverage"] <= 1.0 and 0.0 <= e["min_over_max"] <= 1.0 for e in curve)
        assert all(0.0 < e["mean_M"] < 1.0 for e in curve)  # sigmoid output
        best = max(e["S"] for e in curve)
        assert info["selected_epoch"] == min(e["epoch"] for e in curve if e["S"] == best)
    # I2C losses were logged; the ablation trains with lambdas 0 but still reports l_sc
    losses = summary["investigation"]["3"]["losses"]
    assert losses["i2c"]["last_epoch"]["l_sc"] > 0.0
    assert losses["i2c_ablation"]["last_epoch"]["l_sc"] > 0.0
    record = json.loads((out / "seed3" / "stages" / "i2c_ablation.json").read_text())
    assert (record["lambda_sc"], record["lambda_gc"]) == (0.0, 0.0)
    md = (out / "summary.md").read_text()
    assert "| cam (CE baseline) |" in md and "| weightmap II |" in md
    assert "seeds 3" in md

    # a rerun with the same settings reuses every stage (records untouched)
    before = {p.name: p.read_text() for p in (out / "seed3" / "stages").iterdir()}
    capsys.readouterr()
    assert script.main(["--out", str(out), "--preset", "small", "--seeds", "3", "--epochs", "2"]) == 0
    err = capsys.readouterr().err
    assert err.count(": cached") == len(before) == 8
    after = {p.name: p.read_text() for p in (out / "seed3" / "stages").iterdir()}
    assert after == before
