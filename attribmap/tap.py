"""Tap a model's layers during one forward pass and serve gradients from the recording.

:class:`Tap` registers forward hooks for one call only and removes them in ``finally``.
The forward pass runs without recording an autograd graph until the first tapped layer
fires; its hook then switches gradient recording on (grad mode is thread-local) and
replaces the layer output by a clone of a fresh leaf tensor (a later tapped layer keeps
its output in that graph, so several layers of one forward all get their gradients).
Consequences:

* nothing before the tapped layer records a graph (cheap, and frozen or inference-mode
  models work);
* in-place operations after the layer (``ReLU(inplace=True)``) modify the clone, never the
  recorded activations;
* gradients are ``torch.autograd.grad`` with respect to the recorded activations only, so no
  parameter ``.grad`` is touched;
* a hook records only the forward pass of the thread that registered it, so concurrent
  calls on one shared model each see their own activations;
* a layer's output is recorded in its own layout (channels-last maps and token sequences of
  vision transformers included) and read as a map (N, C, h, w) by
  :func:`attribmap.tokens.read_layout`: the capture presents activations and gradients on
  that grid, the layers downstream see the output unchanged;
* a module called several times in one forward pass (one ``ReLU`` module applied twice, as
  torchvision's ``BasicBlock`` and the EfficientNet-PyTorch models do) is read at its
  **last call**, the one nearest the logits: its activations, its gradients and every
  method that perturbs the layer (Ablation-CAM's replaced activations) refer to that call.
  Earlier calls of the module are neither recorded nor checked (they may be 1 x 1 or not
  maps at all); :meth:`Capture.calls` says how many calls there were.

:class:`Capture` holds what one forward recorded and computes gradients lazily, caching
them so that several methods share one or two vector-Jacobian products. With several target
classes per image (:mod:`attribmap.targets`) it presents N * T rows, one per image and class.
The tap knows no method: what a method reads beyond activations and pulled-back logit vectors
(ShapleyCAM's Hessian-vector product, FullGrad's gradients of every layer) is a
:class:`~attribmap.gradients.Derivative` request defined next to that method, which
:meth:`Capture.derive` computes once and caches.
"""
from __future__ import annotations

from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from attribmap.errors import InputError, LayerError
from attribmap.gradients import DEFAULT_DGL_ALPHA, NO_GRAPH, SCORE, Derivative, GradientRequest, LossGradient, vjp_rows
from attribmap.hooks import forward_hooks
from attribmap.targets import TargetSpec, interleave_rows, repeat_rows, resolve_targets
from attribmap.tokens import GridLayout, read_layout, require_positions, rule_for, warn_if_patch_tokens_unused

__all__ = ["Tap", "Capture", "resolve_targets", "logits_of"]


