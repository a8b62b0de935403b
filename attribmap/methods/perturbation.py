"""Shared machinery of the methods that score extra forward passes (Score-CAM family, Ablation-CAM).

* options are checked here (:func:`check_batch_size`, :func:`check_count`, :func:`noise_generator`);
* :class:`DistinctRows` maps the rows of a capture to the distinct images among them: a
  capture with several targets per image repeats each image once per target, and one
  perturbed forward of an image serves all its targets (the logits hold every class);
* :func:`target_logits` runs forward passes in chunks of ``batch_size`` rows under
  :func:`torch.inference_mode` and keeps only the logits of the classes asked for.
"""
from __future__ import annotations

import threading
import weakref
from typing import Any, Callable, Iterator, Optional, Sequence, Tuple, TypeVar

import torch
from torch import nn

from attribmap.errors import MethodError
from attribmap.tap import logits_of

__all__ = ["check_batch_size", "check_count", "check_choice", "check_nonnegative", "noise_generator", "draw_normal",
           "DistinctRows", "chunks", "fast_layout", "in_fast_layout", "forward_logits", "logits_agree", "score_classes",
           "run_chunks"]


def check_batch_size(batch_size, name: str = "batch_size") -> int:
    """``batch_size`` as a positive int (a MethodError naming the bad value otherwise).

    Parameters
    ----------
    batch_size : int
        The value to check.
    name : str
        The option's name in the error message.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise MethodError(f"{name} must be a positive int (forward passes per chunk); got {batch_size!r}")
    return batch_size


def check_count(value, name: str) -> int:
    """A positive int option such as ``n_samples``.

    Parameters
    ----------
    value : int
        The value to check (a bool is refused).
    name : str
        The option's name in the error message.

    Raises
    ------
    MethodError
        ``value`` is not an int >= 1.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MethodError(f"{name} must be a positive int; got {value!r}")
    return value


def check_choice(value, name: str, choices: Sequence[str]) -> str:
    """A string option among ``choices``.

    Parameters
    ----------
    value : str
        The value to check.
    name : str
        The option's name in the error message.
    choices : sequence of str
        The accepted values.

    Raises
    ------
    MethodError
        ``value`` is not one of ``choices``.
    """
    if value not in choices:
        raise MethodError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_nonnegative(value, name: str) -> float:
    """A finite float option >= 0 (``sigma``).

    Parameters
    ----------
    value : float
        The value to check (anything ``float()`` accepts, a bool aside).
    name : str
        The option's name in the error message.

    Returns
    -------
    float
        ``value`` as a float.

    Raises
    ------
    MethodError
        ``value`` is not a finite number >= 0.
    """
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise MethodError(f"{name} must be a number >= 0; got {value!r}") from exc
    if not number >= 0 or number == float("inf") or isinstance(value, bool):
        raise MethodError(f"{name} must be a finite number >= 0; got {value!r}")
    return number


def noise_generator(seed=0, generator: Optional[torch.Generator] = None) -> torch.Generator:
    """The CPU generator that draws a stochastic method's noise.

    ``generator`` (a CPU :class:`torch.Generator`) is used as given and advances; otherwise
    a new one seeded with ``seed``, so that equal seeds give equal maps on every device
    (the noise is drawn on the CPU and moved to the input's device).
    """
    if generator is not None:
        if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
            raise MethodError(f"generator must be a CPU torch.Generator; got {generator!r}")
        return generator
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise MethodError(f"seed must be an int; got {seed!r}")
    return torch.Generator().manual_seed(seed)


