"""Throughput of the faithfulness metrics: batched attribmap vs per-image loops.

ResNet-18 (``weights=None``, eval mode), 224 x 224 inputs, CAM-like maps (smoothed noise at
7 x 7, the resolution of ResNet-18's last block, framed by attribmap: bicubic to 224,
min-max), random target classes:

* **deletion + insertion**, n = 50 steps (zeros / blur baselines):
  - the straightforward loop: for every image, for every step, perturb and forward that
    one image (``torch.no_grad()``), then the trapezoid AUC - what a per-image
    implementation of Petsiuk et al.'s metric does, with attribmap's definitions (same
    ranking, step counts, blur), so that the numbers must agree;
  - attribmap: ``Evaluator(["deletion", "insertion"])`` with ``ModelInputs`` (every step of
    the batch in chunks of ``--chunk`` images, ``torch.inference_mode()``, shared end points);
* **ROAD** MoRF + LeRF at 10, 20, ..., 90 percent on the same maps:
  - pytorch-grad-cam's ``ROADMostRelevantFirstAverage`` + ``ROADLeastRelevantFirstAverage``
    (softmax targets): per image and percentage, a sparse system built with ``lil_matrix``
    and one forward of one image;
  - attribmap's ``ROAD`` (the same imputation, vectorized system assembly, batched
    forwards).

The runs are interleaved and repeated (``--repeat``), medians reported; before timing, the
loop and attribmap must agree on the deletion and insertion AUCs and mean curves
(``--tolerance``), and attribmap's ROAD without noise is compared with pytorch-grad-cam's
building blocks without noise (their pixel counts differ by one pixel at two of the nine
percentages at 224 x 224, see docs/protocol.rst; the difference is reported).

attribmap is timed with the default memory layout and with ``channels_last=True``
(:class:`~attribmap.evaluate.ModelInputs`); wall and CPU time are both recorded (the CPU
time of this process is less disturbed by other work on a shared machine).

Usage: ``python benchmarks/speed_metrics.py [--images 8] [--repeat 3] [--device cpu] [--out r.json]``
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from attribmap.evaluate import Evaluator, Framer, ModelInputs  # noqa: E402
from attribmap.evaluate.perturbation import gaussian_blur, step_counts, trapezoid_auc  # noqa: E402
from attribmap.fileio import atomic_write_text  # noqa: E402
from tests.reference.wsolevaluation import blobby_map  # noqa: E402

PERCENTS = (10, 20, 30, 40, 50, 60, 70, 80, 90)


def make_case(count: int, device: str, seed: int = 0):
    """ResNet-18, normalized random images, 7x7 CAM-like maps framed to 224, targets."""
    import torchvision

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = torchvision.models.resnet18(weights=None).eval().to(device)
    images = torch.from_numpy(rng.normal(size=(count, 3, 224, 224)).astype(np.float32)).to(device)
    raw = np.stack([blobby_map(rng, size=7, low=7) for _ in range(count)])
    targets = rng.integers(0, 1000, count)
    maps = Framer(224).frame(raw, inputs=ModelInputs(model, images, targets)).input_maps().copy()
    return model, images, raw, maps, targets


def loop_deletion_insertion(model, images, maps, targets, steps: int):
    """Per image, per step, one forward of one image: (deletion AUCs, insertion AUCs, curves)."""
    count, _, height, width = images.shape
    pixels = height * width
    counts = step_counts(pixels, steps)
    fraction = counts / pixels
    aucs = {"deletion": [], "insertion": []}
    curves = {"deletion": [], "insertion": []}
    with torch.no_grad():
        for b in range(count):
            image = images[b:b + 1]
            order = torch.from_numpy(np.argsort(-maps[b].ravel(), kind="stable")).to(images.device)
            for kind, start, end in (("deletion", image, torch.zeros_like(image)),
                                     ("insertion", gaussian_blur(image), image)):
                scores = []
                for k in counts.tolist():
                    changed = torch.zeros(pixels, dtype=torch.bool, device=images.device)
                    changed[order[:k]] = True
                    mixed = torch.where(changed.view(1, 1, height, width), end, start)
                    probability = torch.softmax(model(mixed).double(), dim=1)[0, int(targets[b])]
                    scores.append(float(probability))
                curve = np.array(scores)[None]
                curves[kind].append(curve[0])
                aucs[kind].append(float(trapezoid_auc(fraction, curve)[0]))
    return ({k: float(np.mean(v)) for k, v in aucs.items()}, {k: np.mean(v, axis=0) for k, v in curves.items()})


def attribmap_deletion_insertion(model, images, raw, targets, steps: int, chunk: int, channels_last: bool = False):
    evaluator = Evaluator(["deletion", "insertion"], options={"steps": steps})
    evaluator.update(raw, inputs=ModelInputs(model, images, targets, batch_size=chunk, channels_last=channels_last))
    results = evaluator.compute()
    return ({"deletion": results["deletion"]["Deletion"], "insertion": results["insertion"]["Insertion"]},
            {"deletion": results["deletion"]["deletion_score"], "insertion": results["insertion"]["insertion_score"]})


def attribmap_road(model, images, raw, targets, chunk: int, noise: float = 0.01):
    evaluator = Evaluator(["road"], options={"percents": PERCENTS, "noise": noise})
    evaluator.update(raw, inputs=ModelInputs(model, images, targets, batch_size=chunk))
    return evaluator.compute()["road"]


def grad_cam_road(model, images, maps, targets):
    """pytorch-grad-cam's ROAD averages (as shipped: noise 0.01), softmax targets: per-image scores."""
    from pytorch_grad_cam.metrics.road import ROADLeastRelevantFirstAverage, ROADMostRelevantFirstAverage
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    wanted = [ClassifierOutputSoftmaxTarget(int(t)) for t in targets]
    cams = maps.astype(np.float32)
    morf = ROADMostRelevantFirstAverage(list(PERCENTS))(images, cams, wanted, model)
    lerf = ROADLeastRelevantFirstAverage(list(PERCENTS))(images, cams, wanted, model)
    return morf, lerf


