"""The public entry points: :func:`explain` and :class:`Explainer`."""
from __future__ import annotations

import warnings
from typing import Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from attribmap.errors import InputError, MethodError
from attribmap.inputs import to_batch
from attribmap.layers import LayerSpec, resolve_layer
from attribmap.methods.base import Extractor, Method
from attribmap.methods.registry import get_method
from attribmap.methods.spec import ExtractorSpec
from attribmap.postprocess import average_scales, postprocess
from attribmap.tap import Capture, Tap, logits_of, resolve_targets

__all__ = ["Explainer", "explain"]

MethodSpec = Union[str, Method, Extractor]


class _Entry(NamedTuple):
    """One method of a call: what runs, its layer override and its options from the spec."""

    extractor: Union[Method, Extractor]
    layer: Optional[str]
    options: Dict[str, object]


def _model_device(model: Optional[nn.Module]) -> Optional[torch.device]:
    if model is None:
        return None
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return None


class Explainer:
    """Localization maps for one model and one (or an automatic) layer.

    Parameters
    ----------
    model : nn.Module
        A classifier returning logits (N, K). It is used in the mode it is in (call
        ``model.eval()`` first for deterministic maps) and is left exactly as found: mode,
        ``requires_grad`` flags, hooks and parameter ``.grad`` are unchanged after each call.
    layer : str, nn.Module or None
        Layer to tap: a dotted name from ``model.named_modules()``, a module, or None for the
        automatic choice (``model.cam_layer`` if declared, else the last 4-D layer before
        global pooling). Methods that declare their own layer (``i2c``) use it when this is None.

    Examples
    --------
    >>> ex = Explainer(model, layer="layer4")                       # doctest: +SKIP
    >>> maps = ex.explain_many(images, ["cam", "gradcam", "dgl"])   # doctest: +SKIP
    >>> maps["dgl"].shape                                           # (N, H, W) in [0, 1]
    """

    def __init__(self, model: nn.Module, layer: LayerSpec = None):
        if not isinstance(model, nn.Module):
            raise InputError(f"model must be a torch.nn.Module; got {type(model).__name__}")
        self.model = model
        self.layer = layer
        if layer is not None:
            resolve_layer(model, layer)  # fail early on a bad name

    # -- public API ---------------------------------------------------------------------
    def explain(self, images, method: MethodSpec = "gradcam", target=None, raw: bool = False,
                scales: Optional[Sequence[float]] = None, close: Optional[int] = None, **options) -> torch.Tensor:
        """Maps of one method; see :func:`attribmap.explain` for the arguments.

        Keyword ``options`` are passed to the method (e.g. ``alpha=5`` for ``dgl``,
        ``n_steps=16`` for ``captum:IntegratedGradients``).
        """
        name = method if isinstance(method, str) else get_method(method).name
        out = self.explain_many(images, [method], target=target, raw=raw, scales=scales, close=close,
                                options={name: options} if options else None)
        return out[name]

    def explain_many(self, images, methods: Iterable[MethodSpec], target=None, raw: bool = False,
                     scales: Optional[Sequence[float]] = None, close: Optional[int] = None,
                     options: Optional[Mapping[str, Mapping]] = None, return_logits: bool = False):
        """Maps of several methods from one forward pass and shared gradients.

        Parameters
        ----------
        images : tensor (C,H,W) / (N,C,H,W), PIL image, ndarray, path, or a list of them
        methods : iterable of names or extractors
            Registered names, optionally as specs ``"name@layer:key=value"`` (a layer
            override and options for that method; see :mod:`attribmap.methods.spec`), or
            :class:`~attribmap.methods.base.Extractor` / ``Method`` objects.
        target : None, int, sequence or tensor
            None = top-1 prediction per image.
        raw : bool
            Return raw maps (N, h, w) at layer resolution, untouched.
        scales : sequence of float, optional
            Multi-scale test: run on the input resized by each factor and average the raw
            maps after resizing them to the raw size of the first scale (targets are fixed by
            the first scale's pass).
        close : int, optional
            Radius of a grey-level morphological closing with a disk applied to the
            upsampled map before normalization (not with ``raw=True``).
        options : mapping, optional
            Per-method keyword options, ``{"dgl": {"alpha": 5}}`` (keyed like ``methods``;
            they override options written in a spec).
        return_logits : bool
            Also return the logits (N, K) of the (first-scale) forward pass.

        Returns
        -------
        dict of str to torch.Tensor
            Method name (as given in ``methods``) -> maps (N, H, W) in [0, 1] (or raw
            (N, h, w)), on the input's device.
            With ``return_logits=True`` a tuple ``(maps, logits)``.
        """
        entries = self._entries(methods)
        if raw and close:
            raise MethodError("close= applies to the final map; it cannot be combined with raw=True")
        input_device = images.device if isinstance(images, torch.Tensor) else None
        batch = to_batch(images, device=_model_device(self.model))
        if self.model.training:
            warnings.warn("the model is in training mode: dropout and batch-norm make maps stochastic "
                          "and batch-norm statistics are updated; call model.eval() first", stacklevel=3)
        scale_list = [1.0] if not scales else [float(s) for s in scales]
        if any(s <= 0 for s in scale_list):
            raise InputError(f"scales must be positive factors; got {list(scales)}")
        per_scale: List[Dict[str, torch.Tensor]] = []
        logits = None
        targets = target
        for s in scale_list:
            x = batch if s == 1.0 else F.interpolate(batch, scale_factor=s, mode="bilinear",
                                                      align_corners=False, recompute_scale_factor=False)
            maps, step_logits, step_targets = self._single_pass(x, entries, targets, options or {})
            if logits is None:
                logits, targets = step_logits, step_targets
            per_scale.append(maps)
        out: Dict[str, torch.Tensor] = {}
        for name in entries:
            raws = [m[name] for m in per_scale]
            rawmap = raws[0] if len(raws) == 1 else average_scales(raws, tuple(raws[0].shape[-2:]))
            result = rawmap.detach() if raw else postprocess(rawmap.detach(), tuple(batch.shape[-2:]), close)
            out[name] = result.to(input_device) if input_device is not None else result
        if return_logits:
            return out, logits.detach() if logits is not None else None
        return out

    def capture(self, images, target=None, layers: Optional[Sequence[LayerSpec]] = None) -> Capture:
        """Run one tapped forward pass and return the :class:`~attribmap.tap.Capture`.

        For callers that compute their own functions of activations and gradients.
        """
        batch = to_batch(images, device=_model_device(self.model))
        specs = list(layers) if layers else [self.layer]
        resolved = dict(resolve_layer(self.model, spec, example=batch) for spec in specs)
        return Tap(self.model, resolved).run(batch, target)

    # -- internals ----------------------------------------------------------------------
    def layer_for(self, method: MethodSpec, images) -> str:
        """The dotted name of the layer ``method`` taps on ``images`` (the automatic choice
        resolved): ``"name@layer"`` specs, then this explainer's layer, then the method's
        own hint (the I2C class-map layer), then the automatic choice.

        Raises
        ------
        MethodError
            ``method`` runs on its own and taps no layer of this model's choosing.
        """
        entry = next(iter(self._entries([method]).values()))
        batch = to_batch(images, device=_model_device(self.model))
        if isinstance(entry.extractor, Method) or getattr(entry.extractor, "uses_layer", False):
            return self._layer_of(entry, batch)[0]
        raise MethodError(f"{getattr(entry.extractor, 'name', method)!r} taps no layer of the model")

    # -- internals ----------------------------------------------------------------------
    def _entries(self, methods: Iterable[MethodSpec]) -> Dict[str, _Entry]:
        if isinstance(methods, (str, Method, Extractor)):
            methods = [methods]
        entries: Dict[str, _Entry] = {}
        for item in methods:
            if isinstance(item, str):
                spec = ExtractorSpec.parse(item)
                if spec.checkpoint is not None:
                    raise MethodError(f"{item!r} names a checkpoint; load the model yourself (explain runs "
                                      "methods on this explainer's model) or use `attribmap bench --extractor`")
                passed = sorted(set(spec.generic_options) & {"scales", "close"})
                if passed:
                    raise MethodError(f"{item!r}: pass {' and '.join(passed)} to explain()/explain_many(), "
                                      "not inside a method name")
                entries[item] = _Entry(get_method(spec.name), spec.layer, spec.method_options)
            else:
                entry = get_method(item)
                entries[entry.name] = _Entry(entry, None, {})
        if not entries:
            raise MethodError("no methods given")
        return entries

    def _layer_of(self, entry: _Entry, batch: torch.Tensor) -> Tuple[str, nn.Module]:
        spec = entry.layer if entry.layer is not None else self.layer
        hint = getattr(entry.extractor, "layer_hint", None)
        if spec is None and hint is not None:
            spec = hint(self.model)
        return resolve_layer(self.model, spec, example=batch)

    def _single_pass(self, batch: torch.Tensor, entries: Mapping[str, _Entry], target,
                     options: Mapping[str, Mapping]):
        posthoc = {n: e for n, e in entries.items() if isinstance(e.extractor, Method)}
        others = {n: e for n, e in entries.items() if not isinstance(e.extractor, Method)}
        kwargs_of = {n: {**e.options, **dict(options.get(n, {}))} for n, e in entries.items()}
        maps: Dict[str, torch.Tensor] = {}
        logits = None
        targets = None
        if posthoc:
            layer_of = {n: self._layer_of(e, batch) for n, e in posthoc.items()}
            capture = Tap(self.model, dict(layer_of.values())).run(batch, target)
            logits, targets = capture.logits.detach(), capture.targets
            needs: Dict[str, set] = {}
            for n, e in posthoc.items():
                needs.setdefault(layer_of[n][0], set()).update(e.extractor.needs_for(kwargs_of[n]))
            for layer_name, requests in needs.items():
                if requests:
                    capture.prepare(requests, layer_name)
            for n, e in posthoc.items():
                result = e.extractor.fn(capture, layer_of[n][0], **kwargs_of[n])
                maps[n] = self._check_raw(n, result, batch)
            del capture
        if others:
            if targets is None:
                if any(e.extractor.needs_target for e in others.values()):
                    logits, targets = self._plain_targets(batch, target)
                elif target is not None:
                    targets = torch.as_tensor(target).long().expand(batch.shape[0]).to(batch.device)
            for n, e in others.items():
                kwargs = kwargs_of[n]
                if e.extractor.uses_layer:
                    kwargs["layer"] = self._layer_of(e, batch)[1]
                result = e.extractor(batch, self.model, targets, **kwargs)
                maps[n] = self._check_raw(n, result, batch)
        return maps, logits, targets

    def _plain_targets(self, batch: torch.Tensor, target):
        with torch.no_grad():
            logits = logits_of(self.model(batch))
        return logits, resolve_targets(target, logits)

    @staticmethod
    def _check_raw(name: str, result, batch: torch.Tensor) -> torch.Tensor:
        if not isinstance(result, torch.Tensor) or result.dim() != 3 or result.shape[0] != batch.shape[0]:
            shape = tuple(result.shape) if isinstance(result, torch.Tensor) else type(result).__name__
            raise MethodError(f"method {name!r} returned {shape}; expected raw maps (N, h, w) with "
                              f"N = {batch.shape[0]}")
        return result


