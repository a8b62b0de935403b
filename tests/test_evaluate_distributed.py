"""Sharded evaluation over two gloo processes equals one pass (torch.distributed all_reduce)."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from attribmap.evaluate import BoxAccuracy, Framer, PointingGame, PxAP
from attribmap.distributed import all_reduce_sum, distributed_ready


def _dataset():
    rng = np.random.default_rng(21)
    raw = rng.normal(size=(4, 7, 7))
    boxes = [np.array([[10, 20, 150, 170]]), np.array([[0, 0, 60, 60], [100, 90, 200, 220]]),
             np.array([[30, 30, 223, 223]]), np.array([[5, 100, 90, 200]])]
    sizes = np.array([[224, 224]] * 4)
    masks = [rng.random((30, 30)) > 0.5 for _ in range(4)]
    correct = np.array([1, 0, 1, 1], dtype=bool)
    return raw, boxes, sizes, masks, correct


def _metrics():
    return BoxAccuracy(delta=0.01), PxAP(delta=0.01), PointingGame()


def _update(metrics, indices):
    raw, boxes, sizes, masks, correct = _dataset()
    boxes_metric, pixel_metric, pointing = metrics
    boxes_metric.update(Framer().frame(raw[indices], boxes=[boxes[i] for i in indices], image_sizes=sizes[indices],
                                       correct=correct[indices]))
    pixel_metric.update(Framer().frame(raw[indices], masks=[masks[i] for i in indices]))
    pointing.update(Framer().frame(raw[indices], boxes=[boxes[i] for i in indices], image_sizes=sizes[indices]))


def _gloo_worker(rank, world_size, store_path, out_dir, prefix, states_of_rank):
    """One process of a gloo group: saves ``states_of_rank(rank, world_size)`` (synced states)."""
    torch.set_num_threads(1)
    store = dist.FileStore(store_path, world_size)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world_size)
    try:
        np.savez(os.path.join(out_dir, f"{prefix}{rank}.npz"), **states_of_rank(rank, world_size))
    finally:
        dist.destroy_process_group()


def _assert_two_ranks_hold(expected, states_of_rank, tmp_path, prefix):
    mp.spawn(_gloo_worker, args=(2, str(tmp_path / f"{prefix}store"), str(tmp_path), prefix, states_of_rank),
             nprocs=2, join=True)
    for rank in range(2):
        got = np.load(tmp_path / f"{prefix}{rank}.npz")
        assert sorted(got.files) == sorted(expected)
        for name, value in expected.items():
            assert np.array_equal(got[name], value), (rank, name)


def _accumulator_states(rank, world_size):
    metrics = _metrics()
    _update(metrics, np.arange(rank, 4, world_size))
    for metric in metrics:
        metric.sync()
    return {f"{type(m).__name__}.{k}": v for m in metrics for k, v in m.state().items()}


def test_two_process_gloo_sync_equals_single_pass(tmp_path):
    single = _metrics()
    _update(single, np.arange(4))
    expected = {f"{type(m).__name__}.{k}": v for m in single for k, v in m.state().items()}
    _assert_two_ranks_hold(expected, _accumulator_states, tmp_path, "rank")


_NEW_METRICS = ["peak_iou", "energy_pointing", "deletion", "insertion", "drop", "road"]
_BATCHES = (slice(0, 2), slice(2, 3), slice(3, 6))


def _faithful_case():
    """Six 12x12 images, their maps, boxes, masks and a small seeded CNN."""
    rng = np.random.default_rng(8)
    images = torch.from_numpy(rng.normal(size=(6, 3, 12, 12)).astype(np.float32))
    maps = rng.normal(size=(6, 5, 5))
    boxes = [np.array([[1, 2, 8, 9]])] * 6
    masks = [rng.random((12, 12)) > 0.5 for _ in range(6)]
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    targets = rng.integers(0, 3, 6)
    return images, maps, boxes, masks, model, targets


def _faithful_evaluator(batches):
    """An evaluator of every new metric fed ``batches`` (slices of the case), images indexed globally."""
    from attribmap.evaluate import Evaluator, ModelInputs

    images, maps, boxes, masks, model, targets = _faithful_case()
    evaluator = Evaluator(_NEW_METRICS, image_size=12,
                          options={"delta": 0.01, "steps": 5, "road.percents": (25, 75), "road.noise": 0.05})
    for part in batches:
        evaluator.update(maps[part], boxes=boxes[part], masks=masks[part], indices=np.arange(6)[part],
                         inputs=ModelInputs(model, images[part], targets[part]))
    return evaluator


def _faithful_states(rank, world_size):
    evaluator = _faithful_evaluator(_BATCHES[rank::world_size]).sync()
    return {f"{m}.{k}": v for m, state in evaluator.state().items() for k, v in state.items()}


def test_two_process_gloo_sync_of_the_new_metrics_equals_single_pass(tmp_path):
    """Batches 0 and 2 on one rank, 1 on the other: float sums would differ in the last bits,
    the exact sums do not."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = _faithful_evaluator(_BATCHES)
    finally:
        torch.set_num_threads(threads)
    expected = {f"{m}.{k}": v for m, state in single.state().items() for k, v in state.items()}
    _assert_two_ranks_hold(expected, _faithful_states, tmp_path, "faithful")
    scores = single.scores()
    assert 0 < scores["Deletion"] < 1 and 0 <= scores["AverageDrop"] <= 100 and scores["PeakIoU"] > 0


def test_sync_is_a_no_op_without_a_process_group():
    assert not distributed_ready()
    arrays = [np.arange(3), np.ones((2, 2), dtype=np.int64)]
    out = all_reduce_sum(arrays)
    assert all(np.array_equal(a, b) for a, b in zip(arrays, out))
    metric = PointingGame().update(Framer().frame(np.ones((1, 3, 3)) * np.arange(9).reshape(1, 3, 3),
                                                  boxes=[np.array([[0, 0, 1, 1]])], image_sizes=[(3, 3)]))
    assert metric.sync().compute()["num_images"] == 1
