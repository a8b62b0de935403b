"""The benchmark report: ``results.json``, ``results.md``, ``curves.npz`` and figures.

Columns, figures and curves come from the metrics' metadata
(:class:`~attribmap.evaluate.MetricInfo`, written to ``results.json`` under ``"metrics"``):
a metric added to the registry shows up here without any change to this module.

* :func:`results_table` - the Markdown tables (one row per extractor);
* :func:`write_report` - every file of a report directory, each written atomically;
* :func:`plot_curves`, :func:`plot_qualitative` - the figures.
"""
from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from attribmap.fileio import atomic_write_bytes

__all__ = ["results_table", "write_report", "load_results", "metric_infos", "plot_curves", "plot_qualitative",
           "atomic_write_bytes", "jsonable", "mean_std"]

QUALITATIVE = "qualitative.png"
_FAMILIES = (("localization", None), ("faithfulness", "Faithfulness (target: the ground-truth class)"))


def _number(value: Any, digits: int = 1) -> str:
    if value is None or isinstance(value, (dict, list)) or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{float(value):.{digits}f}"


def metric_infos(results: Mapping[str, Any]) -> list:
    """The :class:`~attribmap.evaluate.MetricInfo` of every metric of a ``results`` dict.

    Results written before the metadata existed get those of the protocol's metrics of the
    time (official: boxes, PxAP, pointing game; legacy: the legacy metric).
    """
    from attribmap.evaluate import MetricInfo, create_metrics

    if results.get("metrics"):
        return [MetricInfo.from_dict(item) for item in results["metrics"]]
    protocol = results["protocol"]
    if protocol["name"] == "legacy":
        return [m.info for m in create_metrics(["legacy"], {"tau": protocol.get("tau", 0.2)})]
    ious = tuple(protocol.get("iou_thresholds", (30, 50, 70)))
    return [m.info for m in create_metrics(["boxes", "pxap", "pointing"], {"boxes.iou_thresholds": ious})]


def _header(column) -> str:
    return column.label if column.higher_is_better else f"{column.label} (lower better)"


def _table(rows: Mapping[str, Mapping[str, Any]], columns: Sequence, tail: Sequence = ()) -> List[str]:
    """A Markdown table: one row per extractor, ``columns`` then ``tail`` = (title, key, digits)."""
    header = ["extractor"] + [_header(c) for c in columns] + [t[0] for t in tail]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for name, entry in rows.items():
        cells = [name] + [_number(c.value(entry), c.digits) for c in columns]
        cells += [_number(entry.get(key), digits) for _, key, digits in tail]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def results_table(results: Mapping[str, Any]) -> str:
    """The ``results`` (a ``results.json`` dict) as Markdown tables, one row per extractor, after a line naming the protocol.

    The localization table holds the headline columns of the localization metrics (official
    protocol: MaxBoxAcc, MaxBoxAccV2 and its values at each IoU, top-1 loc, PxAP, peak IoU,
    pointing game, energy pointing; legacy: GT-known and top-1 loc) and maps/s; a second
    table holds the faithfulness metrics when the run computed any. Metrics the split cannot
    give (PxAP without masks, ...) show ``-``.
    """
    protocol = results["protocol"]
    data = results["dataset"]
    infos = metric_infos(results)
    lines = []
    if protocol["name"] == "legacy":
        lines.append(f"Protocol: **legacy** fixed threshold tau = {protocol['tau']} (resize 256, crop 224, "
                     f"IoU 0.5), GT-known maps; {data['split']} split, {data['num_images']} images. "
                     "Not comparable with MaxBoxAcc.")
    else:
        lines.append(f"Protocol: **official** (wsolevaluation), delta = {protocol['delta']}, GT-known maps, "
                     f"{protocol['frame_size']} px frame; {data['split']} split, {data['num_images']} images.")
    rows = results["extractors"]
    for family, title in _FAMILIES:
        columns = [c for info in infos if info.family == family for c in info.columns if c.headline]
        if not columns:
            continue
        lines.append("")
        if title:
            lines += [title, ""]
        tail = [("maps/s", "maps_per_s", 1)] if family == "localization" else [("scoring s", "score_s", 1)]
        lines += _table(rows, columns, tail)
    shared = [n for n, e in rows.items() if e.get("shared_pass")]
    if len(shared) > 1:
        lines += ["", f"maps/s of {', '.join(shared)}: one shared forward and backward pass computes all of "
                      "them, so they show the same rate."]
    return "\n".join(lines) + "\n"


def _details_table(results: Mapping[str, Any]) -> str:
    """The metrics' other columns (thresholds, per-IoU top-1, ROAD accuracies, classifier top-1)."""
    columns = [c for info in metric_infos(results) for c in info.columns if not c.headline]
    if not columns:
        return ""
    return "\n".join(["More numbers:", ""] + _table(results["extractors"], columns)) + "\n"


