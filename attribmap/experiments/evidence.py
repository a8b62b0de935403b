"""Evidence for the seed methods on the synthetic suite v2 (``benchmarks/learned_vs_cam.py``).

Does each seed method beat CAM in the direction its paper claims, with an interval that
excludes zero? For every seed ``k`` (the suite generator and every training run use ``k``):

1. ``suite``: a version-2 suite (bodies with weak class evidence, discriminative parts) with a
   ``pretrain`` split, the stand-in for ImageNet pretraining;
2. ``pretrain``: a CE classifier on the pretrain split; its weights initialise every network
   below, as the papers start from ImageNet weights;
3. ``classifier``: the CE classifier (GAP -> linear) fine-tuned on the train split: CAM,
   Grad-CAM, DGL (last layer and ``layer3``, with and without multi-scale / closing) read it,
   and the weight map's method I is trained against it;
4. ``i2c_ce`` -> ``i2c`` / ``i2c_ablation``: I2C as its authors ran it, a converged CE model of
   the I2C architecture fine-tuned with SC + GC (lr 0.001, head dropout 0.5, first-K seeds),
   and the same fine-tune with CE only (lambda1 = lambda2 = 0), the ablation;
5. ``weightmap1``; ``embedding`` -> ``weightmap2``: the weight-map generator, method I
   against the classifier and method II against a Siamese embedding; the encoder starts from
   the pretrain classifier; every label-free stopping evaluation is saved;
6. ``bench``: the official protocol on the test split for every extractor, the reference rows
   (computed from ground truth) and the blank-image entropy of each classifier;
7. ``curves``: every saved weight-map evaluation scored on the test split (for the Spearman
   correlation of each stopping-score variant with test MaxBoxAccV2; never used to select).

:func:`summarize` turns the seeds into mean +- std per row, the paired difference to CAM with
a 95 % t-interval, a per-class table and the Spearman correlations; :func:`render` writes the
Markdown report. Every stage is cached in ``OUT/seed<k>/stages/<stage>.json`` and reruns when
its record is missing or the settings changed.

``EvidenceSettings.backbone`` picks the networks (:data:`BACKBONES`): ``resnet18_narrow`` (the
default, above) or ``efficientnet_lite0`` (issue 19), whose every model starts from the
ImageNet weights (``weights="DEFAULT"``) instead of a pretraining stage: no ``pretrain``
split, no ``pretrain`` stage, DGL's intermediate layer ``_blocks.10``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from attribmap.bench.report import jsonable, mean_std
from attribmap.experiments.statistics import paired_difference, spearman
from attribmap.fileio import atomic_write_bytes

__all__ = ["EvidenceSettings", "PRESETS", "ROWS", "REFERENCE", "SeedRun", "summarize", "render", "run_evidence",
           "scale_epochs", "Backbone", "BACKBONES", "evidence_rows", "evidence_settings"]

#: Metrics copied from each benchmark (official protocol, GT-known maps).
METRICS = ("MaxBoxAccV2", "PxAP", "MaxBoxAcc", "Top1Loc")

#: Table rows: (label in the benchmark results, what it is, the paper's claim vs CAM).
ROWS: Tuple[Tuple[str, str, str], ...] = (
    ("cam", "CAM of the CE classifier (layer4)", "baseline"),
    ("gradcam", "Grad-CAM, layer4", ""),
    ("gradcampp", "Grad-CAM++, layer4", ""),
    ("dgl", "DGL fused, layer4 (equals CAM up to scale on a GAP -> linear head)", ""),
    ("dgl@layer3", "DGL fused, layer3", "DGL: > CAM"),
    ("dgl-psb@layer3", "DGL pixel-level selection branch, layer3", ""),
    ("dgl-cem@layer3", "DGL class-aware enhanced map branch, layer3", ""),
    ("dgl@layer3+MS", "DGL fused, layer3, multi-scale", "DGL: > CAM"),
    ("dgl@layer3+MS+MC", "DGL fused, layer3, multi-scale + closing", "DGL: > CAM"),
    ("i2c", "I2C class maps, SC + GC fine-tune of the CE model", "I2C: > CAM and > ablation"),
    ("i2c-ablation", "I2C architecture, the same fine-tune with CE only", ""),
    ("i2c-ce", "I2C architecture after the CE stage (before fine-tuning)", ""),
    ("weightmap-I", "weight map, method I (classifier), stopping-score selected", "weight map: > CAM"),
    ("weightmap-II", "weight map, method II (Siamese), stopping-score selected", "weight map: > CAM"),
)
#: Reference rows from ground truth (attribmap.data.synthetic.reference).
REFERENCE = ("object", "parts", "body", "centre", "pooled")


@dataclass(frozen=True)
class Backbone:
    """The networks of one evidence backbone.

    Attributes
    ----------
    classifier, i2c, weightmap, embedding : str
        Arch names of the CE classifier, the I2C classifier, the generator and the Siamese
        embedding.
    cam_layer, intermediate : str
        The classifier's CAM layer and DGL's intermediate layer (the ``layer3`` rows).
    weights : str, optional
        None: every model starts from a classifier trained on the suite's ``pretrain`` split
        (the ``pretrain`` stage); ``"DEFAULT"``: from the ImageNet weights (no pretrain stage).
    i2c_ce_options : mapping
        Recipe options of the I2C CE stage beyond the shared ones (its learning rate is 0.01
        unless given here); they enter that stage's cache key.
    """

    classifier: str
    i2c: str
    weightmap: str
    embedding: str
    cam_layer: str
    intermediate: str
    weights: Optional[str] = None
    i2c_ce_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)


#: Recipe options of the Lite0 I2C CE stage (see docs/learned.rst, "I2C on the ImageNet backbone").
LITE0_I2C_CE: Dict[str, Any] = {"optimizer": "adam", "lr": 1e-4, "head_lr_mult": 10.0}

#: Backbone name -> its networks (``benchmarks/learned_vs_cam.py --backbone``).
BACKBONES: Dict[str, Backbone] = {
    "resnet18_narrow": Backbone("resnet18_narrow", "resnet18_narrow_i2c", "weightmap_resnet18_narrow",
                                "siamese_resnet18_narrow", "layer4", "layer3"),
    "efficientnet_lite0": Backbone("efficientnet_lite0_wsol", "efficientnet_lite0_i2c",
                                   "weightmap_efficientnet_lite0", "siamese_efficientnet_lite0", "_head_act",
                                   "_blocks.10", weights="DEFAULT",
                                   i2c_ce_options=LITE0_I2C_CE),
}


def evidence_rows(backbone: str = "resnet18_narrow") -> Tuple[Tuple[str, str, str], ...]:
    """:data:`ROWS` with the layer names of ``backbone`` (``layer3`` -> its intermediate layer,
    ``layer4`` -> its CAM layer)."""
    spec = _backbone(backbone)
    return tuple((label.replace("layer3", spec.intermediate),
                  text.replace("layer3", spec.intermediate).replace("layer4", spec.cam_layer), claim)
                 for label, text, claim in ROWS)


def _backbone(name: str) -> Backbone:
    if name not in BACKBONES:
        raise ValueError(f"unknown evidence backbone {name!r}: expected one of {sorted(BACKBONES)}")
    return BACKBONES[name]


@dataclass(frozen=True)
class EvidenceSettings:
    """Suite size and training budgets shared by every seed.

    Attributes
    ----------
    classes, per_class, pretrain_per_class, test_per_class, scene_size
        The version-2 suite (images per class of each split, nominal side).
    image_size : int
        Training crop and benchmark input side (128: an 8 x 8 CAM layer).
    batch_size : int
        Even (I2C pairs).
    pretrain_epochs, classifier_epochs, i2c_ce_epochs, finetune_epochs, weightmap_epochs,
    embedding_epochs : int
        Budgets of the stages.
    evaluations_per_epoch : int
        Label-free stopping evaluations of the weight-map generators per epoch.
    ms_scales : tuple of float
        Input scales of DGL's multi-scale test (MS).
    close : int
        Disk radius (input pixels) of DGL's morphological closing (MC).
    delta, curve_delta : float
        Threshold step of the final table and of the per-evaluation weight-map scores.
    backbone : str
        A key of :data:`BACKBONES`; with ImageNet weights the ``pretrain_*`` fields are unused
        (keep ``pretrain_per_class`` 0: no pretrain split is generated).
    """

    classes: int = 8
    per_class: int = 80
    pretrain_per_class: int = 80
    test_per_class: int = 25
    scene_size: int = 128
    image_size: int = 128
    batch_size: int = 16
    pretrain_epochs: int = 10
    classifier_epochs: int = 6
    i2c_ce_epochs: int = 6
    finetune_epochs: int = 4
    weightmap_epochs: int = 6
    embedding_epochs: int = 6
    evaluations_per_epoch: int = 2
    ms_scales: Tuple[float, ...] = (0.75, 1.0, 1.25)
    close: int = 4
    delta: float = 0.001
    curve_delta: float = 0.01
    backbone: str = "resnet18_narrow"

    def __post_init__(self) -> None:
        _backbone(self.backbone)

    def key(self, seed: int, *fields: str) -> str:
        """Short hash of the named ``*fields`` (all when none) and the ``seed``.

        ``backbone`` enters only when it is not the default, so the records of runs written
        before the field existed stay current.
        """
        values = dataclasses.asdict(self)
        if values["backbone"] == "resnet18_narrow":
            del values["backbone"]
        chosen = {name: values[name] for name in (fields or sorted(values))}
        text = json.dumps({**chosen, "seed": seed}, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


PRESETS: Dict[str, EvidenceSettings] = {
    "full": EvidenceSettings(),
    "small": EvidenceSettings(classes=2, per_class=6, pretrain_per_class=6, test_per_class=3, scene_size=64,
                              image_size=64, batch_size=4, pretrain_epochs=1, classifier_epochs=1, i2c_ce_epochs=1,
                              finetune_epochs=1, weightmap_epochs=1, embedding_epochs=1, evaluations_per_epoch=2,
                              close=2, delta=0.01, curve_delta=0.05),
}

#: Budgets of the efficientnet_lite0 backbone (``--backbone efficientnet_lite0``), per preset:
#: ImageNet weights, no pretrain split. ``full``: 60 training images per class (80 for the
#: narrow ResNet), the same 25 test images, about half the epochs, so that one seed takes at
#: most about 45 minutes on the project's loaded 2-core machine (docs/learned.rst gives the
#: step times this rests on).
_LITE0_PRESETS: Dict[str, Dict[str, Any]] = {
    "full": dict(per_class=60, pretrain_per_class=0, pretrain_epochs=0, classifier_epochs=3, i2c_ce_epochs=3,
                 finetune_epochs=2, weightmap_epochs=2, embedding_epochs=2, evaluations_per_epoch=2),
    "small": dict(pretrain_per_class=0, pretrain_epochs=0),
}


def evidence_settings(preset: str = "full", backbone: str = "resnet18_narrow") -> EvidenceSettings:
    """The settings of ``preset`` (a key of :data:`PRESETS`) for ``backbone`` (a key of :data:`BACKBONES`).

    ``resnet18_narrow`` gets :data:`PRESETS` unchanged; ``efficientnet_lite0`` its own budgets
    (no pretrain split or stage).

    Raises
    ------
    ValueError
        Unknown preset or backbone (the message lists the choices).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown evidence preset {preset!r}: expected one of {sorted(PRESETS)}")
    _backbone(backbone)
    if backbone == "resnet18_narrow":
        return PRESETS[preset]
    return dataclasses.replace(PRESETS[preset], backbone=backbone, **_LITE0_PRESETS[preset])


