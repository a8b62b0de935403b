"""FullGrad (Srinivas & Fleuret, NeurIPS 2019): input-gradient and bias-gradient maps of every layer.

map = sum_c psi(abs(x_grad * x))_c + sum_layers sum_c psi(abs(b * dz_c/dy))_c, where y is the output
of a convolution or batch norm with bias b (for batch norm, its effective bias from the
running statistics) and psi rescales to [0, 1] and resizes bilinearly to the input.

The gradients come from the capture's request :data:`FULL_GRADIENTS` (one extra forward
pass recording a graph from the input; the tapped layer is not used). The raw map is at
the input's resolution.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, NamedTuple, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from attribmap.errors import MethodError
from attribmap.gradients import Derivative
from attribmap.hooks import forward_hooks
from attribmap.methods.perturbation import check_choice
from attribmap.tap import Capture, logits_of

__all__ = ["fullgrad", "FullGradients", "FullGradientRequest", "FULL_GRADIENTS", "NORMALIZATIONS"]

NORMALIZATIONS = ("layer", "channel")


class FullGradients(NamedTuple):
    """The input and bias gradients of FullGrad (what :data:`FULL_GRADIENTS` computes).

    ``input_grad`` (N, C_in, H, W) is the gradient of the target logit with respect to the
    input; ``bias_grads`` holds, per conv / batch-norm layer with a bias and in module order,
    its name and its bias gradient ``b * dz_c/dy`` (N, C, h, w), y the layer's output.
    """

    input_grad: torch.Tensor
    bias_grads: Tuple[Tuple[str, torch.Tensor], ...]


def _biased_layers(model: nn.Module) -> List[Tuple[str, nn.Module, torch.Tensor]]:
    """(name, module, bias) of every conv with a bias and every batch norm (its effective bias)."""
    layers = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and module.bias is not None:
            layers.append((name, module, module.bias.detach()))
        elif isinstance(module, nn.modules.batchnorm._BatchNorm) and module.bias is not None:
            if module.running_mean is None or module.running_var is None:
                raise MethodError(f"fullgrad needs the running statistics of batch norm {name!r} "
                                  "(track_running_stats=False leaves its bias undefined)")
            scale = module.weight.detach() / torch.sqrt(module.running_var + module.eps)
            layers.append((name, module, module.bias.detach() - module.running_mean * scale))
    return layers


@dataclass(frozen=True)
class FullGradientRequest(Derivative):
    """Input gradient and bias gradients of every conv / batch-norm layer (FullGrad).

    ``capture.derive(FULL_GRADIENTS)`` runs one extra forward pass of the capture's images
    that records a graph from the input, and one backward pass of the target logits; the
    capture caches the result. The bias gradient of a layer is ``b * dz_c/dy`` with ``y``
    the layer's output (before any in-place activation that follows it) and ``b`` its bias:
    a convolution's ``bias``; for batch norm the effective bias
    ``beta - mu * gamma / sqrt(var + eps)`` of its running statistics. A layer that runs
    several times per forward pass adds one term per call (named ``"name#1"``,
    ``"name#2"``, ...), each at its own resolution.
    """

    def compute(self, capture: Capture, layer: str) -> FullGradients:
        """The :class:`FullGradients` of the capture's images and targets.

        Parameters
        ----------
        capture : Capture
            Its model, images (rows, C_in, H, W) and targets are read.
        layer : str
            Not read (the gradients do not depend on the tapped layer).

        Returns
        -------
        FullGradients
        """
        layers = _biased_layers(capture.model)
        records: Dict[str, list] = {}

        def make_hook(name: str):
            def hook(module, inputs, output):
                records.setdefault(name, []).append(output)  # every call: a reused layer adds its bias each time
                return output.clone()  # an in-place activation downstream must not alter the record
            return hook

        with torch.inference_mode(False), torch.enable_grad():
            x = capture.images.detach().clone().requires_grad_(True)
            with forward_hooks({module: make_hook(name) for name, module, _ in layers}):
                z = logits_of(capture.model(x))
            rows = torch.arange(z.shape[0], device=z.device)
            targets = capture.targets.clone()  # a normal tensor even when the caller is in inference mode
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
        return FullGradients(input_grad, tuple(bias_grads))


#: The one FullGrad request (its result does not depend on the layer; read it at the first one).
FULL_GRADIENTS = FullGradientRequest()


def _rescale(x: torch.Tensor, per_channel: bool) -> torch.Tensor:
    """abs(x) (N, C, h, w) min-max rescaled to [0, 1] per image (the whole tensor) or per channel."""
    x = x.abs()
    flat = x.flatten(2) if per_channel else x.flatten(1)
    lo = flat.amin(dim=-1, keepdim=True)
    span = flat.amax(dim=-1, keepdim=True) - lo
    if per_channel:
        eps = 1e-7  # pytorch-grad-cam's scale_cam_image
        out = (flat - lo) / (span + eps)
    else:
        eps = 1e-6  # the authors' _postProcess
        out = (flat - lo) / (span + eps)
    return out.view_as(x)


def fullgrad(capture: Capture, layer: str, normalize: str = "layer", align_corners: bool = True) -> torch.Tensor:
    """FullGrad saliency; (N, H, W) at the input's resolution.

    Parameters
    ----------
    capture : Capture
        The recorded forward pass; its model, images (N, C_in, H, W) and targets are read
        (:data:`FULL_GRADIENTS`).
    layer : str
        Unused (FullGrad reads every conv / batch-norm layer); kept for the common signature.
    normalize : {"layer", "channel"}
        "layer": each term is rescaled to [0, 1] over all its channels at once, as the
        authors' code does; "channel": every channel separately, as pytorch-grad-cam does.
    align_corners : bool
        Of the bilinear resize to the input (True in the authors' code; pytorch-grad-cam's
        ``cv2.resize`` samples like False).

    Returns
    -------
    torch.Tensor
        (N, H, W) saliency at the input's resolution, one map per row of ``capture`` (>= 0).

    References
    ----------
    Srinivas, Fleuret, "Full-Gradient Representation for Neural Network Visualization",
    NeurIPS 2019 (and their code, github.com/idiap/fullgrad-saliency).
    """
    check_choice(normalize, "normalize", NORMALIZATIONS)
    per_channel = normalize == "channel"
    grads = capture.derive(FULL_GRADIENTS)
    images = capture.images
    size = tuple(images.shape[-2:])
    total = _rescale(grads.input_grad * images, per_channel).sum(dim=1)
    for _, bias_grad in grads.bias_grads:
        # bilinear resizing is linear: summing the channels first and resizing one map equals
        # resizing every channel and summing them, at a fraction of the cost
        term = _rescale(bias_grad, per_channel).sum(dim=1, keepdim=True)
        if tuple(term.shape[-2:]) != size:
            term = F.interpolate(term, size=size, mode="bilinear", align_corners=bool(align_corners))
        total = total + term[:, 0]
    return total
