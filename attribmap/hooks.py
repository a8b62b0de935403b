"""Forward hooks that live for one call, on one thread: the mechanism every tap shares.

torch's ``RemovableHandle`` ids come from a class counter incremented without a lock, so two
threads registering hooks at the same moment could receive the same id and remove each
other's hook. Every hook attribmap registers goes through :func:`forward_hooks`, which

* registers and removes under one process-wide lock (:data:`HOOK_LOCK`),
* removes the hooks in ``finally`` (an exception in the forward pass leaves none behind),
* wraps each hook so that it ignores forward passes run by other threads: concurrent calls
  on one shared model each see only their own activations.

Examples
--------
>>> import torch
>>> from torch import nn
>>> model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
>>> seen = []
>>> with forward_hooks({model[0]: lambda module, inputs, output: seen.append(output.shape)}):
...     _ = model(torch.zeros(1, 3, 8, 8))
>>> seen
[torch.Size([1, 4, 6, 6])]
>>> model[0]._forward_hooks
OrderedDict()
"""
from __future__ import annotations

import contextlib
import threading
from typing import Callable, Iterator, Mapping

from torch import nn

__all__ = ["HOOK_LOCK", "forward_hooks"]

#: Guards every registration and removal of attribmap's hooks.
HOOK_LOCK = threading.Lock()

Hook = Callable[[nn.Module, tuple, object], object]


def _this_thread_only(hook: Hook, owner: int) -> Hook:
    def filtered(module, inputs, output):
        if threading.get_ident() != owner:
            return None
        return hook(module, inputs, output)
    return filtered


@contextlib.contextmanager
def forward_hooks(hooks: Mapping[nn.Module, Hook]) -> Iterator[None]:
    """Register forward hooks for the duration of a ``with`` block.

    Parameters
    ----------
    hooks : mapping of nn.Module to callable
        ``hook(module, inputs, output)`` per module, as for
        :meth:`torch.nn.Module.register_forward_hook`; a hook may return a replacement
        output. Each hook sees only forward passes run by the thread that entered the block.

    Yields
    ------
    None
        The hooks are registered inside the block and removed when it exits, also when it
        raises.
    """
    owner = threading.get_ident()
    handles = []
    try:
        with HOOK_LOCK:
            for module, hook in hooks.items():
                handles.append(module.register_forward_hook(_this_thread_only(hook, owner)))
        yield
    finally:
        with HOOK_LOCK:
            for handle in handles:
                handle.remove()
