"""attribmap demo: the whole pipeline on a tiny synthetic suite, cached stage by stage."""
from __future__ import annotations

import dataclasses
import json

import pytest

from attribmap.experiments import demo as demo_module
from attribmap.experiments.demo import PRESETS, run_demo
from attribmap.experiments.demo_real import REAL_METHODS, real_network_available
from attribmap.cli import main

EXTRACTORS = ["cam", "gradcam", "gradcampp", "dgl", "dgl@layer3", "dgl-psb", "dgl-cem", "captum:Saliency", "i2c",
              "weightmap"]
SYNTHETIC = ["suite", "pretrain", "classifier", "i2c_ce", "i2c", "weightmap", "bench"]
REAL = ["real_mosaics", "real_bench", "real_figure"]
#: the real-network stages run where the weights package is installed (make test has it)
STAGES = SYNTHETIC + (REAL if real_network_available() else [])


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
    expected = {"suite": True, "pretrain": True, "classifier": True, "i2c_ce": True, "i2c": True,
                "weightmap": False, "bench": False}
    # the real-network chain does not depend on the synthetic stages
    assert outcome.skipped == {**expected, **{name: True for name in STAGES[len(SYNTHETIC):]}}


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
    if real_network_available():
        assert "Real network: efficientnet_lite0" in printed and "| dgl@_blocks.10 |" in printed
        assert f"maps on the photos: {(out / 'real' / 'photos.png').resolve()}" in printed
    assert f"report: {(out / 'report' / 'results.md').resolve()}" in printed


@pytest.mark.skipif(not real_network_available(), reason="pip install 'attribmap[pretrained]'")
def test_tiny_real_network_part(first_run):
    out, outcome = first_run
    real = outcome.real_results
    assert list(real["extractors"]) == list(REAL_METHODS)
    assert real["dataset"]["num_images"] == 4  # one 2 x 2 mosaic, one entry per target cell
    for name in REAL_METHODS:
        assert 0 <= real["extractors"][name]["GridPointing"] <= 100
    assert real["extractors"]["gradcam@_blocks.10"]["about"]["layer"] == "_blocks.10"
    rows = real["mosaic_reference"]["rows"]
    # the 192 px mosaic's cells become boxes of 111 or 113 frame pixels (truncation): about, not exactly, 1/4
    assert rows["uniform"]["GridPointing"] == pytest.approx(25.0, abs=1.0)
    assert rows["cell"]["GridPointing"] == pytest.approx(100.0, abs=1e-6)
    mosaic = json.loads((out / "real" / "mosaics" / "mosaic.json").read_text())
    assert mosaic["count"] == 1 and mosaic["image_size"] == 2 * PRESETS["tiny"].real_cell_size
    from PIL import Image

    with Image.open(outcome.real_figure) as figure:
        assert figure.format == "PNG" and figure.size[0] > figure.size[1] > 0  # 7 columns, 5 rows


def test_changed_real_setting_reruns_only_the_real_chain(first_run, tmp_path):
    import shutil

    if not real_network_available():
        pytest.skip("pip install 'attribmap[pretrained]'")
    out = tmp_path / "copy"
    shutil.copytree(first_run[0], out)
    outcome = run_demo(out, dataclasses.replace(PRESETS["tiny"], real_threshold=0.5))
    assert [name for name, cached in outcome.skipped.items() if not cached] == REAL


def test_no_real_network_setting_skips_the_chain(first_run, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(first_run[0], out)
    outcome = run_demo(out, dataclasses.replace(PRESETS["tiny"], real_network=False))
    assert list(outcome.seconds) == SYNTHETIC and all(outcome.skipped.values())
    assert outcome.real_results is None and outcome.real_figure is None
