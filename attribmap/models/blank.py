"""Blank images: inputs that carry no class evidence, and a classifier's entropy on them.

A classifier trained only on images that all contain an object learns a *default class*:
the class it predicts when nothing is there (issue 10: the demo's classifier sent a
mean-grey image to class 1 with p = 0.997). Then an empty mask already keeps that class's
prediction, and mask-based extractors learn nothing for it. Training with blank images and
a uniform target (:class:`attribmap.train.ClassifierRecipe`) removes the default class;
:func:`blank_entropy` measures it (``log K`` nats = uniform, 0 = certain).

Kinds of blank image, in the classifier's normalized input space:

* ``"grey"``: all zeros, i.e. the dataset's mean colour everywhere;
* ``"mean"``: one real image's mean colour, constant over the image.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from attribmap.errors import InputError

__all__ = ["BLANK_KINDS", "blank_images", "blank_count", "blank_entropy"]

BLANK_KINDS = ("grey", "mean")


def blank_count(batch: int, fraction: float) -> int:
    """Blank images added to a batch of ``batch`` real images: ``round(fraction * batch)``, at least 1 when ``fraction > 0``."""
    if fraction <= 0:
        return 0
    return max(1, int(round(float(fraction) * int(batch))))


def blank_images(images: Tensor, count: int, kinds: Sequence[str] = ("grey",)) -> Tensor:
    """``count`` blank images shaped like ``images``, cycling through ``kinds``.

    Parameters
    ----------
    images : Tensor (N,C,H,W)
        The batch's real images (normalized); ``"mean"`` blanks take the mean colour of
        images ``0, 1, ...`` in turn.
    count : int
        Number of blank images (>= 0).
    kinds : sequence of {"grey", "mean"}
        Blank ``i`` is of kind ``kinds[i % len(kinds)]``.

    Returns
    -------
    Tensor (count,C,H,W)
        Same dtype and device as ``images``; no gradient flows to ``images``.
    """
    if images.dim() != 4 or images.shape[0] == 0:
        raise InputError(f"images must be a non-empty (N,C,H,W) batch, got {tuple(images.shape)}")
    unknown = [k for k in kinds if k not in BLANK_KINDS]
    if unknown or not kinds:
        raise InputError(f"blank kinds must be made of {list(BLANK_KINDS)}, got {list(kinds)}")
    n, c, h, w = images.shape
    out = images.new_zeros((int(count), c, h, w))
    colours = images.detach().mean(dim=(2, 3))  # (N,C)
    mean_index = 0
    for i in range(int(count)):
        if kinds[i % len(kinds)] == "mean":
            out[i] = colours[mean_index % n][:, None, None]
            mean_index += 1
    return out


def blank_entropy(model: nn.Module, image_size: int = 128, *, kind: str = "grey",
                  images: Optional[Tensor] = None, normalized: bool = False,
                  device: Optional[torch.device] = None) -> float:
    """Entropy of ``model``'s softmax prediction on a blank image.

    Parameters
    ----------
    model : nn.Module
        A classifier, (N,3,S,S) normalized images -> logits (N,K). Run in eval mode under
        ``torch.no_grad()``; its previous mode is restored.
    image_size : int
        Side S of the blank image.
    kind : {"grey", "mean"}
        ``"grey"``: the all-zero image. ``"mean"``: the mean-colour images of ``images``
        (required), the entropy averaged over them.
    images : Tensor (N,3,H,W), optional
        Real images for ``kind="mean"`` (their size is used, not ``image_size``).
    normalized : bool
        Divide by ``log K``: 1 is the uniform prediction, 0 a certain one.
    device : torch.device, optional
        Where to run (default: the model's parameters' device).

    Returns
    -------
    float
        Entropy in nats (or normalized), ``-sum_c p_c log p_c``.

    Example
    -------
    >>> from attribmap.models import build_model
    >>> model = build_model("resnet18_narrow", 4)
    >>> 0.0 <= blank_entropy(model, 64, normalized=True) <= 1.0
    True
    """
    if kind not in BLANK_KINDS:
        raise InputError(f"kind must be one of {list(BLANK_KINDS)}, got {kind!r}")
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    if kind == "grey":
        batch = torch.zeros(1, 3, int(image_size), int(image_size), device=device)
    else:
        if images is None:
            raise InputError("kind='mean' needs real images (images=...) to take their mean colours")
        batch = blank_images(images.to(device), images.shape[0], ("mean",))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(batch)
    finally:
        model.train(was_training)
    log_p = logits.double().log_softmax(dim=1)
    entropy = float(-(log_p.exp() * log_p).sum(dim=1).mean())
    if normalized:
        classes = logits.shape[1]
        return entropy / math.log(classes) if classes > 1 else 0.0
    return entropy
