"""attribmap.experiments.synthetic_check (benchmarks/synthetic_suite_check.py): the suite's end-to-end check."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from attribmap.experiments.synthetic_check import SuiteCheckSettings, run_suite_check, scalar_scores
from attribmap.errors import AttribmapError

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--classes", "2", "--per-class", "3", "--test-per-class", "2", "--size", "32", "--image-size", "32",
        "--epochs", "1"]


def test_check_trains_and_scores_a_cam(tmp_path):
    """Tiny settings; numbers are not asserted, only their ranges and the result's parts."""
    settings = SuiteCheckSettings(classes=2, per_class=3, test_per_class=2, size=32, image_size=32, epochs=1,
                                  methods=("cam", "gradcam"))
    lines = []
    result = run_suite_check(settings, work=str(tmp_path / "work"), log=lines.append)
    assert 0 <= result["test_accuracy"] <= 100
    assert result["suite"]["splits"]["test"]["images"] == 4 and result["suite"]["generator_version"] == 2
    for name in ("cam", "gradcam"):
        assert 0 <= result[name]["MaxBoxAccV2"] <= 100 and result[name]["num_images"] == 4
        assert set(result[name]["MaxBoxAccV2_per_iou"]) == {"30", "50", "70"}
    assert set(result["reference_rows"]) == {"object", "parts", "body", "centre", "pooled"}
    assert result["check"]["complete"] and isinstance(result["check"]["passed"], bool)
    assert any("classifier epoch 1/1" in line for line in lines)
    assert (tmp_path / "work" / "classifier.pt").is_file()


def test_scalar_scores_drop_curves_and_stringify_keys():
    scores = {"MaxBoxAccV2": 50.0, "num_images": 4, "curve": [1.0, 2.0], "MaxBoxAccV2_per_iou": {30: 1.0, 50: 0.5}}
    assert scalar_scores(scores) == {"MaxBoxAccV2": 50.0, "num_images": 4, "MaxBoxAccV2_per_iou": {"30": 1.0,
                                                                                                  "50": 0.5}}


def test_settings_refuse_bad_values():
    with pytest.raises(AttribmapError, match="methods"):
        SuiteCheckSettings(methods=())
    with pytest.raises(AttribmapError, match="epochs must be >= 1, got 0"):
        SuiteCheckSettings(epochs=0)


@pytest.mark.slow
def test_synthetic_suite_check_script_writes_its_json(tmp_path):
    out = tmp_path / "result.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "synthetic_suite_check.py"), *TINY,
                           "--body-only", "--json", str(out)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert json.loads(done.stdout) == result
    assert result["suite"]["body_only"] and "check" not in result and result["threads"] == 1
    assert 0 <= result["cam"]["MaxBoxAccV2"] <= 100
