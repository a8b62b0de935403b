"""Check the synthetic WSOL suite (version 2): learnable, part-dominated, and valid.

Generates the suite, trains a ``resnet18_small`` classifier at 128 px (an 8x8 CAM layer) and
reports its test accuracy, the maps of ``--methods`` (default CAM), the suite's reference rows
and the validity check with that CAM; ``--body-only`` measures the body's class evidence
alone. The pipeline is :func:`attribmap.experiments.synthetic_check.run_suite_check` (read its
docstring); this script is its command line. Run from the repository root::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/synthetic_suite_check.py [--out DIR] [--epochs N] \
        [--methods cam,gradcam] [--body-only] [--json result.json]

Prints one JSON object (also written to ``--json`` when given).
"""
from __future__ import annotations

import argparse
import json
import sys

import torch

from attribmap.experiments.synthetic_check import SuiteCheckSettings, run_suite_check
from attribmap.fileio import atomic_write_text


def main(argv=None) -> int:
    """Parse the arguments, run the check and print its JSON result; returns the exit status."""
    defaults = SuiteCheckSettings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="work directory (suite, checkpoint), overwritten (default: temporary)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="suite and training seed")
    parser.add_argument("--classes", type=int, default=defaults.classes)
    parser.add_argument("--per-class", type=int, default=defaults.per_class)
    parser.add_argument("--test-per-class", type=int, default=defaults.test_per_class)
    parser.add_argument("--size", type=int, default=defaults.size, help="nominal image side of the suite")
    parser.add_argument("--image-size", type=int, default=defaults.image_size, help="classifier input side")
    parser.add_argument("--arch", default=defaults.arch)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--methods", default="cam", help="comma-separated extractors to score (default: cam)")
    parser.add_argument("--body-only", action="store_true",
                        help="objects without parts, no distractor bodies: measure the body's class evidence")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = SuiteCheckSettings(
        seed=args.seed, classes=args.classes, per_class=args.per_class, test_per_class=args.test_per_class,
        size=args.size, image_size=args.image_size, arch=args.arch, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, methods=tuple(name.strip() for name in args.methods.split(",") if name.strip()),
        body_only=args.body_only)
    result = run_suite_check(settings, work=args.out, log=lambda line: print(line, file=sys.stderr, flush=True))
    result["threads"] = args.threads
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        atomic_write_text(args.json, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
