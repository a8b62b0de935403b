"""Read a tapped layer's output as a spatial map (N, C, h, w), whatever its layout.

Every post-hoc method works on maps (N, C, h, w). Layers of vision transformers output
other layouts, which this module reads without user code:

==================  ==========================  =====================================================
layout              example                     read as
==================  ==========================  =====================================================
channels-first      CNNs: (N, 2048, 7, 7)       as it is
channels-last       torchvision Swin stages:    permuted to (N, C, h, w)
                    (N, 7, 7, 768)
tokens              torchvision ViT blocks:     leading class / register tokens dropped, the h * w
                    (N, 1 + 14 * 14, 768)       patch tokens laid out on their grid
==================  ==========================  =====================================================

**Channels-first or channels-last.** A 4-D output (N, a, b, c) reads as a grid of the
input either channels-first (h, w) = (b, c) or channels-last (h, w) = (a, b). A reading is
*plausible* when one stride s > 0 maps the input's H x W onto h x w within 1.5 pixels per
side (so (N, 7, 7, 768) of a 224 x 224 input can only be channels-last: 768 > 224 columns
would need a stride below 1 on one axis and 32 on the other). When exactly one reading is
plausible it is used; when both are (small maps whose channel count is close to their side),
the module decides: convolution, batch-norm and pooling layers are channels-first; plain
``nn.LayerNorm`` and ``nn.Linear`` act on the last axis (channels-last); torchvision's
``Permute``, Swin blocks and patch merging say what they produce; an ``nn.Sequential``
answers for its last child that tells. With no hint, channels-first (PyTorch's convention).
An output that reads as a grid neither way is refused with a :class:`LayerError`.

**Tokens.** A 3-D output (N, L, C) is a token sequence. Its grid comes from the input size
and the model's patch size (``model.patch_size`` as in torchvision's ``VisionTransformer``,
else the first convolution whose kernel equals its stride, the patch embedding): h = H // p,
w = W // p, and the first L - h * w tokens (class and register tokens) are dropped. Without
a patch size the grid comes from the token count: the fewest leading tokens (at most
:data:`MAX_EXTRA_TOKENS`) whose removal leaves an h x w grid of the input's aspect ratio;
two such readings are refused as ambiguous.

**Your own rule.** ``reshape=`` (on :class:`~attribmap.Explainer`, :func:`~attribmap.explain`
and :class:`~attribmap.tap.Tap`) overrides the reading: ``"channels-first"``,
``"channels-last"``, ``"tokens"``, or a callable ``reshape(output) -> (N, C, h, w)``. A
callable may only select and rearrange entries (slicing, ``permute``, ``reshape``, as
pytorch-grad-cam's ``reshape_transform``): attribmap applies it to the activations *and* to
their gradients, and checks it on a random probe tensor (a callable that mixes entries, an
average for example, is refused). A mapping ``{layer name: rule}`` gives one rule per layer.

The tap records the layer's output in its own layout (its gradients are taken there, the
layers downstream see it unchanged); the capture presents both through :meth:`GridLayout.to_grid`.

Examples
--------
>>> import torch
>>> tokens = torch.arange(2 * 5 * 3.).view(2, 5, 3)           # 1 class token + 2 x 2 patches
>>> layout = read_layout("block", tokens, None, None, (32, 32), patch_size=(16, 16))
>>> layout.kind, layout.grid, layout.extra_tokens
('tokens', (2, 2), 1)
>>> layout.to_grid(tokens).shape
torch.Size([2, 3, 2, 2])
>>> read_layout("stage", torch.zeros(1, 7, 7, 768), None, None, (224, 224)).kind
'channels-last'
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from attribmap.errors import LayerError

__all__ = ["GridLayout", "ReshapeRule", "read_layout", "rule_for", "patch_size_of", "plausible_grid",
           "module_layout", "require_positions", "warn_if_patch_tokens_unused", "MAX_EXTRA_TOKENS", "LAYOUTS"]

#: The named rules ``reshape=`` accepts.
LAYOUTS = ("channels-first", "channels-last", "tokens")
#: Most leading (class / register) tokens inferred from a token count alone.
MAX_EXTRA_TOKENS = 8
_SLACK = 1.5  # pixels per side between h and H / s (padding and rounding of strided layers)

ReshapeRule = Union[str, Callable[[torch.Tensor], torch.Tensor]]


@dataclass(frozen=True)
class GridLayout:
    """How one layer's output reads as a map (N, C, h, w).

    Attributes
    ----------
    kind : str
        ``"channels-first"``, ``"channels-last"``, ``"tokens"`` or ``"custom"`` (a callable).
    grid : (int, int)
        (h, w) of the map.
    channels : int
        C of the map.
    extra_tokens : int
        Leading tokens dropped (``"tokens"`` only): the class token, register tokens.
    rule : callable, optional
        The user's ``reshape`` callable (``"custom"`` only).
    """

    kind: str
    grid: Tuple[int, int]
    channels: int
    extra_tokens: int = 0
    rule: Optional[Callable[[torch.Tensor], torch.Tensor]] = None

    def to_grid(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` in the layer's layout (activations or a gradient) -> (N, C, h, w)."""
        if self.kind == "channels-first":
            return tensor
        if self.kind == "channels-last":
            return tensor.permute(0, 3, 1, 2)
        if self.kind == "tokens":
            h, w = self.grid
            patches = tensor[:, self.extra_tokens:, :]
            return patches.transpose(1, 2).reshape(tensor.shape[0], tensor.shape[2], h, w)
        return self.rule(tensor)

    def describe(self) -> str:
        """One phrase for messages: ``"channels-last (N, h, w, C)"`` and the like."""
        if self.kind == "tokens":
            return f"tokens: {self.extra_tokens} leading token(s) dropped, {self.grid[0]} x {self.grid[1]} patch grid"
        return {"channels-first": "channels-first (N, C, h, w)", "channels-last": "channels-last (N, h, w, C)",
                "custom": "the given reshape callable"}[self.kind]


