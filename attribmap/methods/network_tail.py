"""The part of a network after one layer, as a function: logits = tail(activations).

Ablation-CAM scores thousands of modified activations of one layer; running only what comes
after that layer makes each score cost the head of the network (layer4 -> pool -> fc of a
ResNet) instead of a whole forward pass. :func:`network_tail` splits the model with
:mod:`torch.fx`: the tapped layer is kept as one leaf, every node that depends on its output
goes into the tail, and values the tail needs from before the layer (a residual branch when
an inner layer of a block is tapped) become extra inputs computed once per image by the
head. A tail is trusted only after it reproduces the logits of the recorded activations
(:meth:`NetworkTail.matches`); models that cannot be traced, or whose tail does not
reproduce them, return None and the caller falls back to full forward passes.

Thread safety: torch.fx traces by patching ``torch.nn.Module.__call__`` for the whole
process, so a forward pass that another thread runs *during* the one-time trace of a
(model, layer) fails. The trace holds attribmap's hook lock (no attribmap call registers
its hooks meanwhile) and its result is cached; call :func:`network_tail` once before
starting threads that run other forward passes, or use ``forward="full"``.
"""
from __future__ import annotations

import threading
import weakref
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import fx, nn

from attribmap.hooks import HOOK_LOCK
from attribmap.methods.perturbation import logits_agree
from attribmap.tap import logits_of

__all__ = ["NetworkTail", "network_tail"]

_CACHE: "weakref.WeakKeyDictionary[nn.Module, Dict[Tuple, Optional['NetworkTail']]]" = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


class _KeepLayer(fx.Tracer):
    """Symbolic tracer that keeps ``layer`` (and torch's own modules) as single calls."""

    def __init__(self, layer: str):
        super().__init__()
        self.layer = layer

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return qualified_name == self.layer or super().is_leaf_module(module, qualified_name)


class NetworkTail:
    """``logits = tail(activations, *side_inputs)`` for one model and layer.

    Attributes
    ----------
    head : torch.fx.GraphModule or None
        Computes the side inputs from the model's input (None when the tail needs none).
    tail : torch.fx.GraphModule
        Computes the model's output from the layer's output and the side inputs.
    """

    def __init__(self, head: Optional[fx.GraphModule], tail: fx.GraphModule):
        self.head = head
        self.tail = tail

    def side_inputs(self, images: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """The values from before the layer that the tail reads, (N, ...) each.

        Parameters
        ----------
        images : torch.Tensor
            (N, C_in, H, W) inputs of the model.

        Returns
        -------
        tuple of torch.Tensor
            The side inputs, in the order the tail takes them (empty when it needs none).
        """
        if self.head is None:
            return ()
        with torch.inference_mode():
            out = self.head(images)
        return tuple(out) if isinstance(out, (tuple, list)) else (out,)

    def __call__(self, activations: torch.Tensor, side: Sequence[torch.Tensor] = ()) -> torch.Tensor:
        with torch.inference_mode():
            return logits_of(self.tail(activations, *side))

    def matches(self, activations: torch.Tensor, side: Sequence[torch.Tensor], logits: torch.Tensor) -> bool:
        """True when the tail turns ``activations`` (N, C, h, w) into ``logits`` (N, K).

        Parameters
        ----------
        activations : torch.Tensor
            (N, C, h, w) recorded output of the layer.
        side : sequence of torch.Tensor
            The side inputs of the same images (:meth:`side_inputs`); each must have N rows.
        logits : torch.Tensor
            (N, K) recorded logits to reproduce (rtol 1e-4, atol 1e-5 times their largest
            magnitude, at least 1).
        """
        if any(not isinstance(s, torch.Tensor) or s.dim() == 0 or s.shape[0] != activations.shape[0] for s in side):
            return False  # a side input that is not per-image (a shape, a constant) cannot be batched
        try:
            got = self(activations.clone(), side)
        except Exception:  # noqa: BLE001 - a tail that fails is not used
            return False
        return logits_agree(got, logits)


def _split(model: nn.Module, layer: str) -> Optional[NetworkTail]:
    tracer = _KeepLayer(layer)
    graph = tracer.trace(model)
    calls = [n for n in graph.nodes if n.op == "call_module" and n.target == layer]
    if not calls:
        return None  # the layer is not reached
    start = calls[-1]  # a module that runs several times: after its last call, the one the tap reads
    downstream = {start}
    for node in graph.nodes:  # graph order is topological
        if node is not start and any(arg in downstream for arg in node.all_input_nodes):
            downstream.add(node)
    outputs = [n for n in graph.nodes if n.op == "output"]
    if not outputs or outputs[0] not in downstream:
        return None
    side: List[fx.Node] = []
    for node in graph.nodes:
        if node in downstream and node is not start:
            for arg in node.all_input_nodes:
                if arg not in downstream and arg.op != "get_attr" and arg not in side:
                    side.append(arg)
    tail_graph = fx.Graph()
    env: Dict[fx.Node, fx.Node] = {start: tail_graph.placeholder("activations")}
    for i, node in enumerate(side):
        env[node] = tail_graph.placeholder(f"side_{i}")
    for node in graph.nodes:
        if node.op == "get_attr":
            env[node] = tail_graph.node_copy(node, lambda n: env[n])
        elif node in downstream and node is not start:
            env[node] = tail_graph.node_copy(node, lambda n: env[n])
    tail = fx.GraphModule(tracer.root, tail_graph)
    tail.graph.eliminate_dead_code()
    tail.recompile()
    head = None
    if side:
        head_graph = fx.Graph()
        head_env: Dict[fx.Node, fx.Node] = {}
        for node in graph.nodes:
            if node in downstream or node.op == "output":
                continue
            head_env[node] = head_graph.node_copy(node, lambda n: head_env[n])
        head_graph.output(tuple(head_env[n] for n in side))
        head = fx.GraphModule(tracer.root, head_graph)
        head.graph.eliminate_dead_code()
        head.recompile()
    return NetworkTail(head, tail)


def network_tail(model: nn.Module, layer: str) -> Optional[NetworkTail]:
    """The tail of ``model`` after the module named ``layer``, or None when it cannot be split.

    Cached per model, layer and module structure (replacing a submodule rebuilds it).
    """
    signature = (layer,) + tuple(id(m) for m in model.modules())
    with _LOCK:
        per_model = _CACHE.setdefault(model, {})
        if signature in per_model:
            return per_model[signature]
    try:
        with HOOK_LOCK:
            result = _split(model, layer)
    except Exception:  # noqa: BLE001 - untraceable models (data-dependent control flow, ...) fall back
        result = None
    with _LOCK:
        if len(per_model) >= 16:  # stale structures of a model that keeps changing
            per_model.clear()
        per_model[signature] = result
    return result
