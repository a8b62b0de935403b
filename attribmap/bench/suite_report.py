"""What a benchmark report says besides the extractors: ground-truth reference rows, the
synthetic suite's validity check, and each classifier's prediction on a blank image.

* On a synthetic suite of version 2 (``suite.json`` with ``generator_version >= 2`` and the
  split's ``localization_parts.txt``), the reference rows of
  :mod:`attribmap.data.synthetic.reference` (whole object, parts only, body only, centre prior,
  object pooled to the CAM grid) are scored with the same protocol settings as the
  extractors, and :func:`~attribmap.data.synthetic.check_suite` is run with the ``cam`` row
  of the benchmark when there is one.
* For every classifier the benchmark reads (the main model and the models of
  ``NAME=CHECKPOINT`` extractors), the entropy of its softmax on a blank (mean-grey) image,
  as a share of ``log K``: 1 means no default class.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Mapping, Optional

import torch

__all__ = ["is_reference_suite", "suite_section", "blank_section", "section_lines"]


def is_reference_suite(root: str, split: str) -> bool:
    """Whether ``root`` is a version-2 synthetic suite whose ``split`` lists parts masks."""
    try:
        with open(os.path.join(root, "suite.json"), encoding="utf-8") as handle:
            version = int(json.load(handle).get("generator_version", 1))
    except (OSError, ValueError, TypeError, AttributeError):
        return False
    return version >= 2 and os.path.isfile(os.path.join(root, "metadata", split, "localization_parts.txt"))


def _cam_grid(explainer, images: torch.Tensor) -> int:
    """Side of the default layer's map on ``images`` (the grid of the pooled reference row)."""
    capture = explainer.capture(images[:1])
    return int(capture.activations().shape[-1])


def suite_section(config, suite, images: torch.Tensor, extractors: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """Reference rows and the validity check of a version-2 synthetic suite (None otherwise).

    Parameters
    ----------
    config : BenchConfig
        Data, split and protocol settings (official protocol only; None for legacy).
    suite : ExtractorSuite
        The benchmark's extractors (its main explainer gives the CAM grid).
    images : Tensor (N, 3, H, W)
        A batch of the split, for the grid.
    extractors : mapping
        The benchmark's per-extractor results (the ``cam`` entry feeds the check).

    Returns
    -------
    dict or None
        ``{"grid", "rows": {name: metrics}, "check": {...}, "lines": [...]}``.
    """
    from attribmap.data.synthetic import check_suite, score_reference_rows

    if config.protocol != "official" or not is_reference_suite(config.data, config.split):
        return None
    grid = _cam_grid(suite.explainer, images)
    scores = score_reference_rows(config.data, config.split, grid=grid, delta=config.delta,
                                  image_size=config.frame_size)
    keep = ("MaxBoxAcc", "MaxBoxAccV2", "MaxBoxAccV2_per_iou", "PxAP", "num_images")
    rows = {name: {k: v for k, v in result.items() if k in keep} for name, result in scores.items()}
    cam = extractors.get("cam", {}).get("MaxBoxAccV2")
    check = check_suite(scores, cam=cam)
    return {"grid": grid, "rows": rows, "check": {"passed": check.passed, "complete": check.complete,
                                                  "ground_truth_ok": check.ground_truth_ok, "cam_ok": check.cam_ok,
                                                  "margin": check.margin},
            "lines": check.lines()}


def blank_section(suite, image_size: int) -> Dict[str, Any]:
    """Normalized entropy of each classifier's prediction on a blank (mean-grey) image.

    Parameters
    ----------
    suite : ExtractorSuite
        The benchmark's extractors (the main model and the models of their own).
    image_size : int
        Side of the blank image.

    Returns
    -------
    dict
        ``{"main": {"entropy": float, "max_p": float}, "<label>": {...}, ...}`` for the main
        model and every extractor that reads a model of its own.
    """
    models = {"main": suite.model}
    for extractor in suite.extractors:
        if extractor.info.get("kind") == "own-model" and extractor.explainer is not None:
            models[extractor.label] = extractor.explainer.model
    out: Dict[str, Any] = {}
    for name, model in models.items():
        out[name] = _blank_prediction(model, image_size)
    return out


def _blank_prediction(model: torch.nn.Module, image_size: int) -> Dict[str, float]:
    """The mean-grey image is all zeros in the normalized input space (as in training)."""
    from attribmap.tap import logits_of

    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    blank = torch.zeros(1, 3, image_size, image_size, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            p = torch.softmax(logits_of(model(blank)).double(), dim=1)[0]
    finally:
        model.train(was_training)
    k = p.numel()
    entropy = float(-(p * p.clamp_min(1e-300).log()).sum())
    return {"entropy": entropy / float(torch.log(torch.tensor(float(k)))) if k > 1 else 0.0,
            "max_p": float(p.max()), "argmax": int(p.argmax()), "classes": int(k)}


def section_lines(results: Mapping[str, Any]) -> List[str]:
    """Markdown lines of ``results`` for the reference rows, the suite check and the blank-image entropy."""
    lines: List[str] = []
    section = results.get("suite_check")
    if section:
        from attribmap.data.synthetic.reference import row_title

        lines += ["", f"Reference rows from the ground truth, scored by the same protocol (pooled to the "
                      f"{section['grid']}x{section['grid']} CAM grid of the model's default layer):", "",
                  "| reference | MaxBoxAcc | MaxBoxAccV2 | PxAP |", "|---|---:|---:|---:|"]
        for name, row in section["rows"].items():
            cells = [f"{row[k]:.1f}" if row.get(k) is not None else "-" for k in ("MaxBoxAcc", "MaxBoxAccV2", "PxAP")]
            lines.append(f"| {row_title(name, section['grid'])} | " + " | ".join(cells) + " |")
        lines += [""] + [f"* {line}" for line in section["lines"]]
    if results.get("mosaic_reference"):
        from attribmap.bench.mosaic_reference import mosaic_lines

        lines += mosaic_lines(results["mosaic_reference"])
    blank = results.get("blank")
    if blank:
        parts = [f"{name} {entry['entropy']:.2f} (max p {entry['max_p']:.2f})" for name, entry in blank.items()]
        lines += ["", "Prediction on a blank (mean-grey) image, entropy as a share of log K (1 = no default "
                      "class): " + "; ".join(parts) + "."]
    return lines
