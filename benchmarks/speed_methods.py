"""Speed and peak memory of attribmap's CAM family against pytorch-grad-cam and torchcam.

ResNet-18 and ResNet-50 (random init, eval mode) at layer4, 224 x 224, CPU, one process. For
every method a peer implements, each contender (attribmap, pytorch-grad-cam, torchcam) runs
once per round in a rotating order (interleaved) after a warm-up; the table shows medians.

* attribmap: ``Explainer(model, "layer4").explain(x, method, target=...)`` - maps at 224 x 224
  in [0, 1] (upsampled and normalized);
* pytorch-grad-cam: ``Cls(model, [model.layer4])(input_tensor=x, targets=...)`` - its maps at
  224 x 224, normalized (built and released inside the timed call, so that its hooks never
  run during another contender's passes);
* torchcam: ``with Cls(model, "layer4") as ex: ex(class_idx, model(x))`` - its maps at the
  layer's resolution (built inside the timed call for the same reason).

Each library runs with its own default batch size for perturbation methods (attribmap 32 for
Score-CAM and its variants and 64 for Ablation-CAM; pytorch-grad-cam 16 for ScoreCAM and 32
for AblationCAM; torchcam 32); ``--samples`` sets the samples of SS-CAM, IS-CAM and Smooth
Grad-CAM++ for every contender (the libraries' defaults, 35 / 10 / 4, make one ResNet-50 call
of SS-CAM last hours on a CPU).

Peak memory (``--memory``): on the CPU each contender runs once more in a fresh process that
has run no forward pass yet (``MALLOC_MMAP_THRESHOLD_=65536``: blocks of 64 KB and more are
mapped and returned one by one); the peak is the process's resident-set high-water mark
(``VmHWM`` of ``/proc/self/status``) minus its resident size just before the call: every CPU
allocation of the call (tensors, numpy arrays, one-time library buffers) at its high-water
mark. On CUDA it is
``torch.cuda.max_memory_allocated`` during one more call, above what was allocated before it.

Targets (issue 12): gradient methods within 1.2x of attribmap's Grad-CAM; Score-CAM, SS-CAM
and IS-CAM at most 0.8x the faster peer; Ablation-CAM at most 0.2x pytorch-grad-cam.

Usage::

    python benchmarks/speed_methods.py [--archs resnet18,resnet50] [--methods gradcam,scorecam]
        [--rounds 3] [--warmup 1] [--batch 8] [--perturbation-batch 1] [--samples 2]
        [--threads 1] [--size 224] [--memory] [--json out.json] [--table out.rst]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional

import torch
import torchvision

import attribmap

#: attribmap name -> (pytorch-grad-cam class, torchcam class); None where the peer has none.
PEERS = {
    "gradcam": ("GradCAM", "GradCAM"),
    "gradcampp": ("GradCAMPlusPlus", "GradCAMpp"),
    "hirescam": ("HiResCAM", None),
    "gradcam-elementwise": ("GradCAMElementWise", None),
    "xgradcam": ("XGradCAM", "XGradCAM"),
    "layercam": ("LayerCAM", "LayerCAM"),
    "smoothgradcampp": (None, "SmoothGradCAMpp"),
    "finercam": ("FinerCAM", "FinerCAM"),
    "shapleycam": ("ShapleyCAM", None),
    "eigencam": ("EigenCAM", None),
    "eigengradcam": ("EigenGradCAM", None),
    "kpcacam": ("KPCA_CAM", None),
    "fem": ("FEM", None),
    "fullgrad": ("FullGrad", None),
    "refinecam": ("RefineCAM", "RefineCAM"),
    "scorecam": ("ScoreCAM", "ScoreCAM"),
    "sscam": (None, "SSCAM"),
    "iscam": (None, "ISCAM"),
    "ablationcam": ("AblationCAM", None),
}
PERTURBATION = ("scorecam", "sscam", "iscam", "ablationcam")
SAMPLED = {"sscam": ("n_samples", "num_samples"), "iscam": ("n_samples", "num_samples"),
           "smoothgradcampp": ("n_samples", "num_samples")}
LAYER = "layer4"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def build_model(arch: str, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    return getattr(torchvision.models, arch)(weights=None).eval().to(device)


def contenders(model, x: torch.Tensor, targets: torch.Tensor, method: str, samples: int) -> Dict[str, Callable]:
    """name -> zero-argument callable running one method call."""
    out: Dict[str, Callable] = {}
    layer_module = dict(model.named_modules())[LAYER]
    options = {}
    if method in SAMPLED:
        options[SAMPLED[method][0]] = samples
    if method == "refinecam":
        options["layers"] = "layer3"
    explainer = attribmap.Explainer(model, LAYER)
    out["attribmap"] = lambda: explainer.explain(x, method, target=targets, **options)
    pg_name, tc_name = PEERS[method]
    tlist = [int(t) for t in targets]
    if pg_name is not None:
        import pytorch_grad_cam
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        pg_class = getattr(pytorch_grad_cam, pg_name)
        layers = [model.layer3, layer_module] if method == "refinecam" else ([] if method == "fullgrad" else [layer_module])

        def run_pg():
            cam = pg_class(model, layers)
            try:
                if method == "finercam":
                    return cam(x)  # its own targets: the top-1 class against the 3 nearest
                return cam(input_tensor=x, targets=[ClassifierOutputTarget(t) for t in tlist])
            finally:  # its hooks must not run during the other contenders' passes
                for part in getattr(cam, "base_cam_per_layer", [getattr(cam, "base_cam", cam)]):
                    part.activations_and_grads.release()
        out["pytorch-grad-cam"] = run_pg
    if tc_name is not None:
        import torchcam.methods

        tc_class = getattr(torchcam.methods, tc_name)
        kwargs = {"input_shape": tuple(x.shape[1:])}
        if method in SAMPLED:
            kwargs[SAMPLED[method][1]] = samples
        target_layer = ["layer3", LAYER] if method == "refinecam" else LAYER
        no_grad = method in PERTURBATION

        def run_tc():
            with tc_class(model, target_layer, **kwargs) as extractor:
                if no_grad:
                    with torch.inference_mode():
                        scores = model(x)
                else:
                    scores = model(x)
                return extractor(tlist, scores)
        out["torchcam"] = run_tc
    return out


def time_round_robin(calls: Dict[str, Callable], rounds: int, warmup: int, device) -> Dict[str, List[float]]:
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name]()
    times: Dict[str, List[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            _sync(device)
            start = time.perf_counter()
            calls[name]()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def _status_bytes(field: str) -> int:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in bytes."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def child_memory(arch: str, method: str, contender: str, batch: int, size: int, samples: int, threads: int,
                 targets: List[int]) -> float:
    """Peak RSS increase (MB) of one call, measured in this (fresh) process.

    Nothing runs a forward pass before the call (the targets come from the parent), so the
    heap holds no freed memory that the call could reuse unseen; the parent sets
    ``MALLOC_MMAP_THRESHOLD_`` so that large blocks are mapped and unmapped one by one.
    """
    torch.set_num_threads(threads)
    device = torch.device("cpu")
    model = build_model(arch, device)
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1))
    call = contenders(model, x, torch.tensor(targets), method, samples)[contender]
    before = _status_bytes("VmRSS")
    call()
    # VmHWM: this process's own high-water mark (ru_maxrss would start at the parent's RSS, which
    # Linux carries over fork + exec)
    peak = _status_bytes("VmHWM")
    return max(0.0, (peak - before) / 2 ** 20)


def cuda_peak_mb(call: Callable) -> float:
    """Peak CUDA memory allocated by one call above what was allocated before it (MB)."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    call()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - before) / 2 ** 20


