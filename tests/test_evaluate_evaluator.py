"""The Evaluator: one framing per batch for every metric, the registry, the metadata contract."""
from __future__ import annotations

import numpy as np
import pytest

import attribmap.evaluate.framing as framing_module
from attribmap.errors import AttribmapError
from attribmap.evaluate import (BoxAccuracy, Column, Evaluator, Framer, Metric, MetricInfo, PointingGame, PxAP,
                                create_metrics, evaluate_maps, metric_names, register_metric)
from attribmap.evaluate import registry as registry_module


def _data(count=5, seed=0):
    rng = np.random.default_rng(seed)
    raw = rng.normal(size=(count, 7, 7))
    boxes = [np.array([[10, 20, 150, 170]]), np.array([[0, 0, 60, 60], [100, 90, 200, 220]])] * count
    sizes = np.array([[300, 250]] * count)
    masks = [rng.random((40, 30)) > 0.5 for _ in range(count)]
    correct = rng.random(count) > 0.5
    return raw, boxes[:count], sizes, masks, correct


def test_a_batch_is_framed_once_for_every_metric(monkeypatch):
    raw, boxes, sizes, masks, correct = _data()
    calls = []
    original = framing_module.frame_scoremaps

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(framing_module, "frame_scoremaps", counting)
    evaluator = Evaluator(["top1", "boxes", "pxap", "peak_iou", "pointing", "energy_pointing"],
                          options={"delta": 0.01})
    evaluator.update(raw, boxes=boxes, image_sizes=sizes, masks=masks, correct=correct)
    assert len(calls) == 1


def test_evaluator_numbers_equal_the_accumulators_fed_raw_maps():
    raw, boxes, sizes, masks, correct = _data()
    evaluator = Evaluator(["boxes", "pxap", "pointing"], options={"delta": 0.01})
    evaluator.update(raw[:2], boxes=boxes[:2], image_sizes=sizes[:2], masks=masks[:2], correct=correct[:2])
    evaluator.update(raw[2:], boxes=boxes[2:], image_sizes=sizes[2:], masks=masks[2:], correct=correct[2:])
    results = evaluator.compute()
    frame = Framer().frame
    alone = {"boxes": BoxAccuracy(delta=0.01).update(frame(raw, boxes=boxes, image_sizes=sizes, correct=correct)),
             "pxap": PxAP(delta=0.01).update(Framer().frame(raw, masks=masks)),
             "pointing": PointingGame().update(Framer().frame(raw, boxes=boxes, image_sizes=sizes))}
    for name, metric in alone.items():
        for key, value in metric.state().items():
            assert np.array_equal(evaluator.state()[name][key], value), (name, key)
    assert results["boxes"]["MaxBoxAccV2"] == alone["boxes"].compute()["MaxBoxAccV2"]
    scores = evaluator.scores(results)
    assert scores["PxAP"] == alone["pxap"].compute()["PxAP"] and "precision" not in scores
    assert set(evaluator.series(results)) >= {"tau", "BoxAccV2@50", "precision", "recall"}


def test_evaluate_maps_reports_the_new_localization_metrics():
    raw, boxes, sizes, masks, correct = _data()
    result = evaluate_maps(raw, boxes, sizes, masks=masks, correct=correct, delta=0.01)
    for key in ("MaxBoxAcc", "PxAP", "PeakIoU", "PeakIoU_tau", "PointingGame", "EnergyPointing", "Top1Loc"):
        assert key in result, key
    assert result["pr_curve"]["recall"][-1] == 1.0 and result["curves"]["tau"].shape == (100,)
    only = evaluate_maps(raw, boxes, sizes, delta=0.01, metrics=["pointing"])
    assert set(only) >= {"PointingGame"} and "MaxBoxAcc" not in only


