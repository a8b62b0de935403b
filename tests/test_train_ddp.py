"""DistributedDataParallel: 2 CPU processes (gloo) train like one process with twice the batch."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from attribmap.train import OptimConfig, fit, load_checkpoint
from attribmap.train.data import make_loader
from attribmap.distributed import distributed_session

SEED = 5
PER_RANK_BATCH = 4
EPOCHS = 2


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _data() -> TensorDataset:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(32, 5, generator=gen)
    return TensorDataset(x, (x[:, 0] + x[:, 2] > 0).long())


def _model(init_seed: int) -> nn.Module:
    torch.manual_seed(init_seed)
    return nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 2))


def _step(module, batch):
    x, y = batch
    return nn.functional.cross_entropy(module(x), y), {}


def _optim() -> OptimConfig:
    return OptimConfig(name="sgd", lr=0.2, momentum=0.9, weight_decay=0.0, schedule="cosine")


def _worker(rank: int, world: int, port: int, folder: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    # rank 1 starts from other weights: DDP must broadcast rank 0's at the start
    model = _model(0 if rank == 0 else 99)
    with distributed_session("cpu") as ctx:
        assert ctx.enabled and ctx.world_size == world and ctx.rank == rank
        loader = make_loader(_data(), PER_RANK_BATCH, ctx, SEED)
        assert isinstance(loader.sampler, DistributedSampler)
        result = fit(model, _step, loader, epochs=EPOCHS, optim=_optim(), seed=SEED,
                     checkpoint=Path(folder) / "ddp.pt", evaluate_fn=lambda e: float(e), progress=False)
    torch.save({"state": model.state_dict(), "history": result.history}, Path(folder) / f"rank{rank}.pt")
    assert not torch.distributed.is_initialized()


def test_two_gloo_processes_match_one_process_with_the_joint_batch(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for key, value in rank0["state"].items():
        assert torch.equal(value, rank1["state"][key]), key
    assert rank0["history"] == rank1["history"], "epoch means are all-reduced"
    # checkpoints are written by rank 0 only and hold the final weights
    saved = load_checkpoint(tmp_path / "ddp.pt")
    assert saved["epoch"] == EPOCHS
    for key, value in rank0["state"].items():
        assert torch.equal(saved["model"][key], value)
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".pt") == [
        "ddp.last.pt", "ddp.pt", "rank0.pt", "rank1.pt"]

    # one process, batch 2*B drawn in DistributedSampler's (seed + epoch) order: rank r's
    # i-th batch is every other item of the joint i-th batch, so averaged gradients agree
    torch.set_num_threads(1)
    data = _data()
    single = _model(0)
    loader = DataLoader(data, batch_size=2 * PER_RANK_BATCH, drop_last=True,
                        sampler=DistributedSampler(data, num_replicas=1, rank=0, shuffle=True, seed=SEED))
    fit(single, _step, loader, epochs=EPOCHS, optim=_optim(), seed=SEED, progress=False)
    for key, value in single.state_dict().items():
        torch.testing.assert_close(rank0["state"][key], value, rtol=1e-5, atol=1e-6)
    assert not torch.equal(rank0["state"]["0.weight"], _model(0).state_dict()["0.weight"])


def _recipe_worker(rank: int, world: int, port: int, folder: str, suite: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from attribmap.train import train_classifier, train_i2c

    common = dict(epochs=1, batch_size=4, image_size=32, progress=False, seed=1)
    cls_path, cls_history = train_classifier(suite, Path(folder) / "cls.pt", holdout_fraction=0.25, **common)
    i2c_path, i2c_history = train_i2c(suite, Path(folder) / "i2c.pt", **common)
    torch.save({"cls": cls_history["epochs"], "i2c": i2c_history["epochs"]},
               Path(folder) / f"history{rank}.pt")


@pytest.mark.slow
def test_recipes_under_two_gloo_processes(tmp_path):
    from attribmap.data.synthetic import generate_suite

    suite = tmp_path / "suite"
    generate_suite(suite, classes=2, per_class=8, size=32, seed=0, val_per_class=0, test_per_class=0)
    mp.spawn(_recipe_worker, args=(2, _free_port(), str(tmp_path), str(suite)), nprocs=2, join=True)
    h0 = torch.load(tmp_path / "history0.pt", weights_only=True)
    h1 = torch.load(tmp_path / "history1.pt", weights_only=True)
    assert h0 == h1
    # 16 images, 12 after the holdout -> 6 per rank -> 1 step of 4 per rank
    assert h0["cls"][0]["steps"] == 1
    # 8 pairs -> 4 batches of 2 pairs -> 2 per rank
    assert h0["i2c"][0]["steps"] == 2
    bank = load_checkpoint(tmp_path / "i2c.pt")["extra"]["i2c_bank"]
    assert int(bank["counts"].sum()) > 0
