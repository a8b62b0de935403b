"""Gradients computed the plain way, as references for the tap's vector-Jacobian products."""
from __future__ import annotations

import torch

__all__ = ["manual_grad"]


def manual_grad(model, layer_module, x, grad_logits_fn):
    """Reference: forward with a plain hook, then autograd.grad of <v, z> wrt the layer output."""
    store = {}

    def hook(m, i, o):
        store["F"] = o
        return o.clone()  # keep the recorded value safe from later in-place ops

    h = layer_module.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            z = model(x)
            v = grad_logits_fn(z.detach())
            (g,) = torch.autograd.grad(z, store["F"], v)
    finally:
        h.remove()
    return store["F"].detach(), z.detach(), g
