"""Choosing the metrics of a benchmark run: --metrics, --metric-option, their aliases, old configs."""
from __future__ import annotations

import dataclasses
import json

import pytest

from attribmap.bench import BenchConfig
from attribmap.bench.config import parse_metric_options
from attribmap.bench.scoring import bench_metric_names
from attribmap.cli import main
from attribmap.errors import AttribmapError
from attribmap.evaluate import register_metric, unregister_metric
from tests.test_evaluate_metric_contract import ToyMeanValue


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """A tiny synthetic suite (2 classes, 4 test images of ~48 px)."""
    from attribmap.data.synthetic import generate_suite

    root = tmp_path_factory.mktemp("bench_metrics") / "suite"
    generate_suite(root, classes=2, per_class=2, size=48, val_per_class=0, test_per_class=2)
    return str(root)


@pytest.fixture
def toy():
    register_metric("toy", ToyMeanValue)
    yield "toy"
    unregister_metric("toy")


def _bench(suite, out, *extra):
    """Run ``attribmap bench`` on a random resnet18 (Grad-CAM, 32 px, delta 0.05); returns results.json."""
    code = main(["bench", "--data", suite, "--model", "resnet18", "--methods", "gradcam", "--input-size", "32",
                 "--delta", "0.05", "--batch-size", "2", "--no-figures", "--no-progress", "--out", str(out), *extra])
    assert code == 0
    with open(out / "results.json", encoding="utf-8") as handle:
        return json.load(handle)


def _numbers(results):
    drop = {"extract_s", "maps_per_s", "score_s"}
    return {name: {k: v for k, v in entry.items() if k not in drop} for name, entry in results["extractors"].items()}


def test_bench_scores_exactly_the_metrics_asked_for_a_registered_one_included(suite, toy, tmp_path):
    results = _bench(suite, tmp_path / "toy", "--metrics", "top1,boxes,toy", "--metric-option", "toy.scale=2")
    assert [m["name"] for m in results["metrics"]] == ["top1", "boxes", "toy"]
    scores = results["extractors"]["gradcam"]
    assert 0.0 <= scores["ToyMean"] <= 200.0 and "MaxBoxAccV2" in scores and "PointingGame" not in scores
    assert results["config"]["metric_settings"] == {"toy.scale": 2.0}
    assert results["protocol"]["metric_options"] == {"toy.scale": 2.0}
    assert "toy mean" in (tmp_path / "toy" / "results.md").read_text(encoding="utf-8")


def test_metric_options_and_the_named_flags_give_the_same_numbers(suite, tmp_path):
    named = _bench(suite, tmp_path / "named", "--faithfulness", "deletion,road", "--steps", "3",
                   "--road-percents", "30,70")
    generic = _bench(suite, tmp_path / "generic", "--metrics",
                     "top1,boxes,pxap,peak_iou,pointing,energy_pointing,deletion,road",
                     "--metric-option", "deletion.steps=3", "--metric-option", "road.percents=30,70")
    assert _numbers(named) == _numbers(generic)
    assert [m["name"] for m in named["metrics"]] == [m["name"] for m in generic["metrics"]]
    assert named["protocol"]["faithfulness"]["metrics"] == generic["protocol"]["faithfulness"]["metrics"]


def test_the_default_metric_set_comes_from_the_registry(suite):
    config = BenchConfig(data=suite, model="resnet18")
    assert bench_metric_names(config, True, True) == ["top1", "boxes", "pxap", "peak_iou", "pointing",
                                                      "energy_pointing"]
    assert bench_metric_names(dataclasses.replace(config, faithfulness=("road", "drop")), True, False) == [
        "top1", "boxes", "pointing", "energy_pointing", "road", "drop"]
    assert bench_metric_names(dataclasses.replace(config, protocol="legacy"), True, True) == ["top1", "legacy"]
    chosen = dataclasses.replace(config, metrics=("pointing", "deletion"), faithfulness=("deletion", "drop"))
    assert bench_metric_names(chosen, True, True) == ["pointing", "deletion", "drop"]
    assert chosen.faithfulness_names() == ("deletion", "drop")


def test_metric_options_win_over_their_aliases(suite):
    config = BenchConfig(data=suite, model="resnet18", steps=7,
                         metric_settings=parse_metric_options(["deletion.steps=20", "road.percents=30,70"]))
    options = config.validated().metric_options()
    assert options["deletion.steps"] == 20 and options["insertion.steps"] == 7
    assert options["road.percents"] == (30, 70)


@pytest.mark.parametrize("argv, message", [
    (["--metrics", "boxes,boxez"], "unknown metric 'boxez'; known: top1, boxes"),
    (["--metrics", ","], "--metrics needs at least one metric name"),
    (["--metric-option", "deletion.stepz=3"], "metric 'deletion' has no option 'stepz'; its options: steps"),
    (["--metric-option", "deletion.steps=many"], "metric option deletion.steps='many': expected an int"),
    (["--metric-option", "road.percents=10,x"], "expected ints separated by commas"),
    (["--metric-option", "steps=3"], "expected NAME.KEY=VALUE"),
    (["--metric-option", "nosuch.steps=3"], "unknown metric 'nosuch'"),
])
def test_bad_metric_choices_are_one_line_errors(suite, tmp_path, capsys, argv, message):
    code = main(["bench", "--data", suite, "--model", "resnet18", "--methods", "gradcam", "--out",
                 str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and message in err[-1] and not (tmp_path / "o").exists()


def test_config_validation_of_metrics_and_settings(suite):
    with pytest.raises(AttribmapError, match="unknown metric 'nope'"):
        BenchConfig(data=suite, model="resnet18", metrics=("boxes", "nope")).validated()
    with pytest.raises(AttribmapError, match="non-empty tuple"):
        BenchConfig(data=suite, model="resnet18", metrics=()).validated()
    with pytest.raises(AttribmapError, match="expected a number"):
        BenchConfig(data=suite, model="resnet18", metric_settings=(("road.noise", "loud"),)).validated()


def test_old_configs_load_and_keep_their_fingerprint(suite):
    config = BenchConfig(data=suite, model="resnet18", faithfulness=("deletion",), steps=3).validated()
    old = config.as_dict()
    assert "metrics" not in old and "metric_settings" not in old  # unset: the dict of before they existed
    loaded = BenchConfig.from_dict(json.loads(json.dumps(old)))
    assert loaded == config and loaded.fingerprint() == config.fingerprint()
    chosen = dataclasses.replace(config, metrics=("top1", "boxes"),
                                 metric_settings=parse_metric_options(["road.percents=30,70"]))
    again = BenchConfig.from_dict(json.loads(json.dumps(chosen.as_dict())))
    assert again == chosen and again.fingerprint() == chosen.fingerprint() != config.fingerprint()
    with pytest.raises(AttribmapError, match="unknown BenchConfig field"):
        BenchConfig.from_dict({**old, "metricz": ["boxes"]})
