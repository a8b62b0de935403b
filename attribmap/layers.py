"""Find the layer to tap: by dotted name, by module object, or automatically.

The automatic choice is ``model.cam_layer`` when the model declares one (attribmap's own
WSOL backbones do); otherwise it is found by watching one forward pass: the last module
whose output is 4-D with more than one spatial position before the network first pools
spatially (an output that is 2-D or 1 x 1), skipping pooling layers themselves.
"""
from __future__ import annotations

import difflib
import weakref
from typing import Dict, List, Optional, Tuple, Union

import torch
from torch import nn

from attribmap.errors import LayerError
from attribmap.hooks import forward_hooks

__all__ = ["resolve_layer", "layer_name", "auto_layer"]

LayerSpec = Union[str, nn.Module, None]

_POOLING = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.LPPool2d)
_AUTO_CACHE: "weakref.WeakKeyDictionary[nn.Module, Dict[Tuple[int, ...], str]]" = weakref.WeakKeyDictionary()


def layer_name(model: nn.Module, module: nn.Module) -> str:
    """Dotted name of ``module`` inside ``model`` (``""`` for the model itself)."""
    for name, candidate in model.named_modules():
        if candidate is module:
            return name
    raise LayerError(f"the given module {type(module).__name__} is not part of the model "
                     f"{type(model).__name__}")


def resolve_layer(model: nn.Module, layer: LayerSpec, example: Optional[torch.Tensor] = None) -> Tuple[str, nn.Module]:
    """Resolve ``layer`` to ``(dotted_name, module)``.

    Parameters
    ----------
    model : nn.Module
        The classifier.
    layer : str, nn.Module or None
        A dotted name from ``model.named_modules()`` (``"layer4"``, ``"features.29"``,
        ``"layer4.2.conv3"``), a module of the model, or None for the automatic choice.
    example : torch.Tensor, optional
        (N,C,H,W) batch used for the automatic choice when the model declares no
        ``cam_layer`` (one forward pass without gradients, cached per model and input shape).

    Raises
    ------
    LayerError
        Unknown name (the message lists the closest valid names), a module not in the model,
        or no 4-D layer found automatically.
    """
    if isinstance(layer, nn.Module):
        return layer_name(model, layer), layer
    if layer is None:
        declared = getattr(model, "cam_layer", None)
        if isinstance(declared, str) and declared:
            return resolve_layer(model, declared)
        if example is None:
            raise LayerError("layer=None needs an example batch to choose a layer automatically")
        return resolve_layer(model, auto_layer(model, example))
    if not isinstance(layer, str):
        raise LayerError(f"layer must be a dotted name, a module or None; got {type(layer).__name__}")
    modules = dict(model.named_modules())
    if layer in modules and layer != "":
        return layer, modules[layer]
    names = [n for n in modules if n]
    close = difflib.get_close_matches(layer, names, n=5, cutoff=0.5)
    if not close:
        prefix = layer.rsplit(".", 1)[0]
        close = [n for n in names if n.startswith(prefix)][:5] or names[-5:]
    raise LayerError(f"unknown layer {layer!r} in {type(model).__name__}; closest valid names: "
                     + ", ".join(repr(n) for n in close))


def auto_layer(model: nn.Module, example: torch.Tensor) -> str:
    """Choose the last 4-D layer before global pooling by watching one forward pass."""
    key = tuple(example.shape[1:])
    cached = _AUTO_CACHE.get(model, {}).get(key)
    if cached is not None:
        return cached
    events: List[Tuple[str, nn.Module, Optional[torch.Tensor]]] = []

    def make_hook(name: str):
        def hook(module, inputs, output):
            events.append((name, module, output if isinstance(output, torch.Tensor) else None))
        return hook

    with forward_hooks({module: make_hook(name) for name, module in model.named_modules() if name}):
        with torch.no_grad():
            model(example[:1])
    chosen = None
    pooled_ptrs = set()
    for name, module, out in events:
        if out is None:
            continue
        if out.dim() < 4 or out.shape[-1] * out.shape[-2] <= 1:
            if chosen is not None:
                break
            continue
        if isinstance(module, _POOLING):
            pooled_ptrs.add(out.data_ptr())
            continue
        if out.data_ptr() in pooled_ptrs:  # a container whose output is a pooling layer's
            continue
        chosen = name
    if chosen is None:
        raise LayerError(f"could not find a layer with a 4-D output in {type(model).__name__}; "
                         "pass layer= explicitly")
    _AUTO_CACHE.setdefault(model, {})[key] = chosen
    return chosen
