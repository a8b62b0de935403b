"""Reference rows of a mosaic dataset (``attribmap mosaic``), scored like any extractor's maps.

``uniform``
    a constant map: the grid pointing game gives exactly 1 / n^2 (chance). The pointing
    game and the energy pointing game give it **0** by definition, not by accident: they
    read the official frame, whose min-max turns a constant map into zeros (PROTOCOL.md,
    section 1), and a map without a peak or without energy is no answer, scored a miss
    (:class:`~attribmap.evaluate.pointing.PointingGame`,
    :func:`~attribmap.evaluate.energy_pointing.box_energy`). A random tie-break would give
    the share of the frame within the tolerance of the cell instead, a number about the
    tolerance, not about the map; chance on those two columns is read from the grid pointing
    game's 1 / n^2;
``centre``
    the centred Gaussian prior of :func:`attribmap.data.synthetic.reference.centre_prior`,
    one fixed map for every entry: what a prior that knows nothing of the image reaches
    (1 / n^2 on average over the cells of a mosaic, by symmetry, for even n);
``cell``
    the target cell itself (1 inside, 0 outside): the best possible map, 100 %.

Rows are scored in the benchmark's frame with the grid pointing game and the box-based
pointing games (the metrics that read the boxes of the cells).
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import torch

__all__ = ["MOSAIC_ROWS", "mosaic_reference_maps", "score_mosaic_rows", "mosaic_section", "mosaic_lines"]

MOSAIC_ROWS = ("uniform", "centre", "cell")
_TITLES = {"uniform": "uniform map (chance, 1/n^2; constant: no peak, no energy, 0 in the pointing games)",
           "centre": "centre prior (Gaussian, sigma 0.25 side)",
           "cell": "the target cell (best possible)"}
_METRICS = ("grid_pointing", "pointing", "energy_pointing")


def mosaic_reference_maps(boxes: List[np.ndarray], sizes: np.ndarray, image_size: int = 224
                          ) -> Dict[str, torch.Tensor]:
    """Raw maps of the reference rows for entries with target-cell ``boxes``.

    Parameters
    ----------
    boxes : list of N int arrays (1, 4)
        Target cells, inclusive x0, y0, x1, y1 in original pixels.
    sizes : ndarray int (N, 2)
        (W, H) of each mosaic.
    image_size : int
        Side of the maps (the evaluation frame).

    Returns
    -------
    dict
        name -> float32 tensor (N, image_size, image_size).
    """
    from attribmap.data.synthetic.reference import centre_prior
    from attribmap.evaluate.frame import rescale_boxes

    count = len(boxes)
    cell = torch.zeros(count, image_size, image_size)
    for index, (box, size) in enumerate(zip(boxes, sizes)):
        for x0, y0, x1, y1 in np.asarray(rescale_boxes(np.asarray(box).reshape(-1, 4), tuple(size), image_size)
                                         ).reshape(-1, 4).tolist():
            cell[index, y0:y1 + 1, x0:x1 + 1] = 1.0
    return {"uniform": torch.ones(count, image_size, image_size),
            "centre": centre_prior(image_size).expand(count, image_size, image_size), "cell": cell}


def score_mosaic_rows(boxes: List[np.ndarray], sizes: np.ndarray, image_size: int = 224,
                      tolerance: float = 15.0) -> Dict[str, Dict[str, Any]]:
    """Every reference row's ``GridPointing``, ``PointingGame`` and ``EnergyPointing`` (percent).

    Parameters
    ----------
    boxes, sizes, image_size
        As in :func:`mosaic_reference_maps`.
    tolerance : float
        Pointing-game tolerance in frame pixels.
    """
    from attribmap.evaluate import Evaluator

    maps = mosaic_reference_maps(boxes, sizes, image_size)
    rows = {}
    for name in MOSAIC_ROWS:
        evaluator = Evaluator(list(_METRICS), image_size=image_size, options={"tolerance": float(tolerance)})
        evaluator.update(maps[name], boxes=boxes, image_sizes=sizes)
        rows[name] = {**evaluator.scores(), "num_images": len(boxes)}
    return rows


def mosaic_section(config, dataset) -> Optional[Dict[str, Any]]:
    """The reference rows of a mosaic dataset (None for any other dataset).

    Parameters
    ----------
    config : BenchConfig
        Data directory, frame size and pointing tolerance.
    dataset : RecordDataset
        The split scored (its records give the boxes and sizes).
    """
    from attribmap.data.mosaic import is_mosaic_dataset, read_mosaic_info

    if config.protocol != "official" or not is_mosaic_dataset(config.data):
        return None
    info = read_mosaic_info(config.data)
    boxes = [np.asarray(r.boxes, dtype=np.int64) for r in dataset.records]
    sizes = np.asarray([r.size for r in dataset.records], dtype=np.int64)
    rows = score_mosaic_rows(boxes, sizes, int(config.frame_size), float(config.pointing_tolerance))
    return {"grid": int(info.get("grid", 0)), "rows": rows}


def mosaic_lines(section: Mapping[str, Any]) -> List[str]:
    """Markdown lines of the reference rows in ``section``, what :func:`mosaic_section` returned."""
    grid = section["grid"]
    lines = ["", f"Reference rows of the {grid}x{grid} mosaics (chance is {100.0 / grid ** 2:.1f} % of the grid "
                 "pointing game):", "", "| reference | grid pointing | pointing | energy pointing |",
             "|---|---:|---:|---:|"]
    for name, row in section["rows"].items():
        cells = [f"{row[k]:.1f}" if row.get(k) is not None else "-"
                 for k in ("GridPointing", "PointingGame", "EnergyPointing")]
        lines.append(f"| {_TITLES.get(name, name)} | " + " | ".join(cells) + " |")
    return lines