def measure_memory(arch, method, contender, args, targets: torch.Tensor) -> Optional[float]:
    cmd = [sys.executable, __file__, "--child", arch, method, contender, "--batch", str(args.batch),
           "--perturbation-batch", str(args.perturbation_batch), "--size", str(args.size), "--samples",
           str(args.samples), "--threads", str(args.threads), "--targets", ",".join(map(str, targets.tolist()))]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in done.stdout.splitlines():
        if line.startswith("PEAK_MB "):
            return float(line.split()[1])
    print(f"  memory run failed for {arch} {method} {contender}: {done.stderr.strip()[-300:]}", file=sys.stderr)
    return None


def target_of(method: str) -> str:
    if method in ("scorecam", "sscam", "iscam"):
        return "<= 0.8x faster peer"
    if method == "ablationcam":
        return "<= 0.2x pytorch-grad-cam"
    if method in ("smoothgradcampp", "fullgrad", "refinecam", "eigencam", "kpcacam", "fem"):
        return "-"
    return "<= 1.2x attribmap gradcam"


def verdict(method: str, row: dict, gradcam_time: Optional[float]) -> str:
    ours = row["attribmap"]
    peers = [row[k] for k in ("pytorch-grad-cam", "torchcam") if row.get(k) is not None]
    if method in ("scorecam", "sscam", "iscam") and peers:
        return "met" if ours <= 0.8 * min(peers) else "not met"
    if method == "ablationcam" and row.get("pytorch-grad-cam"):
        return "met" if ours <= 0.2 * row["pytorch-grad-cam"] else "not met"
    if target_of(method).startswith("<= 1.2x") and gradcam_time:
        return "met" if ours <= 1.2 * gradcam_time else "not met"
    return ""