class Capture:
    """What one forward pass recorded: activations, logits, targets and cached gradients.

    With one target per image every attribute has one row per image. With several
    (``targets`` (N, T), see :mod:`attribmap.targets`) the capture presents **N * T rows**,
    row ``n * T + j`` being image n explained for class ``targets[n, j]``: ``images``,
    ``logits``, ``targets``, :meth:`activations` and every gradient have N * T rows, so a
    method computes one map per row; the forward pass and the gradients' one batched
    vector-Jacobian product still run on the N images.

    A capture is made by :meth:`Tap.run`; its parameters are what that forward pass recorded.

    Parameters
    ----------
    images : torch.Tensor
        (N, C_in, H, W) input batch.
    activations : mapping of str to torch.Tensor
        Output of each tapped layer in its own layout (the autograd inputs of the gradients).
    logits : torch.Tensor
        (N, K) model outputs, part of the graph that starts at the activations.
    targets : torch.Tensor
        (N,) long class per image, or (N, T) with several classes per image.
    model : nn.Module
        The model that ran (for :meth:`retap` and for requests that run it again).
    layers : mapping of str to nn.Module
        The tapped modules by name.
    layouts : mapping of str to GridLayout, optional
        How each layer's output is read as a map (N, C, h, w); default channels-first.
    tap_options : mapping, optional
        ``reshape`` and ``allow_1x1`` of the recording :class:`Tap`.
    calls : mapping of str to int, optional
        How many times each tapped module ran in the forward pass (default 1); the
        activations are those of the last call.

    Attributes
    ----------
    logits : torch.Tensor
        (rows, K) model outputs (part of an autograd graph that starts at the tapped layers).
    targets : torch.Tensor
        (rows,) long class index per row.
    image_logits : torch.Tensor
        (N, K) logits, one row per image.
    target_table : torch.Tensor
        (N, T) long class table (T = 1 for one target per image).
    multi_target : bool
        True when the call asked for several classes per image (maps come back (N, T, ...)).
    tap_options : dict
        ``reshape`` and ``allow_1x1`` of the :class:`Tap` that recorded it (for further taps).
    """

    def __init__(self, images: torch.Tensor, activations: Mapping[str, torch.Tensor],
                 logits: torch.Tensor, targets: torch.Tensor, model: nn.Module,
                 layers: Mapping[str, nn.Module], layouts: Optional[Mapping[str, GridLayout]] = None,
                 tap_options: Optional[Mapping[str, object]] = None, calls: Optional[Mapping[str, int]] = None):
        self._activations = dict(activations)  # graph inputs, in each layer's own layout
        self._calls = dict(calls or {})
        self._layouts = dict(layouts or {})
        self.tap_options = dict(tap_options or {})
        self.model = model
        self.layers = dict(layers)
        self._grads: Dict[Tuple[str, GradientRequest], torch.Tensor] = {}
        self._derived: Dict[Tuple[str, Derivative], object] = {}
        self._grids: Dict[str, torch.Tensor] = {}
        self.layer = next(iter(self._activations)) if self._activations else None
        # -- several targets per image: rows n * T + j (attribmap.targets) ---------------------
        self.multi_target = targets.dim() == 2
        self.target_table = targets if self.multi_target else targets[:, None]
        self.per_image = self.target_table.shape[1]
        self.image_logits = logits
        self._images = images
        self._row_images: Optional[torch.Tensor] = None
        self.logits = repeat_rows(logits, self.per_image)
        self.targets = self.target_table.reshape(-1)

    @property
    def images(self) -> torch.Tensor:
        """(rows, C_in, H, W) input batch (repeated per target when there are several)."""
        if self._row_images is None:
            self._row_images = repeat_rows(self._images, self.per_image)
        return self._row_images

    # -- activations ------------------------------------------------------------------
    def activations(self, layer: Optional[str] = None) -> torch.Tensor:
        """(rows, C, h, w) activations of ``layer`` (default: the first tapped layer) on its grid."""
        key = self._key(layer)
        grid = self._grids.get(key)
        if grid is None:
            grid = repeat_rows(self.layout(key).to_grid(self._activations[key].detach()), self.per_image)
            self._grids[key] = grid
        return grid

    def layout(self, layer: Optional[str] = None) -> GridLayout:
        """How ``layer``'s output was read as a map (:class:`~attribmap.tokens.GridLayout`)."""
        key = self._key(layer)
        layout = self._layouts.get(key)
        if layout is None:
            shape = self._activations[key].shape
            layout = GridLayout("channels-first", (shape[-2], shape[-1]), shape[1])
        return layout

    def calls(self, layer: Optional[str] = None) -> int:
        """How many times the module of ``layer`` ran in the recorded forward pass.

        The capture holds its **last** call (the activations, their gradients); a method that
        reruns the model and acts on the layer (Ablation-CAM's full forward passes) acts on
        call number ``calls(layer)`` of each pass, counting from 1.

        Parameters
        ----------
        layer : str, optional
            Tapped layer (default: the first one).

        Returns
        -------
        int
            >= 1.
        """
        return int(self._calls.get(self._key(layer), 1))

    @property
    def probabilities(self) -> torch.Tensor:
        """(rows, K) softmax of the logits (no graph)."""
        return torch.softmax(self.logits.detach().float(), dim=1).to(self.logits.dtype)

    def _key(self, layer: Optional[str]) -> str:
        if layer is None:
            if self.layer is None:
                raise LayerError("this capture recorded no layer")
            return self.layer
        if layer not in self._activations:
            raise LayerError(f"layer {layer!r} was not tapped in this capture; tapped: "
                             f"{sorted(self._activations)}")
        return layer

    # -- gradients --------------------------------------------------------------------
    def gradient(self, request: GradientRequest, layer: Optional[str] = None) -> torch.Tensor:
        """The gradient ``request`` asks for, (rows, C, h, w), computed once and cached.

        Parameters
        ----------
        request : GradientRequest
            Which logit-space vector is pulled back (:mod:`attribmap.gradients`).
        layer : str, optional
            Tapped layer (default: the first one).

        Returns
        -------
        torch.Tensor
            (rows, C, h, w) gradient on the layer's grid.
        """
        self.prepare({request}, layer)
        return self._grads[(self._key(layer), request)]

    def score_grad(self, layer: Optional[str] = None) -> torch.Tensor:
        """G^c = d z_c / d F, (rows, C, h, w): gradient of the target **logit**.

        Parameters
        ----------
        layer : str, optional
            Tapped layer (default: the first one).

        Returns
        -------
        torch.Tensor
            (rows, C, h, w) gradient on the layer's grid.
        """
        return self.gradient(SCORE, layer)

    def loss_grad(self, layer: Optional[str] = None, alpha: float = DEFAULT_DGL_ALPHA) -> torch.Tensor:
        """G^L = sum_j p_j dz_j/dF - alpha * dz_c/dF, (rows, C, h, w).

        This is the DGL authors' loss gradient: dL/dz is taken as p - alpha * onehot(c)
        (not autograd of alpha * cross-entropy, which would give alpha * (p - onehot)).

        Parameters
        ----------
        layer : str, optional
            Tapped layer (default: the first one).
        alpha : float
            Weight of the one-hot term (10, as the authors' code).

        Returns
        -------
        torch.Tensor
            (rows, C, h, w) gradient on the layer's grid.
        """
        return self.gradient(LossGradient(alpha), layer)

    def prepare(self, needs: Iterable[GradientRequest], layer: Optional[str] = None) -> None:
        """Compute the requested gradients of ``layer`` in one batched backward pass.

        Every request and every target slot (T of them) is one row of grad outputs of the
        same vector-Jacobian product.

        Parameters
        ----------
        needs : iterable of :class:`~attribmap.gradients.GradientRequest`
            Gradients already in the cache are not recomputed.
        layer : str, optional
            Tapped layer (default: the first one).
        """
        name = self._key(layer)
        missing = [n for n in dict.fromkeys(needs) if (name, n) not in self._grads]
        if not missing:
            return
        for need in missing:
            if not isinstance(need, GradientRequest):
                raise TypeError(f"gradient needs must be GradientRequest objects; got {need!r}")
        z = self.image_logits
        columns = self.target_table.unbind(1)
        rows = [need.grad_output(z.detach(), column).to(z.dtype) for need in missing for column in columns]
        grads = vjp_rows(z, self._activations[name], rows)
        layout = self.layout(name)
        warn_if_patch_tokens_unused(name, layout, grads)
        t = self.per_image
        for i, need in enumerate(missing):
            self._grads[(name, need)] = interleave_rows([layout.to_grid(g) for g in grads[i * t:(i + 1) * t]])

    # -- derived quantities and further passes -----------------------------------------
    def derive(self, request: Derivative, layer: Optional[str] = None):
        """What ``request`` computes from this capture, computed on first use and cached.

        For quantities beyond the batched vector-Jacobian product of :meth:`prepare` (a
        Hessian-vector product, gradients of every layer): the request type lives with the
        method that reads it and computes it with :meth:`Derivative.compute
        <attribmap.gradients.Derivative.compute>`; the capture only caches the result by
        ``(layer, request)``.

        Parameters
        ----------
        request : attribmap.gradients.Derivative
            A hashable request (equal requests share one cache entry).
        layer : str, optional
            Tapped layer (default: the first one).

        Returns
        -------
        object
            What ``request.compute(self, layer)`` returns.
        """
        if not isinstance(request, Derivative):
            raise TypeError(f"derive() needs a Derivative request; got {request!r}")
        key = (self._key(layer), request)
        if key not in self._derived:
            self._derived[key] = request.compute(self, key[0])
        return self._derived[key]

    def graph_input(self, layer: Optional[str] = None) -> torch.Tensor:
        """The recorded output of ``layer`` in its own layout: the tensor the logits' graph starts at.

        For :class:`~attribmap.gradients.Derivative` requests that differentiate through the
        recorded graph themselves (read it as a map with :meth:`layout`).

        Parameters
        ----------
        layer : str, optional
            Tapped layer (default: the first one).

        Returns
        -------
        torch.Tensor
            The leaf tensor (requires grad) the layer produced at its last call.

        Raises
        ------
        LayerError
            The logits do not depend on the layer.
        """
        name = self._key(layer)
        if self.image_logits.grad_fn is None:
            raise LayerError(NO_GRAPH)
        return self._activations[name]

    def retap(self, images: torch.Tensor, targets: Optional[torch.Tensor] = None,
              layers: Optional[Sequence[str]] = None) -> "Capture":
        """One more tapped forward pass of the same model on other inputs.

        For methods that need the layer at perturbed inputs (noisy copies of the images) or
        more layers than were tapped (RefineCAM).

        Parameters
        ----------
        images : torch.Tensor
            (M, C_in, H, W) inputs (M may differ from this capture's N).
        targets : torch.Tensor, optional
            (M,) long classes; default this capture's targets (then M must equal N).
        layers : sequence of str, optional
            Dotted layer names to tap (default: this capture's first layer).

        Returns
        -------
        Capture
        """
        from attribmap.layers import resolve_layer

        names = list(layers) if layers else [self._key(None)]
        modules = {name: self.layers[name] if name in self.layers else resolve_layer(self.model, name)[1]
                   for name in names}
        if targets is None:
            if images.shape[0] != self.targets.shape[0]:
                raise InputError(f"retap of {images.shape[0]} rows needs their targets (this capture has "
                                 f"{self.targets.shape[0]})")
            targets = self.targets
        return Tap(self.model, modules, **self.tap_options).run(images, targets)


