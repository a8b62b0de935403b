"""Throughput of the WSOL evaluation: attribmap vs the reference's per-threshold loop.

Both sides score the same CAM-like 224x224 maps (smoothed noise upsampled bicubically
from 7x7 and 14x14, so they have several blobs, holes and border-touching parts) for
MaxBoxAcc V1 + MaxBoxAccV2 (IoU 30/50/70) + PxAP together:

* reference: for every tau, ``cv2.threshold`` + one ``cv2.findContours(RETR_TREE)`` +
  ``boundingRect`` + ``max(contourArea)`` + inclusive IoU, then ``np.histogram`` for
  PxAP (``tests/reference/wsolevaluation.py``);
* attribmap: ``official_maps`` then ``BoxAccuracy.update`` + ``PxAP.update`` on the whole
  batch, as ``evaluate_maps`` does, with the tree engine (when numba is installed; one
  compiled call per batch, no OpenCV on these maps), the OpenCV engine, and the pure numpy
  engine on a few maps.

Before timing, every map is checked: for each engine timed, the V1 and V2 IoU at every
tau must be identical to the reference's, and so must the PxAP histograms and the final
scores. The runs are interleaved (reference, tree, opencv, reference, ...) and the median
of each is reported (the best run too, in the JSON); the tree engine is compiled (or
loaded from numba's cache) before timing.

Usage: ``python benchmarks/speed_evaluate.py [--maps 40] [--repeat 5] [--out results.json]``
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import cv2  # noqa: E402

from attribmap.evaluate import BoxAccuracy, PxAP  # noqa: E402
from attribmap.fileio import atomic_write_text  # noqa: E402
from attribmap.evaluate.frame import official_maps, to_uint8  # noqa: E402
from attribmap.evaluate.threshold_boxes import best_ious_per_tau  # noqa: E402
from attribmap.evaluate.tree_engine import numba_available  # noqa: E402
from tests.reference.wsolevaluation import (  # noqa: E402
    blobby_map,
    reference_best_ious,
    reference_box_scores,
    reference_histograms,
    reference_pxap,
    reference_scoremap,
)


def make_dataset(count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    raw = np.stack([blobby_map(rng, size=224, low=int(rng.choice([7, 14]))) for _ in range(count)])
    boxes, masks = [], []
    for _ in range(count):
        x0, y0 = rng.integers(0, 120, 2)
        w, h = rng.integers(40, 104, 2)
        boxes.append(np.array([[x0, y0, x0 + w, y0 + h]]))
        mask = np.zeros((224, 224), dtype=bool)
        mask[y0:y0 + h + 1, x0:x0 + w + 1] = True
        masks.append(mask)
    return raw, boxes, masks


def reference_pass(raw, boxes, masks, delta):
    taus = np.arange(0, 1, delta)
    scoremaps = [reference_scoremap(m) for m in raw]
    for scoremap, gt in zip(scoremaps, boxes):
        reference_best_ious(scoremap, gt, taus)
    fg = bg = 0
    for scoremap, mask in zip(scoremaps, masks):
        h_fg, h_bg = reference_histograms(scoremap, mask, np.zeros_like(mask), delta)
        fg, bg = fg + h_fg, bg + h_bg
    return reference_pxap(fg, bg)


def attribmap_pass(raw, boxes, masks, delta, engine):
    frame = official_maps(raw)  # shared by both metrics, as in evaluate_maps
    box_metric = BoxAccuracy(delta=delta, engine=engine).update(frame, boxes, preprocessed=True)
    pixel_metric = PxAP(delta=delta).update(frame, masks, preprocessed=True)
    return box_metric, pixel_metric


def non_box_pass(raw, boxes, masks, delta):
    """What ``attribmap_pass`` spends outside ``BoxAccuracy`` (frame, PxAP): the reference
    time divided by this bounds the speed-up any box engine can give."""
    frame = official_maps(raw)
    return PxAP(delta=delta).update(frame, masks, preprocessed=True)


def check_identical(raw, boxes, masks, delta, engines) -> None:
    """Every engine gives the reference's IoUs at every tau on every map, and its scores."""
    taus = np.arange(0, 1, delta)
    frame = official_maps(raw)
    for index, (m, gt) in enumerate(zip(raw, boxes)):
        scoremap = reference_scoremap(m)
        assert np.array_equal(frame[index], scoremap), f"map {index}: preprocessing differs"
        ref_v1, ref_v2 = reference_best_ious(scoremap, gt, taus)
        for engine in engines:
            v1, v2 = best_ious_per_tau(to_uint8(frame[index]), gt, taus, engine)
            same = np.array_equal(v1, ref_v1) and np.array_equal(v2, ref_v2)
            assert same, f"map {index}, delta {delta}: box IoUs of the {engine} engine differ"
    expected = reference_box_scores([reference_scoremap(m) for m in raw], boxes, delta)
    expected_pxap = reference_pass(raw, boxes, masks, delta)
    for engine in engines:
        box_metric, pixel_metric = attribmap_pass(raw, boxes, masks, delta, engine)
        ours = box_metric.compute()
        assert ours["MaxBoxAcc"] == expected["MaxBoxAcc"] and ours["MaxBoxAccV2"] == expected["MaxBoxAccV2"]
        assert pixel_metric.compute()["PxAP"] == expected_pxap


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=40, help="number of 224x224 maps (default 40)")
    parser.add_argument("--numpy-maps", type=int, default=4, help="maps timed with the numpy engine")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved timing runs; the median is kept")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    raw, boxes, masks = make_dataset(args.maps)
    engines = ("tree", "opencv") if numba_available() else ("opencv",)
    rows = []
    for delta in (0.001, 0.01):
        check_identical(raw, boxes, masks, delta, engines)  # also compiles the tree engine
        runs = {name: [] for name in ("reference", "non_box") + engines}
        for _ in range(args.repeat):  # interleaved: the machine may be shared
            runs["reference"].append(timed(reference_pass, raw, boxes, masks, delta))
            runs["non_box"].append(timed(non_box_pass, raw, boxes, masks, delta))
            for engine in engines:
                runs[engine].append(timed(attribmap_pass, raw, boxes, masks, delta, engine))
        few = slice(0, args.numpy_maps)
        numpy_s = timed(attribmap_pass, raw[few], boxes[few], masks[few], delta, "numpy")
        median = {name: float(np.median(times)) for name, times in runs.items()}
        row = {"delta": delta, "identical": True, "engines": list(engines),
               "reference_maps_per_s": args.maps / median["reference"],
               "attribmap_numpy_maps_per_s": args.numpy_maps / numpy_s,
               "speedup_bound_without_box_work": median["reference"] / median["non_box"],
               "seconds": runs}
        for engine in engines:
            row[f"attribmap_{engine}_maps_per_s"] = args.maps / median[engine]
            row[f"speedup_{engine}"] = median["reference"] / median[engine]
            row[f"speedup_{engine}_best_runs"] = min(runs["reference"]) / min(runs[engine])
        rows.append(row)
    print(f"{args.maps} CAM-like 224x224 maps, MaxBoxAcc V1 + V2 + PxAP, 1 thread, median of {args.repeat} "
          f"interleaved runs, {platform.processor() or platform.machine()}, OpenCV {cv2.__version__}")
    print(f"{'delta':>6} {'reference':>10} {'tree eng':>9} {'opencv eng':>11} {'numpy eng':>10} "
          f"{'tree x':>7} {'opencv x':>9} {'bound x':>8}  (maps/s; x = speed-up over the reference)")
    for row in rows:
        tree = row.get("attribmap_tree_maps_per_s", float("nan"))
        tree_x = row.get("speedup_tree", float("nan"))
        print(f"{row['delta']:>6} {row['reference_maps_per_s']:>10.1f} {tree:>9.1f} "
              f"{row['attribmap_opencv_maps_per_s']:>11.1f} {row['attribmap_numpy_maps_per_s']:>10.1f} "
              f"{tree_x:>6.1f}x {row['speedup_opencv']:>8.1f}x "
              f"{row['speedup_bound_without_box_work']:>7.1f}x")
    print("bound x: reference time / time of the frame + PxAP work alone (what BoxAccuracy "
          "taking no time at all would give)")
    if args.out:
        atomic_write_text(args.out, json.dumps({"maps": args.maps, "repeat": args.repeat, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