def rst_table(results: List[dict]) -> str:
    header = ["model", "method", "attribmap s", "pytorch-grad-cam s", "torchcam s", "vs faster peer",
              "vs our gradcam", "peak MB (ours / pg / tc)", "target", "result"]
    rows = []
    for r in results:
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        mem = r.get("memory_mb") or {}
        mfmt = lambda v: "-" if v is None else f"{v:.0f}"  # noqa: E731
        rows.append([r["arch"], r["method"], fmt(r["attribmap"]), fmt(r.get("pytorch-grad-cam")), fmt(r.get("torchcam")),
                     "-" if r.get("vs_peer") is None else f"{r['vs_peer']:.2f}x",
                     "-" if r.get("vs_gradcam") is None else f"{r['vs_gradcam']:.2f}x",
                     " / ".join(mfmt(mem.get(k)) for k in ("attribmap", "pytorch-grad-cam", "torchcam")),
                     r["target"], r["result"] or "-"])
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    line = "  ".join("=" * w for w in widths)
    out = [line, "  ".join(h.ljust(w) for h, w in zip(header, widths)), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(out + [line]) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--archs", default="resnet18,resnet50")
    p.add_argument("--methods", default=",".join(PEERS))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--batch", type=int, default=8, help="images per call of the gradient methods")
    p.add_argument("--perturbation-batch", type=int, default=1, help="images per call of Score-CAM & co")
    p.add_argument("--samples", type=int, default=2)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--memory", action="store_true", help="also measure peak memory (a fresh process per call)")
    p.add_argument("--json", default=None)
    p.add_argument("--table", default=None)
    p.add_argument("--child", nargs=3, metavar=("ARCH", "METHOD", "CONTENDER"), help=argparse.SUPPRESS)
    p.add_argument("--targets", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        arch, method, contender = args.child
        batch = args.perturbation_batch if method in PERTURBATION else args.batch
        targets = [int(t) for t in args.targets.split(",") if t]
        peak = child_memory(arch, method, contender, batch, args.size, args.samples, args.threads, targets)
        print(f"PEAK_MB {peak:.1f}")
        return 0
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in PEERS]
    if unknown:
        p.error(f"methods without a peer here: {unknown}; choose from {', '.join(PEERS)}")
    results = []
    for arch in args.archs.split(","):
        model = build_model(arch, device)
        gradcam_time = None
        for method in methods:
            batch = args.perturbation_batch if method in PERTURBATION else args.batch
            x = torch.randn(batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(1)).to(device)
            with torch.no_grad():
                targets = model(x).argmax(dim=1)
            calls = contenders(model, x, targets, method, args.samples)
            times = time_round_robin(calls, args.rounds, args.warmup, device)
            row = {"arch": arch, "method": method, "batch": batch, "rounds": args.rounds,
                   "times": times}
            for name, values in times.items():
                row[name] = statistics.median(values)
            if method == "gradcam":
                gradcam_time = row["attribmap"]
            peers = [row[k] for k in ("pytorch-grad-cam", "torchcam") if k in row]
            row["vs_peer"] = row["attribmap"] / min(peers) if peers else None
            row["vs_gradcam"] = row["attribmap"] / gradcam_time if gradcam_time else None
            row["target"] = target_of(method)
            row["result"] = verdict(method, row, gradcam_time)
            if args.memory and device.type == "cpu":
                row["memory_mb"] = {name: measure_memory(arch, method, name, args, targets.cpu()) for name in calls}
            elif args.memory and device.type == "cuda":
                row["memory_mb"] = {name: cuda_peak_mb(call) for name, call in calls.items()}
            results.append(row)
            print(f"{arch:9s} {method:20s} " + "  ".join(f"{k} {row[k]:.3f}s" for k in calls)
                  + (f"  mem {row['memory_mb']}" if "memory_mb" in row else "") + f"  {row['result']}", flush=True)
        del model
    about = {"torch": torch.__version__, "threads": args.threads, "device": str(device), "size": args.size,
             "batch": args.batch, "perturbation_batch": args.perturbation_batch, "samples": args.samples,
             "rounds": args.rounds, "warmup": args.warmup}
    if args.json:
        from attribmap.fileio import atomic_write_text

        atomic_write_text(args.json, json.dumps({"about": about, "results": results}, indent=1))
    table = rst_table(results)
    if args.table:
        from attribmap.fileio import atomic_write_text

        atomic_write_text(args.table, table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
