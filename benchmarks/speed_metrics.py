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
  - attribmap's ``ROAD`` with its default solver (``solver="cg"``: every perturbed image of
    a forward chunk imputed at once in torch, multigrid-preconditioned conjugate gradients)
    and with ``solver="exact"`` (one scipy sparse LU per image, percentage and order);
  - the imputation alone: attribmap's ROAD with a near-free model (global pooling and a
    linear layer), beside the bare forwards it feeds (18 per image, same chunks);
* **each faithfulness metric** (deletion, insertion, average drop, ROAD) alone, per image,
  beside the bare forward floor of the same run: as many forwards of unperturbed images, in
  the same chunks, as the metric ran (counted through ``ModelInputs(progress=...)``).

The runs are interleaved and repeated (``--repeat``), medians reported; before timing, the
loop and attribmap must agree on the deletion and insertion AUCs and mean curves
(``--tolerance``), attribmap's ROAD with ``solver="cg"`` must give the scores of
``solver="exact"`` (same noise) within 1e-4, and attribmap's ROAD without noise is compared
with pytorch-grad-cam's building blocks without noise (their pixel counts differ by one
pixel at two of the nine percentages at 224 x 224, see docs/protocol.rst; the difference is
reported).

attribmap is timed with the default memory layout and with ``channels_last=True``
(:class:`~attribmap.evaluate.ModelInputs`); wall and CPU time are both recorded (the CPU
time of this process is less disturbed by other work on a shared machine).

Usage: ``python benchmarks/speed_metrics.py [--images 8] [--road-images 2] [--repeat 3] [--device cpu]
[--out r.json]`` (``--no-road`` / ``--no-per-metric`` skip those parts, ``--no-loop`` the
deletion + insertion loop comparison).
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


def attribmap_road(model, images, raw, targets, chunk: int, noise: float = 0.01, solver: str = "cg"):
    evaluator = Evaluator(["road"], options={"percents": PERCENTS, "noise": noise, "solver": solver})
    evaluator.update(raw, inputs=ModelInputs(model, images, targets, batch_size=chunk))
    return evaluator.compute()["road"]


def free_model(device: str) -> torch.nn.Module:
    """A classifier whose forward costs next to nothing (global pooling, linear): ROAD with it times the imputation."""
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 1000)).eval().to(device)


METRIC_OPTIONS = {"deletion": {"steps": 50}, "insertion": {"steps": 50}, "drop": {}, "road": {"percents": PERCENTS}}


def metric_alone(name: str, model, images, raw, targets, chunk: int) -> int:
    """Run one faithfulness metric on fresh ``ModelInputs``; returns the number of images forwarded."""
    forwarded = []
    evaluator = Evaluator([name], options=METRIC_OPTIONS[name])
    evaluator.update(raw, inputs=ModelInputs(model, images, targets, batch_size=chunk, progress=forwarded.append))
    evaluator.compute()
    return int(sum(forwarded))


def forward_floor(model, images, total: int, chunk: int) -> None:
    """``total`` forwards of unperturbed images in chunks of ``chunk`` (softmax in float64, as the metrics)."""
    count = images.shape[0]
    owners = torch.arange(total, device=images.device) % count
    with torch.inference_mode():
        for start in range(0, total, chunk):
            torch.softmax(model(images[owners[start:start + chunk]]).double(), dim=1)


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


def loop_section(args, model, images, raw, maps, targets) -> dict:
    """Deletion + insertion: the per-image loop vs attribmap (numbers checked first, then timed)."""
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
    median, median_cpu = medians(runs)
    return {"images": args.images, "steps": args.steps, "chunk": args.chunk,
            "forwards_of_the_loop": 2 * (args.steps + 1) * args.images,
            "max_difference_to_the_loop": differences, "seconds_wall_cpu": runs,
            "loop_images_per_s": args.images / median["loop"],
            "attribmap_images_per_s": args.images / median["attribmap"],
            "attribmap_channels_last_images_per_s": args.images / median["attribmap_channels_last"],
            "speedup": median["loop"] / median["attribmap"],
            "speedup_channels_last": median["loop"] / median["attribmap_channels_last"],
            "speedup_cpu_time": median_cpu["loop"] / median_cpu["attribmap"],
            "speedup_channels_last_cpu_time": median_cpu["loop"] / median_cpu["attribmap_channels_last"],
            "attribmap_over_bare_forwards": median["attribmap"] / median["bare_forwards"],
            "loop_over_bare_forwards": median["loop"] / median["bare_forwards"], "auc": ours_auc}


