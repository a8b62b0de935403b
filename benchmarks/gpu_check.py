"""GPU check of the CAM family: CUDA maps equal CPU maps, the speed table on the GPU, a 2-process bench.

1. **Maps**: every registered post-hoc method (i2c aside, it needs an I2C head) on ResNet-18
   (random init, 64 px, layer4 and layer3) and on a small GAP network, computed on the CPU and on
   CUDA from the same input. TF32 is switched off for the comparison (cuDNN convolutions use
   TF32 by default, which rounds to 10 mantissa bits). Pass: the maps are on the input's device,
   the model is left as found, and after min-max the largest difference is at most ``--tol``
   (1e-3; the peer tests use 1e-4 on one device, CUDA kernels round differently from the CPU's
   and Ablation-CAM's differences of nearly equal logits magnify that).
2. **Speed**: ``benchmarks/speed_methods.py`` on the GPU (ResNet-18 and ResNet-50 at layer4,
   224 px), with peak CUDA memory per call, written as JSON and an rst table.
3. **Bench**: a tiny synthetic suite and a 1-epoch classifier, then ``attribmap bench`` on CUDA
   in one process and under ``torchrun --nproc_per_node=2`` (NCCL); the two reports must give the
   same numbers. NCCL refuses two ranks on one GPU, so with one device the CUDA report (with
   every faithfulness metric) is compared with a CPU report of the same checkpoint instead: the
   same extractors and metrics, all finite, the largest differences printed.

Without a CUDA device the script computes the CPU half of step 1 (so that its CPU path is
exercised), says that there is no CUDA device, and exits with status 0.

Usage: ``python benchmarks/gpu_check.py [--out gpu_check_out] [--tol 1e-3] [--skip-speed]
[--skip-bench] [--speed-args "--rounds 3 --samples 2"]``; status 1 when a check fails.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import torch
import torchvision
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import attribmap  # noqa: E402
from attribmap.errors import MethodError  # noqa: E402
from attribmap.fileio import atomic_write_text  # noqa: E402
from attribmap.methods import Method, lookup, registered_names  # noqa: E402

#: Small options so that the perturbation methods stay quick on the CPU side.
OPTIONS = {"sscam": {"n_samples": 2}, "iscam": {"n_samples": 2}, "smoothgradcampp": {"n_samples": 2}}


class SmallGap(nn.Module):
    """conv -> BN -> ReLU -> conv -> ReLU -> GAP -> Linear (CAM-able, FullGrad-able)."""

    def __init__(self, classes: int = 5):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
                                      nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def posthoc_methods() -> List[str]:
    return [n for n in registered_names() if isinstance(lookup(n).extractor, Method) and n != "i2c"]


def _minmax(m: torch.Tensor) -> torch.Tensor:
    flat = m.double().flatten(1)
    lo = flat.min(dim=1, keepdim=True).values
    span = flat.max(dim=1, keepdim=True).values - lo
    return torch.where(span > 0, (flat - lo) / torch.where(span > 0, span, torch.ones_like(span)),
                       torch.zeros_like(flat))


def _state(model: nn.Module):
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())
    return ([m.training for m in model.modules()], [p.requires_grad for p in model.parameters()],
            [p.grad is None for p in model.parameters()], hooks,
            [t.detach().cpu().clone() for t in list(model.parameters()) + list(model.buffers())])


def _same_state(a, b) -> bool:
    return a[:4] == b[:4] and all(torch.equal(x, y) for x, y in zip(a[4], b[4]))


def _cases():
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(weights=None).eval()
    small = SmallGap().eval()
    x64 = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    x16 = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    return [("resnet18@layer4", resnet, "layer4", x64, {"refinecam": {"layers": "layer3"}}),
            ("resnet18@layer3", resnet, "layer3", x64, {"refinecam": {"layers": "layer2"}}),
            ("small@features", small, "features", x16, {"refinecam": {"layers": "features.2"}})]


def maps_on(device: torch.device, model: nn.Module, layer: str, x: torch.Tensor, extra: Dict) -> Dict[str, dict]:
    model = model.to(device)
    explainer = attribmap.Explainer(model, layer)
    inputs = x.to(device)
    with torch.no_grad():
        targets = model(inputs).argmax(dim=1).cpu()
    out = {}
    for name in posthoc_methods():
        options = {**OPTIONS.get(name, {}), **extra.get(name, {})}
        before = _state(model)
        start = time.perf_counter()
        try:
            maps = explainer.explain(inputs, name, target=targets, raw=True, **options)
        except MethodError as exc:  # e.g. cam on a layer that does not feed GAP -> linear
            out[name] = {"not_applicable": str(exc).split(";")[0], "state_ok": _same_state(before, _state(model))}
            continue
        if device.type == "cuda":
            torch.cuda.synchronize()
        out[name] = {"maps": maps.detach().cpu(), "device": str(maps.device), "seconds": time.perf_counter() - start,
                     "state_ok": _same_state(before, _state(model))}
    model.to("cpu")
    return out


def check_maps(cuda: torch.device, tol: float) -> dict:
    report = {"tolerance_after_minmax": tol, "cases": {}, "ok": True}
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    for label, model, layer, x, extra in _cases():
        cpu = maps_on(torch.device("cpu"), model, layer, x, extra)
        gpu = maps_on(cuda, model, layer, x, extra)
        rows = {}
        for name in cpu:
            if "not_applicable" in cpu[name] or "not_applicable" in gpu[name]:
                ok = "not_applicable" in cpu[name] and "not_applicable" in gpu[name]  # on both devices or a bug
                rows[name] = {"not_applicable": cpu[name].get("not_applicable", gpu[name].get("not_applicable")),
                              "ok": ok}
                report["ok"] &= ok
                print(f"  {label:18s} {name:20s} not applicable on {'both devices' if ok else 'ONE device'}")
                continue
            diff = float((_minmax(cpu[name]["maps"]) - _minmax(gpu[name]["maps"])).abs().max())
            ok = (diff <= tol and gpu[name]["device"].startswith("cuda") and gpu[name]["state_ok"]
                  and cpu[name]["state_ok"])
            rows[name] = {"max_diff": diff, "device": gpu[name]["device"], "state_ok": gpu[name]["state_ok"],
                          "cpu_s": round(cpu[name]["seconds"], 4), "cuda_s": round(gpu[name]["seconds"], 4),
                          "ok": ok}
            report["ok"] &= ok
            print(f"  {label:18s} {name:20s} max|cpu-cuda| {diff:.2e}  {'ok' if ok else 'FAIL'}", flush=True)
        report["cases"][label] = rows
    return report


def cpu_only_maps() -> dict:
    """The CPU half of the map check, run where there is no CUDA device."""
    counts = {}
    for label, model, layer, x, extra in _cases():
        maps = maps_on(torch.device("cpu"), model, layer, x, extra)
        bad = [n for n, r in maps.items() if not (r["state_ok"] and ("not_applicable" in r
                                                                     or torch.isfinite(r["maps"]).all()))]
        skipped = sorted(n for n, r in maps.items() if "not_applicable" in r)
        counts[label] = {"methods": len(maps), "not_applicable": skipped, "not_finite_or_state_changed": bad}
        print(f"  {label:18s} {len(maps)} methods on the CPU (not applicable: {skipped or 'none'}); "
              f"problems: {bad or 'none'}", flush=True)
    return counts


def run_speed(out: Path, extra_args: str) -> dict:
    sys.path.insert(0, str(HERE))
    import speed_methods

    args = ["--device", "cuda", "--memory", "--json", str(out / "speed_cuda.json"), "--table",
            str(out / "speed_cuda.rst")] + shlex.split(extra_args)
    status = speed_methods.main(args)
    return {"status": status, "json": str(out / "speed_cuda.json"), "table": str(out / "speed_cuda.rst")}


def _run(cmd: List[str], cwd: Path) -> subprocess.CompletedProcess:
    print("  $ " + " ".join(cmd), flush=True)
    env = {**os.environ, "PYTHONPATH": str(HERE.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)


def _numbers(results: dict) -> Dict[str, Dict[str, float]]:
    """Every numeric metric of every extractor in a results.json (timings and provenance dropped)."""
    drop = {"extract_s", "maps_per_s", "score_s", "about", "shared_pass"}
    return {n: {k: v for k, v in e.items() if k not in drop and isinstance(v, (int, float)) and not isinstance(v, bool)}
            for n, e in results["extractors"].items()}


def run_bench(out: Path, device: str = "cuda") -> dict:
    """``attribmap bench`` on CUDA: against two NCCL processes (two devices) or the CPU (one device).

    With two or more devices the one-process and two-process reports must be equal. With one
    device the CUDA report (faithfulness metrics included) must hold the same extractors and
    metrics as a CPU report of the same checkpoint, every number finite; the largest difference
    is reported (TF32 convolutions and CUDA reductions round differently from the CPU, and a
    threshold metric can move by a box when a map value crosses a threshold).
    """
    py = sys.executable
    two = torch.cuda.device_count() >= 2
    suite, ckpt = out / "suite", out / "cls.pt"
    methods = "cam,gradcam,gradcampp,layercam,xgradcam,scorecam:batch_size=256,ablationcam,eigencam,fullgrad"
    steps = [
        [py, "-m", "attribmap", "synth", str(suite), "--classes", "2", "--per-class", "8", "--val-per-class", "0",
         "--test-per-class", "8", "--size", "64", "--overwrite"],
        [py, "-m", "attribmap", "train", "classifier", "--data", str(suite), "--out", str(ckpt), "--epochs", "1",
         "--batch-size", "8", "--image-size", "64", "--device", device, "--no-progress"],
    ]
    common = ["bench", "--data", str(suite), "--checkpoint", str(ckpt), "--methods", methods, "--input-size", "64",
              "--batch-size", "4", "--delta", "0.01", "--no-figures", "--no-progress"]
    if two:
        steps.append([py, "-m", "attribmap"] + common + ["--device", device, "--out", str(out / "bench_single")])
        steps.append([py, "-m", "torch.distributed.run", "--nproc_per_node=2", "-m", "attribmap"] + common
                     + ["--device", device, "--out", str(out / "bench_other")])
    else:
        common += ["--faithfulness", "all", "--steps", "10"]
        steps.append([py, "-m", "attribmap"] + common + ["--device", device, "--out", str(out / "bench_single")])
        steps.append([py, "-m", "attribmap"] + common + ["--device", "cpu", "--out", str(out / "bench_other")])
    for cmd in steps:
        start = time.perf_counter()
        done = _run(cmd, out)
        print(f"    {time.perf_counter() - start:.1f} s, status {done.returncode}", flush=True)
        if done.returncode != 0:
            return {"ok": False, "failed": " ".join(cmd), "stderr": done.stderr[-2000:]}
    single = _numbers(json.loads((out / "bench_single" / "results.json").read_text()))
    other_results = json.loads((out / "bench_other" / "results.json").read_text())
    other = _numbers(other_results)
    if two:
        same = single == other
        print(f"  2-process bench ({device}) {'equals' if same else 'DIFFERS FROM'} the single-process numbers "
              f"(world size {other_results.get('world_size')})", flush=True)
        return {"ok": same, "world_size": other_results.get("world_size")}
    import math

    same_keys = {n: sorted(v) for n, v in single.items()} == {n: sorted(v) for n, v in other.items()}
    finite = all(math.isfinite(v) for e in single.values() for v in e.values())
    largest = {n: max((abs(single[n][k] - other[n][k]), k) for k in single[n]) for n in single} if same_keys else {}
    ok = same_keys and finite
    print(f"  bench on {device} vs on the CPU (one device, no NCCL run): same extractors and metrics "
          f"{same_keys}, all finite {finite}", flush=True)
    for name, (diff, key) in largest.items():
        print(f"    {name:12s} largest |cuda - cpu| {diff:.3g} ({key})", flush=True)
    return {"ok": ok, "compared_with": "cpu", "largest_difference": {n: [d, k] for n, (d, k) in largest.items()}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.environ.get("OUT", "gpu_check_out"))
    p.add_argument("--tol", type=float, default=1e-3)
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--skip-bench", action="store_true")
    p.add_argument("--speed-args", default="--rounds 3 --warmup 1 --samples 2")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"torch": torch.__version__, "cuda_available": torch.cuda.is_available()}
    if not torch.cuda.is_available():
        print("no CUDA device here: running the CPU half of the map check only", flush=True)
        report["cpu_only"] = cpu_only_maps()
        atomic_write_text(out / "gpu_check.json", json.dumps(report, indent=1))
        print("no CUDA device: the GPU checks did not run (exit 0)")
        return 0
    cuda = torch.device("cuda")
    report["device"] = torch.cuda.get_device_name(cuda)
    print(f"1. maps on the CPU and on {report['device']}", flush=True)
    report["maps"] = check_maps(cuda, args.tol)
    ok = report["maps"]["ok"]
    if not args.skip_speed:
        print("2. speed table on CUDA", flush=True)
        report["speed"] = run_speed(out, args.speed_args)
    if not args.skip_bench:
        print("3. attribmap bench, one process against two NCCL processes", flush=True)
        report["bench"] = run_bench(out)
        ok &= report["bench"]["ok"] is not False
    atomic_write_text(out / "gpu_check.json", json.dumps(report, indent=1, default=str))
    print(f"{'all checks passed' if ok else 'SOME CHECKS FAILED'}; report in {out / 'gpu_check.json'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
