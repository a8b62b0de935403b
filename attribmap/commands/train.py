"""``attribmap train classifier|i2c|weightmap``: the training recipes from the command line.

Examples
--------
::

    attribmap train classifier --data suite --out runs/cls.pt --epochs 8
    attribmap train i2c --data suite --out runs/i2c.pt --batch-size 16
    attribmap train weightmap --data suite --out runs/wm.pt --classifier runs/cls.pt --method 1
    attribmap train weightmap --data suite --out runs/wm2.pt --method 2
    torchrun --nproc_per_node=2 -m attribmap train classifier --data suite --out runs/cls.pt

Every run writes ``CKPT`` (best epoch) and ``CKPT`` with ``.last`` before the suffix (latest
epoch, used by ``--resume``).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Dict

__all__ = ["register", "run_train"]

TASKS = ("classifier", "i2c", "weightmap")


def _common_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--data", required=True, metavar="DIR",
                        help="dataset root in the wsolevaluation layout (e.g. from `attribmap synth`)")
    parent.add_argument("--out", required=True, metavar="CKPT",
                        help="best-checkpoint path; the resumable state goes next to it (.last)")
    parent.add_argument("--epochs", type=int, metavar="E", help="number of epochs")
    parent.add_argument("--batch-size", type=int, metavar="B", help="batch size per process")
    parent.add_argument("--lr", type=float, metavar="LR", help="base learning rate")
    parent.add_argument("--image-size", type=int, metavar="S", help="training image side in pixels")
    parent.add_argument("--optimizer", choices=("sgd", "adam"), help="optimizer")
    parent.add_argument("--schedule", choices=("none", "step", "cosine"), help="per-epoch lr schedule")
    parent.add_argument("--holdout-fraction", type=float, metavar="F",
                        help="share of each training class held out for checkpoint selection")
    parent.add_argument("--grad-clip", type=float, metavar="G", help="clip the gradient norm to G")
    parent.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    parent.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parent.add_argument("--num-workers", type=int, default=0, metavar="N", help="data-loading workers")
    parent.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    parent.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parent


def register(subparsers: Any) -> None:
    """Add ``attribmap train`` and its three task sub-commands."""
    parser = subparsers.add_parser(
        "train", help="train a classifier, an I2C classifier or a weight-map generator",
        description="Train one of the models attribmap explains; checkpoints record their "
                    "architecture so `explain` and `bench` can rebuild the model from the file.")
    parser.set_defaults(func=run_train, task=None)
    tasks = parser.add_subparsers(dest="task", metavar="TASK")
    parent = _common_parent()
    for task, help_text in (("classifier", "cross-entropy classifier (GAP -> linear)"),
                            ("i2c", "I2C classifier: CE + SC + GC losses on paired-class batches")):
        sub = tasks.add_parser(task, parents=[parent], help=help_text, description=help_text)
        sub.add_argument("--arch", metavar="A", help="architecture (see `attribmap.models.available_archs`)")
        sub.add_argument("--weights", metavar="W", help="pretrained backbone weights, e.g. DEFAULT")
        sub.add_argument("--lr-step-size", type=int, metavar="E",
                         help="epochs between tenfold lr decays of --schedule step (default 30)")
        sub.set_defaults(func=run_train)
    sub = tasks.add_parser("weightmap", parents=[parent], help="weight-map generator, method I or II",
                           description="Weight-map generator (Shaharabany & Wolf), method I or II.")
    sub.add_argument("--classifier", metavar="CKPT",
                     help="method 1: classifier checkpoint (required); method 2: embedding checkpoint "
                          "(optional, trained first when absent)")
    sub.add_argument("--method", type=int, choices=(1, 2), default=1, help="method I or II (default 1)")
    sub.add_argument("--encoder", metavar="E", help="generator encoder: resnet18 (default), resnet34, resnet50")
    sub.add_argument("--arch", metavar="A", help="generator architecture, weightmap_<encoder> (same as --encoder)")
    sub.add_argument("--weights", metavar="W", help="pretrained encoder weights, e.g. DEFAULT")
    sub.add_argument("--lam", type=float, help="weight of the area term mean(M) (default 1)")
    sub.add_argument("--embedding-epochs", type=int, metavar="E", help="method 2: embedding epochs")
    sub.set_defaults(func=run_train)


def _given(args: argparse.Namespace, names: Dict[str, str]) -> Dict[str, Any]:
    return {key: getattr(args, attr) for attr, key in names.items() if getattr(args, attr, None) is not None}


def _encoder_from(args: argparse.Namespace) -> Any:
    encoder = args.encoder
    if args.arch is not None:
        from_arch = args.arch[len("weightmap_"):] if args.arch.startswith("weightmap_") else args.arch
        if encoder is not None and encoder != from_arch:
            raise ValueError(f"--arch {args.arch!r} and --encoder {encoder!r} disagree")
        encoder = from_arch
    return encoder


def run_train(args: argparse.Namespace) -> int:
    """Run the chosen recipe; bad arguments raise ``ValueError`` / ``FileNotFoundError``."""
    if args.task not in TASKS:
        raise ValueError(f"choose what to train: attribmap train {{{'|'.join(TASKS)}}} --data DIR --out CKPT")
    if not os.path.isdir(args.data):
        raise FileNotFoundError(f"--data folder not found: {args.data!r}")
    from attribmap.train import train_classifier, train_i2c, train_weightmap

    kwargs: Dict[str, Any] = _given(args, {
        "epochs": "epochs", "batch_size": "batch_size", "lr": "lr", "image_size": "image_size",
        "optimizer": "optimizer", "schedule": "schedule", "holdout_fraction": "holdout_fraction",
        "grad_clip": "grad_clip",
        "weights": "weights" if args.task != "weightmap" else "encoder_weights",
    })
    kwargs.update(seed=args.seed, device=args.device, num_workers=args.num_workers, resume=args.resume,
                  progress=False if args.no_progress else None, log=_log)
    if args.task == "weightmap":
        encoder = _encoder_from(args)
        kwargs.update(_given(args, {"lam": "lam", "embedding_epochs": "embedding_epochs"}))
        if encoder is not None:
            kwargs["encoder"] = encoder
        if args.method == 1 and args.classifier is None:
            raise ValueError("weightmap --method 1 needs --classifier CKPT (a trained classifier checkpoint)")
        path, history = train_weightmap(args.data, args.out, classifier=args.classifier,
                                        method=args.method, **kwargs)
    else:
        if args.arch is not None:
            kwargs["arch"] = args.arch
        kwargs.update(_given(args, {"lr_step_size": "lr_step_size"}))
        recipe = train_classifier if args.task == "classifier" else train_i2c
        path, history = recipe(args.data, args.out, **kwargs)
    if int(os.environ.get("RANK", "0")) == 0:
        best = history["best_score"]
        score = "" if best is None else f", score {best:.4f}"
        print(f"best checkpoint: {path} (epoch {history['best_epoch']}{score}); "
              f"resumable state: {history['last_checkpoint']}")
    return 0


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
