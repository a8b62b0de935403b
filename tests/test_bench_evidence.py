"""The evidence pipeline (attribmap.experiments.evidence, benchmarks/learned_vs_cam.py): statistics
against hand computations and one tiny seed end to end, cached stage by stage."""
from __future__ import annotations

import json
import math

import pytest

from attribmap.experiments.evidence import PRESETS, REFERENCE, ROWS, run_evidence
from attribmap.experiments.statistics import paired_difference, spearman


def test_paired_difference_against_a_hand_computed_t_interval():
    # differences 1, 2, 3: mean 2, sd 1, se 1/sqrt(3); t(0.975, 2) = 4.302652729911275
    got = paired_difference([11.0, 12.0, 13.0], [10.0, 10.0, 10.0])
    half = 4.302652729911275 / math.sqrt(3)
    assert got["mean"] == pytest.approx(2.0) and got["n"] == 3
    assert got["low"] == pytest.approx(2.0 - half) and got["high"] == pytest.approx(2.0 + half)
    assert got["excludes_zero"] is False  # 2 - 2.48 < 0
    tight = paired_difference([11.0, 11.1, 10.9, 11.0], [10.0, 10.0, 10.0, 10.0])
    assert tight["excludes_zero"] is True and tight["low"] > 0
    with_gaps = paired_difference([1.0, None, float("nan"), 4.0], [0.0, 1.0, 1.0, 2.0])
    assert with_gaps["n"] == 2 and with_gaps["mean"] == pytest.approx(1.5)
    single = paired_difference([3.0], [1.0])
    assert single["mean"] == 2.0 and math.isnan(single["low"]) and not single["excludes_zero"]


def test_spearman_ranks():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40])["rho"] == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1])["rho"] == pytest.approx(-1.0)
    # ranks (1,2,3,4) vs (2,1,4,3): rho = 1 - 6 * 4 / (4 * 15) = 0.6
    assert spearman([1, 2, 3, 4], [2, 1, 4, 3])["rho"] == pytest.approx(0.6)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3])["rho"])  # a constant side has no ranks
    assert spearman([1, None, 3, 4], [1, 2, 3, 4])["n"] == 3


def test_one_tiny_seed_end_to_end_and_cached(tmp_path):
    out = tmp_path / "evidence"
    lines = []
    summary, text = run_evidence(out, PRESETS["small"], [3], lines.append)
    rows = summary["per_seed"]["3"]
    for row, _, _ in ROWS:
        assert 0.0 <= rows[row]["MaxBoxAccV2"] <= 100.0, row
    for name in REFERENCE:
        assert 0.0 <= rows[f"ref:{name}"]["MaxBoxAccV2"] <= 100.0, name
    assert rows["ref:object"]["MaxBoxAccV2"] == pytest.approx(100.0)  # the GT mask's own box
    assert summary["differences"]["gradcam"]["MaxBoxAccV2"]["n"] == 1
    # every saved weight-map evaluation was scored, and the selected ones are marked
    points = json.loads((out / "seed3" / "stages" / "curves.json").read_text())["points"]
    assert len(points) == summary["curve_points"] == 2 * 2  # 2 methods x 1 epoch x 2 evaluations
    assert {p["method"] for p in points} == {1, 2}
    assert sum(p["selected"] for p in points if p["method"] == 1) == 1
    assert all(p["S_paper"] is not None and p["S_robust"] is not None for p in points)
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["seeds"] == [3] and "| dgl@layer3+MS+MC |" in (out / "summary.md").read_text()
    assert "| i2c-ablation |" in text and "Spearman" in text
    # a second call reuses every stage
    lines.clear()
    run_evidence(out, PRESETS["small"], [3], lines.append)
    assert lines and all(line.endswith(": cached") for line in lines)
