"""Check the synthetic WSOL suite end to end: learnable, part-dominated, valid.

``benchmarks/synthetic_suite_check.py`` is the command line over :func:`run_suite_check`:
generate a version-2 suite (no val / pretrain split), train a classifier on it
(:func:`attribmap.train.train_classifier`), score its test accuracy and the maps of a few
methods (raw maps of the ground-truth class from :meth:`attribmap.Explainer.explain_many`,
scored by :func:`attribmap.evaluate.evaluate_maps`), then the suite's reference rows
(:func:`~attribmap.data.synthetic.score_reference_rows`) and the validity check with that CAM
(:func:`~attribmap.data.synthetic.check_suite`). ``body_only`` instead measures how much the
body alone tells: objects without parts and no distractor bodies, so the one body is the
image's only class evidence (the reference rows and the check are then skipped).
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from attribmap.errors import AttribmapError

__all__ = ["SuiteCheckSettings", "scalar_scores", "score_methods", "run_suite_check"]


@dataclass(frozen=True)
class SuiteCheckSettings:
    """The suite, the classifier and the methods of one check.

    Attributes
    ----------
    seed : int
        Suite generator and training seed.
    classes, per_class, test_per_class, size : int
        The suite: classes, train and test images per class, nominal image side.
    image_size : int
        Classifier input side (128 gives ``resnet18_small`` an 8 x 8 CAM layer).
    arch : str
        Classifier architecture.
    epochs, batch_size : int
        Training budget and batch size.
    lr : float
        Base learning rate.
    methods : tuple of str
        Extractors scored on the test split (``"cam"`` feeds the validity check).
    body_only : bool
        Objects without parts and no distractor bodies (no reference rows, no check).
    """

    seed: int = 0
    classes: int = 8
    per_class: int = 100
    test_per_class: int = 25
    size: int = 128
    image_size: int = 128
    arch: str = "resnet18_small"
    epochs: int = 8
    batch_size: int = 16
    lr: float = 0.01
    methods: Tuple[str, ...] = ("cam",)
    body_only: bool = False

    def __post_init__(self) -> None:
        if not self.methods:
            raise AttribmapError("methods must name at least one extractor, got none")
        for name in ("classes", "per_class", "test_per_class", "size", "image_size", "epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise AttribmapError(f"{name} must be >= 1, got {getattr(self, name)!r}")


def scalar_scores(scores: Mapping[str, object]) -> Dict[str, object]:
    """The scalar metrics of an :func:`~attribmap.evaluate.evaluate_maps` result, curves dropped.

    Parameters
    ----------
    scores : mapping
        An ``evaluate_maps`` result (or a reference row's scores).

    Returns
    -------
    dict
        Every int / float entry, and the per-IoU and best-tau mappings with string keys.
    """
    keep: Dict[str, object] = {key: value for key, value in scores.items() if isinstance(value, (int, float))}
    for key in ("MaxBoxAccV2_per_iou", "MaxBoxAcc_per_iou", "best_tau"):
        if key in scores:
            keep[key] = {str(k): v for k, v in scores[key].items()}
    return keep


def score_methods(model: torch.nn.Module, dataset, methods: Sequence[str],
                  batch_size: int = 50) -> Dict[str, object]:
    """Test accuracy and each method's scores (official protocol, delta 0.001).

    Parameters
    ----------
    model : torch.nn.Module
        A classifier with a ``cam_layer`` attribute (attribmap's WSOL models), put in eval mode.
    dataset : WSOLDataset
        The split scored, with the official transform of the model's input size.
    methods : sequence of str
        Extractor names; every map is the raw map of the ground-truth class.
    batch_size : int
        Images per forward pass.

    Returns
    -------
    dict
        ``{"test_accuracy": percent, "<method>": scalar scores, ...}``.
    """
    from torch.utils.data import DataLoader

    import attribmap
    from attribmap.data import collate_wsol
    from attribmap.evaluate import evaluate_maps

    model.eval()
    explainer = attribmap.Explainer(model, layer=model.cam_layer)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_wsol)
    maps: Dict[str, List[torch.Tensor]] = {name: [] for name in methods}
    boxes: list = []
    sizes, masks, ignores, correct = [], [], [], []
    for batch in loader:
        batch_maps, logits = explainer.explain_many(batch["image"], list(methods), target=batch["label"], raw=True,
                                                    return_logits=True)
        correct.append(logits.argmax(1) == batch["label"])
        for name in methods:
            maps[name].append(batch_maps[name].detach())
        boxes += batch["boxes"]
        sizes.append(batch["size"])
        masks += batch["mask"]
        ignores += batch["ignore"]
    hits = torch.cat(correct)
    result: Dict[str, object] = {"test_accuracy": 100.0 * float(hits.float().mean())}
    for name in methods:
        result[name] = scalar_scores(evaluate_maps(torch.cat(maps[name]), boxes=boxes, image_sizes=torch.cat(sizes),
                                                   masks=masks, ignore=ignores, correct=hits))
    return result


def run_suite_check(settings: SuiteCheckSettings, work: Optional[str] = None,
                    log: Optional[Callable[[str], None]] = None) -> Dict[str, object]:
    """Generate the suite, train the classifier, score the methods, the reference rows and the check.

    Parameters
    ----------
    settings : SuiteCheckSettings
        What to generate, train and score.
    work : str, optional
        Work directory for the suite and the checkpoint (overwritten); default a temporary
        directory, removed afterwards.
    log : callable, optional
        Receives the training lines, the reference table and the check.

    Returns
    -------
    dict
        :func:`score_methods`' result, plus ``reference_rows`` and ``check`` (not with
        ``body_only``), ``suite``, ``model`` and ``seconds`` per phase.
    """
    from attribmap.data import WSOLDataset, official_transform
    from attribmap.data.synthetic import SceneConfigV2, check_suite, format_reference_table, generate_suite, \
        score_reference_rows
    from attribmap.models.checkpoint import load_model
    from attribmap.train import train_classifier

    s = settings
    config = SceneConfigV2()
    if s.body_only:
        config = dataclasses.replace(config, parts_per_object=(0, 0), distractor_bodies=(0, 0))
    with tempfile.TemporaryDirectory() as scratch:
        root = work or scratch
        suite = os.path.join(root, "suite")
        started = time.perf_counter()
        summary = generate_suite(suite, classes=s.classes, per_class=s.per_class, size=s.size, seed=s.seed,
                                 val_per_class=0, test_per_class=s.test_per_class, pretrain_per_class=0,
                                 config=config, overwrite=True)
        generated = time.perf_counter()
        checkpoint, training = train_classifier(suite, os.path.join(root, "classifier.pt"), arch=s.arch,
                                                epochs=s.epochs, batch_size=s.batch_size, lr=s.lr,
                                                image_size=s.image_size, seed=s.seed, progress=False, log=log)
        trained = time.perf_counter()
        model = load_model(checkpoint)
        result = score_methods(model, WSOLDataset(suite, "test", transform=official_transform(s.image_size)),
                               s.methods)
        evaluated = time.perf_counter()
        if not s.body_only:
            rows = score_reference_rows(suite, "test")
            check = check_suite(rows, cam=result["cam"] if "cam" in result else None)
            if log is not None:
                log(format_reference_table(rows))
                log(str(check))
            result["reference_rows"] = {name: scalar_scores(scores) for name, scores in rows.items()}
            result["check"] = {"passed": check.passed, "complete": check.complete, "lines": check.lines()}
    result.update({
        "suite": {"generator_version": summary["generator_version"], "classes": s.classes, "per_class": s.per_class,
                  "size": s.size, "seed": s.seed, "body_only": s.body_only, "splits": summary["splits"]},
        "model": {"arch": s.arch, "image_size": s.image_size, "epochs": s.epochs, "batch_size": s.batch_size,
                  "lr": s.lr,
                  "final_train_loss": training["epochs"][-1].get("loss") if training.get("epochs") else None},
        "seconds": {"generate": round(generated - started, 1), "train": round(trained - generated, 1),
                    "evaluate": round(evaluated - trained, 1),
                    "reference_rows": round(time.perf_counter() - evaluated, 1)},
    })
    return result
