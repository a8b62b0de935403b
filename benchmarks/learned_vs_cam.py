"""Evidence for the learned extractors: CAM on a CE baseline vs. I2C and the weight map.

For each seed (used for the suite generator *and* for every training run) on the synthetic
WSOL suite, with small CPU backbones:

1. ``suite``: generate the suite (``attribmap.data.synthetic.generate_suite``);
2. ``classifier``: the CE baseline ``resnet18_small`` (``train_classifier``, last epoch kept);
3. ``i2c``: ``resnet18_small_i2c`` with the default losses (lambda1 = 0.008, lambda2 = 0.001);
4. ``i2c_ablation``: the same architecture, sampler and budget with lambda1 = lambda2 = 0
   (plain CE on the fully convolutional head);
5. ``embedding``: the Siamese embedding of weight-map method II (triplet loss);
6. ``weightmap1`` / ``weightmap2``: the generator, method I against the frozen baseline and
   method II against the frozen embedding. It is trained one epoch at a time (``resume``,
   bit-for-bit the same as one run; its schedule is constant) so that each epoch's map can
   be scored on the test split *for the investigation only*; the kept checkpoint is still
   the one with the best label-free stopping score S on held-out training images;
7. ``bench``: the official protocol (delta 0.001) on the test split for ``cam`` on the
   baseline; ``i2c`` and ``cam`` (at ``cam_layer``) of both I2C models; the two weight maps.

Every network is trained for the same number of epochs ``--epochs`` (the generators and the
embedding too; the generators additionally rely on a frozen model that had its own budget).
Stages are cached per seed in ``--out/seed<k>/stages/<stage>.json`` (rerun when missing or
when the settings changed). Run from the repository root::

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/learned_vs_cam.py --out learned_out --seeds 0 1
    .venv/bin/python benchmarks/learned_vs_cam.py --out /tmp/lvc --preset small --seeds 0  # smoke

Writes ``--out/summary.json`` and ``--out/summary.md`` and prints the tables.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence


from attribmap.report import atomic_write_bytes, jsonable, mean_std

#: Metrics copied from each benchmark (official protocol, GT-known maps).
METRICS = ("MaxBoxAccV2", "PxAP", "MaxBoxAcc", "Top1Loc", "ClassifierTop1")

#: Share of each training class held out for the stopping score (``train_weightmap``'s default).
HOLDOUT_FRACTION = 0.1

#: Table rows: (row name, bench run, extractor name in that run, what it is).
ROWS = (
    ("cam (CE baseline)", "baseline", "cam", "CAM of the GAP classifier at layer4"),
    ("i2c", "i2c", "i2c", "class maps of the I2C model (default lambdas)"),
    ("i2c: cam", "i2c", "cam", "CAM at the I2C model's cam_layer"),
    ("i2c ablation (lambda=0)", "i2c_ablation", "i2c", "class maps, I2C architecture, plain CE"),
    ("i2c ablation: cam", "i2c_ablation", "cam", "CAM at the ablation model's cam_layer"),
    ("weightmap I", "baseline", "weightmap", "generator, method I, S-selected epoch"),
    ("weightmap II", "weightmap2", "weightmap", "generator, method II, S-selected epoch"),
)


@dataclass(frozen=True)
class Settings:
    """Suite size and training budget shared by every seed.

    Attributes
    ----------
    classes, per_class, test_per_class, scene_size : int
        The synthetic suite (training / test images per class, nominal image side).
    image_size : int
        Training crop and benchmark input side (a multiple of 32).
    epochs : int
        Epochs of every trained network (classifier, both I2C models, embedding, generators).
    batch_size : int
        Even (I2C pairs).
    lr : float
        SGD learning rate of the classifier and the I2C models (the generator and the
        embedding use their recipes' Adam 1e-3).
    delta, curve_delta : float
        Threshold step of the final table and of the per-epoch weight-map curves.
    """

    classes: int = 4
    per_class: int = 120
    test_per_class: int = 25
    scene_size: int = 96
    image_size: int = 64
    epochs: int = 8
    batch_size: int = 16
    lr: float = 0.01
    delta: float = 0.001
    curve_delta: float = 0.01

    def key(self, seed: int) -> str:
        text = json.dumps({**dataclasses.asdict(self), "seed": seed}, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


PRESETS: Dict[str, Settings] = {
    "full": Settings(),
    "small": Settings(classes=2, per_class=6, test_per_class=3, scene_size=48, image_size=32, epochs=2,
                      batch_size=4, delta=0.01, curve_delta=0.05),
}


def _write_json(path: Path, payload: Any) -> None:
    text = json.dumps(jsonable(payload), indent=2, allow_nan=False)
    atomic_write_bytes(path, (text + "\n").encode("utf-8"))


def _metrics(results: Dict[str, Any], name: str) -> Dict[str, Optional[float]]:
    entry = results["extractors"][name]
    return {m: (float(entry[m]) if entry.get(m) is not None else None) for m in METRICS}


def _bench(suite: Path, checkpoint: Path, out: Path, settings: Settings, seed: int, delta: float,
           methods: Sequence[str] = (), weightmap: Optional[Path] = None) -> Dict[str, Any]:
    from attribmap.bench import BenchConfig, run_benchmark

    config = BenchConfig(data=str(suite), split="test", checkpoint=str(checkpoint), methods=tuple(methods),
                         weightmap=str(weightmap) if weightmap else None, delta=delta,
                         input_size=settings.image_size, batch_size=settings.batch_size, seed=seed)
    if out.exists():
        shutil.rmtree(out)
    return run_benchmark(config, out, progress=False, write_figures=False)


def _loss_summary(history: List[Dict[str, Any]]) -> Dict[str, Any]:
    """First- and last-epoch means of the logged loss parts (ce, l_sc, l_gc, acc, loss)."""
    keys = ("loss", "ce", "l_sc", "l_gc", "acc")
    pick = lambda entry: {k: entry[k] for k in keys if k in entry}  # noqa: E731
    return {"first_epoch": pick(history[0]), "last_epoch": pick(history[-1])}


class SeedRun:
    """The stages of one seed in ``root`` (``suite/``, ``models/``, ``bench/``, ``stages/``)."""

    def __init__(self, root: Path, settings: Settings, seed: int, say: Callable[[str], None]) -> None:
        self.root, self.settings, self.seed, self.say = root, settings, seed, say
        self.suite, self.models, self.reports = root / "suite", root / "models", root / "bench"
        self.common = dict(batch_size=settings.batch_size, image_size=settings.image_size, seed=seed,
                           progress=False)

    def stage(self, name: str, action: Callable[[], Dict[str, Any]]) -> Dict[str, Any]:
        """Run ``action`` (returning a JSON-able record) unless its cached record is current."""
        record_path = self.root / "stages" / f"{name}.json"
        key = self.settings.key(self.seed)
        if record_path.is_file():
            with open(record_path, encoding="utf-8") as handle:
                record = json.load(handle)
            if record.get("key") == key:
                self.say(f"[seed {self.seed}] {name}: cached")
                return record
        self.say(f"[seed {self.seed}] {name}: running")
        started = time.perf_counter()
        record = {"key": key, **action()}
        record["seconds"] = time.perf_counter() - started
        _write_json(record_path, record)
        self.say(f"[seed {self.seed}] {name}: done in {record['seconds']:.1f} s")
        return record

    def run(self) -> Dict[str, Dict[str, Any]]:
        s = self.settings
        records: Dict[str, Dict[str, Any]] = {}

        def suite() -> Dict[str, Any]:
            from attribmap.data.synthetic import generate_suite

            generate_suite(self.suite, classes=s.classes, per_class=s.per_class, size=s.scene_size, seed=self.seed,
                           val_per_class=0, test_per_class=s.test_per_class, overwrite=True)
            return {}

        def classifier() -> Dict[str, Any]:
            from attribmap.train import train_classifier

            _, summary = train_classifier(self.suite, self.models / "classifier.pt", epochs=s.epochs, lr=s.lr,
                                          **self.common)
            return {"losses": _loss_summary(summary["epochs"])}

        def i2c(name: str, lambda_sc: float, lambda_gc: float) -> Callable[[], Dict[str, Any]]:
            def action() -> Dict[str, Any]:
                from attribmap.train import train_i2c

                _, summary = train_i2c(self.suite, self.models / f"{name}.pt", epochs=s.epochs, lr=s.lr,
                                       lambda_sc=lambda_sc, lambda_gc=lambda_gc, **self.common)
                return {"lambda_sc": lambda_sc, "lambda_gc": lambda_gc, "losses": _loss_summary(summary["epochs"])}
            return action

        def embedding() -> Dict[str, Any]:
            from attribmap.train.weightmap import train_embedding

            _, summary = train_embedding(self.suite, self.models / "embedding.pt", epochs=s.epochs, **self.common)
            return {"losses": _loss_summary(summary["epochs"])}

        def weightmap(method: int) -> Callable[[], Dict[str, Any]]:
            return lambda: self._weightmap_by_epoch(method)

        records["suite"] = self.stage("suite", suite)
        records["classifier"] = self.stage("classifier", classifier)
        records["i2c"] = self.stage("i2c", i2c("i2c", 0.008, 0.001))
        records["i2c_ablation"] = self.stage("i2c_ablation", i2c("i2c_ablation", 0.0, 0.0))
        records["embedding"] = self.stage("embedding", embedding)
        records["weightmap1"] = self.stage("weightmap1", weightmap(1))
        records["weightmap2"] = self.stage("weightmap2", weightmap(2))
        records["bench"] = self.stage("bench", self._final_bench)
        return records

    def _weightmap_by_epoch(self, method: int) -> Dict[str, Any]:
        """Train the generator epoch by epoch; after each, mean S (held-out train) and test scores."""
        from attribmap.train import train_weightmap
        from attribmap.train.checkpoint import last_checkpoint_path, load_checkpoint

        s = self.settings
        out = self.models / f"weightmap{method}.pt"
        last = last_checkpoint_path(out)
        for stale in (out, last):
            stale.unlink(missing_ok=True)  # a fresh run: never resume another setting's epochs
        frozen = self.models / ("classifier.pt" if method == 1 else "embedding.pt")
        curve = []
        for epoch in range(1, s.epochs + 1):
            train_weightmap(self.suite, out, classifier=frozen, method=method, epochs=epoch, resume=True,
                            holdout_fraction=HOLDOUT_FRACTION, **self.common)
            state = load_checkpoint(last)
            entry = dict(state["history"][-1])
            results = _bench(self.suite, self.models / "classifier.pt", self.reports / f"curve{method}",
                             s, self.seed, s.curve_delta, weightmap=last)
            entry["test"] = _metrics(results, "weightmap")
            entry["holdout_maps"] = self._holdout_map_stats(last)
            curve.append(entry)
            self.say(f"[seed {self.seed}] weightmap{method} epoch {epoch}: S={entry['score']:.4f} "
                     f"test MaxBoxAccV2={entry['test']['MaxBoxAccV2']:.1f} PxAP={entry['test']['PxAP']:.1f}")
        kept = load_checkpoint(out)
        return {"method": method, "selected_epoch": int(kept["best_epoch"]),
                "selected_score": float(kept["best_score"]), "curve": curve}

    def _holdout_map_stats(self, checkpoint: Path) -> Dict[str, float]:
        """Why S is what it is: statistics of the generator's maps M on the held-out training images.

        Returns the means over those images of ``mean(M)``, ``min(M) / max(M)`` and ``coverage``,
        the share of pixels with ``M >= max(M) / 10`` (the support S boxes; 1 = whole image).
        """
        import torch

        from attribmap.train import load_model
        from attribmap.train.data import load_training_data

        parts = load_training_data(self.suite, self.settings.image_size, HOLDOUT_FRACTION, self.seed)
        generator = load_model(checkpoint).eval()
        images = torch.stack([parts.holdout[i]["image"] for i in range(len(parts.holdout))])
        with torch.no_grad():
            maps = torch.cat([generator(chunk)[:, 0] for chunk in images.split(self.settings.batch_size)])
        flat = maps.flatten(1).double()
        peak = flat.max(1).values
        coverage = (flat >= peak[:, None] / 10).double().mean(1)
        return {"mean_M": float(flat.mean()), "min_over_max": float((flat.min(1).values / peak).mean()),
                "coverage": float(coverage.mean()), "images": int(flat.shape[0])}

    def _final_bench(self) -> Dict[str, Any]:
        s = self.settings
        m = self.models
        runs = {
            "baseline": dict(checkpoint=m / "classifier.pt", methods=("cam",), weightmap=m / "weightmap1.pt"),
            "weightmap2": dict(checkpoint=m / "classifier.pt", weightmap=m / "weightmap2.pt"),
            "i2c": dict(checkpoint=m / "i2c.pt", methods=("cam", "i2c")),
            "i2c_ablation": dict(checkpoint=m / "i2c_ablation.pt", methods=("cam", "i2c")),
        }
        scores: Dict[str, Dict[str, Any]] = {}
        for run_name, kwargs in runs.items():
            results = _bench(self.suite, out=self.reports / run_name, settings=s, seed=self.seed, delta=s.delta,
                             **kwargs)
            scores[run_name] = {name: _metrics(results, name) for name in results["extractors"]}
        rows = {row: scores[run][name] for row, run, name, _ in ROWS}
        return {"rows": rows}


def summarize(per_seed: Dict[int, Dict[str, Dict[str, Any]]]) -> Dict[str, Any]:
    """Rows -> metric -> mean/std/n; plus per-seed values, S curves, loss magnitudes, seconds."""
    seeds = sorted(per_seed)
    table = {row: {metric: mean_std([per_seed[k]["bench"]["rows"][row][metric] for k in seeds])
                   for metric in METRICS} for row, _, _, _ in ROWS}
    investigation = {}
    for k in seeds:
        rec = per_seed[k]
        investigation[str(k)] = {
            "weightmap": {str(method): {
                "selected_epoch": rec[f"weightmap{method}"]["selected_epoch"],
                "per_epoch": [{"epoch": e["epoch"], "S": e["score"], "loss": e.get("loss"),
                               "MaxBoxAccV2": e["test"]["MaxBoxAccV2"], "PxAP": e["test"]["PxAP"],
                               **{k: e.get("holdout_maps", {}).get(k) for k in ("mean_M", "min_over_max", "coverage")}}
                              for e in rec[f"weightmap{method}"]["curve"]]} for method in (1, 2)},
            "losses": {name: rec[name]["losses"] for name in ("classifier", "i2c", "i2c_ablation", "embedding")},
        }
    seconds = {str(k): {name: rec["seconds"] for name, rec in per_seed[k].items()} for k in seeds}
    return {"table": table, "per_seed": {str(k): per_seed[k]["bench"]["rows"] for k in seeds},
            "investigation": investigation, "seconds": seconds}


def _cell(value: Dict[str, float]) -> str:
    return "-" if not math.isfinite(value["mean"]) else f"{value['mean']:.1f} +- {value['std']:.1f}"


def render(summary: Dict[str, Any], settings: Settings, seeds: Sequence[int], wall_s: float) -> str:
    """The markdown report: main table, weight-map curves, I2C loss magnitudes, times."""
    lines = [f"Synthetic WSOL suite: {settings.classes} classes, {settings.per_class} train / "
             f"{settings.test_per_class} test images per class, input {settings.image_size} px; every network "
             f"trained {settings.epochs} epochs; official protocol (delta {settings.delta}), test split, "
             f"GT-known maps; mean +- std over seeds {', '.join(map(str, seeds))}.", "",
             "| extractor | " + " | ".join(METRICS) + " |", "|---|" + "---:|" * len(METRICS)]
    for row, _, _, _ in ROWS:
        lines.append(f"| {row} | " + " | ".join(_cell(summary['table'][row][m]) for m in METRICS) + " |")
    lines += ["", f"Weight-map generator per epoch (S: mean stopping score on held-out training images, "
              f"selects the checkpoint, later epoch wins ties; test scores with delta {settings.curve_delta}, "
              "for the investigation only; * = kept):", "",
              "mean M, min/max and coverage (share of pixels >= max/10): the maps on the held-out training "
              "images.", "",
              "| seed | method | epoch | S | mean M | min/max | coverage | test MaxBoxAccV2 | test PxAP |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for seed, info in summary["investigation"].items():
        for method, wm in info["weightmap"].items():
            for e in wm["per_epoch"]:
                mark = " *" if e["epoch"] == wm["selected_epoch"] else ""
                stats = " | ".join("-" if e.get(k) is None else f"{e[k]:.3f}"
                                   for k in ("mean_M", "min_over_max", "coverage"))
                lines.append(f"| {seed} | {'I' if method == '1' else 'II'} | {e['epoch']}{mark} | {e['S']:.4f} | "
                             f"{stats} | {e['MaxBoxAccV2']:.1f} | {e['PxAP']:.1f} |")
    lines += ["", "I2C loss magnitudes (epoch means; weighted terms = lambda * loss):", "",
              "| seed | model | epoch | CE | l_sc | lambda1 l_sc | l_gc | lambda2 l_gc | train acc |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for seed, info in summary["investigation"].items():
        for name, lam in (("i2c", (0.008, 0.001)), ("i2c_ablation", (0.0, 0.0))):
            for which, e in info["losses"][name].items():
                lines.append(f"| {seed} | {name} | {which.split('_')[0]} | {e['ce']:.4f} | {e['l_sc']:.3f} | "
                             f"{lam[0] * e['l_sc']:.4f} | {e['l_gc']:.3f} | {lam[1] * e['l_gc']:.4f} | "
                             f"{e['acc']:.3f} |")
    lines += ["", "Stage wall times (s): " + "; ".join(
        f"seed {seed}: " + ", ".join(f"{n} {v:.0f}" for n, v in stages.items())
        for seed, stages in summary["seconds"].items()), f"Total wall time of this invocation: {wall_s:.0f} s."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="working directory (cached per seed)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds (default 0 1)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="full", help="suite size and budget")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of every network (preset's default)")
    args = parser.parse_args(argv)
    settings = PRESETS[args.preset]
    if args.epochs is not None:
        if args.epochs < 1:
            parser.error(f"--epochs must be >= 1, got {args.epochs}")
        settings = dataclasses.replace(settings, epochs=args.epochs)
    if any(seed < 0 for seed in args.seeds):
        parser.error(f"--seeds must be >= 0, got {args.seeds}")
    out = Path(args.out)
    say = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    started = time.perf_counter()
    per_seed = {seed: SeedRun(out / f"seed{seed}", settings, seed, say).run() for seed in args.seeds}
    wall_s = time.perf_counter() - started
    summary = summarize(per_seed)
    text = render(summary, settings, args.seeds, wall_s)
    _write_json(out / "summary.json", {"settings": dataclasses.asdict(settings), "preset": args.preset,
                                       "seeds": list(args.seeds), "rows": [list(r) for r in ROWS],
                                       "wall_s": wall_s, **summary})
    atomic_write_bytes(out / "summary.md", text.encode("utf-8"))
    print(text)
    print(f"summary: {(out / 'summary.md').resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