def draw_normal(shape: Tuple[int, ...], sigma: float, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """sigma * N(0, 1) noise of ``shape`` drawn on the CPU, on ``like``'s device and dtype.

    Parameters
    ----------
    shape : tuple of int
        Shape of the noise.
    sigma : float
        Its standard deviation.
    generator : torch.Generator
        The CPU generator it is drawn from (it advances).
    like : torch.Tensor
        Gives the device and dtype of the result.
    """
    noise = torch.randn(shape, generator=generator)
    return (noise * sigma).to(device=like.device, dtype=like.dtype)


class DistinctRows:
    """The distinct images among the rows of a batch.

    Parameters
    ----------
    images : torch.Tensor
        (N, ...) batch whose rows are compared for exact equality.

    Attributes
    ----------
    index : torch.Tensor
        (U,) row of each distinct image (its first occurrence).
    inverse : torch.Tensor
        (N,) distinct-image number of every row.
    """

    def __init__(self, images: torch.Tensor):
        n = images.shape[0]
        flat = images.detach().reshape(n, -1)
        # a fixed random projection finds the candidate repeats in O(N D); equality confirms them
        probe = torch.randn(flat.shape[1], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        signature = (flat.double() * probe.to(flat.device)).sum(dim=1)
        tolerance = 1e-9 * float(flat.double().abs().sum(dim=1).max()) if n else 0.0
        index: list = []
        inverse = []
        for row in range(n):
            match = None
            if index:
                near = ((signature[index] - signature[row]).abs() <= tolerance).nonzero()[:, 0].tolist()
                match = next((u for u in near if torch.equal(flat[index[u]], flat[row])), None)
            if match is None:
                match = len(index)
                index.append(row)
            inverse.append(match)
        self.index = torch.tensor(index, device=images.device, dtype=torch.long)
        self.inverse = torch.tensor(inverse, device=images.device, dtype=torch.long)

    def __len__(self) -> int:
        return int(self.index.numel())


def chunks(total: int, size: int) -> Iterator[slice]:
    """Consecutive slices of at most ``size`` covering ``range(total)``."""
    for start in range(0, total, size):
        yield slice(start, min(start + size, total))


def fast_layout(x: torch.Tensor) -> torch.Tensor:
    """``x`` in the memory layout convolutions run fastest in on its device.

    On the CPU that is channels-last for 4-D batches (oneDNN's convolutions: a batch of 32
    ResNet-50 inputs at 224 px ran 1.4x faster, 6.1 s against 8.8 s, on one thread); the
    values are the same, only their order in memory changes (and so the rounding of the
    convolutions, by ~1e-7 relative). Elsewhere ``x`` is returned as is.
    """
    if x.dim() == 4 and x.device.type == "cpu":
        return x.contiguous(memory_format=torch.channels_last)
    return x


#: Per model (or network part): whether it ran in channels-last layout (True) or refused it (False).
_ACCEPTS_FAST_LAYOUT: "weakref.WeakKeyDictionary[Any, bool]" = weakref.WeakKeyDictionary()
_LAYOUT_LOCK = threading.Lock()
_T = TypeVar("_T")


def in_fast_layout(owner: Any, run: Callable[..., _T], *tensors: torch.Tensor) -> _T:
    """``run(*tensors)`` with the 4-D tensors in :func:`fast_layout`, where ``owner`` accepts that layout.

    A model that ``.view``-s its 4-D activations (``h.view(h.size(0), -1)``, common in
    hand-written classifiers) fails on channels-last input. The first call for an ``owner``
    tries the fast layout; if that raises a ``RuntimeError`` and the same call in the
    contiguous layout succeeds, the owner is remembered as refusing the fast layout and is
    from then on run contiguous. An error the contiguous layout raises too is raised as is.

    Parameters
    ----------
    owner : object
        What the decision is remembered for (the model, or a part of it such as a network
        tail); held weakly.
    run : callable
        ``run(*tensors) -> result``; called once, or twice when the fast layout fails.
    *tensors : torch.Tensor
        Its tensor arguments; 4-D CPU tensors are laid out as chosen, others passed as is.

    Returns
    -------
    object
        What ``run`` returned.
    """
    def contiguous() -> _T:
        return run(*(t.contiguous() for t in tensors))

    if not any(t.dim() == 4 and t.device.type == "cpu" for t in tensors):
        return run(*tensors)
    with _LAYOUT_LOCK:
        known = _ACCEPTS_FAST_LAYOUT.get(owner)
    if known is False:
        return contiguous()
    if known is True:
        return run(*(fast_layout(t) for t in tensors))
    try:
        result = run(*(fast_layout(t) for t in tensors))
    except RuntimeError:
        result = contiguous()  # raises the model's own error when the layout was not the problem
        accepted = False
    else:
        accepted = True
    with _LAYOUT_LOCK:
        _ACCEPTS_FAST_LAYOUT[owner] = accepted
    return result


def forward_logits(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """Logits (B, K) of one chunk, without recording a graph.

    Parameters
    ----------
    model : nn.Module
        The classifier.
    inputs : torch.Tensor
        (B, C_in, H, W) inputs of the chunk (run in :func:`fast_layout` where the model
        accepts it, see :func:`in_fast_layout`).
    """
    with torch.inference_mode():
        return in_fast_layout(model, lambda x: logits_of(model(x)), inputs)


def logits_agree(got: torch.Tensor, want: torch.Tensor) -> bool:
    """True when ``got`` reproduces the recorded logits ``want`` (both (N, K)).

    The test a rewritten network (a split-off tail, a batch-norm-folded copy) must pass
    before attribmap uses it: equal shapes and ``allclose`` with rtol 1e-4 and atol 1e-5
    times the largest recorded magnitude (at least 1).

    Parameters
    ----------
    got : torch.Tensor
        (N, K) logits of the rewritten network.
    want : torch.Tensor
        (N, K) logits recorded with the model.
    """
    want = want.detach().to(got.dtype)
    scale = float(want.abs().max().clamp_min(1.0)) if want.numel() else 1.0
    return got.shape == want.shape and bool(torch.allclose(got, want, rtol=1e-4, atol=1e-5 * scale))


def score_classes(targets: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The distinct target classes and each row's position among them: ``(classes, position)``.

    Parameters
    ----------
    targets : torch.Tensor
        (N,) long target class per row.

    Returns
    -------
    (classes, position) : tuple of torch.Tensor
        (M,) sorted distinct classes and (N,) index of each row's class in ``classes``.
    """
    classes, position = torch.unique(targets, return_inverse=True)
    return classes, position


def run_chunks(logits_of_chunk: Callable[[slice], torch.Tensor], total: int, batch_size: int,
               classes: torch.Tensor) -> torch.Tensor:
    """The logits of ``classes`` for ``total`` jobs scored ``batch_size`` at a time.

    Parameters
    ----------
    logits_of_chunk : callable
        ``logits_of_chunk(slice) -> (B, K)`` logits of the jobs in the slice.

    Returns
    -------
    torch.Tensor
        (total, len(classes)) logits, in job order.
    """
    out = None
    for part in chunks(total, batch_size):
        logits = logits_of_chunk(part)
        picked = logits.index_select(1, classes.to(logits.device))
        if out is None:
            out = picked.new_empty((total, picked.shape[1]))
        out[part] = picked
    if out is None:
        return torch.empty((0, classes.numel()))
    return out