def _figures(results: Mapping[str, Any]) -> list:
    """Every plot the metrics declare, in order."""
    return [plot for info in metric_infos(results) for plot in info.plots]


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
    layers = [f"{name}: {(entry.get('about') or {}).get('layer')}" for name, entry in results["extractors"].items()
              if (entry.get("about") or {}).get("layer")]
    if layers:
        parts += ["Layer tapped per extractor (the automatic choice resolved): " + "; ".join(layers) + ".", ""]
    from attribmap.bench.suite_report import section_lines

    extra = section_lines(results)
    if extra:
        parts += extra + [""]
    details = _details_table(results)
    if details:
        parts += [details]
    captions = {plot.file: plot.title for plot in _figures(results)}
    captions[QUALITATIVE] = "Qualitative (green: ground truth, red: predicted box)"
    for key, file in figures.items():
        parts += [f"![{captions.get(file, key)}]({file})", ""]
    return "\n".join(parts)


def jsonable(value: Any, finite: bool = True) -> Any:
    """``value`` with plain JSON types: string keys, lists for tuples and arrays, Python numbers.

    With ``finite`` (the default, for a JSON file: NaN and infinity are not JSON) NaN / inf
    become None; ``finite=False`` keeps them as floats (the in-memory results of
    :func:`attribmap.bench.run_benchmark`, where NaN reads as "not defined").
    """
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, finite) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, finite) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist(), finite)
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if finite and isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def mean_std(values) -> Dict[str, float]:
    """Mean and sample standard deviation (ddof = 1; 0 for one value) of the finite ``values``.

    ``None`` and NaN are ignored; ``n`` counts the values used (NaN mean/std when none).
    """
    finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if finite.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    std = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
    return {"mean": float(finite.mean()), "std": std, "n": int(finite.size)}


def _curve_arrays(curves: Mapping[str, Mapping[str, Any]]) -> Dict[str, np.ndarray]:
    return {f"{name}/{series}": np.asarray(values) for name, entry in curves.items()
            for series, values in entry.items()}


def write_report(results: Dict[str, Any], curves: Mapping[str, Mapping[str, Any]], out_dir: os.PathLike | str,
                 sample: Optional[Mapping[str, Any]] = None, figures: bool = True) -> Dict[str, Path]:
    """Write a report directory; returns name -> path of every file written.

    Parameters
    ----------
    results : dict
        The results (see :func:`attribmap.bench.run_benchmark`); a ``"figures"`` entry is added.
    curves : mapping
        Extractor -> series name -> 1-D array (the metrics' ``series``: ``tau``,
        ``BoxAccV2@50``, ``precision``, ``deletion_score``, ...), saved to ``curves.npz`` as
        ``<extractor>/<series>`` and drawn as the metrics' plots declare.
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
    if figures:
        for plot in _figures(results):
            if any(plot.x in entry and any(y in entry for y in plot.ys) for entry in curves.values()):
                written[Path(plot.file).stem] = plot_curves(plot, curves, out_dir / plot.file)
        if sample is not None:
            written["qualitative"] = plot_qualitative(sample, out_dir / QUALITATIVE)
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
    """Read a ``results.json`` at ``path`` (or in the directory ``path``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"no benchmark results at {str(path)!r}")
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def plot_curves(plot, curves: Mapping[str, Mapping[str, Any]], path: os.PathLike | str) -> Path:
    """One figure as a :class:`~attribmap.evaluate.Plot` declares it: a panel per y series,
    a line per extractor (points that are not finite are left out); PNG.

    Parameters
    ----------
    plot : Plot
    curves : mapping
        Extractor -> series name -> 1-D array.
    path : path
    """
    import matplotlib.pyplot as plt

    from attribmap.viz import save_figure

    panels = len(plot.ys)
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.6), squeeze=False)
    for ax, series, title in zip(axes[0], plot.ys, plot.panel_titles):
        for name, entry in curves.items():
            if plot.x not in entry or series not in entry:
                continue
            x = np.asarray(entry[plot.x], dtype=np.float64)
            y = np.asarray(entry[series], dtype=np.float64)
            keep = np.isfinite(x) & np.isfinite(y)
            ax.plot(x[keep], y[keep], label=name, linewidth=1.3)
        ax.set_title(title)
        ax.set_xlabel(plot.xlabel)
        ax.set_ylabel(plot.ylabel)
        ax.set_xlim(*plot.xlim)
        ax.set_ylim(*plot.ylim)
        ax.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=8, loc="best")
    return save_figure(fig, path)


def plot_qualitative(sample: Mapping[str, Any], path: os.PathLike | str) -> Path:
    """Images x extractors of ``sample``, ground-truth boxes in green and predicted boxes in red, written to ``path`` (PNG)."""
    from attribmap.viz import method_grid

    return method_grid(sample["images"], sample["maps"], path=path, boxes=sample.get("boxes"),
                       pred_boxes=sample.get("pred_boxes"))
