"""Seconds per training step of the default CPU networks, and what a 1000-image epoch costs.

Each case builds its network as the recipes do (random initialisation) and times full
training steps (forward, backward, optimizer step) on a fixed random batch of 16 images at
128 px, as the recipes' step functions run them:

* ``classifier``: ``resnet18_small`` (width 64) and ``resnet18_narrow`` (width 32) with
  2 blank images appended (``blank_fraction`` 0.125), SGD;
* ``i2c``: ``resnet18_narrow_i2c`` (dropout 0.5) through :class:`attribmap.train.i2c.I2CObjective`
  (CE + SC + GC, 2 blank images), SGD;
* ``weightmap``: ``weightmap_resnet18_narrow`` against a frozen ``resnet18_narrow``
  (method I: classifier forward on I and on I * M, generator forward and backward), Adam.

``--backbone efficientnet_lite0`` times the evidence's networks on both backbones instead
(``resnet18_narrow`` family and the ``efficientnet_lite0_*`` WSOL archs of issue 19; random
initialisation, which costs the same as the ImageNet weights): the classifier, the I2C step,
weight-map method I against the frozen classifier, the triplet step of the Siamese
embedding (3 x batch images in one pass) and weight-map method II against the frozen
embedding (generator on 3 x batch images, embedding on 5 x batch).

One warm-up step, then the median of ``--repeat`` timed steps; the whole list runs with
``torch.set_num_threads`` for each value of ``--threads``. The CAM layer side at 128 px is
printed too. Data loading (PNG decoding, crops) is not included.

Usage: ``python benchmarks/speed_train.py [--threads 1 2] [--repeat 5] [--size 128] [--out speed.json]``

Measured on the project's 2-core machine while other jobs ran on it (load average 4.7 to
5.4 during the run, so both cores were already busy); medians of 5 steps of 16 images at
128 px, seconds per step (and per 1000-image epoch)::

    threads  resnet18_small   resnet18_narrow  narrow_i2c     weightmap I (narrow)
    1        2.36 (147 s)     0.70 (44 s)      0.77 (48 s)    1.78 (111 s)
    2        5.30 (331 s)     1.86 (116 s)     1.90 (119 s)   6.16 (385 s)

On that loaded machine a second thread only added contention. Both classifiers have an 8x8
CAM layer at 128 px; the narrow one costs 3.4x less per step.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from typing import Callable, Dict, List

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from attribmap.models import build_model  # noqa: E402
from attribmap.train.classifier import classification_step  # noqa: E402


def _cases(size: int, batch: int, backbone: str = "") -> Dict[str, Callable[[], Callable[[], None]]]:
    """name -> builder of one training step (a closure over its network and optimizer).

    ``backbone`` "" gives the default CPU networks; ``"efficientnet_lite0"`` the evidence's
    five steps on ``resnet18_narrow`` and on ``efficientnet_lite0``.
    """
    from attribmap.learned import I2CLoss
    from attribmap.train.i2c import I2CObjective, i2c_step
    from attribmap.train.weightmap import Method1Objective, Method2Objective, TripletObjective

    images = torch.randn(batch, 3, size, size)
    labels = torch.arange(batch) // 2 % 8  # pairs of one class, as the I2C sampler gives

    def classifier(arch: str) -> Callable[[], Callable[[], None]]:
        def build() -> Callable[[], None]:
            model = build_model(arch, 8).train()
            optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            step_fn = classification_step(0.125, ("grey",))

            def step() -> None:
                optimizer.zero_grad()
                step_fn(model, {"image": images, "label": labels})[0].backward()
                optimizer.step()
            return step
        return build

    def i2c(arch: str = "resnet18_narrow_i2c") -> Callable[[], None]:
        net = build_model(arch, 8, dropout=0.5).train()
        with torch.no_grad():
            channels = net.forward_features(images[:1])[1].shape[1]
        objective = I2CObjective(net, I2CLoss(8, channels, seed_sampling="first")).train()
        optimizer = torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
        step_fn = i2c_step(0.125, ("grey",))

        def step() -> None:
            optimizer.zero_grad()
            step_fn(objective, {"image": images, "label": labels})[0].backward()
            optimizer.step()
        return step

    def weightmap(generator_arch: str = "weightmap_resnet18_narrow", frozen_arch: str = "resnet18_narrow",
                  method: int = 1) -> Callable[[], None]:
        from attribmap.train.common import freeze

        generator = build_model(generator_arch, 0)
        if method == 1:
            objective = Method1Objective(generator, freeze(build_model(frozen_arch, 8))).train()
        else:
            objective = Method2Objective(generator, freeze(build_model(frozen_arch, 0))).train()
        optimizer = torch.optim.Adam(generator.parameters(), lr=1e-3)

        def step() -> None:
            optimizer.zero_grad()
            if method == 1:
                objective(images)[0].backward()
            else:
                objective(images, images.roll(1, 0), images.roll(2, 0))[0].backward()
            optimizer.step()
        return step

    def embedding(arch: str) -> Callable[[], None]:
        net = build_model(arch, 0).train()
        objective = TripletObjective(net)
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

        def step() -> None:
            optimizer.zero_grad()
            objective(images, images.roll(1, 0), images.roll(2, 0)).backward()
            optimizer.step()
        return step

    if backbone == "efficientnet_lite0":
        cases: Dict[str, Callable[[], Callable[[], None]]] = {}
        for name, prefix, suffix in (("narrow", "", "resnet18_narrow"), ("lite0", "efficientnet_lite0", "")):
            arch = suffix or "efficientnet_lite0_wsol"
            i2c_arch = "resnet18_narrow_i2c" if suffix else "efficientnet_lite0_i2c"
            generator = "weightmap_resnet18_narrow" if suffix else "weightmap_efficientnet_lite0"
            siamese = "siamese_resnet18_narrow" if suffix else "siamese_efficientnet_lite0"
            cases[f"classifier {arch}"] = classifier(arch)
            cases[f"i2c {i2c_arch}"] = lambda a=i2c_arch: i2c(a)
            cases[f"weightmap I {name}"] = lambda g=generator, f=arch: weightmap(g, f, 1)
            cases[f"embedding {siamese}"] = lambda a=siamese: embedding(a)
            cases[f"weightmap II {name}"] = lambda g=generator, f=siamese: weightmap(g, f, 2)
        return cases
    return {"classifier resnet18_small": classifier("resnet18_small"),
            "classifier resnet18_narrow": classifier("resnet18_narrow"),
            "i2c resnet18_narrow_i2c": lambda: i2c(),
            "weightmap method I, narrow": weightmap}


def _time(step: Callable[[], None], repeat: int) -> List[float]:
    step()  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--out", help="write the numbers as JSON here")
    parser.add_argument("--backbone", choices=["", "efficientnet_lite0"], default="",
                        help="efficientnet_lite0: the evidence's five steps on both backbones")
    args = parser.parse_args(argv)
    archs = (("resnet18_narrow", "efficientnet_lite0_wsol") if args.backbone
             else ("resnet18_small", "resnet18_narrow"))
    with torch.no_grad():
        sides = {arch: build_model(arch, 8).eval().forward_body(torch.zeros(1, 3, args.size, args.size)).shape[-1]
                 for arch in archs}
    print(f"CAM layer at {args.size} px: " + ", ".join(f"{a} {s}x{s}" for a, s in sides.items()))
    results = {"size": args.size, "batch": args.batch, "cam_side": sides, "machine": platform.platform(),
               "cpus": os.cpu_count(), "load_average": os.getloadavg(), "seconds_per_step": {}}
    for threads in args.threads:
        torch.set_num_threads(threads)
        for name, build in _cases(args.size, args.batch, args.backbone).items():
            torch.manual_seed(0)
            times = _time(build(), args.repeat)
            median = statistics.median(times)
            results["seconds_per_step"].setdefault(str(threads), {})[name] = median
            print(f"threads={threads} {name:30s} {median:6.3f} s/step (min {min(times):.3f}) "
                  f"-> {median * 1000 / args.batch:6.1f} s per 1000-image epoch", flush=True)
    results["load_average_after"] = os.getloadavg()
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(results, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
