"""reST tables of the grid pointing game and the sanity checks, from their reports.

Usage::

    python benchmarks/grid_pointing_sanity_tables.py --bench report_a report_b --sanity sanity \
        --out docs/

reads the ``results.json`` of ``attribmap bench`` runs on a mosaic folder (``attribmap
mosaic``) and the ``sanity.json`` of ``attribmap sanity``, and writes
``_grid_pointing_table.rst`` and ``_sanity_table.rst`` (the tables included by
docs/grid_pointing_and_sanity.rst). Numbers are copied, never computed here.

``--keep`` keeps the rows of the tables already in ``--out`` (those of earlier runs whose
report folders are gone) and adds or replaces the rows of the new reports::

    python benchmarks/grid_pointing_sanity_tables.py --bench report_d --sanity sanity2 --keep --out docs/

``--sanity`` takes several folders of runs with the same model, blocks, seed, images and
targets but other ``--stages`` (e.g. a costly method's later run at blocks the first did not
compute): each method's stages are merged, the first folder holding a stage giving its numbers::

    python benchmarks/grid_pointing_sanity_tables.py --sanity sanity5 sanity5b sanity5c --keep --out docs/
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional, Sequence, Union

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from attribmap.fileio import atomic_write_text  # noqa: E402


def _cell(value, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table(header: List[str], rows: List[List[str]]) -> List[str]:
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]
    rule = "  ".join("=" * w for w in widths)
    lines = [rule, "  ".join(h.ljust(w) for h, w in zip(header, widths)), rule]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return lines + [rule]


def read_tables(path: str) -> List[List[List[str]]]:
    """The rows (header excluded) of every simple reST table written by :func:`_table` in ``path``."""
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("=")]
    if len(rules) < 3 or len(rules) % 3:
        raise ValueError(f"{path}: expected simple reST tables of 3 rules of '=' each, found {len(rules)} rules")
    tables = []
    for top, under, bottom in zip(rules[0::3], rules[1::3], rules[2::3]):
        spans, start = [], 0
        for part in lines[top].split("  "):
            spans.append((start, start + len(part)))
            start += len(part) + 2
        tables.append([[line[a:b].strip() for a, b in spans] for line in lines[under + 1:bottom]])
    return tables


def read_table(path: str) -> List[List[str]]:
    """The rows of the first table of :func:`read_tables`."""
    return read_tables(path)[0]


def _merge(kept: List[List[str]], new: List[List[str]]) -> List[List[str]]:
    """``kept`` rows whose first cell is not in ``new``, then ``new``."""
    for row in kept:
        if new and len(row) != len(new[0]):
            raise ValueError(f"kept row {row[0]} has {len(row)} columns, the new table {len(new[0])}: "
                             "a table of another model or stages cannot be kept")
    names = {row[0] for row in new}
    return [row for row in kept if row[0] not in names] + new


def grid_table(reports: List[str], kept: Optional[List[List[str]]] = None) -> str:
    """The extractors of every report (grid pointing, pointing, energy pointing, MaxBoxAccV2), then the reference rows.

    ``kept`` are earlier rows (:func:`read_table`): their extractor rows come first unless a report
    has the same extractor, their reference rows are used when no report has any.
    """
    rows, reference = [], None
    for report in reports:
        with open(os.path.join(report, "results.json"), encoding="utf-8") as handle:
            results = json.load(handle)
        for name, entry in results["extractors"].items():
            layer = (entry.get("about") or {}).get("layer") or ("input" if name.startswith("captum:") else "")
            rows.append([f"``{name}``", str(layer or "-"), _cell(entry.get("GridPointing")),
                         str(entry.get("GridPointing_empty", "-")), _cell(entry.get("PointingGame")),
                         _cell(entry.get("EnergyPointing")), _cell(entry.get("MaxBoxAccV2"))])
        reference = reference or results.get("mosaic_reference")
    titles = {"uniform": "reference: uniform map", "centre": "reference: centre prior",
              "cell": "reference: the target cell"}
    kept = kept or []
    rows = _merge([row for row in kept if not row[0].startswith("reference:")], rows)
    for name, row in (reference or {}).get("rows", {}).items():
        rows.append([titles.get(name, name), "-", _cell(row.get("GridPointing")), "-", _cell(row.get("PointingGame")),
                     _cell(row.get("EnergyPointing")), "-"])
    if reference is None:
        rows += [row for row in kept if row[0].startswith("reference:")]
    header = ["extractor", "layer", "grid pointing", "no positive mass", "pointing", "energy pointing",
              "MaxBoxAccV2"]
    return "\n".join(_table(header, rows)) + "\n"


NOT_RUN = "·"


def _stage_cell(entry, stage: str) -> str:
    """Spearman (absolute values) of ``entry`` at ``stage`` with its constant-map count; ``NOT_RUN`` when not computed."""
    if stage not in entry["stages"]:
        return NOT_RUN
    i = entry["stages"].index(stage)
    text = _cell(entry["spearman_abs"][i], 2)
    if entry["n_constant"][i]:
        text += f" [{entry['n_constant'][i]}]"
    return text


MERGE_KEYS = ("model", "blocks", "seed", "images", "targets")


def read_sanity(paths: Union[str, Sequence[str]]) -> dict:
    """The ``sanity.json`` of one run, or of several runs merged stage by stage.

    Runs must agree on :data:`MERGE_KEYS` (the same model, blocks, seed, images and targets
    give the same weights and maps at a stage, whatever ``--stages`` each ran); each method's
    cascading and independent stages are their union in the model's order (logits down), the
    first run holding a stage giving its numbers.

    ``sanity.json`` does not record the layer, the input size or the device: merge only runs
    made with the same ``--layer`` and ``--size`` (method options are part of the method names).

    Raises
    ------
    ValueError
        Two runs differ in one of :data:`MERGE_KEYS`.
    """
    paths = [paths] if isinstance(paths, str) else list(paths)
    runs = []
    for path in paths:
        file = os.path.join(path, "sanity.json")
        with open(file, encoding="utf-8") as handle:
            try:
                runs.append(json.load(handle))
            except ValueError as error:
                raise ValueError(f"{file} is not a sanity report (JSON: {error})") from error
    first = runs[0]
    if len(runs) == 1:
        return first
    for path, run in zip(paths[1:], runs[1:]):
        for key in MERGE_KEYS:
            if run.get(key) != first.get(key):
                raise ValueError(f"{path}: {key} {run.get(key)!r} differs from {paths[0]}'s {first.get(key)!r}; "
                                 "only runs of the same model, blocks, seed, images and targets can be merged")
    order = ["original"] + first["blocks"][::-1] if first.get("blocks") else []

    def in_model_order(stages) -> List[str]:  # logits down; stages of no known block last
        return sorted(stages, key=lambda stage: order.index(stage) if stage in order else len(order))

    merged = dict(first)
    for section in ("methods", "independent"):
        per_stage: dict = {}
        scalars: dict = {}
        for run in runs:
            for name, entry in (run.get(section) or {}).items():
                scalars.setdefault(name, {key: value for key, value in entry.items() if not isinstance(value, list)})
                into = per_stage.setdefault(name, {})
                for i, stage in enumerate(entry["stages"]):
                    if stage not in into:
                        into[stage] = {key: value[i] for key, value in entry.items()
                                       if key != "stages" and isinstance(value, list)}
        merged[section] = {}
        for name, stages in per_stage.items():
            ordered = in_model_order(stages)
            entry = {"stages": ordered, **scalars[name]}
            for key in stages[ordered[0]]:
                entry[key] = [stages[stage].get(key) for stage in ordered]
            merged[section][name] = entry
    stages = {stage for entry in merged["methods"].values() for stage in entry["stages"]}
    merged["stages"] = in_model_order(stages)
    return merged


def sanity_table(path: Union[str, Sequence[str]], kept: Optional[List[List[List[str]]]] = None) -> str:
    """Spearman (absolute values) per cascading stage, every method; plus the last stage's four measures.

    Columns are stages by name: ``original`` and every stage of the run's blocks
    (``sanity.json``'s ``blocks``, logits down) at fixed positions. A method run with
    ``--stages`` shows ``·`` at the stages it did not compute. ``kept`` are the tables of an
    earlier run (:func:`read_tables`, same model and stages): the rows of their methods that
    this run lacks come first in each table. ``path``: one run's folder, or several merged by
    :func:`read_sanity`.
    """
    kept = kept or []
    data = read_sanity(path)
    methods = data["methods"]
    stages = ["original"] + data["blocks"][::-1] if data.get("blocks") else next(iter(methods.values()))["stages"]
    shown = [0, 1, 2, 3, 5, 9, 13, 17, len(stages) - 1]
    shown = [stages[i] for i in sorted({i for i in shown if i < len(stages)})]
    rows = [[f"``{name}``"] + [_stage_cell(entry, stage) for stage in shown] for name, entry in methods.items()]
    rows = _merge(kept[0], rows) if kept else rows
    lines = ["Spearman rank correlation of the absolute maps with the trained model's, cascading "
             "randomization (column: the block randomized last, every block above it randomized too; "
             f"[k]: maps constant at that stage, left out; {NOT_RUN}: stage not computed):", ""]
    lines += _table(["method"] + shown, rows)
    last = stages[-1]
    rows = []
    for name, e in methods.items():
        if last in e["stages"]:
            i = e["stages"].index(last)
            cells = [_cell(e[key][i], 2) for key in ("spearman", "spearman_abs", "ssim", "hog")]
        else:
            cells = [NOT_RUN] * 4
        rows.append([f"``{name}``"] + cells + [str(max(e["n_constant"]))])
    rows = _merge(kept[1], rows) if len(kept) > 1 else rows
    lines += ["", "Every block randomized (last stage): the four measures:", ""]
    lines += _table(["method", "Spearman", "Spearman abs", "SSIM", "HOG", "constant maps (most at one stage)"], rows)
    if data.get("independent") or len(kept) > 2:  # a run with --no-independent keeps the earlier table
        lines += [""] + independent_lines(data.get("independent") or {}, shown[1:], kept[2] if len(kept) > 2 else [],
                                          n_blocks=len(stages) - 1)
    return "\n".join(lines) + "\n"


def independent_lines(independent, blocks: List[str], kept: Optional[List[List[str]]] = None,
                      n_blocks: Optional[int] = None) -> List[str]:
    """Spearman (absolute values) with one block randomized alone, at ``blocks``, and the lowest over the blocks run.

    ``n_blocks``: how many blocks the model has; a method run on fewer (``--stages``) says
    over how many its lowest value is taken.
    """
    header = ["method"] + blocks + ["lowest (block)"]
    rows = []
    for name, entry in independent.items():
        cells = [_stage_cell(entry, block) for block in blocks]
        known = [(v, b) for v, b in zip(entry["spearman_abs"], entry["stages"]) if v is not None]
        low = min(known) if known else None
        text = "-" if low is None else f"{low[0]:.2f} ({low[1]})"
        if low is not None and n_blocks and len(entry["stages"]) < n_blocks:
            text = f"{low[0]:.2f} ({low[1]}; of {len(entry['stages'])} blocks run)"
        rows.append([f"``{name}``"] + cells + [text])
    rows = _merge(kept or [], rows)
    return ["Independent randomization: Spearman rank correlation of the absolute maps with the trained "
            "model's when only the named block is re-initialised (the rest trained); last column: the "
            f"lowest over all blocks ({NOT_RUN}: not run):", ""] + _table(header, rows)


def main(argv=None) -> int:
    """Write the two tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", nargs="*", default=[], help="attribmap bench report folders")
    parser.add_argument("--sanity", nargs="+", default=None,
                        help="attribmap sanity output folder; several runs of the same model, blocks, seed, images "
                             "and targets at other stages are merged")
    parser.add_argument("--out", default="docs", help="folder of the .rst tables")
    parser.add_argument("--keep", action="store_true",
                        help="keep the rows of the tables already in --out whose extractors / methods "
                             "the new reports lack")
    args = parser.parse_args(argv)
    try:
        if args.bench:
            target = os.path.join(args.out, "_grid_pointing_table.rst")
            kept = read_table(target) if args.keep and os.path.exists(target) else None
            atomic_write_text(target, grid_table(args.bench, kept))
        if args.sanity:
            target = os.path.join(args.out, "_sanity_table.rst")
            kept = read_tables(target) if args.keep and os.path.exists(target) else None
            atomic_write_text(target, sanity_table(args.sanity, kept))
    except (OSError, ValueError, KeyError) as error:
        parser.exit(2, f"error: {error}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
