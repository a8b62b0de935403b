"""The end-to-end demo on the synthetic suite (``attribmap demo``, ``make demo``).

Stages, each cached in the output directory (skipped when its output exists and was made
with the same settings, recorded in ``OUT/demo_state.json``):

1. ``suite``: generate the synthetic WSOL suite (``OUT/suite``);
2. ``classifier``: train the small CAM classifier (``OUT/models/classifier.pt``);
3. ``i2c``: train an I2C classifier (``OUT/models/i2c.pt``);
4. ``weightmap``: train the weight-map generator, method I, against the classifier
   (``OUT/models/weightmap.pt``);
5. ``bench``: score cam, gradcam, gradcampp, dgl, dgl-psb, dgl-cem, one captum method,
   i2c and weightmap on the test split (``OUT/report``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from attribmap.errors import AttribmapError

__all__ = ["DemoSettings", "PRESETS", "run_demo", "DemoResult"]


@dataclass(frozen=True)
class DemoSettings:
    """Sizes and budgets of the demo.

    Attributes
    ----------
    classes, per_class, test_per_class, scene_size, suite_seed
        The synthetic suite (``attribmap synth``): classes, training / test images per class,
        nominal image side, generator seed.
    image_size : int
        Side of the training crops and of the benchmark input (a multiple of 32).
    classifier_epochs, i2c_epochs, weightmap_epochs : int
        Training budgets.
    i2c_lr : float
        I2C learning rate.
    i2c_grad_clip : float or None
        Optional gradient-norm clip of the I2C training (off by default).
    batch_size : int
        Training and benchmark batch size (even, for I2C pairs).
    captum_method : str
        The captum extractor scored next to the built-in ones.
    delta : float
        Threshold step of the official protocol.
    seed : int
        Training seed.
    """

    classes: int = 4
    per_class: int = 120
    test_per_class: int = 25
    scene_size: int = 96
    suite_seed: int = 0
    image_size: int = 64
    classifier_epochs: int = 10
    i2c_epochs: int = 10
    i2c_lr: float = 0.01
    i2c_grad_clip: Optional[float] = None
    weightmap_epochs: int = 6
    batch_size: int = 16
    captum_method: str = "captum:Saliency"
    delta: float = 0.001
    seed: int = 0

    def key(self, *fields: str) -> str:
        """Short hash of the named fields (all when none are named)."""
        values = dataclasses.asdict(self)
        chosen = {name: values[name] for name in (fields or sorted(values))}
        return hashlib.sha256(json.dumps(chosen, sort_keys=True).encode("utf-8")).hexdigest()[:16]


#: ``full``: ``attribmap demo``; ``fast``: ``attribmap demo --fast``; ``tiny``: the test suite's.
PRESETS: Dict[str, DemoSettings] = {
    "full": DemoSettings(),
    "fast": DemoSettings(per_class=40, test_per_class=15, classifier_epochs=4, i2c_epochs=4,
                         weightmap_epochs=2, delta=0.01),
    "tiny": DemoSettings(classes=2, per_class=4, test_per_class=3, scene_size=48, image_size=32,
                         classifier_epochs=1, i2c_epochs=1, weightmap_epochs=1, batch_size=4, delta=0.01),
}

_SUITE_FIELDS = ("classes", "per_class", "test_per_class", "scene_size", "suite_seed")


@dataclass
class DemoResult:
    """What :func:`run_demo` produced: the results, the report path, per-stage seconds and skips."""

    results: Dict[str, Any]
    report: Path
    seconds: Dict[str, float]
    skipped: Dict[str, bool]


def _load_state(path: Path) -> Dict[str, str]:
    if not path.is_file():
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            state = json.load(handle)
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _save_state(path: Path, state: Dict[str, str]) -> None:
    from attribmap.fileio import atomic_write_bytes

    atomic_write_bytes(path, (json.dumps(state, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def run_demo(out_dir: os.PathLike | str = "demo_out", settings: Optional[DemoSettings] = None,
             progress: Optional[bool] = None, log: Optional[Callable[[str], None]] = None) -> DemoResult:
    """Run (or reuse) every stage of the demo and return the benchmark results.

    Parameters
    ----------
    out_dir : path
        Working and cache directory.
    settings : DemoSettings, optional
        Default ``PRESETS["full"]``.
    progress : bool, optional
        Progress bars (default: when stderr is a terminal).
    log : callable, optional
        Receives one line per stage.
    """
    from attribmap.bench import BenchConfig, run_benchmark
    from attribmap.report import load_results

    settings = settings or PRESETS["full"]
    if settings.image_size % 32:
        raise AttribmapError(f"image_size must be a multiple of 32 (weight-map generator); got {settings.image_size}")
    if settings.batch_size % 2:
        raise AttribmapError(f"batch_size must be even (I2C pairs); got {settings.batch_size}")
    say = log or (lambda line: None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state_file = out_dir / "demo_state.json"
    state = _load_state(state_file)
    suite = out_dir / "suite"
    models = out_dir / "models"
    report = out_dir / "report"
    common = dict(epochs=1, batch_size=settings.batch_size, image_size=settings.image_size, seed=settings.seed,
                  progress=progress, log=log)
    keys = {
        "suite": settings.key(*_SUITE_FIELDS),
        "classifier": settings.key(*_SUITE_FIELDS, "image_size", "classifier_epochs", "batch_size", "seed"),
        "i2c": settings.key(*_SUITE_FIELDS, "image_size", "i2c_epochs", "i2c_lr", "i2c_grad_clip", "batch_size",
                            "seed"),
    }
    keys["weightmap"] = settings.key(*_SUITE_FIELDS, "image_size", "classifier_epochs", "weightmap_epochs",
                                     "batch_size", "seed")
    keys["bench"] = settings.key()

    def train_classifier_stage() -> None:
        from attribmap.train import train_classifier

        train_classifier(suite, models / "classifier.pt", **{**common, "epochs": settings.classifier_epochs})

    def train_i2c_stage() -> None:
        from attribmap.train import train_i2c

        train_i2c(suite, models / "i2c.pt", lr=settings.i2c_lr, grad_clip=settings.i2c_grad_clip,
                  **{**common, "epochs": settings.i2c_epochs})

    def train_weightmap_stage() -> None:
        from attribmap.train import train_weightmap

        train_weightmap(suite, models / "weightmap.pt", classifier=models / "classifier.pt", method=1,
                        **{**common, "epochs": settings.weightmap_epochs})

    def generate_suite_stage() -> None:
        from attribmap.data.synthetic import generate_suite

        generate_suite(suite, classes=settings.classes, per_class=settings.per_class, size=settings.scene_size,
                       seed=settings.suite_seed, val_per_class=0, test_per_class=settings.test_per_class,
                       overwrite=True)

    def bench_stage() -> None:
        config = BenchConfig(
            data=str(suite), split="test", checkpoint=str(models / "classifier.pt"),
            methods=("cam", "gradcam", "gradcampp", "dgl", "dgl-psb", "dgl-cem", settings.captum_method),
            i2c=str(models / "i2c.pt"), weightmap=str(models / "weightmap.pt"), delta=settings.delta,
            input_size=settings.image_size, batch_size=settings.batch_size, seed=settings.seed)
        run_benchmark(config, report, progress=progress, log=say)

    stages = (
        ("suite", suite / "suite.json", generate_suite_stage),
        ("classifier", models / "classifier.pt", train_classifier_stage),
        ("i2c", models / "i2c.pt", train_i2c_stage),
        ("weightmap", models / "weightmap.pt", train_weightmap_stage),
        ("bench", report / "results.json", bench_stage),
    )
    seconds: Dict[str, float] = {}
    skipped: Dict[str, bool] = {}
    stale = False
    for name, output, action in stages:
        # a stage reruns when its settings changed, its output is missing, or an earlier stage reran
        fresh = output.exists() and state.get(name) == keys[name] and not stale
        skipped[name] = fresh
        if fresh:
            say(f"[demo] {name}: cached ({output})")
            seconds[name] = 0.0
            continue
        stale = True
        state.pop(name, None)
        _save_state(state_file, state)
        say(f"[demo] {name}: running")
        started = time.perf_counter()
        action()
        seconds[name] = time.perf_counter() - started
        state[name] = keys[name]
        _save_state(state_file, state)
        say(f"[demo] {name}: done in {seconds[name]:.1f} s")
    return DemoResult(load_results(report), report / "results.md", seconds, skipped)
