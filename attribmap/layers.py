"""Find the layer to tap: by dotted name, by module object, or automatically.

The automatic choice is ``model.cam_layer`` when the model declares one (attribmap's own
WSOL backbones do); otherwise :func:`auto_layer` watches the model's forward pass on a
shadow copy on the ``meta`` device (shapes only: no extra real forward pass, nothing of the
model changes) and picks the last map feeding global pooling, or for token models (ViT) the
input of the last block. docs/auto_layers.rst lists the choice for every torchvision
classifier.
"""
from __future__ import annotations

import copy
import difflib
import weakref
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from attribmap.errors import LayerError
from attribmap.hooks import forward_hooks
from attribmap.tokens import GridLayout, read_layout

__all__ = ["resolve_layer", "layer_name", "auto_layer", "choose_layer", "watch", "meta_shadow", "Event", "POOLING_LAYERS",
           "SKIPPED_LAYERS"]

LayerSpec = Union[str, nn.Module, None]

#: Pooling modules: never the automatic layer (their output, and what reads it in place, is passed over).
POOLING_LAYERS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.LPPool2d)
#: Never the automatic choice themselves: normalizations and layout-only modules (the block
#: before them is chosen).
SKIPPED_LAYERS = (nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm, nn.modules.batchnorm._NormBase, nn.Flatten,
                  nn.Identity, nn.Dropout, nn.Dropout2d, nn.AlphaDropout)
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
    """Choose the layer to tap when none is given, without running the model on real data.

    The model's forward pass is *watched* once per input shape (cached) on a shadow copy
    whose parameters and buffers live on the ``meta`` device: shapes only, no arithmetic, and
    nothing of the model changes (batch-norm statistics included, also in training mode).
    If the forward cannot run on the meta device, a model in eval mode is watched on the first
    image instead (a forward pass in eval mode changes no state); in training mode that is
    refused with a :class:`LayerError` asking for ``layer=``.

    The rule on the recorded outputs (in execution order):

    * **CNNs**: the last output that reads as a map of the input with more than one position
      (:func:`attribmap.tokens.read_layout`, channels-first or channels-last), skipping pooling
      layers (and containers whose output is a pooling layer's), normalization layers and
      layout-only modules (permute, flatten, dropout, identity); of several modules returning
      the same tensor (a stage and its last block) the outermost. This is the last map that
      feeds global pooling (``layer4`` of a ResNet, ``features`` of an EfficientNet, past the
      squeeze-and-excitation poolings inside its blocks), and for Swin the output of the last
      stage before its final norm and permute. A module that runs several times (one
      activation module applied at the stem and at the head) is chosen by its last call,
      and that call is the one :class:`attribmap.tap.Tap` reads.
    * **Token models** (token sequences follow the last map, as in a ViT): the input of the
      last block, i.e. the output of the second-to-last block of the last list of repeated
      blocks. A ViT classifies its class token after the last block, so the patch tokens of the
      last block never reach the logits (their gradients are zero).

    Parameters
    ----------
    model : nn.Module
        The classifier.
    example : torch.Tensor
        (N, C, H, W) batch; only its shape (and dtype) is used unless the fallback runs.

    Returns
    -------
    str
        Dotted name of the chosen layer.

    Raises
    ------
    LayerError
        No layer qualifies, or the fallback would need a forward pass in training mode.
    """
    key = (tuple(example.shape[1:]), bool(model.training))
    cached = _AUTO_CACHE.get(model, {}).get(key)
    if cached is not None:
        return cached
    events = watch(model, example)
    chosen = choose_layer(events, model, (int(example.shape[-2]), int(example.shape[-1])))
    _AUTO_CACHE.setdefault(model, {})[key] = chosen
    return chosen


class Event(NamedTuple):
    """One module call of a watched forward pass."""

    name: str
    module: nn.Module
    output: Optional[torch.Tensor]


def watch(model: nn.Module, example: torch.Tensor) -> List[Event]:
    """The module calls of one forward pass of ``model`` on a batch shaped like ``example``,
    watched on its :func:`meta_shadow` (or, if that cannot run, on the first image of a
    model in eval mode; see :func:`auto_layer`)."""
    try:
        shadow = meta_shadow(model)
        probe = torch.empty((2,) + tuple(example.shape[1:]), dtype=example.dtype, device="meta")
        return _record(shadow, probe)
    except Exception as exc:  # the forward needs real data (or the model cannot be copied)
        reason = f"{type(exc).__name__}: {exc}".strip()
    if model.training:
        raise LayerError(f"layer=None: {type(model).__name__} cannot be watched on the meta device ({reason[:200]}), "
                         "and in training mode a forward pass to choose the layer would update batch-norm "
                         "statistics; pass layer= (a dotted name from model.named_modules())")
    with torch.inference_mode(False):
        return _record(model, example[:1])


