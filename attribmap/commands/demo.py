"""``attribmap demo [--out demo_out] [--fast]``: the whole pipeline on the synthetic suite.

Generates the synthetic suite (version 2, with its pretrain split), trains the pretrain and
CE classifiers, I2C (CE stage, then the SC + GC fine-tune) and a weight-map generator,
benchmarks every extractor on the test split beside the reference rows from ground truth,
then prints the results table, the suite's validity check, the blank-image entropy and the
report path. Then the real network (:mod:`attribmap.experiments.demo_real`):
``efficientnet_lite0`` with its ImageNet weights on 2 x 2 mosaics of the bundled photos
(grid pointing game table) and a figure of maps on the photos. Finished stages are cached in
``--out``, so a second run is quick.
"""
from __future__ import annotations

import argparse
import sys
import time

__all__ = ["register", "run_demo_command"]


def register(subparsers) -> None:
    """Add the ``demo`` sub-command to ``subparsers``."""
    parser = subparsers.add_parser(
        "demo", help="run the whole pipeline on the synthetic suite and print the results table",
        description="End-to-end demo: synthetic suite v2 -> pretrain classifier -> CE classifier, I2C "
                    "(CE then SC + GC fine-tune) and weight-map training -> benchmark of cam, gradcam, "
                    "gradcampp, dgl (layer4 and layer3), dgl-psb, dgl-cem, a captum method, i2c and weightmap "
                    "on the test split beside the ground-truth reference rows; then efficientnet_lite0 "
                    "(ImageNet weights, offline) on 2x2 mosaics of the bundled photos (grid pointing game) "
                    "and a figure of maps on the photos. Stages whose outputs exist with the same settings "
                    "are reused.")
    parser.add_argument("--out", default="demo_out", metavar="DIR", help="working and cache directory "
                                                                          "(default demo_out)")
    parser.add_argument("--fast", action="store_true", help="smaller suite and budgets, delta 0.01 "
                                                            "(a quick look, numbers not for citing)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch CPU threads (default: torch's choice / OMP_NUM_THREADS)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--no-real-network", action="store_true",
                        help="skip the real-network part (efficientnet_lite0 on the bundled photos)")
    parser.set_defaults(func=run_demo_command)


def run_demo_command(args: argparse.Namespace) -> int:
    """Run the demo of the parsed ``args`` and print the table, the stage timings and the report path."""
    import dataclasses

    import torch

    from attribmap.experiments.demo import PRESETS, run_demo
    from attribmap.bench.report import results_table

    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1; got {args.threads}")
        torch.set_num_threads(args.threads)
    from attribmap.fileio import check_output_dir

    check_output_dir(args.out, "--out")
    started = time.perf_counter()
    settings = PRESETS["fast" if args.fast else "full"]
    if args.no_real_network:
        settings = dataclasses.replace(settings, real_network=False)
    outcome = run_demo(args.out, settings,
                       progress=False if args.no_progress else None,
                       log=lambda line: print(line, file=sys.stderr, flush=True))
    from attribmap.bench.suite_report import section_lines

    print(results_table(outcome.results))
    for line in section_lines(outcome.results):
        print(line)
    if outcome.real_results is not None:
        info = outcome.real_results.get("dataset", {})
        print(f"\nReal network: efficientnet_lite0 (ImageNet weights) on 2x2 mosaics of the bundled photos "
              f"({info.get('num_images', '?')} entries: one per mosaic and target cell)\n")
        print(results_table(outcome.real_results))
        for line in section_lines(outcome.real_results):
            print(line)
        print(f"maps on the photos: {outcome.real_figure.resolve()}")
    stages = ", ".join(f"{name} {'cached' if outcome.skipped[name] else f'{seconds:.0f} s'}"
                       for name, seconds in outcome.seconds.items())
    print(f"stages: {stages}; total {time.perf_counter() - started:.0f} s")
    print(f"report: {outcome.report.resolve()}")
    return 0
