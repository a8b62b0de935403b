"""attribmap demo: the whole pipeline on a tiny synthetic suite, cached stage by stage."""
from __future__ import annotations

import dataclasses
import json

import pytest

from attribmap.experiments import demo as demo_module
from attribmap.experiments.demo import PRESETS, run_demo
from attribmap.cli import main

EXTRACTORS = ["cam", "gradcam", "gradcampp", "dgl", "dgl@layer3", "dgl-psb", "dgl-cem", "captum:Saliency", "i2c",
              "weightmap"]
STAGES = ["suite", "pretrain", "classifier", "i2c_ce", "i2c", "weightmap", "bench"]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo_out"
    return out, run_demo(out, PRESETS["tiny"])


def test_tiny_pipeline_end_to_end(first_run):
    out, outcome = first_run
    assert list(outcome.seconds) == STAGES and not any(outcome.skipped.values())
    results = outcome.results
    assert list(results["extractors"]) == EXTRACTORS
    assert results["dataset"]["split"] == "test" and results["dataset"]["num_images"] == 6
    assert results["protocol"]["name"] == "official"
    for name in EXTRACTORS:
        entry = results["extractors"][name]
        assert 0 <= entry["MaxBoxAccV2"] <= 100 and 0 <= entry["PxAP"] <= 100
    for path in ("suite/suite.json", "models/pretrain.pt", "models/classifier.pt", "models/i2c_ce.pt", "models/i2c.pt",
                 "models/weightmap.pt",
                 "report/results.json", "report/results.md", "report/qualitative.png"):
        assert (out / path).is_file(), path
    assert outcome.report == out / "report" / "results.md"
    state = json.loads((out / "demo_state.json").read_text())
    assert sorted(state) == sorted(STAGES)


def test_second_run_reuses_every_stage(first_run):
    out, outcome = first_run
    before = (out / "report" / "results.json").stat().st_mtime_ns
    again = run_demo(out, PRESETS["tiny"])
    assert all(again.skipped.values())
    assert (out / "report" / "results.json").stat().st_mtime_ns == before
    assert again.results["extractors"] == json.loads((out / "report" / "results.json").read_text())["extractors"]


def test_changed_setting_reruns_that_stage_and_the_later_ones(first_run, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(first_run[0], out)
    changed = dataclasses.replace(PRESETS["tiny"], weightmap_epochs=2)
    outcome = run_demo(out, changed)
    assert outcome.skipped == {"suite": True, "pretrain": True, "classifier": True, "i2c_ce": True, "i2c": True,
                               "weightmap": False, "bench": False}


def test_demo_rejects_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="multiple of 32"):
        run_demo(tmp_path, dataclasses.replace(PRESETS["tiny"], image_size=48))
    with pytest.raises(ValueError, match="even"):
        run_demo(tmp_path, dataclasses.replace(PRESETS["tiny"], batch_size=3))


def test_cli_demo_prints_table_and_report_path(first_run, monkeypatch, capsys):
    out, _ = first_run
    monkeypatch.setitem(demo_module.PRESETS, "full", PRESETS["tiny"])
    assert main(["demo", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    for name in EXTRACTORS:
        assert f"| {name} |" in printed
    assert "suite cached" in printed
    assert f"report: {(out / 'report' / 'results.md').resolve()}" in printed
