"""Several target classes per image from one forward: the target table and its rows.

``target`` of :func:`attribmap.explain` may name **several classes per image**:

* a list of class lists of equal length, one list per image (``[[3, 7], [1, 2]]``), or a 2-D
  tensor (N, T);
* ``"all"``: every class of the model, for models with at most :data:`ALL_TARGETS_LIMIT`
  outputs.

The maps then come back as (N, T, H, W), map ``[n, j]`` for class ``table[n, j]``. The
capture serves them as N * T *rows*, row ``n * T + j`` being image n with class
``table[n, j]`` (images, activations, logits and targets repeated per target, gradients
computed for every target in the one batched vector-Jacobian product of the call), so
every method computes its maps row by row, unchanged; :func:`fold_rows` turns the rows into
(N, T, ...).

Examples
--------
>>> import torch
>>> logits = torch.zeros(2, 5)
>>> resolve_target_table([[3, 1], [0, 4]], logits).tolist()
[[3, 1], [0, 4]]
>>> resolve_target_table("all", logits).shape
torch.Size([2, 5])
>>> fold_rows(torch.arange(4).view(4, 1), 2).shape
torch.Size([2, 2, 1])
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from attribmap.errors import TargetError

__all__ = ["ALL_TARGETS_LIMIT", "is_multi_target", "resolve_target_table", "repeat_rows", "interleave_rows",
           "fold_rows"]

#: Most classes ``target="all"`` explains (each class costs a map per image).
ALL_TARGETS_LIMIT = 100


def is_multi_target(target) -> bool:
    """True when ``target`` has a several-classes-per-image form: ``"all"``, a 2-D tensor / array, or a list whose items are all lists, tuples or 1-D tensors."""
    if isinstance(target, str):
        return True
    if isinstance(target, (torch.Tensor, np.ndarray)):
        return target.ndim == 2
    if isinstance(target, (list, tuple)) and target:
        return all(isinstance(t, (list, tuple)) or (isinstance(t, (torch.Tensor, np.ndarray)) and t.ndim == 1)
                   for t in target)
    return False


def resolve_target_table(target, logits: torch.Tensor) -> torch.Tensor:
    """The (N, T) long table of target classes on the logits' device.

    Parameters
    ----------
    target : "all", 2-D tensor or array, or list of equal-length class lists
        See the module docstring.
    logits : torch.Tensor
        (N, K) model outputs.

    Raises
    ------
    TargetError
        An unknown string, ``"all"`` for a model with more than :data:`ALL_TARGETS_LIMIT`
        classes, a number of lists other than N, lists of unequal or zero length, classes
        that are not integers or out of range (the message names the image).
    """
    n, k = logits.shape
    if isinstance(target, str):
        if target != "all":
            raise TargetError(f"target {target!r} is not a target form; expected None, an int, one class per "
                              "image, a list of class lists per image, or 'all'")
        if k > ALL_TARGETS_LIMIT:
            raise TargetError(f"target='all' asks for {k} maps per image (the model has {k} classes); at most "
                              f"{ALL_TARGETS_LIMIT} are explained that way: pass a list of classes per image")
        return torch.arange(k, device=logits.device).expand(n, k).clone()
    if isinstance(target, (list, tuple)):
        lengths = [len(t) for t in target]
        if len(set(lengths)) != 1:
            raise TargetError(f"the class lists of target must have one length for every image; got lengths "
                              f"{lengths}")
        if any(isinstance(c, bool) or c is None for t in target for c in (t.tolist() if hasattr(t, "tolist") else t)):
            raise TargetError(f"target classes must be integers; got {target!r}")
    try:
        table = torch.as_tensor(target if not isinstance(target, (list, tuple)) else
                                [t.tolist() if hasattr(t, "tolist") else list(t) for t in target])
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TargetError(f"target must hold integer classes per image; got {target!r}") from exc
    if table.dim() != 2 or table.shape[0] != n:
        raise TargetError(f"a list of class lists needs one list per image ({n} images); got shape "
                          f"{tuple(table.shape)}")
    if table.shape[1] == 0:
        raise TargetError("the class lists of target are empty; give at least one class per image")
    if table.is_floating_point() or table.dtype == torch.bool:
        raise TargetError(f"target classes must be integers; got dtype {table.dtype}")
    table = table.long()
    bad = (table < 0) | (table >= k)
    if bool(bad.any()):
        image, slot = (int(i) for i in bad.nonzero()[0])
        raise TargetError(f"target {int(table[image, slot])} of image {image} is out of range for a model with "
                          f"{k} classes (expected 0..{k - 1})")
    return table.to(logits.device)


def repeat_rows(tensor: torch.Tensor, per_image: int) -> torch.Tensor:
    """``tensor`` (N, ...) -> (N * T, ...) with T = ``per_image``, row n * T + j a copy of row n (no copy when T = 1)."""
    return tensor if per_image == 1 else tensor.repeat_interleave(per_image, dim=0)


def interleave_rows(per_target: Sequence[torch.Tensor]) -> torch.Tensor:
    """``per_target``: T tensors (N, ...), one per target slot -> (N * T, ...) in row order n * T + j."""
    if len(per_target) == 1:
        return per_target[0]
    stacked = torch.stack(list(per_target), dim=1)
    return stacked.reshape(stacked.shape[0] * stacked.shape[1], *stacked.shape[2:])


def fold_rows(rows: torch.Tensor, per_image: int) -> torch.Tensor:
    """``rows`` (N * T, ...) -> (N, T, ...) with T = ``per_image``."""
    return rows.reshape(rows.shape[0] // per_image, per_image, *rows.shape[1:])
