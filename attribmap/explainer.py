"""The public entry points: :func:`explain` and :class:`Explainer`."""
from __future__ import annotations

import warnings
from typing import Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from attribmap.errors import AttribmapError, InputError, MethodError
from attribmap.inputs import check_finite, fit_to_model, model_input_size, to_batch
from attribmap.layers import LayerSpec, resolve_layer
from attribmap.methods.base import Extractor, Method
from attribmap.methods.registry import get_method
from attribmap.methods.spec import ExtractorSpec
from attribmap.postprocess import average_scales, postprocess
from attribmap.tap import Capture, Tap, logits_of
from attribmap.targets import TargetSpec, fold_rows, repeat_rows
from attribmap.tokens import plausible_grid, rule_for

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


def _taps_layer(extractor) -> bool:
    """An extractor that is given the layer and uses it (captum's Saliency is given it and does not)."""
    return bool(getattr(extractor, "uses_layer", False)) and getattr(extractor, "takes_layer", True)


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
        automatic choice (``model.cam_layer`` if declared, else the last map feeding global
        pooling, or the input of the last block of a ViT: :func:`attribmap.layers.auto_layer`).
        Methods that declare their own layer (``i2c``) use it when this is None.
    reshape : str, callable or mapping, optional
        How a tapped layer's output reads as a map (N, C, h, w) when the automatic reading
        (channels-first and channels-last maps, ViT token sequences:
        :mod:`attribmap.tokens`) does not fit: ``"channels-first"``, ``"channels-last"``,
        ``"tokens"``, a callable ``output -> (N, C, h, w)`` that only selects and rearranges
        entries, or ``{layer name: rule}``.
    allow_1x1 : bool
        Accept a tapped layer whose map has one position (1 x 1, e.g. ``avgpool``); such
        layers are refused by default because every map there is constant.

    Attributes
    ----------
    layers_used : dict of str to str
        Method name -> dotted name of the layer it tapped in the latest call (the automatic
        choice resolved); methods that tap no layer are absent.

    Examples
    --------
    >>> ex = Explainer(model, layer="layer4")                       # doctest: +SKIP
    >>> maps = ex.explain_many(images, ["cam", "gradcam", "dgl"])   # doctest: +SKIP
    >>> maps["dgl"].shape                                           # (N, H, W) in [0, 1]
    >>> ex.explain(images, "gradcam", target=[[207, 281]] * len(images)).shape  # doctest: +SKIP
    torch.Size([N, 2, H, W])
    """

    def __init__(self, model: nn.Module, layer: LayerSpec = None, reshape=None, allow_1x1: bool = False):
        if not isinstance(model, nn.Module):
            raise InputError(f"model must be a torch.nn.Module; got {type(model).__name__}")
        self.model = model
        self.layer = layer
        self.reshape = reshape
        self.allow_1x1 = bool(allow_1x1)
        self.layers_used: Dict[str, str] = {}
        rule_for(reshape, "")  # a bad reshape= fails early
        if layer is not None:
            resolve_layer(model, layer)  # fail early on a bad name

    # -- public API ---------------------------------------------------------------------
    def explain(self, images, method: MethodSpec = "gradcam", target=None, raw: bool = False,
                scales: Optional[Sequence[float]] = None, close: Optional[int] = None, nonfinite: str = "raise",
                **options) -> torch.Tensor:
        """Maps of one method (:meth:`explain_many` with one method).

        Parameters
        ----------
        images : tensor (C,H,W) / (N,C,H,W), PIL image, ndarray, path, or a list of them
            The images (see :func:`attribmap.explain`).
        method : str or extractor
            A registered name or spec (``"dgl@layer3:alpha=5"``), or an extractor object.
        target : None, int, sequence, tensor, list of class lists, or "all"
            As in :meth:`explain_many` (None: the top-1 class of each image).
        raw : bool
            Return raw maps (N, h, w) at layer resolution.
        scales : sequence of float, optional
            Multi-scale test factors.
        close : int, optional
            Radius of the closing applied before normalization.
        nonfinite : {"raise", "zero"}
            What to do with images holding NaN or infinite values (see :meth:`explain_many`).
        **options
            Passed to the method (e.g. ``alpha=5`` for ``dgl``, ``n_steps=16`` for
            ``captum:IntegratedGradients``).

        Returns
        -------
        Tensor
            (N, H, W) maps in [0, 1] ((N, h, w) raw; (N, T, ...) for several targets per image).
        """
        name = method if isinstance(method, str) else get_method(method).name
        out = self.explain_many(images, [method], target=target, raw=raw, scales=scales, close=close,
                                options={name: options} if options else None, nonfinite=nonfinite)
        return out[name]

    def explain_many(self, images, methods: Iterable[MethodSpec], target=None, raw: bool = False,
                     scales: Optional[Sequence[float]] = None, close: Optional[int] = None,
                     options: Optional[Mapping[str, Mapping]] = None, return_logits: bool = False,
                     nonfinite: str = "raise"):
        """Maps of several methods from one forward pass and shared gradients.

        Parameters
        ----------
        images : tensor (C,H,W) / (N,C,H,W), PIL image, ndarray, path, or a list of them
        methods : iterable of names or extractors
            Registered names, optionally as specs ``"name@layer:key=value"`` (a layer
            override and options for that method; see :mod:`attribmap.methods.spec`), or
            :class:`~attribmap.methods.base.Extractor` / ``Method`` objects.
        target : None, int, sequence, tensor, list of class lists, or "all"
            None = top-1 prediction per image; an int for every image; one class per image;
            or several classes per image: a list of equal-length class lists (or a 2-D tensor
            (N, T)), or ``"all"`` (every class of a model with at most
            :data:`attribmap.targets.ALL_TARGETS_LIMIT` outputs). Several classes give maps
            (N, T, H, W) from one forward pass and one batched backward pass.
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
        nonfinite : {"raise", "zero"}
            Images holding NaN or infinite values: ``"raise"`` (default) refuses them with an
            :class:`~attribmap.errors.InputError` naming the image indices; ``"zero"`` warns
            (``RuntimeWarning``, same indices) and replaces those values by 0 (the ImageNet
            mean after normalization). See :func:`attribmap.inputs.check_finite`.

        Returns
        -------
        dict of str to torch.Tensor
            Method name (as given in ``methods``) -> maps (N, H, W) in [0, 1] (or raw
            (N, h, w)), on the input's device; (N, T, H, W) / (N, T, h, w) with several
            classes per image, map ``[n, j]`` for class ``target[n][j]``.
            With ``return_logits=True`` a tuple ``(maps, logits)``.
            The layer each method tapped is in :attr:`layers_used` afterwards.

        Raises
        ------
        InputError
            Images of the wrong shape or channel count for the model (a floating batch of
            another dtype than the model's is cast to it: :func:`attribmap.inputs.fit_to_model`),
            or holding NaN / inf with ``nonfinite="raise"``.
        TargetError
            A target that is no class index (``None`` or a bool inside a list, ...) or out of range.
        """
        entries = self._entries(methods)
        if raw and close:
            raise MethodError("close= applies to the final map; it cannot be combined with raw=True")
        wanted = TargetSpec.parse(target)
        input_device = images.device if isinstance(images, torch.Tensor) else None
        batch = self._batch(images, nonfinite)
        if self.model.training:
            warnings.warn("the model is in training mode: dropout and batch-norm make maps stochastic "
                          "and batch-norm statistics are updated; call model.eval() first", stacklevel=3)
        scale_list = [1.0] if not scales else [float(s) for s in scales]
        if any(s <= 0 for s in scale_list):
            raise InputError(f"scales must be positive factors; got {list(scales)}")
        per_scale: List[Dict[str, torch.Tensor]] = []
        logits = targets = None
        self.layers_used = {}
        for s in scale_list:
            x = batch if s == 1.0 else F.interpolate(batch, scale_factor=s, mode="bilinear",
                                                      align_corners=False, recompute_scale_factor=False)
            maps, step_logits, step_targets = self._single_pass(x, entries, wanted, options or {})
            if logits is None:  # later scales explain the classes the first scale resolved
                logits, targets = step_logits, step_targets
                wanted = wanted if targets is None else TargetSpec.of(targets)
            per_scale.append(maps)
        per_image = targets.shape[1] if isinstance(targets, torch.Tensor) and targets.dim() == 2 else None
        out: Dict[str, torch.Tensor] = {}
        for name in entries:
            raws = [m[name] for m in per_scale]
            rawmap = raws[0] if len(raws) == 1 else average_scales(raws, tuple(raws[0].shape[-2:]))
            result = rawmap.detach() if raw else postprocess(rawmap.detach(), tuple(batch.shape[-2:]), close)
            if per_image is not None:  # rows n * T + j -> (N, T, ...)
                result = fold_rows(result, per_image)
            out[name] = result.to(input_device) if input_device is not None else result
        if return_logits:
            return out, logits.detach() if logits is not None else None
        return out

    def capture(self, images, target=None, layers: Optional[Sequence[LayerSpec]] = None) -> Capture:
        """Run one tapped forward pass and return the :class:`~attribmap.tap.Capture`.

        For callers that compute their own functions of activations and gradients.

        Parameters
        ----------
        images : tensor, PIL image, ndarray, path, or a list of them
            The images.
        target : optional
            Target classes, as in :meth:`explain_many` (None: top-1).
        layers : sequence of layer names or modules, optional
            Layers to tap (default: the explainer's layer).
        """
        wanted = TargetSpec.parse(target)
        batch = self._batch(images)
        specs = list(layers) if layers else [self.layer]
        resolved = dict(resolve_layer(self.model, spec, example=batch) for spec in specs)
        return Tap(self.model, resolved, self.reshape, self.allow_1x1).run(batch, wanted)

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
        batch = self._batch(images)
        if isinstance(entry.extractor, Method) or _taps_layer(entry.extractor):
            return self._layer_of(entry, batch)[0]
        raise MethodError(f"{getattr(entry.extractor, 'name', method)!r} taps no layer of the model")

    def _batch(self, images, nonfinite: str = "raise") -> torch.Tensor:
        """The images as a batch on the model's device and in its dtype, checked for the model."""
        batch = to_batch(images, device=_model_device(self.model), size=model_input_size(self.model))
        return check_finite(fit_to_model(batch, self.model), nonfinite)

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

    def _extra_layers(self, posthoc: Mapping[str, _Entry], layer_of: Mapping[str, Tuple[str, nn.Module]],
                      kwargs_of: Mapping[str, Mapping], tapped: Mapping[str, nn.Module]) -> Dict[str, nn.Module]:
        """The further layers that methods declare they read (``Method.extra_layers``), to tap now.

        A name that cannot be resolved here is left to the method, which then reports it in its
        own words (or taps it with one more forward pass).
        """
        extra: Dict[str, nn.Module] = {}
        modules: Optional[Dict[str, nn.Module]] = None
        for n, e in posthoc.items():
            wanted = getattr(e.extractor, "extra_layers", None)
            if wanted is None:
                continue
            try:
                names = list(wanted(self.model, layer_of[n][0], kwargs_of[n]))
            except (AttribmapError, TypeError, ValueError):
                continue
            if modules is None:
                modules = dict(self.model.named_modules())
            extra.update({name: modules[name] for name in names
                          if name in modules and name not in tapped and name not in extra})
        return extra

    def _single_pass(self, batch: torch.Tensor, entries: Mapping[str, _Entry], wanted: TargetSpec,
                     options: Mapping[str, Mapping]):
        posthoc = {n: e for n, e in entries.items() if isinstance(e.extractor, Method)}
        others = {n: e for n, e in entries.items() if not isinstance(e.extractor, Method)}
        kwargs_of = {n: {**e.options, **dict(options.get(n, {}))} for n, e in entries.items()}
        maps: Dict[str, torch.Tensor] = {}
        logits = None
        targets = None
        if posthoc:
            layer_of = {n: self._layer_of(e, batch) for n, e in posthoc.items()}
            self.layers_used.update({n: layer[0] for n, layer in layer_of.items()})
            tapped = dict(layer_of.values())
            tapped.update(self._extra_layers(posthoc, layer_of, kwargs_of, tapped))
            capture = Tap(self.model, tapped, self.reshape, self.allow_1x1).run(batch, wanted)
            logits = capture.image_logits.detach()
            targets = capture.target_table if capture.multi_target else capture.targets
            needs: Dict[str, set] = {}
            for n, e in posthoc.items():
                needs.setdefault(layer_of[n][0], set()).update(e.extractor.needs_for(kwargs_of[n]))
            for layer_name, requests in needs.items():
                if requests:
                    capture.prepare(requests, layer_name)
            for n, e in posthoc.items():
                result = e.extractor.fn(capture, layer_of[n][0], **kwargs_of[n])
                maps[n] = self._check_raw(n, result, capture.targets, tuple(batch.shape[-2:]))
            del capture
        if others:
            if targets is None:
                if any(e.extractor.needs_target for e in others.values()) or wanted.multi:
                    with torch.no_grad():
                        logits = logits_of(self.model(batch))
                    targets = wanted.resolve(logits)
                elif wanted.given:
                    targets = wanted.unchecked(batch.shape[0], batch.device)
            per_image = targets.shape[1] if targets is not None and targets.dim() == 2 else 1
            rows = repeat_rows(batch, per_image)
            for n, e in others.items():
                kwargs = kwargs_of[n]
                if e.extractor.uses_layer:
                    name, kwargs["layer"] = self._layer_of(e, batch)
                    if _taps_layer(e.extractor):
                        self.layers_used[n] = name
                if per_image > 1 and not e.extractor.needs_target:  # one map per image, shared by its targets
                    result = repeat_rows(e.extractor(batch, self.model, None, **kwargs), per_image)
                else:
                    result = e.extractor(rows, self.model, None if targets is None else targets.reshape(-1), **kwargs)
                maps[n] = self._check_raw(n, result, rows, tuple(batch.shape[-2:]))
        return maps, logits, targets

    @staticmethod
    def _check_raw(name: str, result, rows: torch.Tensor, image_size: Tuple[int, int]) -> torch.Tensor:
        if not isinstance(result, torch.Tensor) or result.dim() != 3 or result.shape[0] != rows.shape[0]:
            shape = tuple(result.shape) if isinstance(result, torch.Tensor) else type(result).__name__
            raise MethodError(f"method {name!r} returned {shape}; expected raw maps (N, h, w) with "
                              f"N = {rows.shape[0]} (one per row of the capture)")
        if not plausible_grid(int(result.shape[1]), int(result.shape[2]), image_size):
            raise MethodError(f"method {name!r} returned maps {tuple(result.shape)}, which are no grid of the "
                              f"{image_size[0]} x {image_size[1]} input: it read a channels-last or token layer "
                              "as (N, C, h, w)? (captum's layer methods do; attribmap's own methods read "
                              "such layers right)")
        return result


def explain(model: nn.Module, images, method: MethodSpec = "gradcam", layer: LayerSpec = None, target=None,
            raw: bool = False, scales: Optional[Sequence[float]] = None, close: Optional[int] = None,
            reshape=None, allow_1x1: bool = False, nonfinite: str = "raise", **options) -> torch.Tensor:
    """Localization maps of ``images`` for ``model``.

    Parameters
    ----------
    model : nn.Module
        Classifier returning logits (N, K); left exactly as found.
    images : tensor, PIL image, ndarray, path, or list of them
        Tensors (C,H,W) / (N,C,H,W) are used as given (already normalized); other inputs go
        through :func:`attribmap.inputs.default_transform` (RGB, squashed to the model's
        ``input_size`` square when it declares one, else 224 x 224; ImageNet norm).
    method : str or Extractor
        ``"cam"``, ``"gradcam"``, ``"gradcampp"``, ``"dgl"``, ``"dgl-psb"``, ``"dgl-cem"``,
        ``"i2c"``, ``"captum:<Name>"``, a name added with :func:`register_method`, or an
        :class:`~attribmap.methods.Extractor` instance.
    layer : str, nn.Module or None
        Layer to tap (dotted name, module, or None for the automatic choice: the last map
        feeding global pooling; for a ViT the input of its last block).
    target : None, int, sequence, tensor, list of class lists, or "all"
        Class per image; None = the top-1 prediction. Several classes per image (a list of
        equal-length class lists, a 2-D tensor (N, T), or ``"all"``) give (N, T, H, W).
    raw : bool
        Return raw maps (N, h, w) at layer resolution instead of normalized (N, H, W).
    scales : sequence of float, optional
        Multi-scale averaging of raw maps ("MS").
    close : int, optional
        Disk radius of a morphological closing of the final map ("MC").
    reshape : str, callable or mapping, optional
        How the layer's output reads as a map when the automatic reading of channels-last
        maps and token sequences does not fit (see :class:`Explainer`).
    allow_1x1 : bool
        Accept a layer whose map has a single position (refused by default).
    nonfinite : {"raise", "zero"}
        Images holding NaN / inf: refused naming the images (default), or, with ``"zero"``,
        those values replaced by 0 with a warning.
    **options
        Passed to the method (``alpha=`` for DGL, captum ``attribute()`` keywords).

    Returns
    -------
    torch.Tensor
        (N, H, W) maps in [0, 1] on the input's device (raw: (N, h, w)); (N, T, H, W) with
        several classes per image.

    Examples
    --------
    >>> maps = explain(model, images, "gradcam", target=[[207, 281], [281, 207]])  # doctest: +SKIP
    >>> maps.shape                                       # two images, two classes each
    torch.Size([2, 2, 224, 224])
    """
    return Explainer(model, layer, reshape=reshape, allow_1x1=allow_1x1).explain(
        images, method, target=target, raw=raw, scales=scales, close=close, nonfinite=nonfinite, **options)
