"""Speed of attribmap's explain against the floor and against peers, in one process.

ResNet-50 (random init, eval mode) at 224 x 224, batch 8, CPU by default. Every contender
runs once per round, in a rotating order (interleaved), for ``--rounds`` rounds after a
warm-up; the table shows medians and ratios:

* floor: one plain forward pass of the same model under ``torch.no_grad()``;
* attribmap gradcam / dgl / explain_many(all six post-hoc methods), maps at 224 x 224;
* attribmap gradcam for the top-10 classes of every image (``target`` a list of 10 classes per
  image: maps (8, 10, 224, 224) from one forward pass and one batched backward pass), and its
  peak memory beside one class (``--memory``: the peak of torch's CPU allocations during one
  call, from the profiler's memory events, or ``torch.cuda.max_memory_allocated`` on CUDA);
* captum ``LayerGradCam`` (layer4, relu_attributions=True; layer resolution, no upsampling);
* pytorch-grad-cam ``GradCAM`` (layer4; its own numpy post-processing to 224 x 224).

Peers are optional (``pip install -e '.[bench]'``); missing ones are reported as such.
Usage: ``python benchmarks/speed_explain.py [--rounds 9] [--batch 8] [--threads 2] [--device cpu] [--memory]``
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch
import torchvision

import attribmap
from attribmap.methods import POSTHOC_METHODS


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


MULTI = "attribmap gradcam, 10 classes per image"
CLASSES = 10


def build_contenders(model, x, targets, layer_name="layer4", top10=None):
    layer = dict(model.named_modules())[layer_name]
    ex = attribmap.Explainer(model, layer=layer_name)
    contenders = {
        "floor: forward (no_grad)": lambda: model(x),
        "attribmap gradcam": lambda: ex.explain(x, "gradcam", target=targets),
        "attribmap dgl": lambda: ex.explain(x, "dgl", target=targets),
        "attribmap explain_many (6 methods)": lambda: ex.explain_many(x, POSTHOC_METHODS, target=targets),
    }
    if top10 is not None:
        contenders[MULTI] = lambda: ex.explain(x, "gradcam", target=top10)
    notes = {}
    try:
        from captum.attr import LayerGradCam

        lgc = LayerGradCam(model, layer)
        contenders["captum LayerGradCam"] = lambda: lgc.attribute(x, target=targets.tolist(), relu_attributions=True)
    except ImportError as exc:  # pragma: no cover
        notes["captum LayerGradCam"] = f"not installed ({exc})"
    try:
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        pgc = GradCAM(model=model, target_layers=[layer])
        pgc_targets = [ClassifierOutputTarget(int(t)) for t in targets]
        contenders["pytorch-grad-cam GradCAM"] = lambda: pgc(input_tensor=x, targets=pgc_targets)
    except ImportError as exc:
        notes["pytorch-grad-cam GradCAM"] = f"not installed: pip install -e '.[bench]' ({exc})"
    return contenders, notes


def measure(contenders, rounds, device, warmup=2):
    names = list(contenders)
    times = {n: [] for n in names}
    for r in range(warmup + rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            _sync(device)
            start = time.perf_counter()
            fn = contenders[name]
            if name.startswith("floor"):
                with torch.no_grad():
                    fn()
            else:
                fn()
            _sync(device)
            if r >= warmup:
                times[name].append(time.perf_counter() - start)
    return {n: statistics.median(v) for n, v in times.items()}


def _setup(args):
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None).eval().to(device)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    with torch.no_grad():
        logits = model(x)
    return model, x, logits.argmax(1), logits.topk(CLASSES, dim=1).indices.tolist(), device


def peak_memory_mib(fn, device) -> float:
    """Peak memory of one call of ``fn`` above what was allocated before it (MiB).

    CUDA: ``torch.cuda.max_memory_allocated``. CPU: the running sum of the allocations and
    frees the profiler records (``profile_memory=True``), in the order the operators started.
    """
    if device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2 ** 20
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    running = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        running += event.self_cpu_memory_usage
        peak = max(peak, running)
    return peak / 2 ** 20


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default=None, help="also write the medians here")
    parser.add_argument("--memory", action="store_true",
                        help="also measure the peak memory of gradcam with 1 and 10 classes per image")
    args = parser.parse_args(argv)
    model, x, targets, top10, device = _setup(args)
    contenders, notes = build_contenders(model, x, targets, top10=top10)
    medians = measure(contenders, args.rounds, device)
    floor = medians["floor: forward (no_grad)"]
    gradcam = medians["attribmap gradcam"]
    print(f"ResNet-50, {args.size}x{args.size}, batch {args.batch}, device {device}, "
          f"threads {args.threads}, {args.rounds} interleaved rounds, torch {torch.__version__}")
    print(f"{'contender':<38} {'median ms':>10} {'x floor':>8} {'x attribmap gradcam':>20}")
    for name, t in medians.items():
        print(f"{name:<38} {1000 * t:>10.1f} {t / floor:>8.2f} {t / gradcam:>20.2f}")
    for name, note in notes.items():
        print(f"{name:<38} {note}")
    print()
    checks = [("gradcam <= 1.15x floor", gradcam / floor, 1.15)]
    if "captum LayerGradCam" in medians:
        checks.append(("gradcam <= 0.85x captum LayerGradCam", gradcam / medians["captum LayerGradCam"], 0.85))
    if "pytorch-grad-cam GradCAM" in medians:
        checks.append(("gradcam <= 0.5x pytorch-grad-cam", gradcam / medians["pytorch-grad-cam GradCAM"], 0.5))
    checks.append(("explain_many(6) <= 1.3x gradcam",
                   medians["attribmap explain_many (6 methods)"] / gradcam, 1.3))
    checks.append((f"gradcam {CLASSES} classes <= 2x gradcam 1 class", medians[MULTI] / gradcam, 2.0))
    for label, value, limit in checks:
        print(f"target {label:<40} measured {value:.2f}  {'met' if value <= limit else 'NOT met'}")
    memory = None
    if args.memory:
        names = ["floor: forward (no_grad)", "attribmap gradcam", MULTI]
        with torch.no_grad():
            memory = {"floor: forward (no_grad)": peak_memory_mib(contenders[names[0]], device)}
        memory.update({n: peak_memory_mib(contenders[n], device) for n in names[1:]})
        kind = "max_memory_allocated" if device.type == "cuda" else "torch CPU allocations (profiler)"
        print(f"peak memory of one call ({kind}): forward {memory[names[0]]:.0f} MiB, gradcam 1 class "
              f"{memory[names[1]]:.0f} MiB, {CLASSES} classes {memory[MULTI]:.0f} MiB")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"medians_s": medians, "memory_mib": memory, "args": vars(args), "torch": torch.__version__},
                      fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
