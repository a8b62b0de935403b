"""What keeping freed memory (attribmap.allocator) saves on repeated large forward passes.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/speed_allocator.py --size 448 --batch 8 --passes 6 --repeat 3

Each arm runs in a fresh interpreter (the setting is process-wide and cannot be undone): it
builds EfficientNet-Lite0 (random weights: only the time counts), folds its batch norms as
Score-CAM does, and times ``--passes`` inference passes of a batch of ``--batch`` inputs at
``--size`` px, after one untimed pass. The arms alternate ``--repeat`` times: glibc's
defaults ("default") and :func:`attribmap.allocator.keep_freed_memory` ("kept"). Printed per
arm, medians over the repeats: ms per input (wall, user, system), page faults per input and
peak resident memory; then default / kept, the speed-up of the ``attribmap`` command line
(which keeps freed memory) on the Score-CAM family's inner loop.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap

_ARM = textwrap.dedent("""
    import json, resource, sys, time, torch
    from attribmap.allocator import keep_freed_memory
    arm, size, batch, passes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    applied = keep_freed_memory() if arm == "kept" else False
    from attribmap.models import build_model
    from attribmap.methods.folded_model import folded_model
    from attribmap.methods.perturbation import forward_logits
    torch.manual_seed(0)
    model = build_model("efficientnet_lite0", num_classes=1000, weights=None).eval()
    probe = torch.rand(1, 3, size, size)
    with torch.inference_mode():
        model = folded_model(model, probe, model(probe))
    inputs = torch.rand(batch, 3, size, size)
    forward_logits(model, inputs)
    start, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(passes):
        forward_logits(model, inputs)
    wall, end = time.perf_counter() - wall, resource.getrusage(resource.RUSAGE_SELF)
    n = passes * batch
    print(json.dumps({"applied": applied, "wall": 1e3 * wall / n, "user": 1e3 * (end.ru_utime - start.ru_utime) / n,
                      "sys": 1e3 * (end.ru_stime - start.ru_stime) / n, "faults": (end.ru_minflt - start.ru_minflt) / n,
                      "peak_mb": end.ru_maxrss / 1024}))
""")


def _arm(arm: str, args: argparse.Namespace) -> dict:
    env = dict(os.environ, ATTRIBMAP_KEEP_FREED_MEMORY="1")
    done = subprocess.run([sys.executable, "-c", _ARM, arm, str(args.size), str(args.batch), str(args.passes)],
                          capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        sys.exit(f"the {arm} arm failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    """Run the arms and print the medians and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=448, help="input side in px (default 448)")
    parser.add_argument("--batch", type=int, default=8, help="inputs per pass (default 8)")
    parser.add_argument("--passes", type=int, default=6, help="timed passes per arm (default 6)")
    parser.add_argument("--repeat", type=int, default=3, help="alternations of the two arms (default 3)")
    args = parser.parse_args(argv)
    for name in ("size", "batch", "passes", "repeat"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1; got {getattr(args, name)}")
    runs = {"default": [], "kept": []}
    for _ in range(args.repeat):
        for arm in runs:
            runs[arm].append(_arm(arm, args))
    if not runs["kept"][0]["applied"]:
        print("note: keep_freed_memory() had no effect here (not glibc): both arms ran glibc's defaults")
    print(f"EfficientNet-Lite0 (batch norms folded), {args.size} px, batch {args.batch}, {args.passes} passes, "
          f"threads {os.environ.get('OMP_NUM_THREADS', 'default')}, medians of {args.repeat}")
    print(f"{'arm':8} {'ms/input':>9} {'user':>7} {'system':>7} {'faults/input':>13} {'peak MB':>8}")
    medians = {}
    for arm, results in runs.items():
        medians[arm] = {key: statistics.median(r[key] for r in results)
                        for key in ("wall", "user", "sys", "faults", "peak_mb")}
        m = medians[arm]
        print(f"{arm:8} {m['wall']:9.1f} {m['user']:7.1f} {m['sys']:7.1f} {m['faults']:13.0f} {m['peak_mb']:8.0f}")
    print(f"default / kept (wall per input): {medians['default']['wall'] / medians['kept']['wall']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