def rule_for(reshape, name: str) -> Optional[ReshapeRule]:
    """The rule of layer ``name`` in a ``reshape=`` argument (None: read it automatically).

    Raises
    ------
    LayerError
        ``reshape`` is not a layout name, a callable, a mapping of them, or None.
    """
    if reshape is None:
        return None
    if isinstance(reshape, Mapping):
        return rule_for(reshape.get(name), name)
    if isinstance(reshape, str):
        if reshape not in LAYOUTS:
            raise LayerError(f"reshape={reshape!r} is not a layout; expected one of {', '.join(LAYOUTS)}, "
                             "a callable output -> (N, C, h, w), or a mapping of layer name to those")
        return reshape
    if callable(reshape):
        return reshape
    raise LayerError(f"reshape must be a layout name ({', '.join(LAYOUTS)}), a callable, a mapping of layer "
                     f"name to those, or None; got {type(reshape).__name__}")


def read_layout(name: str, output, module: Optional[nn.Module], model: Optional[nn.Module],
                image_size: Tuple[int, int], reshape: Optional[ReshapeRule] = None,
                patch_size: Optional[Tuple[int, int]] = None, batch: Optional[int] = None) -> GridLayout:
    """Read the output of layer ``name`` as a map (see the module docstring for the rules).

    Parameters
    ----------
    name : str
        The layer's dotted name (for messages).
    output : torch.Tensor
        What the layer returned, in its own layout.
    module, model : nn.Module, optional
        The layer and the whole model (hints for the layout and the patch size).
    image_size : (int, int)
        (H, W) of the input batch.
    reshape : str or callable, optional
        The rule for this layer (see :func:`rule_for`); None reads it automatically.
    patch_size : (int, int), optional
        Patch size of a token model (default: :func:`patch_size_of` ``(model)``).
    batch : int, optional
        N of the input batch (to refuse sequence-first tokens (L, N, C) clearly).

    Returns
    -------
    GridLayout

    Raises
    ------
    LayerError
        The output is not a tensor of a readable layout; the message says why and how to
        pass ``reshape=``.
    """
    if not isinstance(output, torch.Tensor):
        raise LayerError(f"layer {name!r} ({type(module).__name__}) outputs {type(output).__name__}; expected "
                         "a tensor: a map (N, C, h, w) or (N, h, w, C), or tokens (N, L, C)")
    shape = tuple(output.shape)
    if callable(reshape) and not isinstance(reshape, str):
        return _custom_layout(name, output, reshape)
    if output.dim() == 4:
        return _map_layout(name, shape, module, image_size, forced=reshape)
    if output.dim() == 3 and reshape in (None, "tokens"):
        if patch_size is None and model is not None:
            patch_size = patch_size_of(model)
        return _token_layout(name, shape, image_size, patch_size, batch)
    hint = f" with reshape={reshape!r}" if reshape is not None else ""
    raise LayerError(f"layer {name!r} ({type(module).__name__}) outputs {shape}{hint}; expected a 4-D map "
                     "(N, C, h, w) or (N, h, w, C), or tokens (N, L, C); tap another layer or pass a "
                     "reshape= callable output -> (N, C, h, w)")


