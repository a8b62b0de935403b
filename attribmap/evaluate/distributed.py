"""Summing accumulator counts across processes with torch.distributed."""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["distributed_ready", "all_reduce_sum"]


def distributed_ready() -> bool:
    """True when torch.distributed is available and a default process group exists."""
    try:
        import torch.distributed as dist  # noqa: PLC0415
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return False
    return dist.is_available() and dist.is_initialized()


def all_reduce_sum(arrays: Sequence[np.ndarray], process_group=None) -> list[np.ndarray]:
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
    import torch  # noqa: PLC0415
    import torch.distributed as dist  # noqa: PLC0415

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
