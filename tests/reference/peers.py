"""The peers (pytorch-grad-cam, torchcam) run at layer resolution, as test oracles.

pytorch-grad-cam resizes and min-max normalizes every map before returning it; its
``get_cam_image`` is the step before that (its own ``compute_cam_per_layer`` then applies
``np.maximum(cam, 0)`` and resizes). :func:`pgcam_layer_map` runs the same forward and
backward as its ``BaseCAM.forward`` and returns ``get_cam_image``'s map, so a formula
difference cannot hide behind a resize difference. torchcam's extractors return
layer-resolution maps already (``normalized=False`` keeps them raw).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

__all__ = ["minmax", "max_minmax_diff", "pgcam_layer_map", "torchcam_map", "random_resnet18", "recorded_activations"]


def random_resnet18(classifier_scale: float = 1.0) -> torch.nn.Module:
    """torchvision's ResNet-18 with seed-0 random weights in eval mode (its classifier scaled)."""
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    if classifier_scale != 1.0:
        with torch.no_grad():
            model.fc.weight.mul_(classifier_scale)
    return model


def recorded_activations(model, layer_module, x: torch.Tensor):
    """(activations of ``layer_module``, logits) of one plain forward without gradients."""
    store = {}
    handle = layer_module.register_forward_hook(lambda m, i, o: store.setdefault("F", o.detach().clone()))
    try:
        with torch.no_grad():
            logits = model(x)
    finally:
        handle.remove()
    return store["F"], logits


def minmax(maps: torch.Tensor) -> torch.Tensor:
    """Min-max of each map of (N, ...) to [0, 1] (a constant map becomes zeros)."""
    flat = maps.detach().double().flatten(1)
    lo = flat.min(dim=1, keepdim=True).values
    span = flat.max(dim=1, keepdim=True).values - lo
    return torch.where(span > 0, (flat - lo) / torch.where(span > 0, span, torch.ones_like(span)),
                       torch.zeros_like(flat)).view(maps.shape)


def max_minmax_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute difference of the two map batches after min-max per map."""
    a = torch.as_tensor(a).cpu()
    b = torch.as_tensor(b).cpu()
    assert a.shape == b.shape, (a.shape, b.shape)
    return float((minmax(a) - minmax(b)).abs().max())


def pgcam_layer_map(cam_class, model, layer_module, x: torch.Tensor, targets: Sequence[int],
                    relu: bool = True, target_class=None, **init_options) -> torch.Tensor:
    """pytorch-grad-cam's map at the layer's resolution, (N, h, w).

    Parameters
    ----------
    cam_class : type
        A ``pytorch_grad_cam`` ``BaseCAM`` subclass (``GradCAMPlusPlus``, ``ScoreCAM``, ...).
    relu : bool
        Apply the ``np.maximum(cam, 0)`` of its ``compute_cam_per_layer`` (False: the
        projection methods' signed map).
    target_class : type, optional
        Its target wrapper (default ``ClassifierOutputTarget``).
    """
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    wrap = target_class or ClassifierOutputTarget
    cam = cam_class(model=model, target_layers=[layer_module], **init_options)
    try:
        x = x.clone()
        if cam.compute_input_gradient:
            x.requires_grad_(True)
        outputs = cam.activations_and_grads(x)
        wrapped = [wrap(int(t)) for t in targets]
        if cam.uses_gradients:
            model.zero_grad()
            loss = sum(t(o) for t, o in zip(wrapped, outputs))
            if cam.detach:
                loss.backward(retain_graph=True)
            else:
                torch.autograd.grad(loss, x, retain_graph=True, create_graph=True)
        acts = cam.activations_and_grads.activations[0]
        grads = cam.activations_and_grads.gradients[0] if cam.activations_and_grads.gradients else None
        if cam.detach:
            acts = acts.cpu().numpy()
            grads = None if grads is None else grads.cpu().numpy()
        raw = cam.get_cam_image(x, layer_module, wrapped, acts, grads, False)
    finally:
        cam.activations_and_grads.release()
    raw = np.asarray(raw, dtype=np.float64)
    return torch.from_numpy(np.maximum(raw, 0) if relu else raw)


def torchcam_map(cam_class, model, layer_name: str, x: torch.Tensor, targets: Sequence[int],
                 **init_options) -> torch.Tensor:
    """torchcam's raw (not normalized) map at the layer's resolution, (N, h, w)."""
    with cam_class(model, layer_name, input_shape=tuple(x.shape[1:]), **init_options) as extractor:
        scores = model(x.clone())
        maps = extractor([int(t) for t in targets], scores, normalized=False)
    return maps[0].detach().double()
