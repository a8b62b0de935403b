"""Smooth Grad-CAM++ (Omeiza et al. 2019): Grad-CAM++ on derivatives averaged over noisy inputs.

For n copies x + delta_m of each image (delta_m ~ N(0, sigma^2) per input value), with
g_m = dz_c/dF at the m-th copy: D1 = mean_m g_m, D2 = mean_m g_m^2, D3 = mean_m g_m^3 (the
first three derivatives of the exponential score, averaged), and the Grad-CAM++ closed
form with the activations F of the clean image:
a_ij = D2_ij / (2 D2_ij + (sum_ab F_ab) D3_ij), w_k = sum_ij a_ij ReLU(D1_ij),
map = ReLU(sum_k w_k F_k).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch

from attribmap.methods.gradcam import gradcampp_weights, weighted_channels
from attribmap.methods.perturbation import (check_batch_size, check_count, check_nonnegative, chunks, draw_normal,
                                            in_fast_layout, noise_generator)
from attribmap.tap import Capture

__all__ = ["smoothgradcampp", "smoothed_derivatives"]


def smoothed_derivatives(capture: Capture, layer: str, n_samples: int = 4, sigma: float = 0.3, seed: int = 0,
                         generator: Optional[torch.Generator] = None,
                         batch_size: int = 32) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(D1, D2, D3), each (N, C, h, w): the means of g, g^2, g^3 over ``n_samples`` noisy copies.

    The noise of copy m of all rows is drawn as one (N, C_in, H, W) block per m, in order,
    from a CPU generator; the noisy copies are tapped ``batch_size`` rows at a time.

    Parameters
    ----------
    capture : Capture
        The recorded forward pass: its images (N, C_in, H, W) are perturbed and tapped again
        (:meth:`~attribmap.tap.Capture.retap`) with its targets.
    layer : str
        Name of the layer whose gradients are averaged.
    n_samples : int
        Noisy copies per row.
    sigma : float
        Standard deviation of the noise, in the input's units (>= 0).
    seed : int
        Seed of the noise (ignored when ``generator`` is given).
    generator : torch.Generator, optional
        A CPU generator to draw from (it advances).
    batch_size : int
        Noisy copies per tapped forward pass.

    Returns
    -------
    (D1, D2, D3) : tuple of torch.Tensor
        Each (N, C, h, w), in the activations' dtype.
    """
    check_count(n_samples, "n_samples")
    check_batch_size(batch_size)
    sigma = check_nonnegative(sigma, "sigma")
    gen = noise_generator(seed, generator)
    images = capture.images
    n = images.shape[0]
    feats = capture.activations(layer)
    sums = [torch.zeros_like(feats, dtype=torch.float64) for _ in range(3)]
    jobs = n_samples * n
    for part in chunks(jobs, batch_size):
        rows = torch.arange(part.start, part.stop, device=images.device) % n
        noisy = images.index_select(0, rows) + draw_normal((part.stop - part.start,) + tuple(images.shape[1:]),
                                                           sigma, gen, images)
        targets = capture.targets.index_select(0, rows)
        tapped = in_fast_layout(capture.model, lambda x: capture.retap(x, targets, [layer]), noisy)
        grads = tapped.score_grad(layer).double()
        for power, total in enumerate(sums, start=1):
            total.index_add_(0, rows, grads.pow(power))
    return tuple((total / n_samples).to(feats.dtype) for total in sums)


def smoothgradcampp(capture: Capture, layer: str, n_samples: int = 4, sigma: float = 0.3, seed: int = 0,
                    generator: Optional[torch.Generator] = None, batch_size: int = 32) -> torch.Tensor:
    """Smooth Grad-CAM++; (N, h, w).

    Parameters
    ----------
    capture : Capture
        The recorded forward pass: activations of ``layer`` (N, C, h, w), logits and
        targets, one row per image and target class, and the cached gradients.
    layer : str
        Name of the tapped layer whose activations F are read.
    n_samples : int
        Noisy copies per image (4, as torchcam).
    sigma : float
        Standard deviation of the noise, in the input's units (0.3, as torchcam).
    seed : int
        Seed of the noise (ignored when ``generator`` is given): equal seeds, equal maps.
    generator : torch.Generator, optional
        A CPU generator to draw from (it advances).
    batch_size : int
        Noisy copies per tapped forward pass (bounds the memory).

    Returns
    -------
    torch.Tensor
        (N, h, w) raw maps on the layer's grid, one per row of ``capture``.

    References
    ----------
    Omeiza, Speakman, Cintas, Weldemariam, "Smooth Grad-CAM++: An Enhanced Inference Level
    Visualization Technique for Deep Convolutional Neural Network Models", arXiv:1908.01224,
    2019.
    """
    d1, d2, d3 = smoothed_derivatives(capture, layer, n_samples, sigma, seed, generator, batch_size)
    feats = capture.activations(layer)
    return torch.relu(weighted_channels(gradcampp_weights(feats, d1, d2, d3), feats))