def plausible_grid(h: int, w: int, image_size: Tuple[int, int]) -> bool:
    """True when one stride s > 0 maps the input ``image_size`` (H, W) onto (``h``, ``w``) within 1.5 pixels per side."""
    height, width = image_size
    if h < 1 or w < 1:
        return False
    low = max(height / (h + _SLACK), width / (w + _SLACK))
    high = min(height / (h - _SLACK) if h > _SLACK else math.inf, width / (w - _SLACK) if w > _SLACK else math.inf)
    return low <= high


def _map_layout(name: str, shape: Tuple[int, ...], module: Optional[nn.Module], image_size: Tuple[int, int],
                forced: Optional[str]) -> GridLayout:
    n, a, b, c = shape
    first, last = GridLayout("channels-first", (b, c), a), GridLayout("channels-last", (a, b), c)
    if forced == "channels-first":
        return first
    if forced == "channels-last":
        return last
    if forced == "tokens":
        raise LayerError(f"reshape='tokens' needs a 3-D token output (N, L, C); layer {name!r} outputs {shape}")
    first_ok, last_ok = plausible_grid(b, c, image_size), plausible_grid(a, b, image_size)
    if first_ok != last_ok:
        return first if first_ok else last
    if not first_ok:
        raise LayerError(f"layer {name!r} outputs {shape}, which reads as a grid of the {image_size[0]} x "
                         f"{image_size[1]} input neither channels-first ({b} x {c}) nor channels-last ({a} x {b}); "
                         "pass reshape='channels-first', 'channels-last' or a callable output -> (N, C, h, w)")
    hint = module_layout(module) if module is not None else None
    return last if hint == "channels-last" else first


def module_layout(module: nn.Module) -> Optional[str]:
    """The layout the 4-D output of ``module`` has by construction, or None when it does not say."""
    from torchvision.models.convnext import LayerNorm2d
    from torchvision.models.swin_transformer import (PatchMerging, PatchMergingV2, SwinTransformerBlock,
                                                     SwinTransformerBlockV2)
    from torchvision.ops.misc import Permute

    if isinstance(module, (SwinTransformerBlock, SwinTransformerBlockV2, PatchMerging, PatchMergingV2)):
        return "channels-last"
    if isinstance(module, Permute):
        dims = list(module.dims)
        return {(0, 2, 3, 1): "channels-last", (0, 3, 1, 2): "channels-first"}.get(tuple(dims))
    if isinstance(module, LayerNorm2d):
        return "channels-first"
    if type(module) in (nn.LayerNorm, nn.Linear):
        return "channels-last"
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm,
                           nn.LocalResponseNorm, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
                           nn.AdaptiveMaxPool2d, nn.LPPool2d, nn.Upsample, nn.PixelShuffle)):
        return "channels-first"
    if isinstance(module, nn.Sequential):
        for child in reversed(list(module.children())):
            hint = module_layout(child)
            if hint is not None:
                return hint
    return None


def patch_size_of(model: nn.Module) -> Optional[Tuple[int, int]]:
    """(ph, pw) of a token ``model``: ``model.patch_size``, else the first convolution whose kernel equals its stride (> 1), the patch embedding; None when neither exists."""
    declared = getattr(model, "patch_size", None)
    if isinstance(declared, int) and not isinstance(declared, bool) and declared > 0:
        return (declared, declared)
    if isinstance(declared, (tuple, list)) and len(declared) == 2 and all(isinstance(p, int) for p in declared):
        return (int(declared[0]), int(declared[1]))
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and tuple(module.kernel_size) == tuple(module.stride) \
                and min(module.stride) > 1:
            return (int(module.stride[0]), int(module.stride[1]))
    return None


def _token_layout(name: str, shape: Tuple[int, ...], image_size: Tuple[int, int],
                  patch_size: Optional[Tuple[int, int]], batch: Optional[int]) -> GridLayout:
    n, length, channels = shape
    if batch is not None and n != batch:
        raise LayerError(f"layer {name!r} outputs {shape} for a batch of {batch} images; tokens must be "
                         "batch-first (N, L, C) (sequence-first (L, N, C) is not read): pass a reshape= callable")
    height, width = image_size
    if patch_size is not None:
        h, w = height // patch_size[0], width // patch_size[1]
        extra = length - h * w
        if h >= 1 and w >= 1 and 0 <= extra < h * w:
            return GridLayout("tokens", (h, w), channels, extra)
    readings = []
    for extra in range(0, min(MAX_EXTRA_TOKENS, length - 1) + 1):
        grid = _grid_of(length - extra, image_size)
        if grid is not None:
            readings.append((extra, grid))
    if len(readings) == 1:
        extra, grid = readings[0]
        return GridLayout("tokens", grid, channels, extra)
    found = "; ".join(f"{e} leading token(s) + {g[0]} x {g[1]}" for e, g in readings) or "no grid"
    patch = f"patch size {patch_size}" if patch_size is not None else "no patch size"
    raise LayerError(f"cannot tell the token grid of layer {name!r}: {length} tokens of a {height} x {width} "
                     f"input with {patch} read as {found}; pass a reshape= callable output -> (N, C, h, w)")


