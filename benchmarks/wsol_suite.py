"""The demo's table at a larger size, over several seeds (mean +- std).

For each seed the whole pipeline of ``attribmap demo`` runs with that seed for the suite
generator and for training (synthetic suite -> classifier, I2C, weight map -> benchmark of
cam, gradcam, gradcampp, dgl, dgl-psb, dgl-cem, a captum method, i2c and weightmap on the
test split, official protocol). Stages are cached per seed under ``--out/seed<k>``, so an
interrupted run continues where it stopped. Run from the repository root::

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/wsol_suite.py --out wsol_suite_out
    .venv/bin/python benchmarks/wsol_suite.py --quick --out /tmp/wsol_quick   # smoke test

Writes ``--out/summary.json`` and ``--out/summary.md`` and prints the table.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence


from attribmap.bench.demo import PRESETS, DemoSettings, run_demo
from attribmap.fileio import atomic_write_bytes
from attribmap.report import jsonable, mean_std

METRICS = ("MaxBoxAcc", "MaxBoxAccV2", "Top1Loc", "PxAP", "PointingGame")

#: The larger suite: 6 classes, 150 training and 50 test images per class, longer training.
LARGE = DemoSettings(classes=6, per_class=150, test_per_class=50, scene_size=96, image_size=64,
                     classifier_epochs=12, i2c_epochs=10, weightmap_epochs=6, batch_size=16)


def summarize(per_seed: Dict[int, Dict]) -> Dict[str, Dict[str, Dict[str, float]]]:
    """Extractor -> metric -> mean / std / n over the seeds' results.json contents."""
    names: List[str] = list(next(iter(per_seed.values()))["extractors"])
    return {name: {metric: mean_std([r["extractors"][name].get(metric, float("nan")) for r in per_seed.values()])
                   for metric in METRICS}
            for name in names}


def summary_table(summary: Dict[str, Dict[str, Dict[str, float]]], seeds: Sequence[int], settings: DemoSettings) -> str:
    """Markdown table of mean +- std per extractor and metric."""
    lines = [f"Synthetic WSOL suite, {settings.classes} classes, {settings.test_per_class} test images per class; "
             f"official protocol (delta {settings.delta}), GT-known maps; mean +- std over seeds "
             f"{', '.join(str(s) for s in seeds)}.", "",
             "| extractor | " + " | ".join(METRICS) + " |", "|---|" + "---:|" * len(METRICS)]
    for name, metrics in summary.items():
        cells = []
        for metric in METRICS:
            value = metrics[metric]
            cells.append("-" if not math.isfinite(value["mean"]) else f"{value['mean']:.1f} +- {value['std']:.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="wsol_suite_out", help="working directory (cached per seed)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default 0 1 2)")
    parser.add_argument("--quick", action="store_true", help="the tiny test-size pipeline (smoke test)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    base = PRESETS["tiny"] if args.quick else LARGE
    out = Path(args.out)
    per_seed: Dict[int, Dict] = {}
    started = time.perf_counter()
    for seed in args.seeds:
        settings = dataclasses.replace(base, seed=seed, suite_seed=seed)
        print(f"seed {seed}: running the pipeline in {out / f'seed{seed}'}", file=sys.stderr, flush=True)
        outcome = run_demo(out / f"seed{seed}", settings, progress=False if args.no_progress else None,
                           log=lambda line: print(line, file=sys.stderr, flush=True))
        per_seed[seed] = outcome.results
    summary = summarize(per_seed)
    table = summary_table(summary, args.seeds, base)
    payload = {"settings": dataclasses.asdict(base), "seeds": list(args.seeds), "summary": summary,
               "per_seed": {str(s): {n: {m: e.get(m) for m in METRICS} for n, e in r["extractors"].items()}
                            for s, r in per_seed.items()},
               "wall_s": time.perf_counter() - started}
    text = json.dumps(jsonable(payload), indent=2, allow_nan=False)
    atomic_write_bytes(out / "summary.json", (text + "\n").encode("utf-8"))
    atomic_write_bytes(out / "summary.md", table.encode("utf-8"))
    print(table)
    print(f"summary: {(out / 'summary.md').resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
