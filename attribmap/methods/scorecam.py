"""Score-CAM and its smoothed / integrated variants: channel weights from masked forward passes.

Every channel k of the tapped activations F gives a mask H_k: F_k bilinearly upsampled to
the input and min-max normalized to [0, 1] (Wang et al. 2020, Alg. 1: upsample, then
normalize). The input masked by H_k goes through the whole network; the target logit of
each masked input scores its channel, and the map is ReLU(sum_k softmax_k(score) F_k).

* ``scorecam``: score_k = z_c(X * H_k);
* ``sscam``: score_k = mean_i z_c(X * (H_k + delta_i)), delta_i ~ N(0, sigma^2) per pixel;
* ``iscam``: score_k = mean_i z_c(c_i X * H_k), c_i = sum_{j<=i} j / n.

How the work is bounded and shared: the masked inputs are built and scored ``batch_size`` at
a time under :func:`torch.inference_mode` on the input's device; a channel whose activation
is constant has an all-zero mask, so all such channels share one forward pass of the zero
image (exact; not for ``sscam``, whose noise makes every mask different); rows that repeat an
image (several targets per image) share that image's forward passes.

Options common to the three: ``batch_size`` (default 32), ``normalize`` ("upsampled": the
paper's order, min-max after upsampling; "layer": min-max at layer resolution, then upsample,
as torchcam does), ``align_corners`` of the upsampling (False; pytorch-grad-cam's
``UpsamplingBilinear2d`` is True), ``fold_batchnorm`` (True: the masked inputs go through a
copy of the model whose eval-mode batch norms are folded into the convolutions before them,
checked against the recorded logits; see :mod:`attribmap.methods.folded_model`).

On Linux (glibc), a Python program that runs these methods on the CPU gains from calling
:func:`attribmap.allocator.keep_freed_memory` once: without it every pass faults in its large
activations afresh (EfficientNet-Lite0 at 448 px: 148 against 77 ms a masked input on one
thread). The ``attribmap`` command line does it for you.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F

from attribmap.errors import MethodError
from attribmap.methods.folded_model import folded_model
from attribmap.methods.gradcam import weighted_channels
from attribmap.methods.perturbation import (DistinctRows, check_batch_size, check_choice, check_count,
                                            check_nonnegative, draw_normal, forward_logits, noise_generator,
                                            run_chunks, score_classes)
from attribmap.tap import Capture

__all__ = ["scorecam", "sscam", "iscam", "channel_masks", "check_eval_mode"]

NORMALIZATIONS = ("upsampled", "layer")


def _unit_range(maps: torch.Tensor) -> torch.Tensor:
    """Min-max of each map (..., h, w) to [0, 1]; a constant map becomes zeros."""
    lo = maps.amin(dim=(-2, -1), keepdim=True)
    span = maps.amax(dim=(-2, -1), keepdim=True) - lo
    ok = span > 0
    return torch.where(ok, (maps - lo) / torch.where(ok, span, torch.ones_like(span)), torch.zeros_like(maps))


def channel_masks(feats: torch.Tensor, size, normalize: str = "upsampled", align_corners: bool = False) -> torch.Tensor:
    """Masks (B, 1, H, W) in [0, 1] from single-channel activations (B, h, w).

    ``normalize="upsampled"`` upsamples, then min-max normalizes (the paper's Alg. 1);
    ``"layer"`` normalizes at layer resolution, then upsamples (torchcam's order).

    Parameters
    ----------
    feats : torch.Tensor
        (B, h, w) one channel of activations per mask.
    size : pair of int
        (H, W) of the input.
    normalize : {"upsampled", "layer"}
        Where the min-max normalization happens (a constant map becomes zeros).
    align_corners : bool
        Of the bilinear upsampling.

    Returns
    -------
    torch.Tensor
        (B, 1, H, W) masks in [0, 1].
    """
    source = feats.unsqueeze(1)
    if normalize == "layer":
        source = _unit_range(source)
    up = F.interpolate(source, size=tuple(size), mode="bilinear", align_corners=bool(align_corners))
    return _unit_range(up) if normalize == "upsampled" else up


def check_eval_mode(capture: Capture, name: str) -> None:
    """Refuse to run many forward passes on a model whose batch norms would update their statistics.

    Parameters
    ----------
    capture : Capture
        Gives the model whose batch-norm modules are inspected.
    name : str
        The method's name in the error message.

    Raises
    ------
    MethodError
        A batch norm that tracks running statistics is in training mode.
    """
    for module in capture.model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and module.training \
                and module.track_running_stats:
            raise MethodError(f"{name} runs many forward passes; the model is in training mode, so its "
                              "batch-norm statistics would change: call model.eval() first")


Perturb = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


def _masked_scores(capture: Capture, layer: str, name: str, batch_size: int, normalize: str, align_corners: bool,
                   n_samples: int, perturb: Perturb, zero_masks_share: bool, fold_batchnorm: bool) -> torch.Tensor:
    """Mean target logit (N, C) over ``n_samples`` perturbed masked inputs per channel.

    ``perturb(images, masks, sample) -> inputs`` builds a chunk's inputs (B, C_in, H, W) from
    its images (B, C_in, H, W) and masks (B, 1, H, W).
    """
    check_batch_size(batch_size)
    if not isinstance(fold_batchnorm, bool):
        raise MethodError(f"fold_batchnorm must be True or False; got {fold_batchnorm!r}")
    check_choice(normalize, "normalize", NORMALIZATIONS)
    check_eval_mode(capture, name)
    images = capture.images
    feats = capture.activations(layer)
    rows = DistinctRows(images)
    distinct_feats = feats.index_select(0, rows.index)
    distinct_images = images.index_select(0, rows.index)
    u, c = distinct_feats.shape[:2]
    model = capture.model
    if fold_batchnorm:
        model = folded_model(model, distinct_images, capture.logits.index_select(0, rows.index))
    classes, position = score_classes(capture.targets)
    flat = distinct_feats.flatten(2)
    constant = (flat.amax(dim=2) - flat.amin(dim=2)) == 0  # (U, C): all-zero masks
    if not zero_masks_share:
        constant = torch.zeros_like(constant)
    pairs = (~constant).flatten().nonzero()[:, 0]  # active (image, channel) pairs, image-major
    size = images.shape[-2:]

    totals = torch.zeros((u * c, classes.numel()), dtype=torch.float64, device=images.device)
    for sample in range(n_samples if len(pairs) else 0):
        def build(part: slice, sample: int = sample) -> torch.Tensor:
            chosen = pairs[part]
            image_of, channel_of = chosen // c, chosen % c
            masks = channel_masks(distinct_feats[image_of, channel_of], size, normalize, align_corners)
            inputs = perturb(distinct_images.index_select(0, image_of), masks.to(images.dtype), sample)
            return forward_logits(model, inputs)

        logits = run_chunks(build, len(pairs), batch_size, classes)
        totals.index_add_(0, pairs, logits.to(totals))
    if bool(constant.any()):
        zero_image = torch.zeros_like(images[:1])
        logits = run_chunks(lambda part: forward_logits(model, zero_image), 1, 1, classes)
        totals[constant.flatten()] = logits.to(totals) * n_samples
    means = (totals / n_samples).view(u, c, -1)
    return means[rows.inverse, :, position].to(feats.dtype)  # (N, C)


def _combine(capture: Capture, layer: str, scores: torch.Tensor) -> torch.Tensor:
    weights = torch.softmax(scores.float(), dim=1).to(scores.dtype)
    return torch.relu(weighted_channels(weights, capture.activations(layer)))


def scorecam(capture: Capture, layer: str, batch_size: int = 32, normalize: str = "upsampled",
             align_corners: bool = False, fold_batchnorm: bool = True) -> torch.Tensor:
    """Score-CAM: ReLU(sum_k softmax_k(z_c(X * H_k)) F_k); (N, h, w).

    Parameters
    ----------
    capture : Capture
        The recorded forward pass: activations of ``layer`` (N, C, h, w), logits and
        targets, one row per image and target class, and the cached gradients.
    layer : str
        Name of the tapped layer whose activations F are read.
    batch_size : int
        Masked inputs per forward pass (bounds the memory).
    normalize : {"upsampled", "layer"}
        Where the masks are min-max normalized (see the module docstring).
    align_corners : bool
        Of the bilinear upsampling of the masks.
    fold_batchnorm : bool
        Run the masked inputs through a copy of the model with its eval-mode batch norms
        folded into the convolutions before them (:mod:`attribmap.methods.folded_model`):
        the same function up to float rounding, fewer passes over the activations. The
        copy is used only when it reproduces the recorded logits; False runs the model
        itself.

    Returns
    -------
    torch.Tensor
        (N, h, w) raw maps on the layer's grid, one per row of ``capture``.

    References
    ----------
    Wang, Wang, Du, Yang, Zhang, Ding, Mardziel, Hu, "Score-CAM: Score-Weighted Visual
    Explanations for Convolutional Neural Networks", CVPR Workshops 2020, Algorithm 1.
    """
    scores = _masked_scores(capture, layer, "scorecam", batch_size, normalize, align_corners, 1,
                            lambda images, masks, sample: images * masks, zero_masks_share=True,
                            fold_batchnorm=fold_batchnorm)
    return _combine(capture, layer, scores)


def sscam(capture: Capture, layer: str, n_samples: int = 35, sigma: float = 2.0, seed: int = 0,
          generator: Optional[torch.Generator] = None, batch_size: int = 32, normalize: str = "upsampled",
          align_corners: bool = False, fold_batchnorm: bool = True) -> torch.Tensor:
    """SS-CAM: Score-CAM with noisy masks, score_k = mean_i z_c(X * (H_k + delta_i)); (N, h, w).

    delta_i ~ N(0, sigma^2) per pixel, one draw per sample, channel and image, drawn in that
    order (samples outermost) from a CPU generator: ``seed`` (or ``generator``) makes the map
    reproducible on every device.

    Parameters
    ----------
    capture : Capture
        The recorded forward pass: activations of ``layer`` (N, C, h, w), logits and
        targets, one row per image and target class, and the cached gradients.
    layer : str
        Name of the tapped layer whose activations F are read.
    n_samples : int
        Noisy masks per channel (35, as torchcam).
    sigma : float
        Noise standard deviation (2.0, as torchcam).
    seed : int
        Seed of the noise (ignored when ``generator`` is given).
    generator : torch.Generator, optional
        A CPU generator to draw from (it advances).
    batch_size : int
        Masked inputs per forward pass, as :func:`scorecam`.
    normalize : {"upsampled", "layer"}
        Where the masks are min-max normalized, as :func:`scorecam`.
    align_corners : bool
        Of the bilinear upsampling of the masks, as :func:`scorecam`.
    fold_batchnorm : bool
        Score with the batch-norm-folded copy of the model, as :func:`scorecam`.

    Returns
    -------
    torch.Tensor
        (N, h, w) raw maps on the layer's grid, one per row of ``capture``.

    References
    ----------
    Wang, Naidu et al., "SS-CAM: Smoothed Score-CAM for Sharper Visual Feature Localization",
    arXiv:2006.14255, 2020.
    """
    check_count(n_samples, "n_samples")
    sigma = check_nonnegative(sigma, "sigma")
    gen = noise_generator(seed, generator)

    def perturb(images: torch.Tensor, masks: torch.Tensor, sample: int) -> torch.Tensor:
        return images * (masks + draw_normal(tuple(masks.shape), sigma, gen, masks))

    scores = _masked_scores(capture, layer, "sscam", batch_size, normalize, align_corners, n_samples, perturb,
                            zero_masks_share=False, fold_batchnorm=fold_batchnorm)
    return _combine(capture, layer, scores)


def iscam(capture: Capture, layer: str, n_samples: int = 10, batch_size: int = 32, normalize: str = "upsampled",
          align_corners: bool = False, fold_batchnorm: bool = True) -> torch.Tensor:
    """IS-CAM: Score-CAM integrated along the mask, score_k = mean_i z_c(c_i X * H_k); (N, h, w).

    c_i = sum_{j=1}^{i} j / n for i = 1..n (the coefficients torchcam's ``ISCAM`` accumulates).

    Parameters
    ----------
    capture : Capture
        The recorded forward pass: activations of ``layer`` (N, C, h, w), logits and
        targets, one row per image and target class, and the cached gradients.
    layer : str
        Name of the tapped layer whose activations F are read.
    n_samples : int
        Integration steps n (10, as torchcam).
    batch_size : int
        Masked inputs per forward pass, as :func:`scorecam`.
    normalize : {"upsampled", "layer"}
        Where the masks are min-max normalized, as :func:`scorecam`.
    align_corners : bool
        Of the bilinear upsampling of the masks, as :func:`scorecam`.
    fold_batchnorm : bool
        Score with the batch-norm-folded copy of the model, as :func:`scorecam`.

    Returns
    -------
    torch.Tensor
        (N, h, w) raw maps on the layer's grid, one per row of ``capture``.

    References
    ----------
    Naidu, Ghosh, Maurya, Nayak K, Kundu, "IS-CAM: Integrated Score-CAM for axiomatic-based
    explanations", arXiv:2010.03023, 2020.
    """
    n = check_count(n_samples, "n_samples")
    coefficients = torch.cumsum(torch.arange(1, n + 1, dtype=torch.float64) / n, dim=0).tolist()

    def perturb(images: torch.Tensor, masks: torch.Tensor, sample: int) -> torch.Tensor:
        return coefficients[sample] * (images * masks)

    scores = _masked_scores(capture, layer, "iscam", batch_size, normalize, align_corners, n, perturb,
                            zero_masks_share=True, fold_batchnorm=fold_batchnorm)
    return _combine(capture, layer, scores)