def explain(model: nn.Module, images, method: MethodSpec = "gradcam", layer: LayerSpec = None, target=None,
            raw: bool = False, scales: Optional[Sequence[float]] = None, close: Optional[int] = None,
            **options) -> torch.Tensor:
    """Localization maps of ``images`` for ``model``.

    Parameters
    ----------
    model : nn.Module
        Classifier returning logits (N, K); left exactly as found.
    images : tensor, PIL image, ndarray, path, or list of them
        Tensors (C,H,W) / (N,C,H,W) are used as given (already normalized); other inputs go
        through :func:`attribmap.inputs.default_transform` (RGB, 224 x 224, ImageNet norm).
    method : str or Extractor
        ``"cam"``, ``"gradcam"``, ``"gradcampp"``, ``"dgl"``, ``"dgl-psb"``, ``"dgl-cem"``,
        ``"i2c"``, ``"captum:<Name>"``, a name added with :func:`register_method`, or an
        :class:`~attribmap.methods.Extractor` instance.
    layer : str, nn.Module or None
        Layer to tap (dotted name, module, or None for the automatic choice).
    target : None, int, sequence or tensor
        Class per image; None = the top-1 prediction.
    raw : bool
        Return raw maps (N, h, w) at layer resolution instead of normalized (N, H, W).
    scales : sequence of float, optional
        Multi-scale averaging of raw maps ("MS").
    close : int, optional
        Disk radius of a morphological closing of the final map ("MC").
    **options
        Passed to the method (``alpha=`` for DGL, captum ``attribute()`` keywords).

    Returns
    -------
    torch.Tensor
        (N, H, W) maps in [0, 1] on the input's device (raw: (N, h, w)).
    """
    return Explainer(model, layer).explain(images, method, target=target, raw=raw, scales=scales,
                                           close=close, **options)