def _grid_of(count: int, image_size: Tuple[int, int]) -> Optional[Tuple[int, int]]:
    """The grid (h, w) with h * w == count and the input's aspect ratio, if there is one."""
    height, width = image_size
    h = max(1, round(math.sqrt(count * height / width)))
    for candidate in (h - 1, h, h + 1):
        if candidate >= 1 and count % candidate == 0:
            w = count // candidate
            if abs(candidate * width - w * height) <= max(height, width) / 2 and plausible_grid(candidate, w, image_size):
                if candidate * w > 1:
                    return (candidate, w)
    return None


def _custom_layout(name: str, output: torch.Tensor, rule: Callable) -> GridLayout:
    probe = torch.rand(tuple(output.shape), dtype=torch.float64)
    try:
        result = rule(probe)
    except Exception as exc:
        raise LayerError(f"the reshape callable of layer {name!r} failed on a probe of its output shape "
                         f"{tuple(output.shape)}: {exc}") from exc
    if not isinstance(result, torch.Tensor) or result.dim() != 4 or result.shape[0] != output.shape[0]:
        shape = tuple(result.shape) if isinstance(result, torch.Tensor) else type(result).__name__
        raise LayerError(f"the reshape callable of layer {name!r} returned {shape} for its output "
                         f"{tuple(output.shape)}; expected (N, C, h, w) with N = {output.shape[0]}")
    if result.dtype != probe.dtype or not bool(torch.isin(result.flatten(), probe.flatten()).all()) \
            or torch.unique(result).numel() != result.numel():
        raise LayerError(f"the reshape callable of layer {name!r} must only select and rearrange entries "
                         "(slicing, permute, reshape): it is applied to the gradients too, and it mixed, "
                         "repeated or converted entries of a probe tensor")
    return GridLayout("custom", (int(result.shape[2]), int(result.shape[3])), int(result.shape[1]), rule=rule)


def require_positions(name: str, layout: GridLayout, shape: Tuple[int, ...], allow_1x1: bool = False) -> None:
    """Refuse a map with a single position (1 x 1, such as ``avgpool``'s) unless ``allow_1x1``.

    Every map of such a layer is one number per image: constant after upsampling, so it
    localizes nothing (and min-max turns it into zeros).

    Parameters
    ----------
    name : str
        The layer (named in the error).
    layout : GridLayout
        How its output reads as a map.
    shape : tuple of int
        Its output's shape (named in the error).
    allow_1x1 : bool
        Accept a 1 x 1 map.

    Raises
    ------
    LayerError
        ``layout.grid`` is 1 x 1 and ``allow_1x1`` is False.
    """
    if layout.grid[0] * layout.grid[1] == 1 and not allow_1x1:
        raise LayerError(f"layer {name!r} outputs {shape}, a map of a single position (1 x 1): every map there is "
                         "constant and localizes nothing. Tap an earlier layer (layer=None chooses the last map "
                         "before global pooling) or pass allow_1x1=True (--allow-1x1 on the command line) to accept it")


def warn_if_patch_tokens_unused(name: str, layout: GridLayout, grads: Sequence[torch.Tensor]) -> None:
    """Warn when the logits read only the leading tokens of a token layer (zero patch gradients).

    torchvision's ViT classifies its class token after the last block, so the patch tokens of
    the last block never reach the logits: every gradient map there is zero. ``name`` and
    ``layout`` describe the layer, ``grads`` are its gradients in its own layout.
    """
    if layout.kind != "tokens" or layout.extra_tokens == 0:
        return
    extra = layout.extra_tokens
    if all(bool((g[:, extra:] == 0).all()) for g in grads) and any(bool(g[:, :extra].abs().sum() > 0) for g in grads):
        warnings.warn(f"the logits do not depend on the patch tokens of layer {name!r}, only on its leading "
                      f"(class) token(s): every gradient map there is zero. Tap an earlier block (the "
                      "automatic layer choice does)", stacklevel=4)
