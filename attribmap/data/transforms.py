"""Image transforms for WSOL datasets: the official evaluation frame and training recipes.

All transforms take a PIL RGB image and return a float tensor ``(3, size, size)`` normalized
with the ImageNet mean and standard deviation (:data:`attribmap.inputs.IMAGENET_MEAN`,
:data:`attribmap.inputs.IMAGENET_STD`). Ground-truth boxes and masks are *not* transformed
here: datasets return them in original pixels and the evaluator maps them to the frame.
"""
from __future__ import annotations

from typing import Callable

import torch
from torchvision import transforms as T

from attribmap.inputs import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["official_transform", "train_transform", "legacy_transform", "IMAGENET_MEAN", "IMAGENET_STD"]

ImageTransform = Callable[[object], torch.Tensor]


def _check_size(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _to_normalized_tensor() -> list:
    return [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]


def official_transform(size: int = 224) -> ImageTransform:
    """The wsolevaluation test frame: squash-resize to ``size x size`` (bilinear), no crop.

    Parameters
    ----------
    size
        Side of the square frame in pixels (224 in the official protocol).

    Returns
    -------
    callable
        PIL image -> float tensor ``(3, size, size)``, ImageNet-normalized.
    """
    size = _check_size("size", size)
    return T.Compose([T.Resize((size, size)), *_to_normalized_tensor()])


def train_transform(size: int = 224) -> ImageTransform:
    """The wsolevaluation training recipe: squash-resize, random crop, random horizontal flip.

    The image is resized to ``round(size * 256 / 224)`` on both sides (256 for 224), a random
    ``size x size`` crop is taken and flipped left-right with probability 0.5.

    Parameters
    ----------
    size
        Side of the crop in pixels.

    Returns
    -------
    callable
        PIL image -> float tensor ``(3, size, size)``, ImageNet-normalized (random).
    """
    size = _check_size("size", size)
    resized = int(round(size * 256 / 224))
    return T.Compose([
        T.Resize((resized, resized)),
        T.RandomCrop(size),
        T.RandomHorizontalFlip(),
        *_to_normalized_tensor(),
    ])


def legacy_transform(resize: int = 256, crop: int = 224) -> ImageTransform:
    """The legacy (pre-wsolevaluation) test frame: resize to ``resize x resize``, center crop.

    Parameters
    ----------
    resize
        Side after the squash resize (256 in the I2C / DGL papers' code).
    crop
        Side of the center crop (224).

    Returns
    -------
    callable
        PIL image -> float tensor ``(3, crop, crop)``, ImageNet-normalized.
    """
    resize = _check_size("resize", resize)
    crop = _check_size("crop", crop)
    if crop > resize:
        raise ValueError(f"crop ({crop}) must not exceed resize ({resize})")
    return T.Compose([T.Resize((resize, resize)), T.CenterCrop(crop), *_to_normalized_tensor()])
