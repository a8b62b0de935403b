"""The report of the seed-method evidence: mean +- std per row, paired differences to CAM,
per-class tables, Spearman correlations of the stopping scores, and its Markdown rendering.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Sequence, Tuple

from attribmap.bench.report import mean_std
from attribmap.experiments.evidence_settings import (METRICS, REFERENCE, ROWS, EvidenceSettings, backbone_spec,
                                                     evidence_rows)
from attribmap.experiments.statistics import paired_difference, spearman

__all__ = ["summarize", "render", "stopping_gaps"]


def summarize(per_seed: Mapping[int, Mapping[str, Mapping[str, Any]]],
              rows_spec: Sequence[Tuple[str, str, str]] = ROWS) -> Dict[str, Any]:
    """Rows -> metric -> mean/std/n; paired differences to CAM; per class; Spearman.

    Parameters
    ----------
    per_seed : mapping seed -> stage records (as :meth:`SeedRun.run` returns them)
    rows_spec : sequence of tuple
        The table rows, ``(label, text, claim)`` each (:func:`evidence_rows` of the run's backbone).

    Returns
    -------
    dict
        ``table``, ``differences`` (row -> metric -> :func:`paired_difference` vs ``cam``),
        ``i2c_vs_ablation``, ``per_class``, ``spearman`` (variant -> metric -> pooled over
        every evaluation of every seed and method), ``stopping`` (:func:`stopping_gaps`),
        ``blank_entropy``, ``per_seed``, ``seconds``.
    """
    seeds = sorted(per_seed)
    rows = [r for r, _, _ in rows_spec] + [f"ref:{name}" for name in REFERENCE]
    value = lambda k, row, metric: per_seed[k]["bench"]["rows"].get(row, {}).get(metric)  # noqa: E731
    table = {row: {metric: mean_std([value(k, row, metric) for k in seeds]) for metric in METRICS} for row in rows}
    differences = {row: {metric: paired_difference([value(k, row, metric) for k in seeds],
                                                   [value(k, "cam", metric) for k in seeds])
                         for metric in ("MaxBoxAccV2", "PxAP")} for row in rows if row != "cam"}
    i2c_vs_ablation = {metric: paired_difference([value(k, "i2c", metric) for k in seeds],
                                                 [value(k, "i2c-ablation", metric) for k in seeds])
                       for metric in ("MaxBoxAccV2", "PxAP")}
    per_class: Dict[str, Dict[str, Dict[str, float]]] = {}
    for k in seeds:
        for row, classes in (per_seed[k]["bench"].get("per_class") or {}).items():
            for label, metrics in (classes or {}).items():
                per_class.setdefault(row, {}).setdefault(str(label), {}).setdefault("values", []).append(
                    metrics.get("MaxBoxAccV2"))
    per_class_table = {row: {label: mean_std(entry["values"]) for label, entry in sorted(classes.items())}
                       for row, classes in per_class.items()}
    points = [p for k in seeds for p in per_seed[k].get("curves", {}).get("points", [])]
    correlations = {variant: {metric: spearman([p.get(variant) for p in points],
                                               [p["test"].get(metric) for p in points])
                              for metric in ("MaxBoxAccV2", "PxAP")}
                    for variant in ("S_paper", "S_robust")}
    blank = {name: mean_std([per_seed[k]["bench"]["blank_entropy"].get(name) for k in seeds])
             for name in ("classifier", "i2c", "i2c_ablation")}
    seconds = {str(k): {name: rec.get("seconds") for name, rec in per_seed[k].items()} for k in seeds}
    checks = {str(k): per_seed[k]["bench"].get("suite_check") or [] for k in seeds}
    return {"seeds": seeds, "suite_checks": checks, "table": table, "differences": differences,
            "i2c_vs_ablation": i2c_vs_ablation,
            "per_class": per_class_table, "spearman": correlations, "curve_points": len(points),
            "blank_entropy": blank, "per_seed": {str(k): per_seed[k]["bench"]["rows"] for k in seeds},
            "seconds": seconds, "stopping": stopping_gaps(per_seed)}


def stopping_gaps(per_seed: Mapping[int, Mapping[str, Mapping[str, Any]]]) -> Dict[str, Dict[str, Any]]:
    """How far each stopping rule's pick is from the best saved weight-map evaluation (test MaxBoxAccV2).

    Parameters
    ----------
    per_seed : mapping seed -> stage records (their ``curves`` stage: every saved evaluation
        with its stopping scores, whether it was kept, and its test scores)

    Returns
    -------
    dict
        ``"method I"`` / ``"method II"`` -> ``{"best", "kept", "paper_low", "paper_high"}``,
        each a :func:`mean_std` over seeds of test MaxBoxAccV2: the best evaluation, the one
        kept (robust S), and the lowest / highest among the evaluations tied at the maximum
        of the paper's S (a rule that picks one of them lands in that range); empty when no
        seed has curves.
    """
    out: Dict[str, Dict[str, Any]] = {}
    for method, title in ((1, "method I"), (2, "method II")):
        columns: Dict[str, list] = {"best": [], "kept": [], "paper_low": [], "paper_high": []}
        for k in sorted(per_seed):
            points = [p for p in per_seed[k].get("curves", {}).get("points", [])
                      if p.get("method") == method and p["test"].get("MaxBoxAccV2") is not None]
            if not points:
                continue
            test = [float(p["test"]["MaxBoxAccV2"]) for p in points]
            columns["best"].append(max(test))
            kept = [t for p, t in zip(points, test) if p.get("selected")]
            columns["kept"].append(kept[0] if kept else float("nan"))
            paper = [p.get("S_paper") for p in points]
            valid = [v for v in paper if v is not None and math.isfinite(v)]
            top = max(valid) if valid else None
            tied = [t for v, t in zip(paper, test) if top is not None and v == top]
            columns["paper_low"].append(min(tied) if tied else float("nan"))
            columns["paper_high"].append(max(tied) if tied else float("nan"))
        if columns["best"]:
            out[title] = {name: mean_std(values) for name, values in columns.items()}
    return out


def _cell(value: Mapping[str, float]) -> str:
    return "-" if not math.isfinite(value["mean"]) else f"{value['mean']:.1f} +- {value['std']:.1f}"


def _interval(diff: Mapping[str, float]) -> str:
    if not math.isfinite(diff["mean"]):
        return "-"
    if not math.isfinite(diff["low"]):
        return f"{diff['mean']:+.1f}"
    mark = " *" if diff["excludes_zero"] else ""
    return f"{diff['mean']:+.1f} [{diff['low']:+.1f}, {diff['high']:+.1f}]{mark}"


def render(summary: Mapping[str, Any], settings: EvidenceSettings, wall_s: float, command: str = "") -> str:
    """The Markdown report of the evidence run.

    Main table with paired differences, reference rows, per class, Spearman correlations of
    the stopping scores, blank-image entropy, times.

    Parameters
    ----------
    summary : mapping
        From :func:`summarize`.
    settings : :class:`~attribmap.experiments.evidence_settings.EvidenceSettings`
        Suite size and budgets (named in the header).
    wall_s : float
        Wall time of the run.
    command : str
        The command line that produced it (quoted in the report).
    """
    seeds = summary["seeds"]
    s = settings
    rows_spec = evidence_rows(s.backbone)
    start = (f"{s.pretrain_per_class} pretrain / " if backbone_spec(s.backbone).weights is None else "")
    lines = [f"Synthetic WSOL suite v2: {s.classes} classes, {s.per_class} train / {start}"
             f"{s.test_per_class} test images per class, input {s.image_size} px; official protocol (delta "
             f"{s.delta}), test split, GT-known maps; mean +- std over seeds {', '.join(map(str, seeds))}; "
             "difference to CAM: mean paired difference over seeds with its 95 % t-interval "
             "(* = the interval excludes zero).", ""]
    if s.backbone != "resnet18_narrow":
        lines[0:0] = [f"Backbone {s.backbone}: every model starts from its ImageNet weights (no pretraining "
                      "stage).", ""]
    if command:
        totals = [sum(v for v in stages.values() if v is not None) for stages in summary["seconds"].values()]
        stage_time = (f"; the stages' own wall times add up to {sum(totals) / 60:.0f} min "
                      f"({min(totals) / 60:.0f}-{max(totals) / 60:.0f} min per seed)") if totals else ""
        lines += [f"Command: `{command}`; wall time of this call {wall_s / 60:.0f} min (cached stages are "
                  f"not rerun){stage_time}.", ""]
    lines += ["| extractor | MaxBoxAccV2 | PxAP | MaxBoxAcc | Top1Loc | V2 - CAM | PxAP - CAM | claim |",
              "|---|---:|---:|---:|---:|---:|---:|---|"]
    for row, _, claim in rows_spec:
        t = summary["table"][row]
        diff = summary["differences"].get(row)
        cells = [_cell(t[m]) for m in METRICS]
        cells += [_interval(diff["MaxBoxAccV2"]), _interval(diff["PxAP"])] if diff else ["", ""]
        lines.append(f"| {row} | " + " | ".join(cells) + f" | {claim} |")
    lines += ["", "Reference rows (ground truth, the same protocol):", "",
              "| reference | MaxBoxAccV2 | PxAP | MaxBoxAcc |", "|---|---:|---:|---:|"]
    for name in REFERENCE:
        t = summary["table"][f"ref:{name}"]
        lines.append(f"| {name} | {_cell(t['MaxBoxAccV2'])} | {_cell(t['PxAP'])} | {_cell(t['MaxBoxAcc'])} |")
    verdicts = [f"seed {seed}: {lines_[-1]}" for seed, lines_ in summary.get("suite_checks", {}).items() if lines_]
    if verdicts:
        lines += ["", "Suite validity check (reference rows and each seed's CAM): " + "; ".join(verdicts) + "."]
    lines += ["", "I2C vs its CE-only ablation (paired): MaxBoxAccV2 "
              f"{_interval(summary['i2c_vs_ablation']['MaxBoxAccV2'])}, PxAP "
              f"{_interval(summary['i2c_vs_ablation']['PxAP'])}.", ""]
    if summary["per_class"]:
        rows = [r for r, _, _ in rows_spec if r in summary["per_class"]]
        labels = sorted({label for r in rows for label in summary["per_class"][r]}, key=lambda v: int(v))
        lines += ["Per class (MaxBoxAccV2, mean over seeds):", "",
                  "| extractor | " + " | ".join(f"class {c}" for c in labels) + " |",
                  "|---|" + "---:|" * len(labels)]
        for r in rows:
            cells = [summary["per_class"][r].get(c, {"mean": float("nan")}) for c in labels]
            lines.append(f"| {r} | " + " | ".join("-" if not math.isfinite(v["mean"]) else f"{v['mean']:.1f}"
                                                  for v in cells) + " |")
        lines.append("")
    lines += [f"Label-free stopping score vs test localization: Spearman rank correlation over all "
              f"{summary['curve_points']} saved weight-map evaluations (both methods, every seed; test scores "
              f"with delta {s.curve_delta}, used for this analysis only):", "",
              "| stopping score | rho vs MaxBoxAccV2 (p) | rho vs PxAP (p) |", "|---|---:|---:|"]
    for variant, title in (("S_paper", "S as the paper defines it"), ("S_robust", "robust S (floor, margin)")):
        c = summary["spearman"][variant]
        cells = [("-" if not math.isfinite(c[m]["rho"]) else f"{c[m]['rho']:+.2f} ({c[m]['p']:.2g})")
                 for m in ("MaxBoxAccV2", "PxAP")]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    if summary.get("stopping"):
        lines += ["", "Test MaxBoxAccV2 of the saved weight-map evaluations (mean +- std over seeds): the best one, "
                  "the one the robust S kept, and the range among those tied at the paper's S maximum:", "",
                  "| generator | best | kept (robust S) | paper's S, lowest tied | paper's S, highest tied |",
                  "|---|---:|---:|---:|---:|"]
        for title, gap in summary["stopping"].items():
            lines.append(f"| {title} | " + " | ".join(_cell(gap[c]) for c in ("best", "kept", "paper_low",
                                                                           "paper_high")) + " |")
    lines += ["", "Entropy of the prediction on a blank (mean-grey) image, as a share of log K (1 = uniform): "
              + ", ".join(f"{n} {_cell(v) if math.isfinite(v['mean']) else '-'}" for n, v in
                          summary["blank_entropy"].items()).replace(" +- ", " +- ") + ".", ""]
    lines.append("Stage wall times (s): " + "; ".join(
        f"seed {seed}: " + ", ".join(f"{n} {v:.0f}" for n, v in stages.items() if v is not None)
        for seed, stages in summary["seconds"].items()))
    return "\n".join(lines) + "\n"
