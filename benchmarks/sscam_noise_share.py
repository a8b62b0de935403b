"""How much of SS-CAM's per-channel score is the channel's mask, and how much the noise.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/sscam_noise_share.py --photo coffee --channels 48 --sigma 2

On efficientnet_lite0 (ImageNet weights) and one bundled photo at 224 px, for ``--channels``
channels of the automatic layer (``_head_act``) drawn with a fixed seed, it computes the
score SS-CAM gives each channel, mean_i z_c(X * (H_k + delta_i)) over ``--samples`` draws of
delta ~ N(0, sigma^2) per pixel, for two noise seeds, and Score-CAM's score z_c(X * H_k)
(sigma 0), c the photo's top-1 class. Printed: the spread of the scores over the channels,
the standard deviation of one noisy score and of a mean of ``--samples``, and the Spearman
rank correlations seed 0 / seed 1 and SS-CAM / Score-CAM. A seed-to-seed correlation far
below 1 means the channel weights, so the map's choice among objects, are mostly noise.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.stats import spearmanr

from attribmap.data.photos import load
from attribmap.inputs import default_transform
from attribmap.methods.scorecam import channel_masks
from attribmap.models import build_model
from attribmap.tap import Tap


def channel_scores(model, x: torch.Tensor, masks: torch.Tensor, target: int, sigma: float, samples: int,
                   seed: int) -> np.ndarray:
    """Mean target logit per mask (K,) over ``samples`` noisy copies; ``masks`` (K, H, W), ``x`` (1, 3, H, W)."""
    generator = torch.Generator().manual_seed(seed)
    total = torch.zeros(masks.shape[0], dtype=torch.float64)
    with torch.no_grad():
        for _ in range(samples):
            noisy = masks[:, None] + sigma * torch.randn(masks[:, None].shape, generator=generator)
            total += model(x * noisy)[:, target].double()
    return (total / samples).numpy()


def main(argv=None) -> int:
    """Print the measures for one photo."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", default="coffee")
    parser.add_argument("--channels", type=int, default=48)
    parser.add_argument("--samples", type=int, default=35)
    parser.add_argument("--sigma", type=float, default=2.0)
    args = parser.parse_args(argv)
    model = build_model("efficientnet_lite0", num_classes=1000, weights="DEFAULT").eval()
    x = default_transform(load(args.photo), 224)[None]
    capture = Tap(model, {"_head_act": model._head_act}).run(x)
    target = int(capture.logits.argmax())
    head = capture.activations("_head_act").detach()
    chosen = np.random.default_rng(0).choice(head.shape[1], args.channels, replace=False)
    masks = channel_masks(head[0, chosen], x.shape[-2:])[:, 0]
    started = time.perf_counter()
    clean = channel_scores(model, x, masks, target, 0.0, 1, 0)
    first = channel_scores(model, x, masks, target, args.sigma, args.samples, 0)
    second = channel_scores(model, x, masks, target, args.sigma, args.samples, 1)
    single = np.stack([channel_scores(model, x, masks[:8], target, args.sigma, 1, 10 + i) for i in range(args.samples)])
    print(f"{args.photo}: class {target}, {args.channels} channels of _head_act, sigma {args.sigma}, "
          f"{args.samples} samples ({time.perf_counter() - started:.0f} s)")
    print(f"Score-CAM scores: std over the channels {clean.std():.3f} (range {clean.min():.2f} .. {clean.max():.2f})")
    print(f"SS-CAM scores (seed 0): std over the channels {first.std():.3f}, mean {first.mean():.2f}")
    noise = single.std(axis=0).mean()
    print(f"one noisy score: std {noise:.3f} (mean over 8 channels); a mean of {args.samples}: "
          f"{noise / args.samples ** 0.5:.3f}")
    print(f"Spearman SS-CAM seed 0 / seed 1: {spearmanr(first, second)[0]:.2f}")
    print(f"Spearman SS-CAM / Score-CAM: seed 0 {spearmanr(first, clean)[0]:.2f}, "
          f"seed 1 {spearmanr(second, clean)[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
