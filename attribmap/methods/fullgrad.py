"""FullGrad (Srinivas & Fleuret, NeurIPS 2019): input-gradient and bias-gradient maps of every layer.

map = sum_c psi(abs(x_grad * x))_c + sum_layers sum_c psi(abs(b * dz_c/dy))_c, where y is the output
of a convolution or batch norm with bias b (for batch norm, its effective bias from the
running statistics) and psi rescales to [0, 1] and resizes bilinearly to the input.

The gradients come from :meth:`attribmap.tap.Capture.full_gradients` (one extra forward
pass recording a graph from the input; the tapped layer is not used). The raw map is at
the input's resolution.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from attribmap.methods.perturbation import check_choice
from attribmap.tap import Capture

__all__ = ["fullgrad", "NORMALIZATIONS"]

NORMALIZATIONS = ("layer", "channel")


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
        (:meth:`~attribmap.tap.Capture.full_gradients`).
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
    grads = capture.full_gradients()
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