def _record(model: nn.Module, batch: torch.Tensor) -> List[Event]:
    events: List[Event] = []

    def make_hook(name: str):
        def hook(module, inputs, output):
            events.append(Event(name, module, output if isinstance(output, torch.Tensor) else None))
        return hook

    with forward_hooks({module: make_hook(name) for name, module in model.named_modules() if name}):
        with torch.no_grad():
            model(batch)
    return events


def meta_shadow(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose parameters, buffers and tensor attributes are empty ``meta``
    tensors and which has no hooks: its forward pass computes shapes only and touches nothing
    of ``model``."""
    memo: Dict[int, object] = {}
    for module in model.modules():
        for key, value in vars(module).items():
            if "hook" in key and isinstance(value, dict):
                memo[id(value)] = type(value)()
        tensors = [*module._parameters.values(), *module._buffers.values(),
                   *(v for v in vars(module).values() if isinstance(v, torch.Tensor))]
        for tensor in tensors:
            if tensor is None or id(tensor) in memo:
                continue
            empty = torch.empty_like(tensor, device="meta")
            memo[id(tensor)] = nn.Parameter(empty, requires_grad=tensor.requires_grad) \
                if isinstance(tensor, nn.Parameter) else empty
    return copy.deepcopy(model, memo)


def choose_layer(events: Sequence[Event], model: nn.Module, image_size: Tuple[int, int]) -> str:
    """Apply the rule of :func:`auto_layer` to the module calls of one watched forward pass.

    Parameters
    ----------
    events : sequence of Event
        The calls :func:`watch` recorded, in order.
    model : nn.Module
        The watched model (names the modules).
    image_size : (H, W)
        The input's size (decides which outputs are spatial maps).
    """
    from torchvision.ops import StochasticDepth
    from torchvision.ops.misc import Permute

    skipped = SKIPPED_LAYERS + (Permute, StochasticDepth)
    pooled = set()
    maps: List[int] = []
    for index, (name, module, out) in enumerate(events):
        if out is None or out.dim() != 4:
            continue
        if isinstance(module, POOLING_LAYERS):
            pooled.add(id(out))
            continue
        if id(out) in pooled or isinstance(module, skipped):
            continue
        layout = _readable(name, out, module, model, image_size)
        if layout is not None and layout.grid[0] * layout.grid[1] > 1:
            maps.append(index)
    last = maps[-1] if maps else -1
    tokens = [i for i in range(last + 1, len(events)) if events[i].output is not None
              and events[i].output.dim() == 3
              and _readable(events[i].name, events[i].output, events[i].module, model, image_size) is not None]
    if tokens:
        block = _last_block_input(events, tokens)
        if block is not None:
            return block
    if last < 0:
        raise LayerError(f"could not find a layer whose output is a map of the input in {type(model).__name__}; "
                         "pass layer= explicitly")
    return events[last].name


def _readable(name: str, out: torch.Tensor, module: nn.Module, model: nn.Module,
              image_size: Tuple[int, int]) -> Optional[GridLayout]:
    try:
        return read_layout(name, out, module, model, image_size)
    except LayerError:
        return None


def _last_block_input(events: Sequence[Event], token_events: Sequence[int]) -> Optional[str]:
    """Second-to-last block of the last list of >= 2 repeated blocks (same class, same token shape)."""
    children: Dict[str, Dict[str, Tuple[int, type, tuple]]] = {}
    for i in token_events:
        name, module, out = events[i]
        parent = name.rsplit(".", 1)[0] if "." in name else ""
        children.setdefault(parent, {})[name] = (i, type(module), tuple(out.shape))  # its last call
    best: Optional[Tuple[int, str]] = None
    for parent, kids in children.items():
        calls = sorted(kids.items(), key=lambda item: item[1][0])
        if len(calls) < 2 or len({(kind, shape) for _, (_, kind, shape) in calls}) != 1:
            continue
        position = calls[-1][1][0]
        if best is None or position > best[0]:
            best = (position, calls[-2][0])
    return best[1] if best is not None else None
