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
"""
from __future__ import annotations

from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from attribmap.errors import InputError, LayerError, TargetError
from attribmap.gradients import DEFAULT_DGL_ALPHA, SCORE, GradientRequest, LossGradient
from attribmap.hooks import forward_hooks
from attribmap.targets import interleave_rows, is_multi_target, repeat_rows, resolve_target_table
from attribmap.tokens import GridLayout, read_layout, require_positions, rule_for, warn_if_patch_tokens_unused

__all__ = ["Tap", "Capture", "resolve_targets", "logits_of"]

def resolve_targets(target, logits: torch.Tensor) -> torch.Tensor:
    """Targets as a long tensor (N,) on the logits' device.

    Parameters
    ----------
    target : None, int, sequence of int or tensor
        None picks the top-1 prediction of each image; an int is used for every image; a
        sequence or tensor gives one class per image.
    logits : torch.Tensor
        (N, K) model outputs.
    """
    n, k = logits.shape
    if target is None:
        return logits.detach().argmax(dim=1)
    if isinstance(target, bool):
        raise TargetError(f"target must be an int class index, not a bool ({target!r})")
    if isinstance(target, int):
        values = torch.full((n,), target, dtype=torch.long)
    else:
        try:
            values = torch.as_tensor(target)
        except (TypeError, ValueError) as exc:
            raise TargetError(f"target must be None, an int or one int per image; got {target!r}") from exc
        if values.dim() == 0:
            values = values.expand(n)
        if values.dim() != 1 or values.numel() != n:
            raise TargetError(f"target must hold one class per image ({n} images); got shape "
                              f"{tuple(values.shape)}")
        if values.is_floating_point() or values.dtype == torch.bool:
            raise TargetError(f"target classes must be integers; got dtype {values.dtype}")
        values = values.long()
    bad = (values < 0) | (values >= k)
    if bool(bad.any()):
        where = ""
        if not isinstance(target, int) and torch.as_tensor(target).dim() == 1 and n > 1:
            first = int(torch.nonzero(bad)[0, 0])
            where = f" (image {first} of {n})"
        raise TargetError(f"target {values[bad][0].item()}{where} out of range for a model with {k} "
                          f"classes (expected 0..{k - 1})")
    return values.to(logits.device)


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
        The model that ran (for :meth:`retap` and :meth:`full_gradients`).
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
        grads = _vjp_rows(z, self._activations[name], rows)
        layout = self.layout(name)
        warn_if_patch_tokens_unused(name, layout, grads)
        t = self.per_image
        for i, need in enumerate(missing):
            self._grads[(name, need)] = interleave_rows([layout.to_grid(g) for g in grads[i * t:(i + 1) * t]])

    # =====================================================================================
    # CAM-family extras (issue 12): entries computed on first use and cached, plus helpers
    # that run the model again. Pure additions; nothing above depends on them.
    # =====================================================================================
    def _extras(self) -> dict:
        return self.__dict__.setdefault("_extra_cache", {})

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

    def score_hvp(self, layer: Optional[str] = None, score: str = "logit") -> Tuple[torch.Tensor, torch.Tensor]:
        """The gradient of a per-row score and its Hessian applied to the activations.

        Returns ``(g, H F)`` with ``g = ds/dF`` and ``H F = d/dF <g, F>`` (F held fixed in the
        product), both (rows, C, h, w) on the layer's grid (one row per image and target, as
        :meth:`activations`), from a double backward through this capture's graph
        (cached per layer and score). ``H F`` is zero where the logits are linear in F.

        Parameters
        ----------
        layer : str, optional
            Tapped layer (default: the first one).
        score : {"logit", "rest"}
            s = z_c (the target logit), or ReST, s = z_c - CE(z, c) = z_c + log p_c.
        """
        name = self._key(layer)
        key = ("hvp", name, score)
        cache = self._extras()
        if key in cache:
            return cache[key]
        if score not in ("logit", "rest"):
            raise ValueError(f"score must be 'logit' or 'rest'; got {score!r}")
        feats = self._activations[name]
        if self.image_logits.grad_fn is None:
            raise LayerError("the logits do not depend on the tapped layer; is the layer part of "
                             "the path from input to output?")
        layout = self.layout(name)
        grads, hvps = [], []
        with torch.inference_mode(False), torch.enable_grad():
            z = self.image_logits
            rows = torch.arange(z.shape[0], device=z.device)
            # one double backward per target slot (a normal tensor even in inference mode)
            for column in self.target_table.clone().unbind(1):
                chosen = z[rows, column]
                if score == "rest":
                    chosen = chosen + torch.log_softmax(z.float(), dim=1)[rows, column].to(z.dtype)
                (grad,) = torch.autograd.grad(chosen.sum(), feats, create_graph=True, retain_graph=True,
                                              allow_unused=True)
                if grad is None:
                    grad = torch.zeros_like(feats)
                hvp = None
                if grad.requires_grad:
                    (hvp,) = torch.autograd.grad(grad, feats, grad_outputs=feats.detach(), retain_graph=True,
                                                 allow_unused=True)
                grads.append(layout.to_grid(grad.detach()))
                hvps.append(layout.to_grid(torch.zeros_like(feats) if hvp is None else hvp.detach()))
        result = (interleave_rows(grads), interleave_rows(hvps))
        cache[key] = result
        return result

    def full_gradients(self):
        """Input gradient and bias gradients of every conv / batch-norm layer (FullGrad).

        One extra forward pass of ``images`` that records a graph from the input, and one
        backward pass of the target logits; cached. The bias gradient of a layer is
        ``b * dz_c/dy`` with ``y`` the layer's output (before any in-place activation that
        follows it) and ``b`` its bias: a convolution's ``bias``; for batch norm the
        effective bias ``beta - mu * gamma / sqrt(var + eps)`` of its running statistics.
        A layer that runs several times per forward pass adds one term per call (named
        ``"name#1"``, ``"name#2"``, ...), each at its own resolution.

        Returns
        -------
        attribmap.gradients.FullGradients
        """
        cache = self._extras()
        if "fullgrad" in cache:
            return cache["fullgrad"]
        from attribmap.errors import MethodError
        from attribmap.gradients import FullGradients

        layers = []
        for name, module in self.model.named_modules():
            if isinstance(module, nn.Conv2d) and module.bias is not None:
                layers.append((name, module, module.bias.detach()))
            elif isinstance(module, nn.modules.batchnorm._BatchNorm) and module.bias is not None:
                if module.running_mean is None or module.running_var is None:
                    raise MethodError(f"fullgrad needs the running statistics of batch norm {name!r} "
                                      "(track_running_stats=False leaves its bias undefined)")
                scale = module.weight.detach() / torch.sqrt(module.running_var + module.eps)
                layers.append((name, module, module.bias.detach() - module.running_mean * scale))
        records: Dict[str, list] = {}

        def make_hook(name: str):
            def hook(module, inputs, output):
                records.setdefault(name, []).append(output)  # every call: a reused layer adds its bias each time
                return output.clone()  # an in-place activation downstream must not alter the record
            return hook

        with torch.inference_mode(False), torch.enable_grad():
            x = self.images.detach().clone().requires_grad_(True)
            with forward_hooks({module: make_hook(name) for name, module, _ in layers}):
                z = logits_of(self.model(x))
            rows = torch.arange(z.shape[0], device=z.device)
            targets = self.targets.clone()  # a normal tensor even when the caller is in inference mode
            used = [(name if len(records[name]) == 1 else f"{name}#{k + 1}", bias, out)
                    for name, _, bias in layers for k, out in enumerate(records.get(name, ())) if out.requires_grad]
            grads = torch.autograd.grad(z[rows, targets].sum(), [x] + [out for _, _, out in used],
                                        allow_unused=True)
        input_grad = torch.zeros_like(x) if grads[0] is None else grads[0].detach()
        bias_grads = []
        for (name, bias, _), grad in zip(used, grads[1:]):
            if grad is None or grad.dim() != 4:
                continue
            bias_grads.append((name, grad.detach() * bias.to(grad.dtype).view(1, -1, 1, 1)))
        result = FullGradients(input_grad, tuple(bias_grads))
        cache["fullgrad"] = result
        return result


def _vjp_rows(outputs: torch.Tensor, inputs: torch.Tensor, rows: Sequence[torch.Tensor]) -> Sequence[torch.Tensor]:
    """Vector-Jacobian products of ``outputs`` wrt ``inputs`` for each row of grad outputs."""
    if outputs.grad_fn is None:
        raise LayerError("the logits do not depend on the tapped layer; is the layer part of "
                         "the path from input to output?")
    with torch.enable_grad():
        if len(rows) == 1:
            (grad,) = torch.autograd.grad(outputs, inputs, rows[0], retain_graph=True, allow_unused=True)
            return [_zeros_if_none(grad, inputs)]
        stacked = torch.stack(list(rows))
        try:
            (grad,) = torch.autograd.grad(outputs, inputs, stacked, retain_graph=True,
                                          is_grads_batched=True, allow_unused=True)
            grad = _zeros_if_none(grad, inputs.expand(len(rows), *inputs.shape))
            return list(grad.unbind(0))
        except RuntimeError:
            # some backward formulas have no batching rule: fall back to one VJP per row
            return [_zeros_if_none(torch.autograd.grad(outputs, inputs, row, retain_graph=True,
                                                       allow_unused=True)[0], inputs) for row in rows]


def _zeros_if_none(grad: Optional[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like) if grad is None else grad.detach()


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
        :mod:`attribmap.targets`).
        """
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
        targets = resolve_target_table(target, logits) if is_multi_target(target) else resolve_targets(target, logits)
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