class Tap:
    """Record one or more layers of ``model`` during a single forward pass.

    Parameters
    ----------
    model : nn.Module
        The classifier; it is left exactly as found (mode, flags, hooks, grads).
    layers : mapping of name to module
        The layers to record. Each must output a map (N, C, h, w) or (N, h, w, C), or tokens
        (N, L, C), read by :func:`attribmap.tokens.read_layout`.
    reshape : str, callable or mapping, optional
        Overrides that reading: ``"channels-first"``, ``"channels-last"``, ``"tokens"``, a
        callable ``output -> (N, C, h, w)`` that only selects and rearranges entries, or a
        mapping ``{layer name: rule}``.
    allow_1x1 : bool
        Accept layers whose map has a single position (1 x 1, e.g. ``avgpool``); refused by
        default, since every map there is constant.

    Notes
    -----
    A module that runs several times in one forward pass is recorded at its **last** call
    (see the module docstring); only that call must read as a map.
    """

    def __init__(self, model: nn.Module, layers: Mapping[str, nn.Module], reshape=None, allow_1x1: bool = False):
        if not layers:
            raise LayerError("Tap needs at least one layer")
        self.model = model
        self.layers = dict(layers)
        self.reshape = reshape
        self.allow_1x1 = bool(allow_1x1)
        for name in self.layers:
            rule_for(reshape, name)  # a bad reshape= fails before the forward pass

    def run(self, images: torch.Tensor, target=None) -> Capture:
        """Run the forward pass on ``images`` (N, C, H, W) and return a :class:`Capture`.

        ``target``: None (top-1), an int, one class per image, or several classes per image
        (a list of equal-length class lists, a 2-D tensor, or ``"all"``; see
        :mod:`attribmap.targets`), as given or already read into a
        :class:`~attribmap.targets.TargetSpec`.
        """
        wanted = TargetSpec.of(target)
        records: Dict[str, torch.Tensor] = {}
        layouts: Dict[str, GridLayout] = {}
        calls: Dict[str, int] = {}
        unreadable: Dict[str, LayerError] = {}  # the latest call of a module could not be read as a map
        image_size = (int(images.shape[-2]), int(images.shape[-1]))

        def make_hook(names: Sequence[str]):
            def hook(module, inputs, output):
                # every call is recorded in turn, so the records end up holding the last call
                for name in names:
                    calls[name] = calls.get(name, 0) + 1
                try:
                    layout = read_layout(names[0], output, module, self.model, image_size,
                                         rule_for(self.reshape, names[0]), batch=int(images.shape[0]))
                    require_positions(names[0], layout, tuple(output.shape), self.allow_1x1)
                except LayerError as exc:  # an error only if no later call of the module can be read
                    unreadable[names[0]] = exc
                    return None
                unreadable.pop(names[0], None)
                torch.set_grad_enabled(True)
                if output.requires_grad:
                    # downstream of a tapped layer that fired earlier: keep the graph through
                    # this output (a detached leaf would cut the earlier layer's gradients)
                    record = output
                else:
                    record = output.detach().requires_grad_(True)
                for name in names:
                    records[name] = record
                    layouts[name] = layout
                return record.clone()
            return hook

        names_of: Dict[nn.Module, list] = {}
        for name, module in self.layers.items():  # one hook per module, even under two names
            names_of.setdefault(module, []).append(name)
        with forward_hooks({module: make_hook(names) for module, names in names_of.items()}):
            with torch.inference_mode(False):
                if images.is_inference():
                    images = images.clone()
                with torch.no_grad():
                    output = self.model(images)
                    logits = logits_of(output)
        if unreadable:
            raise next(iter(unreadable.values()))
        missing = [name for name in self.layers if name not in records]
        if missing:
            raise LayerError(f"layer(s) {missing} did not run during the forward pass of "
                             f"{type(self.model).__name__}")
        targets = wanted.resolve(logits)
        return Capture(images, records, logits, targets, self.model, self.layers, layouts,
                       {"reshape": self.reshape, "allow_1x1": self.allow_1x1}, calls)


def logits_of(output) -> torch.Tensor:
    """The logits (N, K) in a model's output.

    Parameters
    ----------
    output : Tensor, object with ``.logits``, or tuple / list
        What ``model(x)`` returned: a tensor; torchvision's ``InceptionOutputs`` /
        ``GoogLeNetOutputs`` (their ``logits``); or a sequence whose first item is a tensor.

    Returns
    -------
    torch.Tensor
        (N, K) logits.

    Raises
    ------
    InputError
        The output holds no 2-D tensor of logits.
    """
    if isinstance(output, torch.Tensor):
        logits = output
    elif hasattr(output, "logits"):  # torchvision InceptionOutputs / GoogLeNetOutputs
        logits = output.logits
    elif isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        logits = output[0]
    else:
        raise InputError(f"the model returned {type(output).__name__}; expected logits (N, K)")
    if logits.dim() != 2:
        raise InputError(f"the model's output has shape {tuple(logits.shape)}; expected logits (N, K)")
    return logits
