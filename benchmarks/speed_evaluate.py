"""Throughput of the WSOL evaluation: attribmap vs the reference's per-threshold loop.

Both sides score the same CAM-like 224x224 maps (smoothed noise upsampled bicubically
from 7x7 and 14x14, so they have several blobs, holes and border-touching parts) for
MaxBoxAcc V1 + MaxBoxAccV2 (IoU 30/50/70) + PxAP together:

* reference: for every tau, ``cv2.threshold`` + one ``cv2.findContours(RETR_TREE)`` +
  ``boundingRect`` + ``max(contourArea)`` + inclusive IoU, then ``np.histogram`` for
  PxAP (``tests/test_evaluate_reference.py``);
* attribmap: ``BoxAccuracy.update`` + ``PxAP.update`` (OpenCV engine, and the pure numpy
  engine on a few maps).

Before timing, every map is checked: the V1 and V2 IoU at every tau and the PxAP
histograms must be identical between the two, and so must the final scores.

Usage: ``python benchmarks/speed_evaluate.py [--maps 40] [--out results.json]``
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

import cv2  # noqa: E402

from attribmap.evaluate import BoxAccuracy, PxAP  # noqa: E402
from attribmap.evaluate.frame import official_maps, to_uint8  # noqa: E402
from attribmap.evaluate.threshold_boxes import best_ious_per_tau  # noqa: E402
from test_evaluate_reference import (  # noqa: E402
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


def check_identical(raw, boxes, masks, delta) -> None:
    taus = np.arange(0, 1, delta)
    frame = official_maps(raw)
    for index, (m, gt) in enumerate(zip(raw, boxes)):
        scoremap = reference_scoremap(m)
        assert np.array_equal(frame[index], scoremap), f"map {index}: preprocessing differs"
        ref_v1, ref_v2 = reference_best_ious(scoremap, gt, taus)
        v1, v2 = best_ious_per_tau(to_uint8(frame[index]), gt, taus, "opencv")
        assert np.array_equal(v1, ref_v1) and np.array_equal(v2, ref_v2), f"map {index}: box IoUs differ"
    box_metric, pixel_metric = attribmap_pass(raw, boxes, masks, delta, "opencv")
    expected = reference_box_scores([reference_scoremap(m) for m in raw], boxes, delta)
    ours = box_metric.compute()
    assert ours["MaxBoxAcc"] == expected["MaxBoxAcc"] and ours["MaxBoxAccV2"] == expected["MaxBoxAccV2"]
    assert pixel_metric.compute()["PxAP"] == reference_pass(raw, boxes, masks, delta)


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=40, help="number of 224x224 maps (default 40)")
    parser.add_argument("--numpy-maps", type=int, default=4, help="maps timed with the numpy engine")
    parser.add_argument("--repeat", type=int, default=3, help="timing runs per row; the best is kept")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    raw, boxes, masks = make_dataset(args.maps)
    rows = []
    for delta in (0.001, 0.01):
        check_identical(raw, boxes, masks, delta)
        reference_s = opencv_s = float("inf")
        for _ in range(args.repeat):  # interleaved, best of each: the machine may be shared
            reference_s = min(reference_s, timed(reference_pass, raw, boxes, masks, delta))
            opencv_s = min(opencv_s, timed(attribmap_pass, raw, boxes, masks, delta, "opencv"))
        few = slice(0, args.numpy_maps)
        numpy_s = timed(attribmap_pass, raw[few], boxes[few], masks[few], delta, "numpy")
        rows.append({
            "delta": delta,
            "reference_maps_per_s": args.maps / reference_s,
            "attribmap_opencv_maps_per_s": args.maps / opencv_s,
            "attribmap_numpy_maps_per_s": args.numpy_maps / numpy_s,
            "speedup_opencv": reference_s / opencv_s,
            "identical": True,
        })
    print(f"{args.maps} CAM-like 224x224 maps, MaxBoxAcc V1 + V2 + PxAP, 1 thread, best of {args.repeat}, "
          f"{platform.processor() or platform.machine()}, OpenCV {cv2.__version__}")
    print(f"{'delta':>6} {'reference':>10} {'opencv eng':>11} {'numpy eng':>10} {'speedup':>8}  (maps/s)")
    for row in rows:
        print(f"{row['delta']:>6} {row['reference_maps_per_s']:>10.1f} {row['attribmap_opencv_maps_per_s']:>11.1f} "
              f"{row['attribmap_numpy_maps_per_s']:>10.1f} {row['speedup_opencv']:>7.1f}x")
    if args.out:
        directory = os.path.dirname(os.path.abspath(args.out))
        with tempfile.NamedTemporaryFile("w", dir=directory, delete=False, suffix=".tmp") as handle:
            json.dump({"maps": args.maps, "repeat": args.repeat, "rows": rows}, handle, indent=2)
        os.replace(handle.name, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