def grad_cam_road_without_noise(model, images, maps, targets):
    """Their building blocks with a noise-free imputer: mean scores per removed percentage."""
    from pytorch_grad_cam.metrics.perturbation_confidence import (PerturbationConfidenceMetric,
                                                                  RemoveLeastRelevantFirst, RemoveMostRelevantFirst)
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    wanted = [ClassifierOutputSoftmaxTarget(int(t)) for t in targets]
    out = {}
    for name, remove in (("morf", RemoveMostRelevantFirst), ("lerf", RemoveLeastRelevantFirst)):
        out[name] = np.array([PerturbationConfidenceMetric(remove(100 - p, NoisyLinearImputer(noise=0.0)))(
            images, maps.astype(np.float32), wanted, model, return_diff=False).mean() for p in PERCENTS])
    return out


def _synchronize() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def timed(fn, *args):
    """(wall seconds, CPU seconds of this process) of one call; CUDA work is waited for."""
    _synchronize()
    start, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    _synchronize()
    return time.perf_counter() - start, time.process_time() - cpu


def bare_forwards(model, images, steps: int, chunk: int):
    """The floor: as many forwards as attribmap's deletion + insertion, in the same chunks, of unperturbed images."""
    count = images.shape[0]
    total = 2 * (steps - 1) * count  # the interior steps of both curves (end points are shared and cached)
    owners = torch.arange(total, device=images.device) % count
    with torch.inference_mode():
        for start in range(0, total, chunk):
            torch.softmax(model(images[owners[start:start + chunk]]).double(), dim=1)


