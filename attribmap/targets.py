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

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from attribmap.errors import TargetError

__all__ = ["ALL_TARGETS_LIMIT", "TargetSpec", "check_target_form", "is_multi_target", "resolve_targets",
           "resolve_target_table", "repeat_rows", "interleave_rows", "fold_rows"]

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


def check_target_form(target) -> None:
    """Refuse target items that are no class index before any work is done.

    Accepts None, an int, ``"all"`` (checked later), tensors / arrays, and (nested) lists or
    tuples whose items are ints (or integer numpy scalars / 0-d tensors).

    Raises
    ------
    TargetError
        A bool, None, float or string item inside a list, naming its position, e.g.
        ``target=[1, None]`` -> "target[1] is None".
    """
    if target is None or isinstance(target, str):
        return
    if isinstance(target, bool):
        raise TargetError(f"target must be an int class index, not a bool ({target!r})")
    if not isinstance(target, (list, tuple)):
        return
    for position, item in _items(target, "target"):
        if item is None:
            raise TargetError(f"{position} is None; target classes must be integers, one class index per image "
                              "(target=None, not None inside a list, takes the top-1 class of every image); got "
                              f"target={_short(target)}")
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, np.integer)):
            raise TargetError(f"{position} is {item!r} ({type(item).__name__}); target classes must be integers "
                              f"(class indices); got target={_short(target)}")


def _items(target, prefix: str):
    """(``"target[i][j]"``, item) for every leaf of nested lists / tuples / 1-D tensors."""
    for index, item in enumerate(target):
        where = f"{prefix}[{index}]"
        if isinstance(item, (list, tuple)):
            yield from _items(item, where)
        elif isinstance(item, (torch.Tensor, np.ndarray)):
            continue  # tensors: their dtype is checked where they are read
        else:
            yield where, item


def _short(target) -> str:
    text = repr(target)
    return text if len(text) <= 80 else text[:77] + "..."


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


def resolve_targets(target, logits: torch.Tensor) -> torch.Tensor:
    """Targets as a long tensor (N,) on the logits' device (one class per image).

    Parameters
    ----------
    target : None, int, sequence of int or tensor
        None picks the top-1 prediction of each image; an int is used for every image; a
        sequence or tensor gives one class per image.
    logits : torch.Tensor
        (N, K) model outputs.

    Raises
    ------
    TargetError
        A bool, a non-integer dtype, a count other than N, or a class out of range.
    """
    n, k = logits.shape
    if target is None:
        return logits.detach().argmax(dim=1)
    if isinstance(target, bool):
        raise TargetError(f"target must be an int class index, not a bool ({target!r})")
    if isinstance(target, int):
        values = torch.full((n,), target, dtype=torch.long)
    else:
        try:
            values = torch.as_tensor(target)
        except (TypeError, ValueError) as exc:
            raise TargetError(f"target must be None, an int or one int per image; got {target!r}") from exc
        if values.dim() == 0:
            values = values.expand(n)
        if values.dim() != 1 or values.numel() != n:
            raise TargetError(f"target must hold one class per image ({n} images); got shape "
                              f"{tuple(values.shape)}")
        if values.is_floating_point() or values.dtype == torch.bool:
            raise TargetError(f"target classes must be integers; got dtype {values.dtype}")
        values = values.long()
    bad = (values < 0) | (values >= k)
    if bool(bad.any()):
        where = ""
        if not isinstance(target, int) and torch.as_tensor(target).dim() == 1 and n > 1:
            first = int(torch.nonzero(bad)[0, 0])
            where = f" (image {first} of {n})"
        raise TargetError(f"target {values[bad][0].item()}{where} out of range for a model with {k} "
                          f"classes (expected 0..{k - 1})")
    return values.to(logits.device)


@dataclass(frozen=True, eq=False)
class TargetSpec:
    """A call's ``target`` read once: its form, and how it becomes classes once logits exist.

    :meth:`parse` is the one place where the ``target`` of
    :meth:`attribmap.Explainer.explain_many` is interpreted; the tap, the extractors that run on
    their own and the multi-scale passes all read the spec.

    Attributes
    ----------
    value : object
        The target as given (None, an int, one class per image, a class table, ``"all"``),
        or the tensor a previous pass resolved it to.
    multi : bool
        Several classes per image: the maps come back (N, T, ...).

    Examples
    --------
    >>> spec = TargetSpec.parse([[1, 2], [0, 1]])
    >>> spec.multi, spec.resolve(torch.zeros(2, 3)).tolist()
    (True, [[1, 2], [0, 1]])
    >>> TargetSpec.parse(None).resolve(torch.tensor([[0.0, 2.0]])).tolist()
    [1]
    """

    value: Any
    multi: bool

    @classmethod
    def parse(cls, target) -> "TargetSpec":
        """Check ``target``'s form (:func:`check_target_form`) and read it.

        Raises
        ------
        TargetError
            An item that is no class index (the message names its position).
        """
        if isinstance(target, TargetSpec):
            return target
        check_target_form(target)
        return cls.of(target)

    @classmethod
    def of(cls, target) -> "TargetSpec":
        """Read ``target`` without the form check of :meth:`parse` (a spec passes through)."""
        if isinstance(target, TargetSpec):
            return target
        return cls(target, is_multi_target(target))

    @property
    def given(self) -> bool:
        """False for None (the top-1 class of each image)."""
        return self.value is not None

    def resolve(self, logits: torch.Tensor) -> torch.Tensor:
        """The classes, (N,) long, or (N, T) with several per image, on the logits' device.

        Parameters
        ----------
        logits : torch.Tensor
            (N, K) model outputs (None picks their top-1 class).

        Raises
        ------
        TargetError
            See :func:`resolve_targets` and :func:`resolve_target_table`.
        """
        if self.multi:
            return resolve_target_table(self.value, logits)
        return resolve_targets(self.value, logits)

    def unchecked(self, images: int, device: torch.device) -> torch.Tensor:
        """The given classes (N,) without logits to check them against (class-agnostic extractors).

        Parameters
        ----------
        images : int
            N, the number of images.
        device : torch.device
            Where the tensor goes.
        """
        return torch.as_tensor(self.value).long().expand(images).to(device)


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
