"""Build a classifier for the command line: a torchvision model by name, or a checkpoint."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from attribmap.errors import AttribmapError
from attribmap.models.state_files import load_state_dict_file, load_state_into

__all__ = ["load_torchvision_model", "load_classifier", "load_state_dict_file", "load_imagenet_arch", "load_state_into"]


def load_torchvision_model(name: str, weights: Optional[str] = None, num_classes: Optional[int] = None) -> nn.Module:
    """A torchvision classification model by name, in eval mode.

    Parameters
    ----------
    name : str
        A name from ``torchvision.models.list_models(torchvision.models)`` (``resnet50``,
        ``vgg16``, ``inception_v3``, ...).
    weights : str, optional
        None: random initialisation; ``"DEFAULT"`` (or a torchvision weights name): the
        pretrained weights through torchvision (needs them cached or a network); any other
        value is a path to a local ``state_dict`` file, loaded with ``weights_only=True``.
    num_classes : int, optional
        Output classes for a randomly initialised model (ignored with pretrained weights).
    """
    import torchvision

    names = torchvision.models.list_models(module=torchvision.models)
    if name not in names:
        import difflib

        from attribmap.models.zoo import IMAGENET_ARCHS

        close = difflib.get_close_matches(name, sorted(IMAGENET_ARCHS) + list(names), n=4)
        raise AttribmapError(f"unknown model {name!r} (neither torchvision's nor one of attribmap's ImageNet "
                             f"classifiers, {', '.join(sorted(IMAGENET_ARCHS))})" +
                             (f"; did you mean {', '.join(close)}?" if close else ""))
    kwargs = {}
    if name in ("inception_v3", "googlenet"):
        kwargs["init_weights"] = False
    if weights is not None and not _is_path_like(weights):
        try:
            model = torchvision.models.get_model(name, weights=weights)
        except Exception as exc:  # download impossible offline, unknown enum name ...
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise AttribmapError(f"could not load torchvision weights {weights!r} for {name} ({first}); "
                                 "named weights are downloaded unless already in torch's cache "
                                 f"({torch.hub.get_dir()}/checkpoints): offline, pass a local state_dict file "
                                 "instead") from exc
        return model.eval()
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    model = torchvision.models.get_model(name, weights=None, **kwargs)
    if weights is not None:
        load_state_into(model, load_state_dict_file(weights), weights, name)
    return model.eval()


def _is_path_like(value: str) -> bool:
    return os.sep in value or value.endswith((".pt", ".pth", ".bin", ".ckpt")) or os.path.exists(value)


def load_classifier(model: Optional[str] = None, weights: Optional[str] = None,
                    checkpoint: Optional[str] = None) -> nn.Module:
    """The model for a CLI command: a checkpoint from ``attribmap train`` or a torchvision name.

    Parameters
    ----------
    model : str, optional
        A torchvision classifier name (``"resnet50"``), or one of attribmap's own ImageNet
        classifiers (``"efficientnet_lite0"``, ``_lite1``, ``_lite2``: :func:`load_imagenet_arch`).
    weights : str, optional
        Its pretrained weights (``"DEFAULT"``; None: random initialisation) or a local
        ``state_dict`` file.
    checkpoint : str, optional
        A checkpoint file instead of ``model`` (exactly one of the two).
    """
    if checkpoint is not None:
        if model is not None:
            raise AttribmapError("give either --checkpoint or --model, not both")
        from attribmap.models.checkpoint import load_model

        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint not found: {str(path)!r}")
        return load_model(path).eval()
    if model is None:
        raise AttribmapError("give --model NAME (a torchvision model) or --checkpoint CKPT")
    from attribmap.models.zoo import IMAGENET_ARCHS

    if model in IMAGENET_ARCHS:
        return load_imagenet_arch(model, weights)
    return load_torchvision_model(model, weights)


def load_imagenet_arch(name: str, weights: Optional[str] = None) -> nn.Module:
    """One of attribmap's own ImageNet classifiers (``efficientnet_lite0``, ``_lite1``, ``_lite2``), in eval mode.

    Parameters
    ----------
    name : str
        A name in :data:`attribmap.models.zoo.IMAGENET_ARCHS`.
    weights : str, optional
        None: random initialisation (1000 classes); ``"DEFAULT"``: the ImageNet weights of the
        installed weights package (``attribmap[pretrained]``, offline); any other value is a
        path to a local ``state_dict`` file of the same architecture.
    """
    from attribmap.models.registry import build_model

    if weights is None or not _is_path_like(weights):
        return build_model(name, num_classes=1000, weights=weights).eval()
    model = build_model(name, num_classes=1000)
    load_state_into(model, load_state_dict_file(weights), weights, name)
    return model.eval()