def medians(runs: dict, per: int = 1) -> tuple:
    """Per job, the median wall and CPU seconds of its ``(wall, cpu)`` runs, each divided by ``per``."""
    wall = {k: float(np.median([w for w, _ in v])) / per for k, v in runs.items()}
    cpu = {k: float(np.median([c for _, c in v])) / per for k, v in runs.items()}
    return wall, cpu


def road_section(args, model, images, raw, maps, targets) -> dict:
    """ROAD MoRF + LeRF at 9 percentages: pytorch-grad-cam vs attribmap (cg, exact), the imputation alone."""
    few = slice(0, args.road_images)
    images, raw, maps, targets = images[few], raw[few], maps[few], targets[few]
    check_theirs = grad_cam_road_without_noise(model, images, maps, targets)
    check_ours = attribmap_road(model, images, raw, targets, args.chunk, noise=0.0)
    without_noise = {o: float(np.abs(check_ours[f"road_{o}"] - check_theirs[o]).max()) for o in ("morf", "lerf")}
    exact = attribmap_road(model, images, raw, targets, args.chunk, solver="exact")
    fast = attribmap_road(model, images, raw, targets, args.chunk)
    solvers = max(float(np.abs(fast[f"road_{o}"] - exact[f"road_{o}"]).max()) for o in ("morf", "lerf"))
    if solvers > 1e-4:
        raise SystemExit(f"ROAD's cg and exact solvers disagree: {solvers:.2e}")
    cheap = free_model(args.device)
    forwards = 2 * len(PERCENTS) * args.road_images
    jobs = {"pytorch_grad_cam": (grad_cam_road, (model, images, maps, targets)),
            "attribmap": (attribmap_road, (model, images, raw, targets, args.chunk)),
            "attribmap_exact": (attribmap_road, (model, images, raw, targets, args.chunk, 0.01, "exact")),
            "imputation_alone": (attribmap_road, (cheap, images, raw, targets, args.chunk)),
            "bare_forwards": (forward_floor, (model, images, forwards, args.chunk))}
    runs = {name: [] for name in jobs}
    for _ in range(args.repeat):
        for name, (fn, fn_args) in jobs.items():
            runs[name].append(timed(fn, *fn_args))
    wall, cpu = medians(runs)
    per_image = {k: {"wall": wall[k] / args.road_images, "cpu": cpu[k] / args.road_images} for k in runs}
    return {"images": args.road_images, "percents": list(PERCENTS), "seconds_wall_cpu": runs,
            "seconds_per_image": per_image, "max_difference_without_noise": without_noise,
            "max_difference_cg_vs_exact": solvers,
            "pytorch_grad_cam_images_per_s": args.road_images / wall["pytorch_grad_cam"],
            "attribmap_images_per_s": args.road_images / wall["attribmap"],
            "speedup": wall["pytorch_grad_cam"] / wall["attribmap"],
            "speedup_cpu_time": cpu["pytorch_grad_cam"] / cpu["attribmap"],
            "speedup_over_exact": wall["attribmap_exact"] / wall["attribmap"],
            "imputation_over_forwards": wall["imputation_alone"] / wall["bare_forwards"],
            "imputation_over_forwards_cpu_time": cpu["imputation_alone"] / cpu["bare_forwards"]}