def test_state_round_trip_merge_and_reset():
    raw, boxes, sizes, masks, correct = _data()
    names = ["top1", "boxes", "peak_iou", "energy_pointing"]
    first = Evaluator(names, options={"delta": 0.01})
    first.update(raw, boxes=boxes, image_sizes=sizes, masks=masks, correct=correct)
    restored = Evaluator(names, options={"delta": 0.01}).load_state(first.state())
    assert restored.compute()["energy_pointing"] == first.compute()["energy_pointing"]
    doubled = Evaluator(names, options={"delta": 0.01}).load_state(first.state()).merge(first)
    assert doubled.compute()["top1"]["num_images"] == 10
    with pytest.raises(AttribmapError, match="cannot merge"):
        first.merge(Evaluator(["boxes"], options={"delta": 0.01}))
    with pytest.raises(AttribmapError, match="saved scores hold"):
        Evaluator(["boxes"]).load_state(first.state())
    assert int(first.reset().state()["top1"]["count"]) == 0


def test_missing_inputs_and_bad_options_raise_clear_errors():
    raw, boxes, sizes, masks, _ = _data()
    with pytest.raises(AttribmapError, match="'pxap' needs masks"):
        Evaluator(["boxes", "pxap"]).update(raw, boxes=boxes, image_sizes=sizes)
    with pytest.raises(AttribmapError, match="'deletion' needs images and model"):
        Evaluator(["deletion"]).update(raw, boxes=boxes, image_sizes=sizes)
    with pytest.raises(AttribmapError, match="unknown metric 'boxess'"):
        Evaluator(["boxess"])
    with pytest.raises(AttribmapError, match="taken by none"):
        create_metrics(["boxes"], {"delta": 0.01, "stepz": 3})
    with pytest.raises(AttribmapError, match="listed twice"):
        Evaluator([PxAP(), "pxap"])
    with pytest.raises(AttribmapError, match="20 px frame"):
        Evaluator([PxAP(image_size=20)], image_size=224).update(raw, masks=masks)
    metrics = create_metrics(["deletion", "insertion"], {"steps": 7, "insertion.baseline": "zeros"})
    assert [m.steps for m in metrics] == [7, 7] and [m.baseline for m in metrics] == ["zeros", "zeros"]


class _MeanValue(Metric):
    """A toy metric: mean map value in the frame (percent)."""

    name = "mean_value"

    def _new_state(self):
        return {"count": np.zeros((), np.int64), "sum255": np.zeros((), np.int64)}

    def _config(self):
        return ()

    @property
    def info(self):
        return MetricInfo(name=self.name, title="mean value", family="localization", needs=(),
                          columns=(Column("MeanValue", "mean value"),))

    def update(self, frame):
        self._state["sum255"] += int(frame.s8().astype(np.int64).sum())
        self._state["count"] += frame.maps.size
        return self

    def compute(self):
        return {"MeanValue": 100.0 * int(self._state["sum255"]) / 255 / self._count()}


def test_a_registered_metric_reaches_the_evaluator_and_the_report(monkeypatch):
    from attribmap.bench.report import results_table

    monkeypatch.setattr(registry_module, "_EXTRA", {})
    register_metric("mean_value", _MeanValue)
    assert "mean_value" in metric_names()
    with pytest.raises(AttribmapError, match="taken"):
        register_metric("boxes", _MeanValue)
    maps = np.zeros((1, 4, 4))
    maps[0, :2] = 1.0
    evaluator = Evaluator(["mean_value"], image_size=4)
    evaluator.update(Framer(4).frame(maps, preprocessed=True))
    scores = evaluator.scores()
    assert scores == {"MeanValue": 50.0}
    results = {"protocol": {"name": "official", "delta": 0.01, "frame_size": 4},
               "dataset": {"split": "test", "num_images": 1},
               "metrics": [info.as_dict() for info in evaluator.infos()],
               "extractors": {"toy": dict(scores, maps_per_s=2.0)}}
    assert "| toy | 50.0 | 2.0 |" in results_table(results).splitlines()
    assert MetricInfo.from_dict(results["metrics"][0]) == evaluator.infos()[0]
