"""Cut the split a benchmark scores into batches shared out across processes.

Opening the dataset (any format) is :mod:`attribmap.data.formats`.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

from attribmap.errors import AttribmapError

__all__ = ["batch_plan", "batch_items"]


def batch_plan(length: int, batch_size: int, rank: int = 0, world_size: int = 1) -> List[Tuple[int, List[int]]]:
    """The batches one process scores: ``[(batch_number, indices), ...]``.

    The dataset of ``length`` images is cut into consecutive batches of ``batch_size`` (the
    last may be smaller) exactly as in a single-process run, and batch ``b`` goes to rank
    ``b % world_size``. Every image is thus scored in the same batch whatever the number of
    processes, which keeps the maps, and so the summed counts, identical to the
    single-process run.

    Parameters
    ----------
    length, batch_size : int
        Images in the split and images per batch.
    rank, world_size : int
        This process and the number of processes.
    """
    if length < 0 or batch_size < 1 or world_size < 1 or not (0 <= rank < world_size):
        raise AttribmapError(f"bad batch plan: length={length}, batch_size={batch_size}, rank={rank}, "
                             f"world_size={world_size}")
    plan = []
    for number, start in enumerate(range(0, length, batch_size)):
        if number % world_size == rank:
            plan.append((number, list(range(start, min(start + batch_size, length)))))
    return plan


def batch_items(dataset: Any, indices: List[int]) -> Dict[str, Any]:
    """Read items ``indices`` of ``dataset`` and collate them into one batch (``attribmap.data.collate_wsol``)."""
    from attribmap.data import collate_wsol

    return collate_wsol([dataset[i] for i in indices])
