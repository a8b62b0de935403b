"""Check the synthetic WSOL suite (version 2): learnable, part-dominated, and valid.

Generates the suite (``attribmap.data.synthetic.generate_suite``, no val / pretrain split),
trains a classifier with the project's recipe (``attribmap.train.train_classifier``,
``resnet18_small`` at 128 px: an 8x8 CAM layer), then reports its test accuracy, the maps of
``--methods`` (default CAM; raw maps of the ground-truth class from
``attribmap.Explainer.explain_many``, scored by ``attribmap.evaluate.evaluate_maps``), the
suite's reference rows (``score_reference_rows``) and the validity check with that CAM
(``check_suite``). ``--body-only`` instead measures how much the body alone tells: objects
without parts and no distractor bodies, so the one body is the image's only class evidence
(the reference rows and the check are then skipped). Run from the repository root::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/synthetic_suite_check.py [--out DIR] [--epochs N] \
        [--methods cam,gradcam] [--body-only] [--json result.json]

Prints one JSON object (also written to ``--json`` when given).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from typing import Dict, List, Sequence

import torch
from torch.utils.data import DataLoader

from attribmap.data import WSOLDataset, collate_wsol, official_transform
from attribmap.data.synthetic import SceneConfigV2, check_suite, format_reference_table, generate_suite, \
    score_reference_rows
from attribmap.fileio import atomic_write_text


def _numbers(scores: dict) -> Dict[str, object]:
    """The scalar metrics of an evaluate_maps result (curves dropped)."""
    keep = {key: value for key, value in scores.items() if isinstance(value, (int, float))}
    for key in ("MaxBoxAccV2_per_iou", "MaxBoxAcc_per_iou", "best_tau"):
        if key in scores:
            keep[key] = {str(k): v for k, v in scores[key].items()}
    return keep


def evaluate(model: torch.nn.Module, dataset: WSOLDataset, methods: Sequence[str],
             batch_size: int = 50) -> Dict[str, object]:
    """Test accuracy and each method's scores (official protocol, delta 0.001)."""
    import attribmap
    from attribmap.evaluate import evaluate_maps

    model.eval()
    explainer = attribmap.Explainer(model, layer=model.cam_layer)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_wsol)
    maps: Dict[str, List[torch.Tensor]] = {name: [] for name in methods}
    boxes, sizes, masks, ignores, correct = [], [], [], [], []
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
        result[name] = _numbers(evaluate_maps(torch.cat(maps[name]), boxes=boxes, image_sizes=torch.cat(sizes),
                                              masks=masks, ignore=ignores, correct=hits))
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="work directory (suite, checkpoint), overwritten (default: temporary)")
    parser.add_argument("--seed", type=int, default=0, help="suite and training seed")
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--test-per-class", type=int, default=25)
    parser.add_argument("--size", type=int, default=128, help="nominal image side of the suite")
    parser.add_argument("--image-size", type=int, default=128, help="classifier input side")
    parser.add_argument("--arch", default="resnet18_small")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--methods", default="cam", help="comma-separated extractors to score (default: cam)")
    parser.add_argument("--body-only", action="store_true",
                        help="objects without parts, no distractor bodies: measure the body's class evidence")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    methods = [name.strip() for name in args.methods.split(",") if name.strip()]
    config = SceneConfigV2()
    if args.body_only:
        config = dataclasses.replace(config, parts_per_object=(0, 0), distractor_bodies=(0, 0))
    from attribmap.models.checkpoint import load_model
    from attribmap.train import train_classifier

    with tempfile.TemporaryDirectory() as scratch:
        work = args.out or scratch
        suite = os.path.join(work, "suite")
        started = time.perf_counter()
        summary = generate_suite(suite, classes=args.classes, per_class=args.per_class, size=args.size,
                                 seed=args.seed, val_per_class=0, test_per_class=args.test_per_class,
                                 pretrain_per_class=0, config=config, overwrite=True)
        generated = time.perf_counter()
        checkpoint, training = train_classifier(suite, os.path.join(work, "classifier.pt"), arch=args.arch,
                                                epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                                image_size=args.image_size, seed=args.seed, progress=False,
                                                log=lambda line: print(line, file=sys.stderr, flush=True))
        trained = time.perf_counter()
        model = load_model(checkpoint)
        result = evaluate(model, WSOLDataset(suite, "test", transform=official_transform(args.image_size)), methods)
        evaluated = time.perf_counter()
        if not args.body_only:
            rows = score_reference_rows(suite, "test")
            check = check_suite(rows, cam=result["cam"] if "cam" in result else None)
            print(format_reference_table(rows), file=sys.stderr)
            print(check, file=sys.stderr)
            result["reference_rows"] = {name: _numbers(scores) for name, scores in rows.items()}
            result["check"] = {"passed": check.passed, "complete": check.complete, "lines": check.lines()}
    result.update({
        "suite": {"generator_version": summary["generator_version"], "classes": args.classes,
                  "per_class": args.per_class, "size": args.size, "seed": args.seed, "body_only": args.body_only,
                  "splits": summary["splits"]},
        "model": {"arch": args.arch, "image_size": args.image_size, "epochs": args.epochs,
                  "batch_size": args.batch_size, "lr": args.lr,
                  "final_train_loss": training["epochs"][-1].get("loss") if training.get("epochs") else None},
        "threads": args.threads,
        "seconds": {"generate": round(generated - started, 1), "train": round(trained - generated, 1),
                    "evaluate": round(evaluated - trained, 1), "reference_rows": round(time.perf_counter() - evaluated, 1)},
    })
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        atomic_write_text(args.json, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
