"""Build a classifier for the command line: a torchvision model by name, or a checkpoint."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from attribmap.errors import AttribmapError

__all__ = ["load_torchvision_model", "load_classifier"]


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

        close = difflib.get_close_matches(name, names, n=4)
        raise AttribmapError(f"unknown torchvision model {name!r}" +
                             (f"; did you mean {', '.join(close)}?" if close else ""))
    kwargs = {}
    if name in ("inception_v3", "googlenet"):
        kwargs["init_weights"] = False
    if weights is not None and not _is_path_like(weights):
        try:
            model = torchvision.models.get_model(name, weights=weights)
        except Exception as exc:  # download impossible offline, unknown enum name ...
            raise AttribmapError(f"could not load torchvision weights {weights!r} for {name}: {exc}") from exc
        return model.eval()
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    model = torchvision.models.get_model(name, weights=None, **kwargs)
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"weights file not found: {str(path)!r}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
            state = state["model"]
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            raise AttribmapError(f"weights in {str(path)!r} do not fit {name}: {' '.join(first[:2])}") from exc
    return model.eval()


def _is_path_like(value: str) -> bool:
    return os.sep in value or value.endswith((".pt", ".pth", ".bin", ".ckpt")) or os.path.exists(value)


def load_classifier(model: Optional[str] = None, weights: Optional[str] = None,
                    checkpoint: Optional[str] = None) -> nn.Module:
    """The model for a CLI command: a checkpoint from ``attribmap train`` or a torchvision name."""
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
    return load_torchvision_model(model, weights)
