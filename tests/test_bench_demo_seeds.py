"""attribmap.experiments.demo_seeds (benchmarks/wsol_suite.py): the multi-seed summary of the demo."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from attribmap.experiments.demo import PRESETS
from attribmap.experiments.demo_seeds import LARGE, METRICS, run_seeds, summarize, summary_table
from attribmap.errors import AttribmapError

ROOT = Path(__file__).resolve().parents[1]


def _per_seed():
    return {0: {"extractors": {"cam": {"MaxBoxAcc": 40.0, "MaxBoxAccV2": 30.0, "PxAP": 50.0},
                               "i2c": {"MaxBoxAcc": 10.0}}},
            1: {"extractors": {"cam": {"MaxBoxAcc": 60.0, "MaxBoxAccV2": 30.0, "PxAP": 70.0},
                               "i2c": {"MaxBoxAcc": 20.0}}}}


def test_summary_is_mean_and_sample_std_per_extractor_and_metric():
    summary = summarize(_per_seed())
    assert list(summary) == ["cam", "i2c"] and list(summary["cam"]) == list(METRICS)
    assert summary["cam"]["MaxBoxAcc"]["mean"] == 50.0
    assert summary["cam"]["MaxBoxAcc"]["std"] == pytest.approx(math.sqrt(200.0))
    assert summary["cam"]["MaxBoxAccV2"]["std"] == 0.0 and summary["cam"]["MaxBoxAccV2"]["n"] == 2
    assert math.isnan(summary["i2c"]["PxAP"]["mean"])  # a metric the results lack
    with pytest.raises(AttribmapError, match="at least one seed"):
        summarize({})


def test_summary_table_rows_and_caption():
    table = summary_table(summarize(_per_seed()), [0, 1], LARGE)
    assert "| cam | 50.0 +- 14.1 | 30.0 +- 0.0 | - | 60.0 +- 14.1 | - |" in table
    assert "| i2c | 15.0 +- 7.1 | - | - | - | - |" in table
    assert f"{LARGE.classes} classes, {LARGE.test_per_class} test images per class" in table
    assert f"delta {LARGE.delta}" in table and "seeds 0, 1." in table


def test_large_preset_is_the_demo_at_a_larger_size():
    full = PRESETS["full"]
    assert (LARGE.classes, LARGE.scene_size, LARGE.image_size) == (full.classes, full.scene_size, full.image_size)
    assert LARGE.per_class > full.per_class and LARGE.test_per_class > full.test_per_class
    assert LARGE.classifier_epochs >= full.classifier_epochs


def test_run_seeds_refuses_bad_seeds(tmp_path):
    with pytest.raises(AttribmapError, match="seeds"):
        run_seeds(tmp_path, PRESETS["tiny"], [])
    with pytest.raises(AttribmapError, match="seeds"):
        run_seeds(tmp_path, PRESETS["tiny"], [-1])


@pytest.mark.slow
def test_wsol_suite_script_quick_runs_two_seeds(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "wsol_suite.py"), "--quick", "--no-progress",
                           "--seeds", "0", "1", "--out", str(tmp_path / "suite")], capture_output=True, text=True,
                          timeout=1200, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((tmp_path / "suite" / "summary.json").read_text())
    assert summary["seeds"] == [0, 1]
    assert summary["summary"]["cam"]["MaxBoxAccV2"]["n"] == 2
    assert set(summary["per_seed"]) == {"0", "1"} and "weightmap" in summary["per_seed"]["0"]
    assert (tmp_path / "suite" / "summary.md").read_text() in done.stdout
