"""RefineCAM: the product of one method's maps at several layers, each normalized to [0, 1].

A deep layer localizes coarsely but reliably, an earlier one finely but noisily; multiplying
their normalized maps keeps what both agree on. The tapped layer and the ``layers`` option
give the layers. The explainer taps them all in one forward pass (:func:`refinecam_layers` is
registered as the method's ``extra_layers``); layers a capture lacks come from one more tapped
forward pass of the same images (:meth:`attribmap.tap.Capture.retap`).
"""
from __future__ import annotations

from typing import Any, List, Mapping, Optional, Sequence, Union

import torch
import torch.nn.functional as F

from attribmap.errors import LayerError, MethodError
from attribmap.methods.perturbation import check_choice
from attribmap.tap import Capture

__all__ = ["refinecam", "refinecam_layers", "previous_sibling", "RESOLUTIONS"]

RESOLUTIONS = ("layer", "input")


def _unit(maps: torch.Tensor, eps: float) -> torch.Tensor:
    """(x - min) / (max - min + eps) per map of (N, h, w)."""
    lo = maps.amin(dim=(1, 2), keepdim=True)
    shifted = maps - lo
    return shifted / (shifted.amax(dim=(1, 2), keepdim=True) + eps)


def _may_be_spatial(module: torch.nn.Module) -> bool:
    """False for modules that never output a spatial map worth a second RefineCAM layer.

    Classifiers and layout modules (``Linear``, ``Flatten``, ``Dropout``, ``Identity``),
    pooling, normalization layers (the layer before them is the map), module lists that
    are never called themselves, and containers whose last module is one of these.
    """
    from attribmap.layers import POOLING_LAYERS, SKIPPED_LAYERS

    if isinstance(module, (torch.nn.ModuleList, torch.nn.ModuleDict)):
        return False
    children = list(module.children())
    if children and isinstance(module, torch.nn.Sequential):
        return _may_be_spatial(children[-1])
    return not isinstance(module, (torch.nn.Linear, torch.nn.Bilinear) + POOLING_LAYERS + SKIPPED_LAYERS)


def previous_sibling(model: torch.nn.Module, layer: str) -> str:
    """The nearest module registered before ``layer`` in its parent that may output a spatial map.

    ``layer3`` for a ResNet's ``layer4``. Siblings that never give a spatial map are passed
    over: a classifier registered before the layer (EfficientNet-PyTorch registers ``_fc``
    before its activation module), pooling, dropout, flatten, identity and normalization
    layers, never-called module lists (``_blocks``), and containers ending in one of these.

    Parameters
    ----------
    model : torch.nn.Module
        The model whose modules are searched.
    layer : str
        Dotted name of a module of ``model``.

    Returns
    -------
    str
        Dotted name of the sibling.

    Raises
    ------
    LayerError
        ``layer`` has no such earlier sibling (or is not a child of its parent); one line
        naming ``layer`` and asking for ``layers=``.
    """
    parent_name, _, child = layer.rpartition(".")
    parent = dict(model.named_modules())[parent_name] if parent_name else model
    siblings = list(parent.named_children())
    names = [name for name, _ in siblings]
    at = names.index(child) if child in names else -1
    for name, module in reversed(siblings[:max(at, 0)]):
        if _may_be_spatial(module):
            return f"{parent_name}.{name}" if parent_name else name
    passed = f" (passed over: {', '.join(names[:at][::-1])})" if at > 0 else ""
    raise LayerError(f"refinecam needs a second layer: {layer!r} has no earlier sibling that outputs a spatial "
                     f"map{passed}; pass layers=...")


def _layer_list(model: torch.nn.Module, layer: str, layers: Optional[Union[str, Sequence[str]]]) -> List[str]:
    if layers is None:
        extra = [previous_sibling(model, layer)]
    elif isinstance(layers, str):
        extra = [name.strip() for name in layers.replace(",", "+").split("+") if name.strip()]
    else:
        extra = [str(name) for name in layers]
    names = list(dict.fromkeys([layer] + extra))
    if len(names) < 2:
        raise MethodError(f"refinecam combines at least two layers; got {names}")
    return names


def refinecam_layers(model: torch.nn.Module, layer: str, options: Mapping[str, Any]) -> List[str]:
    """The layers RefineCAM reads besides ``layer`` (registered as its ``extra_layers``).

    With them known before the forward pass, the explainer taps them in the same pass and
    :func:`refinecam` needs no second one.

    Parameters
    ----------
    model : torch.nn.Module
        The explained model.
    layer : str
        The tapped layer (the first of the combined layers).
    options : mapping
        The call's keyword options; ``layers`` as in :func:`refinecam`.

    Returns
    -------
    list of str
        Dotted names of the other layers, in order.
    """
    return _layer_list(model, layer, options.get("layers"))[1:]


def refinecam(capture: Capture, layer: str, layers: Optional[Union[str, Sequence[str]]] = None,
              base: str = "gradcampp", resolution: str = "layer") -> torch.Tensor:
    """RefineCAM: prod_l normalize(map_l) over the tapped layer and ``layers``; (N, H', W').

    Parameters
    ----------
    capture : Capture
        The recorded forward pass; layers it did not tap are tapped in one more forward pass
        of its images (:meth:`~attribmap.tap.Capture.retap`).
    layer : str
        Name of the tapped layer, the first of the combined layers.
    layers : str or sequence of str, optional
        The other layers (dotted names; a string may join several with ``+``); default the
        tapped layer's previous sibling (``layer3`` beside ``layer4``).
    base : str
        The registered gradient method whose maps are combined (Grad-CAM++ by default, as
        both peers; ``gradcam``, ``layercam``, ``hirescam``, ... work too).
    resolution : {"layer", "input"}
        "layer": each map is min-max normalized at its own resolution, resized to the finest
        layer's, and the product is returned there (torchcam's ``RefineCAM``); "input": each
        map is normalized, resized to the input and normalized again before the product
        (pytorch-grad-cam's ``RefineCAM``, whose maps are its upsampled outputs).

    Returns
    -------
    torch.Tensor
        (N, H', W') product of the normalized maps, in [0, 1]: (H', W') the finest layer's grid
        (``resolution="layer"``) or the input's (``"input"``).

    References
    ----------
    "How to Evaluate and Refine your CAM", arXiv:2605.14641 (the method of torchcam's and
    pytorch-grad-cam's ``RefineCAM``).
    """
    from attribmap.methods.base import Method
    from attribmap.methods.registry import get_method

    check_choice(resolution, "resolution", RESOLUTIONS)
    method = get_method(base)
    if not isinstance(method, Method) or method.name == "refinecam":
        raise MethodError(f"refinecam base must be a post-hoc method such as 'gradcampp'; got {base!r}")
    names = _layer_list(capture.model, layer, layers)
    source = capture
    if any(name not in capture.layers for name in names):
        source = capture.retap(capture.images, capture.targets, names)
    for name in names:
        source.prepare(method.needs_for({}), name)
    maps = [method.fn(source, name) for name in names]
    if resolution == "layer":
        size = max((tuple(m.shape[-2:]) for m in maps), key=lambda hw: hw[0] * hw[1])
        eps, renormalize = 1e-8, False
    else:
        size, eps, renormalize = tuple(capture.images.shape[-2:]), 1e-7, True
    product = None
    for m in maps:
        m = _unit(torch.relu(m), eps)
        if tuple(m.shape[-2:]) != size:
            m = F.interpolate(m[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
        if renormalize:
            m = _unit(m, eps)
        product = m if product is None else product * m
    return product
