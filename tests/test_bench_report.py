"""attribmap.bench.report: the results table, the report files, the mean +- std of the multi-seed summaries."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from attribmap.bench.report import load_results, mean_std, results_table, write_report


def _results(protocol="official"):
    proto = ({"name": "official", "delta": 0.001, "iou_thresholds": [30, 50, 70], "frame_size": 224}
             if protocol == "official" else {"name": "legacy", "tau": 0.2})
    return {
        "protocol": proto,
        "dataset": {"root": "/data/suite", "split": "test", "num_images": 4},
        "model": {"checkpoint": "cls.pt", "layer": None},
        "timing": {"images_this_process": 4, "wall_s": 2.0, "evaluate_s": 0.5, "images_per_s": 2.0},
        "world_size": 1,
        "versions": {"attribmap": "0.1.0", "torch": "2.x"},
        "extractors": {
            "cam": {"MaxBoxAcc": 75.0, "MaxBoxAccV2": 50.0,
                    "MaxBoxAccV2_per_iou": {"30": 100.0, "50": 50.0, "70": 0.0}, "Top1Loc": 50.0,
                    "PxAP": 61.234, "PointingGame": 25.0, "maps_per_s": 12.345, "shared_pass": True,
                    "GTKnownLoc": 75.0},
            "weightmap": {"MaxBoxAcc": 25.0, "MaxBoxAccV2": 33.333, "MaxBoxAccV2_per_iou": {"30": 50.0, "50": 25.0,
                                                                                              "70": 25.0},
                          "Top1Loc": 0.0, "PxAP": float("nan"), "PointingGame": 0.0, "maps_per_s": 3.0,
                          "shared_pass": False, "GTKnownLoc": 25.0},
        },
    }


def test_official_table_rows_are_formatted_from_the_numbers():
    table = results_table(_results())
    lines = table.splitlines()
    assert "**official**" in lines[0] and "delta = 0.001" in lines[0] and "4 images" in lines[0]
    assert lines[2] == ("| extractor | MaxBoxAcc | MaxBoxAccV2 | V2@30 | V2@50 | V2@70 | top-1 loc | PxAP | "
                        "pointing | maps/s |")
    assert lines[4] == "| cam | 75.0 | 50.0 | 100.0 | 50.0 | 0.0 | 50.0 | 61.2 | 25.0 | 12.3 |"
    assert lines[5] == "| weightmap | 25.0 | 33.3 | 50.0 | 25.0 | 25.0 | 0.0 | - | 0.0 | 3.0 |"


def test_legacy_table_names_the_protocol_and_its_metrics():
    table = results_table(_results("legacy"))
    assert "**legacy**" in table and "tau = 0.2" in table and "Not comparable" in table
    assert "| cam | 75.0 | 50.0 | 12.3 |" in table.splitlines()


def test_write_report_files_are_valid_and_leave_no_temporaries(tmp_path):
    tau = np.arange(0, 1, 0.5)
    curves = {"cam": {"tau": tau, "BoxAccV1@50": np.array([10.0, 20.0]), "BoxAccV2@30": np.array([1.0, 2.0]),
                      "BoxAccV2@50": np.array([3.0, 4.0]), "BoxAccV2@70": np.array([5.0, 6.0]),
                      "precision": np.array([np.nan, 0.5, 1.0]), "recall": np.array([0.0, 0.5, 1.0])},
              "weightmap": {}}
    results = _results()
    written = write_report(results, curves, tmp_path / "r", figures=True)
    assert set(written) == {"boxacc_curves", "pxap_pr_curves", "curves", "json", "markdown"}
    on_disk = json.loads((tmp_path / "r" / "results.json").read_text())
    assert on_disk["extractors"]["weightmap"]["PxAP"] is None  # NaN is written as null, not as invalid JSON
    assert on_disk["figures"] == {"boxacc_curves": "boxacc_curves.png", "pxap_pr_curves": "pxap_pr_curves.png"}
    arrays = np.load(tmp_path / "r" / "curves.npz")
    assert np.array_equal(arrays["cam/BoxAccV2@70"], [5.0, 6.0]) and np.array_equal(arrays["cam/tau"], tau)
    markdown = (tmp_path / "r" / "results.md").read_text()
    assert "![BoxAcc(tau)](boxacc_curves.png)" in markdown and results_table(results) in markdown
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == sorted(
        ["boxacc_curves.png", "pxap_pr_curves.png", "curves.npz", "results.json", "results.md"])
    assert load_results(tmp_path / "r")["extractors"]["cam"]["MaxBoxAcc"] == 75.0
    with pytest.raises(FileNotFoundError, match="no benchmark results"):
        load_results(tmp_path / "missing")


def test_columns_tables_and_figures_follow_the_metrics_metadata(tmp_path):
    """A run with faithfulness metrics: their headline columns form a second table, their
    other columns the details table, their declared plots the figures."""
    from attribmap.evaluate import create_metrics

    metrics = create_metrics(["top1", "boxes", "pointing", "deletion", "road"], {"steps": 2, "road.percents": (50,)})
    results = _results()
    results["metrics"] = [m.info.as_dict() for m in metrics]
    results["extractors"]["cam"].update(Deletion=0.1234, ROAD_MoRF=0.25, ROAD_LeRF=0.75, ROAD_MoRF_accuracy=40.0,
                                        ROAD_LeRF_accuracy=60.0, ClassifierTop1=80.0, score_s=1.5)
    table = results_table(results)
    lines = table.splitlines()
    assert lines[2] == "| extractor | MaxBoxAcc | MaxBoxAccV2 | V2@30 | V2@50 | V2@70 | top-1 loc | pointing | maps/s |"
    assert "Faithfulness (target: the ground-truth class)" in lines
    start = lines.index("Faithfulness (target: the ground-truth class)")
    assert lines[start + 2] == ("| extractor | deletion AUC (lower better) | ROAD MoRF (lower better) | ROAD LeRF | "
                                "scoring s |")
    assert lines[start + 4] == "| cam | 0.123 | 0.250 | 0.750 | 1.5 |"
    assert lines[start + 5] == "| weightmap | - | - | - | - |"
    curves = {"cam": {"deletion_fraction": np.array([0.0, 0.5, 1.0]), "deletion_score": np.array([0.9, 0.4, 0.1]),
                      "road_fraction": np.array([0.5]), "road_morf": np.array([0.25]), "road_lerf": np.array([0.75])}}
    written = write_report(results, curves, tmp_path / "f", figures=True)
    assert set(written) == {"deletion_curves", "road_curves", "curves", "json", "markdown"}
    markdown = (tmp_path / "f" / "results.md").read_text()
    assert "![Deletion curves (zeros baseline)](deletion_curves.png)" in markdown
    assert "| cam | 80.0 | - | - | - | - | 40.0 | 60.0 |" in markdown  # the details table
    assert json.loads((tmp_path / "f" / "results.json").read_text())["metrics"][3]["name"] == "deletion"


def test_mean_std_is_the_sample_std_over_seeds():
    assert mean_std([60.0, 70.0, 80.0]) == {"mean": 70.0, "std": 10.0, "n": 3}  # sample std (ddof = 1)
    assert mean_std([5.0]) == {"mean": 5.0, "std": 0.0, "n": 1}
    assert math.isnan(mean_std([float("nan")])["mean"])
