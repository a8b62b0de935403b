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

:func:`~attribmap.experiments.evidence_summary.summarize` turns the seeds into mean +- std per
row, the paired difference to CAM with a 95 % t-interval, a per-class table and the Spearman
correlations; :func:`~attribmap.experiments.evidence_summary.render` writes the Markdown
report. Every stage is cached in ``OUT/seed<k>/stages/<stage>.json`` and reruns when its
record is missing, its settings or own options changed, or a stage it reads reran (the
weight-map stages do not read the I2C ones, and the other way round).

``EvidenceSettings.backbone`` picks the networks (:data:`~attribmap.experiments.evidence_settings.BACKBONES`): ``resnet18_narrow`` (the
default, above) or ``efficientnet_lite0`` (issue 19), whose every model starts from the
ImageNet weights (``weights="DEFAULT"``) instead of a pretraining stage: no ``pretrain``
split, no ``pretrain`` stage, DGL's intermediate layer ``_blocks.10``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from attribmap.bench.report import jsonable
from attribmap.experiments.evidence_settings import (BACKBONES, LITE0_I2C_CE, METRICS, PRESETS, REFERENCE, ROWS,
                                                     Backbone, EvidenceSettings, backbone_spec, evidence_rows,
                                                     evidence_settings, scale_epochs)
from attribmap.experiments.evidence_summary import render, summarize
from attribmap.fileio import atomic_write_bytes

__all__ = ["EvidenceSettings", "PRESETS", "ROWS", "REFERENCE", "METRICS", "SeedRun", "summarize", "render",
           "run_evidence", "scale_epochs", "Backbone", "BACKBONES", "LITE0_I2C_CE", "backbone_spec",
           "evidence_rows", "evidence_settings"]


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
    settings : :class:`~attribmap.experiments.evidence_settings.EvidenceSettings`
    seed : int
    say : callable
        Receives one line per stage.
    device : str
        Where training and scoring run (``"cpu"``, ``"cuda"``); not part of any stage's key.
    """

    def __init__(self, root: Path, settings: EvidenceSettings, seed: int, say: Callable[[str], None],
                 device: str = "cpu") -> None:
        self.root, self.settings, self.seed, self.say = Path(root), settings, int(seed), say
        self.device = str(device)
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
        return dict(image_size=s.image_size, batch_size=s.batch_size, seed=self.seed, progress=False,
                    device=self.device)

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
        s, m, b = self.settings, self.models, backbone_spec(self.settings.backbone)
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
        ce_recipe = {"epochs": s.i2c_ce_epochs, "lr": 0.01, **ce_options}
        records["i2c_ce"] = self.stage("i2c_ce", lambda: self._train(
            "i2c", "i2c_ce", arch=b.i2c, lambda_sc=0.0, lambda_gc=0.0, **start, **ce_recipe),
            after=data, options=ce_options)
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
                           input_size=s.image_size, batch_size=s.batch_size, seed=self.seed, per_class=per_class,
                           device=self.device)

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
        mid = backbone_spec(s.backbone).intermediate
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



def run_evidence(out: Path, settings: EvidenceSettings, seeds: Sequence[int], say: Callable[[str], None],
                 command: str = "", device: str = "cpu") -> Tuple[Dict[str, Any], str]:
    """Run every seed (cached) and write ``summary.json`` and ``summary.md`` to ``out``.

    Parameters
    ----------
    out : pathlib.Path
        Working directory (``out/seed<k>`` per seed).
    settings : :class:`~attribmap.experiments.evidence_settings.EvidenceSettings`
        Suite size and budgets shared by every seed.
    seeds : sequence of int
        The seeds.
    say : callable
        Receives progress lines.
    command : str
        The command line, quoted in the report.
    device : str
        Where every stage trains and scores (``"cpu"`` or ``"cuda"``; cached stages are reused
        whatever the device).

    Returns
    -------
    (summary, markdown)
    """
    out = Path(out)
    started = time.perf_counter()
    per_seed = {seed: SeedRun(out / f"seed{seed}", settings, seed, say, device).run() for seed in seeds}
    wall_s = time.perf_counter() - started
    rows_spec = evidence_rows(settings.backbone)
    summary = summarize(per_seed, rows_spec)
    text = render(summary, settings, wall_s, command)
    _write_json(out / "summary.json", {"settings": dataclasses.asdict(settings), "seeds": list(seeds),
                                       "rows": [list(r) for r in rows_spec], "wall_s": wall_s, **summary})
    atomic_write_bytes(out / "summary.md", text.encode("utf-8"))
    return summary, text
