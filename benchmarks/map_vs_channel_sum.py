"""How close a method's map is to the plain sum of the layer's channels (the weights not used).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/map_vs_channel_sum.py --photos coffee,chelsea \\
        --methods gradcam,scorecam:batch_size=16 [--cached sanity_cache/trained-original-sscam...pt]

On efficientnet_lite0 (ImageNet weights) and bundled photos at 224 px, each method's raw map of
the top-1 class at the automatic layer (``_head_act``, 7 x 7) is compared by Spearman rank
correlation with ReLU(sum_k A_k), the map every channel weight equal would give. A value near 1
means the method's channel weights hardly matter, so the map cannot depend on the classifier.
``--cached`` reads the trained maps of a costly method (SS-CAM: 25 min of one core a photo)
from a file of an ``attribmap sanity --cache`` folder instead (the trained stage, the same photos).
"""
from __future__ import annotations

import argparse
import time

import torch
import attribmap
from attribmap.data.photos import load
from attribmap.inputs import default_transform
from attribmap.methods.spec import split_specs
from attribmap.models import build_model
from attribmap.sanity.similarity import spearman
from attribmap.tap import Tap


def spearman_per_image(maps: torch.Tensor, reference: torch.Tensor) -> list:
    """Spearman correlation per image of two (N, h, w) map stacks (the sanity checks' own measure)."""
    return [spearman(m.detach().double().numpy(), r.detach().double().numpy()) for m, r in zip(maps, reference)]


def main(argv=None) -> int:
    """Print one line per method."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", default="coffee,chelsea")
    parser.add_argument("--methods", default="gradcam,gradcampp,scorecam:batch_size=16")
    parser.add_argument("--cached", nargs="*", default=[], help="stage-cache files of the trained model")
    args = parser.parse_args(argv)
    photos = args.photos.split(",")
    model = build_model("efficientnet_lite0", num_classes=1000, weights="DEFAULT").eval()
    x = torch.stack([default_transform(load(name), 224) for name in photos])
    head = Tap(model, {"_head_act": model._head_act}).run(x).activations("_head_act")
    plain = torch.relu(head.detach().sum(1))  # (N, 7, 7)
    print(f"Spearman with ReLU(channel sum) at _head_act, photos {', '.join(photos)}:")
    for spec in split_specs(args.methods) if args.methods else []:
        started = time.perf_counter()
        maps = attribmap.explain(model, x, method=spec, layer="_head_act", raw=True)
        values = ", ".join(f"{v:.3f}" for v in spearman_per_image(maps, plain))
        print(f"  {spec}: {values} ({time.perf_counter() - started:.0f} s)")
    for path in args.cached:
        entry = torch.load(path, map_location="cpu", weights_only=True)
        if entry.get("stage") != "original" or entry["maps"].shape[0] != len(photos):
            parser.error(f"{path} holds stage {entry.get('stage')!r} with {entry['maps'].shape[0]} maps; "
                         f"expected the trained stage 'original' of the {len(photos)} photos")
        values = ", ".join(f"{v:.3f}" for v in spearman_per_image(entry["maps"], plain))
        print(f"  {entry['method']} (cached): {values}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
