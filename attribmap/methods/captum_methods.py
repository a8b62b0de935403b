"""Any ``captum.attr`` attribution class as an extractor: ``method="captum:<Name>"``.

* Classes whose constructor takes a ``layer`` (LayerGradCam, LayerActivation,
  LayerGradientXActivation, GuidedGradCam, ...) are given the tapped layer.
* Attributions with the input's shape (N, C, H, W) (Saliency, IntegratedGradients,
  InputXGradient, GuidedBackprop, GuidedGradCam, ...) are reduced to (N, H, W) by the sum of
  absolute values over channels; layer attributions (N, C', h, w) by the signed sum over
  channels (for LayerGradCam C' = 1, so this is just its map).
* Keyword options given to :func:`attribmap.explain` go to ``attribute()`` (for example
  ``n_steps=`` for IntegratedGradients); captum's own defaults apply otherwise.
* captum runs its own forward and backward passes. attribmap hands it a detached copy of
  the images, runs it with gradients enabled (also inside ``torch.no_grad()``), and for the
  duration of the call turns in-place ``ReLU`` / ``ReLU6`` modules into out-of-place ones (captum's
  module backward hooks cannot follow in-place ops); every flag is restored afterwards.
* Guided Backprop, Deconvolution and the guided part of GuidedGradCam: captum overrides the
  backward pass of ``nn.ReLU`` modules only. attribmap also gives its rule to the clamp-style
  activations of :data:`GUIDED_ACTIVATIONS` (``nn.Hardtanh`` and its subclass ``nn.ReLU6``,
  the activation of MobileNetV2 and EfficientNet-Lite) for the duration of captum's own
  hooks: the gradient of the module's input is replaced by its positive part (Guided
  Backprop: ``relu(g * 1[min < x < max])``) or by the positive part of the output gradient
  (Deconvolution: ``relu(g)``). Without it these methods equal Saliency on a ReLU6 network.
  Smooth activations (SiLU, Hardswish, GELU) have no guided rule and keep their gradient.
"""
from __future__ import annotations

import inspect
from typing import Dict, List, Optional, Tuple, Type

import torch
from torch import nn

from attribmap.errors import MethodError
from attribmap.methods.base import Extractor
from attribmap.methods.registry import register_resolver
from attribmap.tap import logits_of

__all__ = ["CaptumMethod", "LISTED_CAPTUM", "GUIDED_ACTIVATIONS"]

#: Activations beside ``nn.ReLU`` that get the guided / deconvolution backward rule
#: (``nn.ReLU6`` is an ``nn.Hardtanh``).
GUIDED_ACTIVATIONS: Tuple[Type[nn.Module], ...] = (nn.Hardtanh,)

LISTED_CAPTUM: Dict[str, str] = {
    "Saliency": "captum Saliency: |d z_c / d input| summed over colour channels",
    "InputXGradient": "captum InputXGradient: |input * gradient| summed over channels",
    "IntegratedGradients": "captum IntegratedGradients (zero baseline), |attr| summed over channels",
    "GuidedBackprop": "captum GuidedBackprop, |attr| summed over channels",
    "Deconvolution": "captum Deconvolution, |attr| summed over channels",
    "GuidedGradCam": "captum GuidedGradCam at the tapped layer, |attr| summed over channels",
    "LayerGradCam": "captum LayerGradCam at the tapped layer (ReLU applied)",
    "LayerActivation": "captum LayerActivation: tapped activations summed over channels",
    "LayerGradientXActivation": "captum LayerGradientXActivation summed over channels",
}


class _Logits(nn.Module):
    """Wraps a classifier so captum always sees a (N, K) tensor."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return logits_of(self.model(x))


def _guided_parts(method) -> List:
    """The captum objects of ``method`` that override ReLU gradients (itself, or GuidedGradCam's part)."""
    from captum.attr._core.guided_backprop_deconvnet import ModifiedReluGradientAttribution

    parts = [method, getattr(method, "guided_backprop", None)]
    return [part for part in parts if isinstance(part, ModifiedReluGradientAttribution)]


def _extend_guided_rule(part) -> None:
    """Make captum's ReLU hook registration of ``part`` also cover :data:`GUIDED_ACTIVATIONS`.

    captum registers its hooks at the start of ``attribute`` and removes every handle in
    ``part.backward_hooks`` in its own ``finally``; the extra handles join that list, so they
    live exactly as long as captum's (the caller removes them again as a safeguard).
    """
    from captum._utils.common import _register_backward_hook

    register_relu = part._register_hooks

    def register(module: nn.Module) -> None:
        register_relu(module)
        if isinstance(module, GUIDED_ACTIVATIONS) and not isinstance(module, nn.ReLU):
            part.backward_hooks.extend(_register_backward_hook(module, part._backward_hook, part))

    part._register_hooks = register


class CaptumMethod(Extractor):
    """Adapter for one ``captum.attr`` class, looked up by name.

    Parameters
    ----------
    class_name : str
        Name of an attribution class of ``captum.attr`` (``"Saliency"``,
        ``"LayerGradCam"``, ...; :data:`LISTED_CAPTUM` lists the tested ones).

    Raises
    ------
    MethodError
        ``captum.attr`` has no attribution class of that name.
    """

    uses_layer = True

    def __init__(self, class_name: str):
        import captum.attr

        cls = getattr(captum.attr, class_name, None)
        if not (inspect.isclass(cls) and issubclass(cls, captum.attr.Attribution)):
            known = ", ".join(sorted(LISTED_CAPTUM))
            raise MethodError(f"captum.attr has no attribution class {class_name!r} (e.g. {known})")
        self.cls = cls
        self.name = f"captum:{class_name}"
        self.description = LISTED_CAPTUM.get(class_name, f"captum {class_name}")
        self.takes_layer = "layer" in inspect.signature(cls.__init__).parameters

    def __call__(self, images: torch.Tensor, model: Optional[nn.Module], target: Optional[torch.Tensor],
                 layer: Optional[nn.Module] = None, **options) -> torch.Tensor:
        if model is None:
            raise MethodError(f"{self.name} needs the model")
        wrapper = _Logits(model)
        if self.takes_layer:
            if layer is None:
                raise MethodError(f"{self.name} needs a layer")
            method = self.cls(wrapper, layer)
        else:
            method = self.cls(wrapper)
        import captum.attr

        if isinstance(method, captum.attr.LayerGradCam):
            options.setdefault("relu_attributions", True)
        guided = _guided_parts(method)
        for part in guided:
            _extend_guided_rule(part)
        relus = [m for m in model.modules() if isinstance(m, (nn.ReLU, *GUIDED_ACTIVATIONS)) and m.inplace]
        try:
            for relu in relus:
                relu.inplace = False
            with torch.inference_mode(False), torch.enable_grad():
                x = images.detach().clone().requires_grad_(True)
                if "target" in inspect.signature(method.attribute).parameters:
                    options = {"target": target, **options}
                attr = method.attribute(x, **options)
        finally:
            for relu in relus:
                relu.inplace = True
            for part in guided:
                for handle in part.backward_hooks:
                    handle.remove()
        if isinstance(attr, (tuple, list)):
            attr = attr[0]
        attr = attr.detach()
        if attr.dim() != 4:
            raise MethodError(f"{self.name} returned shape {tuple(attr.shape)}; expected 4-D attributions")
        if attr.shape[1:] == images.shape[1:]:
            return attr.abs().sum(dim=1)
        return attr.sum(dim=1)


register_resolver("captum", CaptumMethod, LISTED_CAPTUM)
