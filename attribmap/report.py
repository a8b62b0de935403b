"""The benchmark report: ``results.json``, ``results.md``, ``curves.npz`` and figures.

* :func:`results_table` - the Markdown table (one row per extractor);
* :func:`write_report` - every file of a report directory, each written atomically;
* :func:`plot_box_curves`, :func:`plot_pr_curves`, :func:`plot_qualitative` - the figures.
"""
from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import numpy as np

from attribmap.fileio import atomic_write_bytes

__all__ = ["results_table", "write_report", "load_results", "plot_box_curves", "plot_pr_curves",
           "plot_qualitative", "atomic_write_bytes", "jsonable", "mean_std"]

FIGURES = {"box_curves": "boxacc_curves.png", "pr_curves": "pxap_pr_curves.png", "qualitative": "qualitative.png"}


def _number(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{float(value):.{digits}f}"


def _per_iou(entry: Mapping[str, Any], key: str, iou: int) -> Any:
    values = entry.get(key) or {}
    return values.get(str(iou), values.get(iou))


def results_table(results: Mapping[str, Any]) -> str:
    """The results as a Markdown table, one row per extractor, with a line naming the protocol.

    Official protocol columns: MaxBoxAcc, MaxBoxAccV2 and its values at IoU 30/50/70,
    top-1 loc, PxAP, pointing game, maps/s. Legacy: GT-known loc, top-1 loc, maps/s.
    Metrics the split cannot give (PxAP without masks, ...) show ``-``.
    """
    protocol = results["protocol"]
    data = results["dataset"]
    lines = []
    if protocol["name"] == "legacy":
        lines.append(f"Protocol: **legacy** fixed threshold tau = {protocol['tau']} (resize 256, crop 224, "
                     f"IoU 0.5), GT-known maps; {data['split']} split, {data['num_images']} images. "
                     "Not comparable with MaxBoxAcc.")
        lines += ["", "| extractor | GT-known loc | top-1 loc | maps/s |", "|---|---:|---:|---:|"]
        for name, entry in results["extractors"].items():
            lines.append(f"| {name} | {_number(entry.get('GTKnownLoc'))} | {_number(entry.get('Top1Loc'))} | "
                         f"{_number(entry.get('maps_per_s'))} |")
        return "\n".join(lines) + "\n"
    ious = protocol.get("iou_thresholds", [30, 50, 70])
    lines.append(f"Protocol: **official** (wsolevaluation), delta = {protocol['delta']}, GT-known maps, "
                 f"{protocol['frame_size']} px frame; {data['split']} split, {data['num_images']} images.")
    header = ["extractor", "MaxBoxAcc", "MaxBoxAccV2"] + [f"V2@{t}" for t in ious] + \
             ["top-1 loc", "PxAP", "pointing", "maps/s"]
    lines += ["", "| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for name, entry in results["extractors"].items():
        cells = [name, _number(entry.get("MaxBoxAcc")), _number(entry.get("MaxBoxAccV2"))]
        cells += [_number(_per_iou(entry, "MaxBoxAccV2_per_iou", t)) for t in ious]
        cells += [_number(entry.get("Top1Loc")), _number(entry.get("PxAP")), _number(entry.get("PointingGame")),
                  _number(entry.get("maps_per_s"))]
        lines.append("| " + " | ".join(cells) + " |")
    shared = [n for n, e in results["extractors"].items() if e.get("shared_pass")]
    if len(shared) > 1:
        lines += ["", f"maps/s of {', '.join(shared)}: one shared forward and backward pass computes all of "
                      "them, so they show the same rate."]
    return "\n".join(lines) + "\n"


def _markdown_document(results: Mapping[str, Any], figures: Mapping[str, str]) -> str:
    timing = results["timing"]
    model = results["model"]
    source = model.get("checkpoint") or f"{model.get('name')} ({model.get('weights') or 'random init'})"
    parts = [f"# attribmap benchmark: {results['dataset']['root']} ({results['dataset']['split']})", "",
             results_table(results),
             f"Model: {source}; layer: {model.get('layer') or 'automatic'}. "
             f"{timing['images_this_process']} images in {timing['wall_s']:.1f} s "
             f"({_number(timing['images_per_s'])} images/s, {timing['evaluate_s']:.1f} s scoring), "
             f"{results['world_size']} process(es); attribmap {results['versions']['attribmap']}, "
             f"torch {results['versions']['torch']}.", ""]
    tapped = [f"{name}: {(entry.get('about') or {}).get('layer')}" for name, entry in results["extractors"].items()
              if (entry.get("about") or {}).get("layer")]
    if tapped:
        parts[-1:-1] = ["", "Layer tapped per extractor (the automatic choice resolved): " + "; ".join(tapped) + "."]
    for key, title in (("box_curves", "BoxAcc(tau)"), ("pr_curves", "PxAP precision-recall"),
                       ("qualitative", "Qualitative (green: ground truth, red: predicted box)")):
        if key in figures:
            parts += [f"![{title}]({figures[key]})", ""]
    return "\n".join(parts)


def jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def mean_std(values) -> Dict[str, float]:
    """Mean and sample standard deviation (ddof = 1; 0 for one value) of the finite values.

    ``None`` and NaN are ignored; ``n`` counts the values used (NaN mean/std when none).
    """
    finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if finite.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    std = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
    return {"mean": float(finite.mean()), "std": std, "n": int(finite.size)}


def _curve_arrays(curves: Mapping[str, Mapping[str, Any]]) -> Dict[str, np.ndarray]:
    arrays: Dict[str, np.ndarray] = {}
    for name, entry in curves.items():
        box = entry.get("box")
        if box:
            arrays[f"{name}/tau"] = np.asarray(box["tau"])
            for version in ("BoxAccV1", "BoxAccV2"):
                for iou, values in box[version].items():
                    arrays[f"{name}/{version}@{iou}"] = np.asarray(values)
        pr = entry.get("pr")
        if pr:
            arrays[f"{name}/precision"] = np.asarray(pr["precision"])
            arrays[f"{name}/recall"] = np.asarray(pr["recall"])
    return arrays


def write_report(results: Dict[str, Any], curves: Mapping[str, Mapping[str, Any]], out_dir: os.PathLike | str,
                 sample: Optional[Mapping[str, Any]] = None, figures: bool = True) -> Dict[str, Path]:
    """Write a report directory; returns name -> path of every file written.

    Parameters
    ----------
    results : dict
        The results (see :func:`attribmap.bench.run_benchmark`); a ``"figures"`` entry is added.
    curves : mapping
        Extractor -> ``{"box": BoxAccuracy curves, "pr": {"precision", "recall"}}`` (either optional).
    out_dir : path
        Created when missing.
    sample : mapping, optional
        ``{"images": (N,3,S,S), "maps": {name: (N,S,S)}, "boxes": [...], "pred_boxes": {...}}``
        for the qualitative grid.
    figures : bool
        Draw the PNG figures.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: Dict[str, Path] = {}
    figure_names: Dict[str, str] = {}
    if figures:
        if any(c.get("box") for c in curves.values()):
            written["box_curves"] = plot_box_curves(curves, out_dir / FIGURES["box_curves"])
        if any(c.get("pr") for c in curves.values()):
            written["pr_curves"] = plot_pr_curves(curves, out_dir / FIGURES["pr_curves"])
        if sample is not None:
            written["qualitative"] = plot_qualitative(sample, out_dir / FIGURES["qualitative"])
        for figure in written.values():
            os.chmod(figure, 0o644)
        figure_names = {key: path.name for key, path in written.items()}
    results["figures"] = dict(figure_names)
    arrays = _curve_arrays(curves)
    if arrays:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        written["curves"] = atomic_write_bytes(out_dir / "curves.npz", buffer.getvalue())
    text = json.dumps(jsonable(results), indent=2, sort_keys=False, allow_nan=False)
    written["json"] = atomic_write_bytes(out_dir / "results.json", (text + "\n").encode("utf-8"))
    written["markdown"] = atomic_write_bytes(out_dir / "results.md",
                                             _markdown_document(results, figure_names).encode("utf-8"))
    return written


def load_results(path: os.PathLike | str) -> Dict[str, Any]:
    """Read a ``results.json`` (or the directory holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"no benchmark results at {str(path)!r}")
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def plot_box_curves(curves: Mapping[str, Mapping[str, Any]], path: os.PathLike | str) -> Path:
    """BoxAcc V2 against tau, one panel per IoU threshold, one line per extractor (PNG)."""
    import matplotlib.pyplot as plt

    from attribmap.viz import save_figure

    named = {n: c["box"] for n, c in curves.items() if c.get("box")}
    ious = list(next(iter(named.values()))["BoxAccV2"])
    fig, axes = plt.subplots(1, len(ious), figsize=(4.2 * len(ious), 3.6), squeeze=False)
    for ax, iou in zip(axes[0], ious):
        for name, box in named.items():
            ax.plot(box["tau"], box["BoxAccV2"][iou], label=name, linewidth=1.3)
        ax.set_title(f"BoxAcc, IoU >= {int(iou) / 100:.1f}")
        ax.set_xlabel("CAM threshold tau")
        ax.set_ylabel("BoxAcc (%)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=8, loc="best")
    return save_figure(fig, path)


def plot_pr_curves(curves: Mapping[str, Mapping[str, Any]], path: os.PathLike | str) -> Path:
    """Pixel precision-recall curves (PxAP = area under each), one line per extractor (PNG)."""
    import matplotlib.pyplot as plt

    from attribmap.viz import save_figure

    fig, ax = plt.subplots(figsize=(4.6, 4.0))
    for name, entry in curves.items():
        pr = entry.get("pr")
        if not pr:
            continue
        precision = np.asarray(pr["precision"], dtype=np.float64)
        recall = np.asarray(pr["recall"], dtype=np.float64)
        keep = np.isfinite(precision)
        ax.plot(recall[keep], precision[keep], label=name, linewidth=1.3)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("Pixel precision-recall (PxAP)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return save_figure(fig, path)


def plot_qualitative(sample: Mapping[str, Any], path: os.PathLike | str) -> Path:
    """Images x extractors, ground-truth boxes in green and predicted boxes in red (PNG)."""
    from attribmap.viz import method_grid

    return method_grid(sample["images"], sample["maps"], path=path, boxes=sample.get("boxes"),
                       pred_boxes=sample.get("pred_boxes"))
