"""The demo's table at a larger size, over several seeds (mean +- std).

For each seed the whole pipeline of ``attribmap demo`` runs with that seed for the suite
generator and for training (synthetic suite v2 -> pretrain and CE classifiers, I2C, weight map
-> benchmark of cam, gradcam, gradcampp, dgl, dgl@layer3, dgl-psb, dgl-cem, a captum method,
i2c and weightmap on the test split, official protocol). The pipeline and the summary are
:mod:`attribmap.experiments.demo_seeds`; this script is its command line. Stages are cached per
seed under ``--out/seed<k>``, so an interrupted run continues where it stopped. Run from the
repository root::

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/wsol_suite.py --out wsol_suite_out
    .venv/bin/python benchmarks/wsol_suite.py --quick --seeds 0 --out /tmp/wsol_quick   # smoke test

Writes ``--out/summary.json`` and ``--out/summary.md`` and prints the table.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from attribmap.experiments.demo import PRESETS
from attribmap.experiments.demo_seeds import LARGE, run_seeds


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, run every seed and print the summary table; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="wsol_suite_out", help="working directory (cached per seed)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default 0 1 2)")
    parser.add_argument("--quick", action="store_true", help="the tiny test-size pipeline (smoke test)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if any(seed < 0 for seed in args.seeds):
        parser.error(f"--seeds must be >= 0, got {args.seeds}")
    _, table = run_seeds(Path(args.out), PRESETS["tiny"] if args.quick else LARGE, args.seeds,
                         progress=False if args.no_progress else None,
                         log=lambda line: print(line, file=sys.stderr, flush=True))
    print(table)
    print(f"summary: {(Path(args.out) / 'summary.md').resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