def scale_epochs(settings: EvidenceSettings, factor: int) -> EvidenceSettings:
    """``settings`` with every stage's epochs (``*_epochs``) multiplied by ``factor`` (an int >= 1).

    Raises
    ------
    ValueError
        ``factor`` is not an integer >= 1.
    """
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise ValueError(f"epoch factor must be an integer >= 1, got {factor!r}")
    fields = {f.name: getattr(settings, f.name) * factor for f in dataclasses.fields(settings)
              if f.name.endswith("_epochs")}
    return dataclasses.replace(settings, **fields)


#: The settings each stage depends on (a change reruns that stage and the later ones).
_SUITE = ("classes", "per_class", "pretrain_per_class", "test_per_class", "scene_size")


def _write_json(path: Path, payload: Any) -> None:
    text = json.dumps(jsonable(payload), indent=2, allow_nan=False)
    atomic_write_bytes(path, (text + "\n").encode("utf-8"))


def _metrics(entry: Mapping[str, Any]) -> Dict[str, Optional[float]]:
    return {m: (float(entry[m]) if entry.get(m) is not None else None) for m in METRICS}


class SeedRun:
    """The stages of one seed in ``root`` (``suite/``, ``models/``, ``bench/``, ``stages/``).

    Parameters
    ----------
    root : Path
        Working directory of this seed.
    settings : EvidenceSettings
    seed : int
    say : callable
        Receives one line per stage.
    """

    def __init__(self, root: Path, settings: EvidenceSettings, seed: int, say: Callable[[str], None]) -> None:
        self.root, self.settings, self.seed, self.say = Path(root), settings, int(seed), say
        self.suite, self.models, self.reports = self.root / "suite", self.root / "models", self.root / "bench"
        self._reran: set = set()

    def stage(self, name: str, action: Callable[[], Dict[str, Any]], after: Sequence[str] = (),
              options: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """Run ``action`` (returning a JSON-able record) unless the cached record of stage ``name`` is current.

        A stage reruns when its record is missing, its key changed (the settings, the seed and
        its own ``options``: values that are not settings, such as a backbone's learning-rate
        factor), or a stage it reads (``after``) reran in this process. Stages that do not
        read each other keep their records when one of them changes.
        """
        record_path = self.root / "stages" / f"{name}.json"
        key = self.settings.key(self.seed)
        if options:
            text = json.dumps({"settings": key, **options}, sort_keys=True)
            key = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        if record_path.is_file() and not self._reran.intersection(after):
            with open(record_path, encoding="utf-8") as handle:
                record = json.load(handle)
            if record.get("key") == key:
                self.say(f"[seed {self.seed}] {name}: cached")
                return record
        self._reran.add(name)
        self.say(f"[seed {self.seed}] {name}: running")
        started = time.perf_counter()
        record = {"key": key, **action()}
        record["seconds"] = time.perf_counter() - started
        _write_json(record_path, record)
        self.say(f"[seed {self.seed}] {name}: done in {record['seconds']:.1f} s")
        return record

    # -- stages --------------------------------------------------------------------------
    def _common(self) -> Dict[str, Any]:
        s = self.settings
        return dict(image_size=s.image_size, batch_size=s.batch_size, seed=self.seed, progress=False)

    def _suite(self) -> Dict[str, Any]:
        from attribmap.data.synthetic import generate_suite

        s = self.settings
        summary = generate_suite(self.suite, classes=s.classes, per_class=s.per_class, size=s.scene_size,
                                 seed=self.seed, val_per_class=0, test_per_class=s.test_per_class,
                                 pretrain_per_class=s.pretrain_per_class, overwrite=True, version=2)
        return {"splits": summary.get("splits", {})}

    def _train(self, task: str, name: str, **options: Any) -> Dict[str, Any]:
        from attribmap.train.recipe import recipe_class
        from attribmap.train.runner import train_with

        path, history = train_with(recipe_class(task), self.suite, self.models / f"{name}.pt",
                                   dict(**self._common(), **options))
        last = history["epochs"][-1] if history.get("epochs") else {}
        return {"checkpoint": str(path), "best_epoch": history.get("best_epoch"),
                "best_step": history.get("best_step"), "best_score": history.get("best_score"),
                "last_epoch": {k: v for k, v in last.items() if isinstance(v, (int, float))},
                "evaluations": history.get("evaluations", [])}

    def run(self) -> Dict[str, Dict[str, Any]]:
        """Run (or reuse) every stage; returns the stage records.

        Every model starts from the ``pretrain`` stage's classifier (``init``), or, for a
        backbone with ImageNet weights, from those (``weights``; no pretrain stage).
        """
        s, m, b = self.settings, self.models, _backbone(self.settings.backbone)
        records: Dict[str, Dict[str, Any]] = {}
        records["suite"] = self.stage("suite", self._suite)
        data = ("suite",)
        if b.weights is None:
            records["pretrain"] = self.stage("pretrain", lambda: self._train(
                "classifier", "pretrain", arch=b.classifier, split="pretrain", epochs=s.pretrain_epochs),
                after=data)
            start: Dict[str, Any] = {"init": str(m / "pretrain.pt")}
            data = ("suite", "pretrain")
        else:
            start = {"weights": b.weights}
        records["classifier"] = self.stage("classifier", lambda: self._train(
            "classifier", "classifier", arch=b.classifier, epochs=s.classifier_epochs, **start), after=data)
        records["weightmap1"] = self.stage("weightmap1", lambda: self._train(
            "weightmap", "weightmap1", arch=b.weightmap, method=1, classifier=str(m / "classifier.pt"),
            epochs=s.weightmap_epochs, evaluations_per_epoch=s.evaluations_per_epoch, save_evaluations=True,
            **start), after=data + ("classifier",))
        records["embedding"] = self.stage("embedding", lambda: self._train(
            "embedding", "embedding", arch=b.embedding, epochs=s.embedding_epochs, **start), after=data)
        records["weightmap2"] = self.stage("weightmap2", lambda: self._train(
            "weightmap", "weightmap2", arch=b.weightmap, method=2, classifier=str(m / "embedding.pt"),
            epochs=s.weightmap_epochs, evaluations_per_epoch=s.evaluations_per_epoch, save_evaluations=True,
            **start), after=data + ("embedding",))
        ce_options = dict(b.i2c_ce_options)
        ce_recipe = {"lr": 0.01, **ce_options}
        records["i2c_ce"] = self.stage("i2c_ce", lambda: self._train(
            "i2c", "i2c_ce", arch=b.i2c, epochs=s.i2c_ce_epochs, lambda_sc=0.0, lambda_gc=0.0, **start,
            **ce_recipe), after=data, options=ce_options)
        ce = str(m / "i2c_ce.pt")
        records["i2c"] = self.stage("i2c", lambda: self._train("i2c", "i2c", arch=b.i2c, init=ce,
                                                                epochs=s.finetune_epochs), after=("i2c_ce",))
        records["i2c_ablation"] = self.stage("i2c_ablation", lambda: self._train(
            "i2c", "i2c_ablation", arch=b.i2c, init=ce, epochs=s.finetune_epochs, lambda_sc=0.0, lambda_gc=0.0),
            after=("i2c_ce",))
        trained = data + ("classifier", "weightmap1", "embedding", "weightmap2", "i2c_ce", "i2c", "i2c_ablation")
        records["bench"] = self.stage("bench", self._bench, after=trained)
        records["curves"] = self.stage("curves", self._curves, after=data + ("classifier", "weightmap1",
                                                                               "embedding", "weightmap2"))
        return records

    def _bench_config(self, methods: Sequence[str], extractors: Sequence[str], delta: float,
                      per_class: bool = False):
        from attribmap.bench import BenchConfig

        s = self.settings
        return BenchConfig(data=str(self.suite), split="test", checkpoint=str(self.models / "classifier.pt"),
                           methods=tuple(methods), extractors=tuple(extractors), delta=delta,
                           input_size=s.image_size, batch_size=s.batch_size, seed=self.seed, per_class=per_class)

    def _run_bench(self, out: Path, config, figures: bool) -> Dict[str, Any]:
        from attribmap.bench import run_benchmark

        if out.exists():
            shutil.rmtree(out)
        return run_benchmark(config, out, progress=False, write_figures=figures, grid_images=6 if figures else 0)

    def _bench(self) -> Dict[str, Any]:
        from attribmap.data.synthetic import score_reference_rows
        from attribmap.models import blank_entropy
        from attribmap.models.checkpoint import load_model

        s, m = self.settings, self.models
        mid = _backbone(s.backbone).intermediate
        scales = "(" + ",".join(f"{v:g}" for v in s.ms_scales) + ")"
        methods = ["cam", "gradcam", "gradcampp", "dgl", f"dgl@{mid}", f"dgl-psb@{mid}", f"dgl-cem@{mid}",
                   f"dgl@{mid}:scales={scales}:label=dgl@{mid}+MS",
                   f"dgl@{mid}:scales={scales}:close={s.close}:label=dgl@{mid}+MS+MC"]
        extractors = [f"i2c={m / 'i2c.pt'}", f"i2c={m / 'i2c_ablation.pt'}:label=i2c-ablation",
                      f"i2c={m / 'i2c_ce.pt'}:label=i2c-ce", f"weightmap={m / 'weightmap1.pt'}:label=weightmap-I",
                      f"weightmap={m / 'weightmap2.pt'}:label=weightmap-II"]
        results = self._run_bench(self.reports / "main", self._bench_config(methods, extractors, s.delta, True),
                                  figures=True)
        rows = {name: _metrics(entry) for name, entry in results["extractors"].items()}
        per_class = {name: entry.get("per_class") for name, entry in results["extractors"].items()
                     if entry.get("per_class")}
        section = results.get("suite_check") or {}
        reference = section.get("rows") or score_reference_rows(self.suite, "test", grid=s.image_size // 16,
                                                                 delta=s.delta)
        rows.update({f"ref:{name}": _metrics(reference[name]) for name in REFERENCE})
        blank = {name: blank_entropy(load_model(m / f"{name}.pt"), s.image_size, normalized=True)
                 for name in ("classifier", "i2c", "i2c_ablation")}
        top1 = {name: entry.get("ClassifierTop1") for name, entry in results["extractors"].items()}
        return {"rows": rows, "per_class": per_class, "blank_entropy": blank, "classifier_top1": top1,
                "suite_check": section.get("lines"), "report": str(self.reports / "main")}

    def _curves(self) -> Dict[str, Any]:
        """Every saved weight-map evaluation scored on the test split (analysis only)."""
        from attribmap.train import evaluation_dir

        s = self.settings
        points: List[Dict[str, Any]] = []
        for method in (1, 2):
            index_path = evaluation_dir(self.models / f"weightmap{method}.pt") / "index.json"
            with open(index_path, encoding="utf-8") as handle:
                entries = json.load(handle)
            with open(self.root / "stages" / f"weightmap{method}.json", encoding="utf-8") as handle:
                kept = json.load(handle)
            for number, entry in enumerate(entries):
                path = Path(entry["file"])
                if not path.is_absolute():
                    path = index_path.parent / path
                config = self._bench_config((), (f"weightmap={path}",), s.curve_delta)
                results = self._run_bench(self.reports / f"curve{method}", config, figures=False)
                test = _metrics(results["extractors"]["weightmap"])
                points.append({"method": method, "evaluation": number,
                               **{k: entry.get(k) for k in ("epoch", "step", "S_paper", "S_robust", "floor",
                                                            "above")},
                               "selected": (entry.get("epoch"), entry.get("step")) == (kept.get("best_epoch"),
                                                                                      kept.get("best_step")),
                               "test": test})
        return {"points": points}


def summarize(per_seed: Mapping[int, Mapping[str, Mapping[str, Any]]],
              rows_spec: Sequence[Tuple[str, str, str]] = ROWS) -> Dict[str, Any]:
    """Rows -> metric -> mean/std/n; paired differences to CAM; per class; Spearman.

    Parameters
    ----------
    per_seed : mapping seed -> stage records (as :meth:`SeedRun.run` returns them)
    rows_spec : sequence of (label, text, claim)
        The table rows (:func:`evidence_rows` of the run's backbone).

    Returns
    -------
    dict
        ``table``, ``differences`` (row -> metric -> :func:`paired_difference` vs ``cam``),
        ``i2c_vs_ablation``, ``per_class``, ``spearman`` (variant -> metric -> pooled over
        every evaluation of every seed and method), ``blank_entropy``, ``per_seed``,
        ``seconds``.
    """
    seeds = sorted(per_seed)
    rows = [r for r, _, _ in rows_spec] + [f"ref:{name}" for name in REFERENCE]
    value = lambda k, row, metric: per_seed[k]["bench"]["rows"].get(row, {}).get(metric)  # noqa: E731
    table = {row: {metric: mean_std([value(k, row, metric) for k in seeds]) for metric in METRICS} for row in rows}
    differences = {row: {metric: paired_difference([value(k, row, metric) for k in seeds],
                                                   [value(k, "cam", metric) for k in seeds])
                         for metric in ("MaxBoxAccV2", "PxAP")} for row in rows if row != "cam"}
    i2c_vs_ablation = {metric: paired_difference([value(k, "i2c", metric) for k in seeds],
                                                 [value(k, "i2c-ablation", metric) for k in seeds])
                       for metric in ("MaxBoxAccV2", "PxAP")}
    per_class: Dict[str, Dict[str, Dict[str, float]]] = {}
    for k in seeds:
        for row, classes in (per_seed[k]["bench"].get("per_class") or {}).items():
            for label, metrics in (classes or {}).items():
                per_class.setdefault(row, {}).setdefault(str(label), {}).setdefault("values", []).append(
                    metrics.get("MaxBoxAccV2"))
    per_class_table = {row: {label: mean_std(entry["values"]) for label, entry in sorted(classes.items())}
                       for row, classes in per_class.items()}
    points = [p for k in seeds for p in per_seed[k].get("curves", {}).get("points", [])]
    correlations = {variant: {metric: spearman([p.get(variant) for p in points],
                                               [p["test"].get(metric) for p in points])
                              for metric in ("MaxBoxAccV2", "PxAP")}
                    for variant in ("S_paper", "S_robust")}
    blank = {name: mean_std([per_seed[k]["bench"]["blank_entropy"].get(name) for k in seeds])
             for name in ("classifier", "i2c", "i2c_ablation")}
    seconds = {str(k): {name: rec.get("seconds") for name, rec in per_seed[k].items()} for k in seeds}
    checks = {str(k): per_seed[k]["bench"].get("suite_check") or [] for k in seeds}
    return {"seeds": seeds, "suite_checks": checks, "table": table, "differences": differences,
            "i2c_vs_ablation": i2c_vs_ablation,
            "per_class": per_class_table, "spearman": correlations, "curve_points": len(points),
            "blank_entropy": blank, "per_seed": {str(k): per_seed[k]["bench"]["rows"] for k in seeds},
            "seconds": seconds}


def _cell(value: Mapping[str, float]) -> str:
    return "-" if not math.isfinite(value["mean"]) else f"{value['mean']:.1f} +- {value['std']:.1f}"


def _interval(diff: Mapping[str, float]) -> str:
    if not math.isfinite(diff["mean"]):
        return "-"
    if not math.isfinite(diff["low"]):
        return f"{diff['mean']:+.1f}"
    mark = " *" if diff["excludes_zero"] else ""
    return f"{diff['mean']:+.1f} [{diff['low']:+.1f}, {diff['high']:+.1f}]{mark}"


def render(summary: Mapping[str, Any], settings: EvidenceSettings, wall_s: float, command: str = "") -> str:
    """The Markdown report of the evidence run.

    Main table with paired differences, reference rows, per class, Spearman correlations of
    the stopping scores, blank-image entropy, times.

    Parameters
    ----------
    summary : mapping
        From :func:`summarize`.
    settings : EvidenceSettings
        Suite size and budgets (named in the header).
    wall_s : float
        Wall time of the run.
    command : str
        The command line that produced it (quoted in the report).
    """
    seeds = summary["seeds"]
    s = settings
    rows_spec = evidence_rows(s.backbone)
    start = (f"{s.pretrain_per_class} pretrain / " if _backbone(s.backbone).weights is None else "")
    lines = [f"Synthetic WSOL suite v2: {s.classes} classes, {s.per_class} train / {start}"
             f"{s.test_per_class} test images per class, input {s.image_size} px; official protocol (delta "
             f"{s.delta}), test split, GT-known maps; mean +- std over seeds {', '.join(map(str, seeds))}; "
             "difference to CAM: mean paired difference over seeds with its 95 % t-interval "
             "(* = the interval excludes zero).", ""]
    if s.backbone != "resnet18_narrow":
        lines[0:0] = [f"Backbone {s.backbone}: every model starts from its ImageNet weights (no pretraining "
                      "stage).", ""]
    if command:
        totals = [sum(v for v in stages.values() if v is not None) for stages in summary["seconds"].values()]
        stage_time = (f"; the stages' own wall times add up to {sum(totals) / 60:.0f} min "
                      f"({min(totals) / 60:.0f}-{max(totals) / 60:.0f} min per seed)") if totals else ""
        lines += [f"Command: `{command}`; wall time of this call {wall_s / 60:.0f} min (cached stages are "
                  f"not rerun){stage_time}.", ""]
    lines += ["| extractor | MaxBoxAccV2 | PxAP | MaxBoxAcc | Top1Loc | V2 - CAM | PxAP - CAM | claim |",
              "|---|---:|---:|---:|---:|---:|---:|---|"]
    for row, _, claim in rows_spec:
        t = summary["table"][row]
        diff = summary["differences"].get(row)
        cells = [_cell(t[m]) for m in METRICS]
        cells += [_interval(diff["MaxBoxAccV2"]), _interval(diff["PxAP"])] if diff else ["", ""]
        lines.append(f"| {row} | " + " | ".join(cells) + f" | {claim} |")
    lines += ["", "Reference rows (ground truth, the same protocol):", "",
              "| reference | MaxBoxAccV2 | PxAP | MaxBoxAcc |", "|---|---:|---:|---:|"]
    for name in REFERENCE:
        t = summary["table"][f"ref:{name}"]
        lines.append(f"| {name} | {_cell(t['MaxBoxAccV2'])} | {_cell(t['PxAP'])} | {_cell(t['MaxBoxAcc'])} |")
    verdicts = [f"seed {seed}: {lines_[-1]}" for seed, lines_ in summary.get("suite_checks", {}).items() if lines_]
    if verdicts:
        lines += ["", "Suite validity check (reference rows and each seed's CAM): " + "; ".join(verdicts) + "."]
    lines += ["", "I2C vs its CE-only ablation (paired): MaxBoxAccV2 "
              f"{_interval(summary['i2c_vs_ablation']['MaxBoxAccV2'])}, PxAP "
              f"{_interval(summary['i2c_vs_ablation']['PxAP'])}.", ""]
    if summary["per_class"]:
        rows = [r for r, _, _ in rows_spec if r in summary["per_class"]]
        labels = sorted({label for r in rows for label in summary["per_class"][r]}, key=lambda v: int(v))
        lines += ["Per class (MaxBoxAccV2, mean over seeds):", "",
                  "| extractor | " + " | ".join(f"class {c}" for c in labels) + " |",
                  "|---|" + "---:|" * len(labels)]
        for r in rows:
            cells = [summary["per_class"][r].get(c, {"mean": float("nan")}) for c in labels]
            lines.append(f"| {r} | " + " | ".join("-" if not math.isfinite(v["mean"]) else f"{v['mean']:.1f}"
                                                  for v in cells) + " |")
        lines.append("")
    lines += [f"Label-free stopping score vs test localization: Spearman rank correlation over all "
              f"{summary['curve_points']} saved weight-map evaluations (both methods, every seed; test scores "
              f"with delta {s.curve_delta}, used for this analysis only):", "",
              "| stopping score | rho vs MaxBoxAccV2 (p) | rho vs PxAP (p) |", "|---|---:|---:|"]
    for variant, title in (("S_paper", "S as the paper defines it"), ("S_robust", "robust S (floor, margin)")):
        c = summary["spearman"][variant]
        cells = [("-" if not math.isfinite(c[m]["rho"]) else f"{c[m]['rho']:+.2f} ({c[m]['p']:.2g})")
                 for m in ("MaxBoxAccV2", "PxAP")]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    lines += ["", "Entropy of the prediction on a blank (mean-grey) image, as a share of log K (1 = uniform): "
              + ", ".join(f"{n} {_cell(v) if math.isfinite(v['mean']) else '-'}" for n, v in
                          summary["blank_entropy"].items()).replace(" +- ", " +- ") + ".", ""]
    lines.append("Stage wall times (s): " + "; ".join(
        f"seed {seed}: " + ", ".join(f"{n} {v:.0f}" for n, v in stages.items() if v is not None)
        for seed, stages in summary["seconds"].items()))
    return "\n".join(lines) + "\n"


def run_evidence(out: Path, settings: EvidenceSettings, seeds: Sequence[int], say: Callable[[str], None],
                 command: str = "") -> Tuple[Dict[str, Any], str]:
    """Run every seed (cached) and write ``summary.json`` and ``summary.md`` to ``out``.

    Parameters
    ----------
    out : pathlib.Path
        Working directory (``out/seed<k>`` per seed).
    settings : EvidenceSettings
        Suite size and budgets shared by every seed.
    seeds : sequence of int
        The seeds.
    say : callable
        Receives progress lines.
    command : str
        The command line, quoted in the report.

    Returns
    -------
    (summary, markdown)
    """
    out = Path(out)
    started = time.perf_counter()
    per_seed = {seed: SeedRun(out / f"seed{seed}", settings, seed, say).run() for seed in seeds}
    wall_s = time.perf_counter() - started
    rows_spec = evidence_rows(settings.backbone)
    summary = summarize(per_seed, rows_spec)
    text = render(summary, settings, wall_s, command)
    _write_json(out / "summary.json", {"settings": dataclasses.asdict(settings), "seeds": list(seeds),
                                       "rows": [list(r) for r in rows_spec], "wall_s": wall_s, **summary})
    atomic_write_bytes(out / "summary.md", text.encode("utf-8"))
    return summary, text
