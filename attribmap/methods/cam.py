"""CAM (Zhou et al., CVPR 2016): class activation maps from the GAP -> linear head."""
from __future__ import annotations

import weakref
from typing import Optional, Tuple

import torch
from torch import nn

from attribmap.errors import MethodError
from attribmap.tap import Capture

__all__ = ["cam", "find_gap_classifier"]

_CLASSIFIER_CACHE: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()


def find_gap_classifier(capture: Capture, layer: str) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Find the classifier W (K, C) that follows global average pooling of ``layer``.

    Candidates are the model's ``nn.Linear`` (in C, out K) and 1 x 1 ``nn.Conv2d`` (C -> K)
    modules. One is accepted when it reproduces the recorded logits from the spatial mean
    of the recorded activations, ``z = W . mean_ij F + b``, so this also verifies that nothing
    non-linear sits between the layer and the classifier.

    Parameters
    ----------
    capture : Capture
        The recorded forward pass: its model is searched, its activations of ``layer``
        (N, C, h, w) and logits (N, K) test each candidate.
    layer : str
        Name of the tapped layer that is supposed to feed the pooling.

    Returns
    -------
    (W, b) : (K, C) tensor and (K,) tensor or None

    Raises
    ------
    MethodError
        No candidate reproduces the logits.
    """
    feats = capture.activations(layer)
    logits = capture.logits.detach()
    n, c = feats.shape[:2]
    k = logits.shape[1]
    # the cache keeps the module, never its tensors: ``model.to(device)`` / ``.double()`` give the
    # module new parameter data, which a cached tensor would not follow
    cache = _CLASSIFIER_CACHE.setdefault(capture.model, {})
    candidates = []
    if (layer, c, k) in cache:
        candidates.append(cache[(layer, c, k)])
    for module in capture.model.modules():
        if isinstance(module, nn.Linear) and module.in_features == c and module.out_features == k:
            candidates.append(module)
        elif (isinstance(module, nn.Conv2d) and module.in_channels == c and module.out_channels == k
              and tuple(module.kernel_size) == (1, 1) and module.groups == 1):
            candidates.append(module)
    pooled = feats.mean(dim=(2, 3))
    scale = logits.abs().max().clamp_min(1.0)
    for module in candidates:
        weight = module.weight.detach().reshape(k, c).to(device=pooled.device, dtype=pooled.dtype)
        bias = None if module.bias is None else module.bias.detach().to(device=pooled.device, dtype=pooled.dtype)
        pred = pooled @ weight.t()
        if bias is not None:
            pred = pred + bias
        if torch.allclose(pred, logits.to(pred.dtype), rtol=1e-3, atol=1e-4 * float(scale)):
            cache[(layer, c, k)] = module
            return weight, bias
    mode = " (the model is in training mode: dropout may hide the head; call model.eval())" \
        if capture.model.training else ""
    if capture.layout(layer).kind == "tokens":
        # a transformer's head reads the class token (or a norm of the mean token), not GAP of
        # the patch grid, so no tapped token layer can satisfy CAM's identity
        advice = ("; layer holds tokens, and a transformer's head does not average the patch grid "
                  "through a linear classifier: use a gradient method (gradcam, layercam, ...)")
    else:
        advice = "; use gradcam or tap the last convolutional block"
    raise MethodError(f"cam needs layer {layer!r} to feed global average pooling and a linear "
                      f"classifier (logits = W . mean(F) + b), and no Linear or 1x1 conv of the model "
                      f"({c} -> {k}) reproduces the logits that way{mode}{advice}")


def cam(capture: Capture, layer: str) -> torch.Tensor:
    """CAM: sum_k W[c, k] F_k with W the weight after GAP (no bias, no ReLU); (N, h, w).

    Parameters
    ----------
    capture : Capture
        The recorded forward pass: activations of ``layer`` (N, C, h, w), logits and
        targets, one row per image and target class, and the cached gradients.
    layer : str
        Name of the tapped layer whose activations F are read.

    Returns
    -------
    torch.Tensor
        (N, h, w) raw maps on the layer's grid, one per row of ``capture`` (signed: no ReLU).

    Raises
    ------
    MethodError
        ``layer`` does not feed global average pooling and a linear classifier
        (:func:`find_gap_classifier`).

    References
    ----------
    Zhou, Khosla, Lapedriza, Oliva, Torralba, "Learning Deep Features for Discriminative
    Localization", CVPR 2016.
    """
    weight, _ = find_gap_classifier(capture, layer)
    feats = capture.activations(layer)
    w_c = weight[capture.targets].to(feats.dtype)  # (N, C)
    return torch.einsum("nc,nchw->nhw", w_c, feats)
