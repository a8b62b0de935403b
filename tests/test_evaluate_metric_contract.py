"""The contract every registered metric keeps, run over the registry (not a hand list).

For each name in :func:`attribmap.evaluate.metric_names` (collected when the tests are
collected, so a metric added to ``BUILTIN`` is picked up with no change here) two frames
that hold every input a metric can need (boxes, masks, top-1 flags, raw maps, the model and
its images) go through the metric along every path the library takes:

* merge: the state of two halves merged == the state of one metric fed both frames;
* sync: a half synced with the other half's counts (the all-reduce stood in by a sum) ==
  the same state; without a process group ``sync`` changes nothing;
* reset: gives the initial state, and updating again gives the same state as before;
* state: ``load_state(state())`` (numpy or tensors) gives the same state;
* compute: equal on every path (NaN == NaN).

:func:`check_metric_contract` is the tester; ``test_a_metric_registered_from_outside_...``
shows that one module plus one :func:`register_metric` call is all a metric needs.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np
import pytest
import torch
from torch import nn

from attribmap.evaluate import (Column, Framer, Metric, MetricInfo, ModelInputs, create_metrics, metric_info,
                                metric_names, register_metric, unregister_metric)
from attribmap.evaluate import accumulator as accumulator_module
from attribmap.evaluate import registry as registry_module

#: Cheap values for options a metric may take (by option name, for whichever metric takes it).
CHEAP = {"steps": 3, "percents": (30, 70), "delta": 0.05}
COUNT = 6
HALVES = (slice(0, 2), slice(2, COUNT))


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 3)).eval()


def _inputs(seed: int = 0) -> Dict[str, Any]:
    """Raw maps (6, 8, 8), boxes in 40 x 32 images, masks, ignore regions, flags, a model and images."""
    rng = np.random.default_rng(seed)
    boxes = [np.array([[int(x), int(y), int(x) + 12, int(y) + 10]]) for x, y in rng.integers(0, 20, (COUNT, 2))]
    boxes[1] = np.vstack([boxes[1], [[2, 2, 9, 30]]])
    masks = rng.random((COUNT, 20, 20)) > 0.6
    return {"raw": rng.normal(size=(COUNT, 8, 8)), "boxes": boxes, "sizes": np.array([[40, 32]] * COUNT),
            "masks": masks, "ignore": rng.random((COUNT, 20, 20)) > 0.9, "correct": rng.random(COUNT) > 0.4,
            "images": torch.from_numpy(rng.normal(size=(COUNT, 3, 16, 16)).astype(np.float32)),
            "targets": rng.integers(0, 3, COUNT), "model": _model()}


def _build(name: str) -> Metric:
    """Metric ``name`` with the cheap options it takes (and its defaults otherwise)."""
    options = {f"{name}.{o.name}": CHEAP[o.name] for o in metric_info(name).options if o.name in CHEAP}
    return create_metrics([name], options)[0]


def _frames(size: int, data: Dict[str, Any]):
    """The two halves' frames of side ``size`` (every input given)."""
    frames = []
    for part in HALVES:
        inputs = ModelInputs(data["model"], data["images"][part], data["targets"][part], batch_size=4)
        frames.append(Framer(size).frame(
            data["raw"][part], boxes=data["boxes"][part], image_sizes=data["sizes"][part], masks=data["masks"][part],
            ignore=data["ignore"][part], correct=data["correct"][part], inputs=inputs,
            indices=np.arange(COUNT)[part]))
    return frames


def _assert_same_state(ours: Dict[str, np.ndarray], theirs: Dict[str, np.ndarray], what: str) -> None:
    assert sorted(ours) == sorted(theirs), what
    for key, value in theirs.items():
        assert ours[key].dtype == np.int64 and np.array_equal(ours[key], value), f"{what}: state {key!r}"


def _assert_same_result(ours: Any, theirs: Any, what: str) -> None:
    if isinstance(theirs, dict):
        assert sorted(map(str, ours)) == sorted(map(str, theirs)), what
        for key in theirs:
            _assert_same_result(ours[key], theirs[key], f"{what}[{key!r}]")
    elif isinstance(theirs, (np.ndarray, list, tuple)):
        assert np.array_equal(np.asarray(ours), np.asarray(theirs), equal_nan=True), what
    elif isinstance(theirs, float) and np.isnan(theirs):
        assert isinstance(ours, float) and np.isnan(ours), what
    else:
        assert ours == theirs, what