def per_metric_section(args, model, images, raw, targets) -> dict:
    """Each faithfulness metric alone, seconds per image, beside as many bare forwards in the same chunks."""
    out = {}
    for name in METRIC_OPTIONS:
        forwarded = metric_alone(name, model, images, raw, targets, args.chunk)  # also the warm-up
        runs = {"metric": [], "floor": []}
        for _ in range(args.repeat):
            runs["metric"].append(timed(metric_alone, name, model, images, raw, targets, args.chunk))
            runs["floor"].append(timed(forward_floor, model, images, forwarded, args.chunk))
        wall, cpu = medians(runs, per=args.images)
        out[name] = {"forwards_per_image": forwarded / args.images, "seconds_per_image": wall["metric"],
                     "floor_seconds_per_image": wall["floor"], "cpu_seconds_per_image": cpu["metric"],
                     "floor_cpu_seconds_per_image": cpu["floor"], "over_floor": wall["metric"] / wall["floor"],
                     "over_floor_cpu_time": cpu["metric"] / cpu["floor"], "seconds_wall_cpu": runs}
    return out


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
    parser.add_argument("--no-loop", action="store_true", help="skip the deletion + insertion loop comparison")
    parser.add_argument("--no-per-metric", action="store_true",
                        help="skip the per-metric times beside the forward floor")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    METRIC_OPTIONS["deletion"]["steps"] = METRIC_OPTIONS["insertion"]["steps"] = args.steps
    model, images, raw, maps, targets = make_case(max(args.images, args.road_images), args.device)
    result = {"device": args.device, "torch": torch.__version__, "threads": torch.get_num_threads(),
              "platform": platform.platform(), "load_average_at_start": os.getloadavg(),
              "tf32_while_timed": {"cudnn": torch.backends.cudnn.allow_tf32,
                                   "matmul": torch.backends.cuda.matmul.allow_tf32}}
    if args.device.startswith("cuda"):
        result["gpu"] = torch.cuda.get_device_name(torch.device(args.device))
    print(f"ResNet-18 (weights=None), 224 px, {args.device}, {torch.get_num_threads()} thread(s), torch "
          f"{torch.__version__}, median of {args.repeat} interleaved runs, load average {os.getloadavg()[0]:.1f}",
          flush=True)
    few = slice(0, args.images)
    if not args.no_loop:
        row = result["deletion_insertion"] = loop_section(args, model, images[few], raw[few], maps[few], targets[few])
        print(f"deletion + insertion, n = {args.steps}, {args.images} images ({row['forwards_of_the_loop']} "
              f"single-image forwards in the loop): loop {row['loop_images_per_s']:.3f} img/s, attribmap "
              f"{row['attribmap_images_per_s']:.3f} img/s (chunks of {args.chunk}): {row['speedup']:.2f}x (CPU time "
              f"{row['speedup_cpu_time']:.2f}x), channels-last {row['attribmap_channels_last_images_per_s']:.3f} "
              f"img/s: {row['speedup_channels_last']:.2f}x (CPU time {row['speedup_channels_last_cpu_time']:.2f}x); "
              f"max difference to the loop {row['max_difference_to_the_loop']}")
        print(f"the same number of forwards of unperturbed images in chunks of {args.chunk} (the floor): attribmap "
              f"takes {row['attribmap_over_bare_forwards']:.2f}x that time, the loop {row['loop_over_bare_forwards']:.2f}x",
              flush=True)
    if not args.no_road:
        road = result["road"] = road_section(args, model, images, raw, maps, targets)
        each = road["seconds_per_image"]
        print(f"ROAD MoRF + LeRF at {len(PERCENTS)} percentages, {args.road_images} images: pytorch-grad-cam "
              f"{road['pytorch_grad_cam_images_per_s']:.3f} img/s, attribmap {road['attribmap_images_per_s']:.3f} "
              f"img/s: {road['speedup']:.2f}x (CPU time {road['speedup_cpu_time']:.2f}x; {road['speedup_over_exact']:.2f}x "
              f"attribmap's exact solver); cg vs exact max |curve diff| {road['max_difference_cg_vs_exact']:.1e}; "
              f"without noise vs pytorch-grad-cam MoRF {road['max_difference_without_noise']['morf']:.1e}, "
              f"LeRF {road['max_difference_without_noise']['lerf']:.1e}")
        print("  seconds per image (wall / CPU): " + ", ".join(
            f"{k} {v['wall']:.3f} / {v['cpu']:.3f}" for k, v in each.items()))
        print(f"  the imputation alone takes {road['imputation_over_forwards']:.2f}x the time of the {2 * len(PERCENTS)} "
              f"forwards per image it feeds (CPU time {road['imputation_over_forwards_cpu_time']:.2f}x)", flush=True)
    if not args.no_per_metric:
        metrics = result["per_metric"] = per_metric_section(args, model, images[few], raw[few], targets[few])
        print(f"each metric alone, {args.images} images, chunks of {args.chunk}, seconds per image (wall / CPU) "
              f"beside its bare forward floor:")
        for name, row in metrics.items():
            print(f"  {name:9s} {row['forwards_per_image']:6.1f} forwards/image: {row['seconds_per_image']:.3f} / "
                  f"{row['cpu_seconds_per_image']:.3f} s, floor {row['floor_seconds_per_image']:.3f} / "
                  f"{row['floor_cpu_seconds_per_image']:.3f} s: {row['over_floor']:.2f}x the floor (CPU time "
                  f"{row['over_floor_cpu_time']:.2f}x)", flush=True)
    result["load_average_at_end"] = os.getloadavg()
    if args.out:
        atomic_write_text(args.out, json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
