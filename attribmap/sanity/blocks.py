"""Which blocks a randomization test re-initialises, and how: :func:`randomization_blocks`, :func:`reinitialise`.

The rule (documented, generic):

1. a model may declare its blocks: an attribute ``sanity_blocks``, a sequence of dotted
   module names from the input to the logits;
2. otherwise, starting at the model, while the module has exactly one child that holds
   parameters (a wrapper, e.g. preprocessing around a network), descend into that child;
   the blocks are then its children that hold parameters, in registration order (taken as
   the forward order), an ``nn.ModuleList`` child being replaced by its items (a module
   list has no forward of its own: its items are the network's stages).

For torchvision's ResNet this gives ``conv1, bn1, layer1, ..., layer4, fc``; for an
EfficientNet in the EfficientNet-PyTorch layout ``_conv_stem, _bn0, _blocks.0 .. _blocks.15,
_conv_head, _bn1, _fc``.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
from torch import nn

from attribmap.errors import AttribmapError

__all__ = ["randomization_blocks", "reinitialise", "check_blocks"]


def _has_parameters(module: nn.Module) -> bool:
    return next(module.parameters(), None) is not None


def randomization_blocks(model: nn.Module) -> List[str]:
    """Dotted names of the blocks of ``model``, from the input to the logits (see the module docstring).

    Parameters
    ----------
    model : nn.Module

    Returns
    -------
    list of str

    Raises
    ------
    AttribmapError
        A declared name that is not a module of ``model``, or a model without parameters.
    """
    modules = dict(model.named_modules())
    declared = getattr(model, "sanity_blocks", None)
    if declared is not None:
        names = [str(n) for n in declared]
        unknown = [n for n in names if n not in modules or n == ""]
        if unknown or not names:
            raise AttribmapError(f"{type(model).__name__}.sanity_blocks names {unknown[0]!r}, not a module of the "
                                 "model" if unknown else f"{type(model).__name__}.sanity_blocks is empty")
        return names
    prefix, module = "", model
    while True:
        children = [(name, child) for name, child in module.named_children() if _has_parameters(child)]
        if len(children) != 1 or not any(True for _ in children[0][1].children()) \
                or next(module.parameters(recurse=False), None) is not None:
            break
        prefix, module = f"{prefix}{children[0][0]}.", children[0][1]
    blocks: List[str] = []
    for name, child in module.named_children():
        if not _has_parameters(child):
            continue
        if isinstance(child, nn.ModuleList):
            blocks += [f"{prefix}{name}.{item}" for item, sub in child.named_children() if _has_parameters(sub)]
        else:
            blocks.append(f"{prefix}{name}")
    if next(module.parameters(recurse=False), None) is not None:
        raise AttribmapError(f"{type(module).__name__} holds parameters of its own besides its children: declare "
                             "its blocks as a sanity_blocks attribute (dotted names, input to logits)")
    if not blocks:
        raise AttribmapError(f"{type(model).__name__} has no parameters to randomize")
    return blocks


def _seed_for(seed: int, block: str) -> int:
    """A seed of its own for every block (the same block gets the same weights at every stage)."""
    value = int(seed) & 0xFFFFFFFF
    for char in block:
        value = (value * 1000003 + ord(char)) % (2 ** 63 - 1)
    return value


def reinitialise(model: nn.Module, block: str, seed: int) -> Tuple[int, List[str]]:
    """Re-initialise every module of ``block`` in ``model`` with its own ``reset_parameters`` (in place).

    The global random state is left as found (a forked generator, seeded from ``seed`` and
    the block's name, so the draw is the same whatever else ran before).

    Parameters
    ----------
    model : nn.Module
        The model to change (a copy of the user's: this changes it).
    block : str
        Dotted name of the block.
    seed : int

    Returns
    -------
    (reset, skipped)
        How many modules were re-initialised, and the names of the modules of the block
        that hold parameters of their own but have no ``reset_parameters`` (left as they
        were).
    """
    root = dict(model.named_modules())[block]
    devices = sorted({p.device.index or 0 for p in root.parameters() if p.device.type == "cuda"})
    count, skipped = 0, []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(_seed_for(seed, block))
        for name, module in root.named_modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
                count += 1
            elif next(module.parameters(recurse=False), None) is not None:
                skipped.append(f"{block}.{name}" if name else block)
    return count, skipped


def check_blocks(model: nn.Module, blocks: Sequence[str]) -> List[str]:
    """``blocks`` as a list, each a module name of ``model`` (one-line error naming the first that is not)."""
    modules = dict(model.named_modules())
    names = [str(b) for b in blocks]
    for name in names:
        if name not in modules or name == "":
            raise AttribmapError(f"block {name!r} is not a module of {type(model).__name__}; its blocks: "
                                 f"{', '.join(randomization_blocks(model))}")
    if not names:
        raise AttribmapError("blocks is empty: give at least one block to randomize")
    return names

