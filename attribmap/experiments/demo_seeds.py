"""The demo's table over several seeds: mean +- std per extractor (``benchmarks/wsol_suite.py``).

For each seed ``k`` the whole pipeline of :func:`attribmap.experiments.demo.run_demo` runs with
``k`` for the suite generator and for training, cached under ``OUT/seed<k>`` (an interrupted
run continues where it stopped); :func:`summarize` and :func:`summary_table` turn the seeds'
``results.json`` into mean +- std (sample standard deviation) per extractor and metric.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from attribmap.bench.report import jsonable, mean_std
from attribmap.errors import AttribmapError
from attribmap.experiments.demo import PRESETS, DemoSettings, run_demo
from attribmap.fileio import atomic_write_bytes

__all__ = ["METRICS", "LARGE", "summarize", "summary_table", "run_seeds"]

#: The metrics summarized (official protocol).
METRICS = ("MaxBoxAcc", "MaxBoxAccV2", "Top1Loc", "PxAP", "PointingGame")

#: The demo's suite and image sizes (``PRESETS["full"]``) with about four times the images and
#: longer training: 150 train / pretrain and 50 test images per class.
LARGE = dataclasses.replace(PRESETS["full"], per_class=150, pretrain_per_class=150, test_per_class=50,
                            pretrain_epochs=8, classifier_epochs=8, i2c_ce_epochs=8, i2c_epochs=4,
                            weightmap_epochs=4)

Summary = Dict[str, Dict[str, Dict[str, float]]]


def summarize(per_seed: Mapping[int, Mapping[str, Any]]) -> Summary:
    """Extractor -> metric -> ``{"mean", "std", "n"}`` over the seeds' results.

    Parameters
    ----------
    per_seed : mapping
        Seed -> the contents of that seed's ``results.json`` (every seed with the same
        extractors; a metric an extractor lacks counts as NaN).

    Returns
    -------
    dict
        As :func:`attribmap.bench.report.mean_std` per extractor and metric of :data:`METRICS`.
    """
    if not per_seed:
        raise AttribmapError("summarize needs the results of at least one seed, got none")
    names: List[str] = list(next(iter(per_seed.values()))["extractors"])
    return {name: {metric: mean_std([r["extractors"][name].get(metric, float("nan")) for r in per_seed.values()])
                   for metric in METRICS}
            for name in names}


def summary_table(summary: Summary, seeds: Sequence[int], settings: DemoSettings) -> str:
    """Markdown table of mean +- std per extractor and metric.

    Parameters
    ----------
    summary : dict
        From :func:`summarize`.
    seeds : sequence of int
        The seeds, named in the caption.
    settings : DemoSettings
        The base settings (suite size and delta, named in the caption).

    Returns
    -------
    str
        A caption line, a blank line and the table (``-`` where a mean is not finite).
    """
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


def run_seeds(out: os.PathLike | str, settings: DemoSettings, seeds: Sequence[int], *,
              progress: Optional[bool] = None,
              log: Optional[Callable[[str], None]] = None) -> Tuple[Dict[str, Any], str]:
    """Run (or reuse) the demo for every seed and write ``summary.json`` and ``summary.md``.

    Parameters
    ----------
    out : path
        Working directory: ``out/seed<k>`` per seed, the summary files at the top.
    settings : DemoSettings
        Base settings; ``seed`` and ``suite_seed`` are replaced by each seed.
    seeds : sequence of int
        The seeds (at least one, each >= 0).
    progress : bool, optional
        Progress bars (default: when stderr is a terminal).
    log : callable, optional
        Receives one line per stage.

    Returns
    -------
    (dict, str)
        The ``summary.json`` payload (settings, seeds, summary, per-seed metrics, wall
        seconds) and the Markdown table.
    """
    if not seeds or any(int(seed) < 0 for seed in seeds):
        raise AttribmapError(f"seeds must be one or more integers >= 0, got {list(seeds)}")
    say = log or (lambda line: None)
    out = Path(out)
    per_seed: Dict[int, Dict[str, Any]] = {}
    started = time.perf_counter()
    for seed in seeds:
        seeded = dataclasses.replace(settings, seed=seed, suite_seed=seed)
        say(f"seed {seed}: running the pipeline in {out / f'seed{seed}'}")
        per_seed[seed] = run_demo(out / f"seed{seed}", seeded, progress=progress, log=log).results
    summary = summarize(per_seed)
    table = summary_table(summary, seeds, settings)
    payload = {"settings": dataclasses.asdict(settings), "seeds": list(seeds), "summary": summary,
               "per_seed": {str(s): {n: {m: e.get(m) for m in METRICS} for n, e in r["extractors"].items()}
                            for s, r in per_seed.items()},
               "wall_s": time.perf_counter() - started}
    text = json.dumps(jsonable(payload), indent=2, allow_nan=False)
    atomic_write_bytes(out / "summary.json", (text + "\n").encode("utf-8"))
    atomic_write_bytes(out / "summary.md", table.encode("utf-8"))
    return payload, table