def check_metric_contract(name: str, monkeypatch) -> None:
    """Run the registered metric ``name`` through the state / merge / sync / reset contract."""
    data = _inputs()
    fresh = _build(name)
    initial = fresh.state()
    first, second = _frames(getattr(fresh, "image_size", 16), data)

    whole = _build(name).update(first).update(second)
    expected_state, expected = whole.state(), whole.compute()
    assert fresh.info.name == name and metric_info(name).name == name

    merged = _build(name).update(first).merge(_build(name).update(second))
    _assert_same_state(merged.state(), expected_state, f"{name}: merged halves")
    _assert_same_result(merged.compute(), expected, f"{name}: compute after merge")

    partner = _build(name).update(second).state()
    unsynced = _build(name).update(first)
    _assert_same_state(unsynced.sync().state(), unsynced.state(), f"{name}: sync without a process group")

    def stand_in_all_reduce(arrays, process_group=None):  # rank 0's view of a 2-rank all_reduce
        return [a + partner[key] for a, key in zip(arrays, sorted(partner))]

    monkeypatch.setattr(accumulator_module, "all_reduce_sum", stand_in_all_reduce)
    synced = _build(name).update(first).sync()
    monkeypatch.undo()
    _assert_same_state(synced.state(), expected_state, f"{name}: synced halves")
    _assert_same_result(synced.compute(), expected, f"{name}: compute after sync")

    restored = _build(name).load_state(expected_state)
    _assert_same_state(restored.state(), expected_state, f"{name}: load_state(state())")
    _assert_same_result(restored.compute(), expected, f"{name}: compute after load_state")
    from_tensors = _build(name).load_state({k: torch.from_numpy(v) for k, v in expected_state.items()})
    _assert_same_state(from_tensors.state(), expected_state, f"{name}: load_state of tensors")

    _assert_same_state(whole.reset().state(), initial, f"{name}: reset")
    _assert_same_state(whole.update(first).update(second).state(), expected_state, f"{name}: update after reset")

    info = whole.info
    scores = whole.scores(expected)
    for column in info.columns:  # every column is reported when every input is given
        assert column.value(scores) is not None, f"{name}: column {column.key!r}"
    assert set(whole.series(expected)) <= set(info.curves), f"{name}: series outside info.curves"


@pytest.mark.parametrize("name", metric_names())
def test_every_registered_metric_keeps_the_contract(name, monkeypatch):
    check_metric_contract(name, monkeypatch)


@pytest.mark.parametrize("name", metric_names())
def test_every_registered_metric_declares_its_metadata(name):
    info = metric_info(name)
    assert isinstance(info, MetricInfo) and info.family and info.columns
    assert set(info.default_in) <= {"official", "legacy"}
    assert set(info.default_with) <= {"boxes", "masks", "correct", "mosaic"}
    assert info.needs_model == ("model" in info.needs)
    assert "image_size" not in [o.name for o in info.options]
    for option in info.options:  # each declared default reads back as its own kind
        if option.default is not None and option.kind in ("int", "float", "ints", "floats"):
            text = ",".join(map(str, option.default)) if isinstance(option.default, tuple) else str(option.default)
            assert option.parse(text) == option.default, (name, option.name)


class ToyMeanValue(Metric):
    """A metric defined outside attribmap: mean framed map value times ``scale`` (percent)."""

    name = "toy"

    def __init__(self, scale: float = 1.0, image_size: int = 224) -> None:
        self.scale = float(scale)
        self.image_size = int(image_size)
        super().__init__()

    def _new_state(self):
        return {"count": np.zeros((), np.int64), "sum255": np.zeros((), np.int64)}

    def _config(self):
        return (self.scale, self.image_size)

    @property
    def info(self) -> MetricInfo:
        return MetricInfo(name=self.name, title="toy mean value", family="localization", needs=(),
                          columns=(Column("ToyMean", "toy mean"),))

    def update(self, frame):
        self.check_inputs(frame)
        self._state["sum255"] += int(frame.s8().astype(np.int64).sum())
        self._state["count"] += frame.maps.size
        return self

    def compute(self):
        return {"ToyMean": self.scale * 100.0 * int(self._state["sum255"]) / 255 / self._count()}


@pytest.fixture
def toy():
    register_metric("toy", ToyMeanValue)
    yield "toy"
    unregister_metric("toy")


def test_a_metric_registered_from_outside_keeps_the_contract(toy, monkeypatch):
    assert toy in metric_names() and toy not in registry_module.BUILTIN
    option = metric_info(toy).option("scale")
    assert (option.kind, option.default) == ("float", 1.0)
    check_metric_contract(toy, monkeypatch)


def test_registration_checks_its_name_and_factory():
    from attribmap.errors import AttribmapError

    with pytest.raises(AttribmapError, match="taken by a built-in"):
        register_metric("boxes", ToyMeanValue)
    with pytest.raises(AttribmapError, match="calls itself 'toy'"):
        register_metric("other", ToyMeanValue)
    with pytest.raises(AttribmapError, match="was not added by register_metric"):
        unregister_metric("boxes")
    assert "other" not in metric_names()
