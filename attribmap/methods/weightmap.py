"""The weight-map generator (Shaharabany & Wolf) as a learned extractor built from its checkpoint.

Registered as ``weightmap``: ``attribmap bench --extractor weightmap=runs/wm.pt`` (alias
``--weightmap runs/wm.pt``) loads the generator and scores ``M = g(I)`` as the raw map
(class-agnostic: it needs no target and no forward pass of the classifier).
"""
from __future__ import annotations

from typing import Union

import torch

from attribmap.methods.base import Extractor

__all__ = ["weightmap_from_checkpoint", "CHECKPOINT_TASKS"]

#: The checkpoint task of a trained generator.
CHECKPOINT_TASKS = ("weightmap",)


def weightmap_from_checkpoint(path: str, device: Union[str, torch.device] = "cpu", **options) -> Extractor:
    """A :class:`~attribmap.learned.WeightMapExtractor` around the generator saved in ``path``.

    Parameters
    ----------
    path : str
        A ``weightmap`` checkpoint written by ``attribmap train weightmap``.
    device : str or torch.device
        Where the generator runs.
    **options
        Passed to :class:`~attribmap.learned.WeightMapExtractor` (e.g. ``name``).
    """
    from attribmap.learned.extractor import WeightMapExtractor
    from attribmap.models.checkpoint import load_model

    return WeightMapExtractor(load_model(path, device=device), **options)
