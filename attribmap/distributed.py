"""Process groups and collectives shared by training, evaluation and the benchmark.

Detect torchrun, start/stop the process group, and the few collectives attribmap needs:
mean / broadcast of a float (training), element-wise sums of int64 count arrays
(evaluation accumulators), a barrier.

``torchrun --nproc_per_node=N -m attribmap train ...`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`distributed_session` then starts a
``gloo`` process group on CPU (``nccl`` on CUDA) and ends it on exit. A process group that
already exists (started by the caller) is used as is and left running.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.distributed as dist

__all__ = [
    "DistributedContext",
    "env_requests_distributed",
    "distributed_session",
    "current_context",
    "all_reduce_mean",
    "broadcast_float",
    "barrier",
    "distributed_ready",
    "all_reduce_sum",
]


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: ``enabled`` only inside a process group of size > 1.

    Attributes
    ----------
    enabled : bool
        True when gradients are averaged across ``world_size`` > 1 processes.
    rank, world_size, local_rank : int
        Process index, number of processes, index on this machine.
    device : torch.device
        Device this process trains on (``cuda:local_rank`` on GPUs).
    """

    enabled: bool
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that writes files and shows progress."""
        return self.rank == 0


def env_requests_distributed() -> bool:
    """True when torchrun-style variables ask for more than one process."""
    try:
        return "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError as exc:
        raise ValueError(f"WORLD_SIZE must be an integer, got {os.environ.get('WORLD_SIZE')!r}") from exc


def _resolve_device(device: Union[str, torch.device, None], local_rank: int) -> torch.device:
    try:
        device = torch.device(device if device is not None else "cpu")
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} requested but CUDA is not available here")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank if torch.cuda.device_count() > local_rank else 0)
    return device


def current_context(device: Union[str, torch.device, None] = "cpu") -> DistributedContext:
    """Context of the running process group on ``device`` (single-process context when there is none)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        rank, world = dist.get_rank(), dist.get_world_size()
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
        return DistributedContext(True, rank, world, local_rank, _resolve_device(device, local_rank))
    return DistributedContext(False, 0, 1, 0, _resolve_device(device, 0))


@contextlib.contextmanager
def distributed_session(device: Union[str, torch.device, None] = "cpu") -> Iterator[DistributedContext]:
    """Start a process group when torchrun asked for one; yield this process's context.

    The group is destroyed on exit only when this call created it, so sessions nest.

    Parameters
    ----------
    device : str or torch.device, optional
        The device of this process (``nccl`` on CUDA, ``gloo`` otherwise; ``"cuda"`` without
        an index becomes ``cuda:LOCAL_RANK`` when that device exists).
    """
    created = False
    wanted = _resolve_device(device, int(os.environ.get("LOCAL_RANK", "0")))
    if env_requests_distributed() and dist.is_available() and not dist.is_initialized():
        backend = "nccl" if wanted.type == "cuda" else "gloo"
        if wanted.type == "cuda":
            torch.cuda.set_device(wanted)
        dist.init_process_group(backend=backend, init_method="env://")
        created = True
    try:
        yield current_context(device)
    finally:
        if created and dist.is_initialized():
            dist.destroy_process_group()


def all_reduce_mean(value: float, ctx: DistributedContext) -> float:
    """Mean of the float ``value`` over all processes of ``ctx`` (the value itself when not distributed)."""
    if not ctx.enabled:
        return float(value)
    tensor = torch.tensor([float(value)], dtype=torch.float64, device=_collective_device(ctx))
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return float(tensor.item()) / ctx.world_size


def broadcast_float(value: Optional[float], ctx: DistributedContext, src: int = 0) -> Optional[float]:
    """Rank ``src``'s float ``value`` (or None) on every process of ``ctx``."""
    if not ctx.enabled:
        return value
    tensor = torch.tensor(
        [float("nan") if value is None else float(value), 1.0 if value is None else 0.0],
        dtype=torch.float64, device=_collective_device(ctx),
    )
    dist.broadcast(tensor, src=src)
    return None if tensor[1].item() == 1.0 else float(tensor[0].item())


def barrier(ctx: DistributedContext) -> None:
    """Wait for every process of ``ctx`` (no-op when not distributed)."""
    if ctx.enabled:
        dist.barrier()


def _collective_device(ctx: DistributedContext) -> torch.device:
    return ctx.device if dist.get_backend() == "nccl" else torch.device("cpu")

def distributed_ready() -> bool:
    """True when torch.distributed is available and a default process group exists."""
    return dist.is_available() and dist.is_initialized()


def all_reduce_sum(arrays: Sequence[np.ndarray], process_group=None) -> List[np.ndarray]:
    """Element-wise sum of int64 arrays over all ranks (one ``all_reduce`` call).

    Parameters
    ----------
    arrays : sequence of ndarray (int64)
        The local counts; shapes must agree across ranks.
    process_group : torch.distributed group or None
        None = the default group.

    Returns
    -------
    list of ndarray, int64, the summed arrays (the inputs themselves when torch.distributed
    is not initialized, i.e. a single process).
    """
    if not distributed_ready():
        return [np.asarray(a, dtype=np.int64) for a in arrays]
    sizes = [int(np.asarray(a).size) for a in arrays]
    flat = torch.from_numpy(np.concatenate([np.asarray(a, dtype=np.int64).ravel() for a in arrays]))
    if dist.get_backend(process_group) == "nccl":
        flat = flat.cuda()
    dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=process_group)
    summed = flat.cpu().numpy()
    out, start = [], 0
    for array, size in zip(arrays, sizes):
        out.append(summed[start:start + size].reshape(np.shape(array)).copy())
        start += size
    return out