def difference(auc_a, curves_a, auc_b, curves_b) -> dict:
    """Largest |a - b| of the deletion / insertion AUCs and of their mean curves."""
    return {"auc": max(abs(auc_a[k] - auc_b[k]) for k in auc_a),
            "curve": max(float(np.abs(curves_a[k] - curves_b[k]).max()) for k in curves_a)}


def set_tf32(enabled: bool) -> None:
    """cuDNN convolutions and CUDA matrix products in TF32 (torch's defaults: convolutions on, matmul off)."""
    torch.backends.cudnn.allow_tf32 = enabled
    torch.backends.cuda.matmul.allow_tf32 = enabled


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8, help="images for deletion + insertion (default 8)")
    parser.add_argument("--road-images", type=int, default=2, help="images for ROAD (default 2)")
    parser.add_argument("--steps", type=int, default=50, help="deletion / insertion steps (default 50)")
    parser.add_argument("--chunk", type=int, default=16, help="perturbed images per forward (default 16, as the bench)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved timing runs; medians (default 3)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--tolerance", type=float, default=1e-5, help="largest AUC / curve difference allowed")
    parser.add_argument("--no-road", action="store_true", help="skip the ROAD comparison")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    model, images, raw, maps, targets = make_case(args.images, args.device)
    tf32_defaults = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)

    # same numbers first (also warms every path up); on CUDA in full float32, since TF32 convolutions
    # round differently at batch 1 and batch ``chunk`` (the difference under torch's defaults is reported)
    tf32_difference = None
    if args.device.startswith("cuda"):
        loop_auc, loop_curves = loop_deletion_insertion(model, images, maps, targets, args.steps)
        ours_auc, ours_curves = attribmap_deletion_insertion(model, images, raw, targets, args.steps, args.chunk)
        tf32_difference = difference(loop_auc, loop_curves, ours_auc, ours_curves)
        set_tf32(False)
    loop_auc, loop_curves = loop_deletion_insertion(model, images, maps, targets, args.steps)
    differences = {}
    for layout in (False, True):
        ours_auc, ours_curves = attribmap_deletion_insertion(model, images, raw, targets, args.steps, args.chunk,
                                                             layout)
        found = difference(loop_auc, loop_curves, ours_auc, ours_curves)
        if max(found.values()) > args.tolerance:
            raise SystemExit(f"the loop and attribmap disagree: AUC {found['auc']:.2e}, curves {found['curve']:.2e}")
        differences["channels_last" if layout else "default"] = found
    if tf32_difference is not None:
        differences["cuda_torch_default_tf32"] = tf32_difference
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32_defaults  # time as users run
    runs = {"loop": [], "attribmap": [], "attribmap_channels_last": [], "bare_forwards": []}
    for _ in range(args.repeat):  # interleaved; CPU time too (less sensitive to a shared machine)
        for name, fn, extra in (("bare_forwards", bare_forwards, (args.steps, args.chunk)),
                                ("loop", loop_deletion_insertion, (maps, targets, args.steps)),
                                ("attribmap", attribmap_deletion_insertion, (raw, targets, args.steps, args.chunk)),
                                ("attribmap_channels_last", attribmap_deletion_insertion,
                                 (raw, targets, args.steps, args.chunk, True))):
            runs[name].append(timed(fn, model, images, *extra))
    median = {k: float(np.median([w for w, _ in v])) for k, v in runs.items()}
    median_cpu = {k: float(np.median([c for _, c in v])) for k, v in runs.items()}
    forwards = 2 * (args.steps + 1) * args.images
    row = {"images": args.images, "steps": args.steps, "chunk": args.chunk, "forwards_of_the_loop": forwards,
           "max_difference_to_the_loop": differences, "seconds_wall_cpu": runs,
           "loop_images_per_s": args.images / median["loop"],
           "attribmap_images_per_s": args.images / median["attribmap"],
           "attribmap_channels_last_images_per_s": args.images / median["attribmap_channels_last"],
           "speedup": median["loop"] / median["attribmap"],
           "speedup_channels_last": median["loop"] / median["attribmap_channels_last"],
           "speedup_cpu_time": median_cpu["loop"] / median_cpu["attribmap"],
           "speedup_channels_last_cpu_time": median_cpu["loop"] / median_cpu["attribmap_channels_last"],
           "attribmap_over_bare_forwards": median["attribmap"] / median["bare_forwards"],
           "loop_over_bare_forwards": median["loop"] / median["bare_forwards"],
           "auc": ours_auc}
    result = {"device": args.device, "torch": torch.__version__, "threads": torch.get_num_threads(),
              "platform": platform.platform(), "deletion_insertion": row,
              "tf32_while_timed": {"cudnn": tf32_defaults[0], "matmul": tf32_defaults[1]}}
    if args.device.startswith("cuda"):
        result["gpu"] = torch.cuda.get_device_name(torch.device(args.device))

    if not args.no_road:
        few = slice(0, args.road_images)
        check_theirs = grad_cam_road_without_noise(model, images[few], maps[few], targets[few])
        check_ours = attribmap_road(model, images[few], raw[few], targets[few], args.chunk, noise=0.0)
        road_diff = {o: float(np.abs(check_ours[f"road_{o}"] - check_theirs[o]).max()) for o in ("morf", "lerf")}
        road_runs = {"pytorch_grad_cam": [], "attribmap": []}
        for _ in range(args.repeat):
            road_runs["pytorch_grad_cam"].append(timed(grad_cam_road, model, images[few], maps[few], targets[few]))
            road_runs["attribmap"].append(timed(attribmap_road, model, images[few], raw[few], targets[few],
                                                args.chunk))
        road_median = {k: float(np.median([w for w, _ in v])) for k, v in road_runs.items()}
        result["road"] = {"images": args.road_images, "percents": list(PERCENTS), "seconds_wall_cpu": road_runs,
                          "max_difference_without_noise": road_diff,
                          "pytorch_grad_cam_images_per_s": args.road_images / road_median["pytorch_grad_cam"],
                          "attribmap_images_per_s": args.road_images / road_median["attribmap"],
                          "speedup": road_median["pytorch_grad_cam"] / road_median["attribmap"]}

    print(f"ResNet-18 (weights=None), 224 px, {args.device}, {torch.get_num_threads()} thread(s), torch "
          f"{torch.__version__}, median of {args.repeat} interleaved runs")
    print(f"deletion + insertion, n = {args.steps}, {args.images} images ({forwards} single-image forwards in the "
          f"loop): loop {row['loop_images_per_s']:.3f} img/s, attribmap {row['attribmap_images_per_s']:.3f} img/s "
          f"(chunks of {args.chunk}): {row['speedup']:.2f}x (CPU time {row['speedup_cpu_time']:.2f}x), channels-last "
          f"{row['attribmap_channels_last_images_per_s']:.3f} img/s: {row['speedup_channels_last']:.2f}x (CPU time "
          f"{row['speedup_channels_last_cpu_time']:.2f}x); max difference to the loop {differences}")
    print(f"the same number of forwards of unperturbed images in chunks of {args.chunk} (the floor): attribmap "
          f"takes {row['attribmap_over_bare_forwards']:.2f}x that time, the loop {row['loop_over_bare_forwards']:.2f}x")
    if "road" in result:
        road = result["road"]
        print(f"ROAD MoRF + LeRF at {len(PERCENTS)} percentages, {args.road_images} images: pytorch-grad-cam "
              f"{road['pytorch_grad_cam_images_per_s']:.3f} img/s, attribmap {road['attribmap_images_per_s']:.3f} "
              f"img/s: {road['speedup']:.2f}x; without noise, max |curve diff| MoRF "
              f"{road['max_difference_without_noise']['morf']:.1e}, LeRF {road['max_difference_without_noise']['lerf']:.1e}")
    if args.out:
        atomic_write_text(args.out, json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
