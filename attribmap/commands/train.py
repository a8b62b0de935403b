"""``attribmap train TASK [flags]`` / ``attribmap train --config recipe.toml``: run a recipe.

Every field of the task's recipe (:mod:`attribmap.train.recipe`) is a flag of the same name
with dashes (``lambda_sc`` -> ``--lambda-sc``, booleans as ``--hard-target`` /
``--no-hard-target``); with ``--config`` the file gives the recipe and flags override its
fields.

Examples
--------
::

    attribmap train classifier --data suite --out runs/pretrain.pt --split pretrain
    attribmap train classifier --data suite --out runs/cls.pt --init runs/pretrain.pt
    attribmap train i2c --data suite --out runs/i2c_ce.pt --init runs/pretrain.pt \\
        --lr 0.01 --lambda-sc 0 --lambda-gc 0
    attribmap train i2c --data suite --out runs/i2c.pt --init runs/i2c_ce.pt
    attribmap train weightmap --data suite --out runs/wm.pt --classifier runs/cls.pt \\
        --init runs/pretrain.pt --evaluations-per-epoch 4 --save-evaluations
    attribmap train --config recipe.toml --data suite --out runs/x.pt --epochs 2
    attribmap train i2c --print-recipe > i2c.toml
    torchrun --nproc_per_node=2 -m attribmap train classifier --data suite --out runs/cls.pt

Every run writes ``CKPT`` (best evaluation) and ``CKPT`` with ``.last`` before the suffix
(latest epoch, used by ``--resume``); both record the full recipe.
"""
from __future__ import annotations

import argparse
import os
import sys
import typing
from typing import Any, Dict, Iterable, List, Tuple

__all__ = ["register", "run_train"]

def _run_flags(parser: argparse.ArgumentParser) -> None:
    """Flags that say where and how to run, not how to train (defaults applied in run_train)."""
    group = parser.add_argument_group("run")
    group.add_argument("--config", metavar="TOML", default=argparse.SUPPRESS,
                       help="recipe file (flat field = value lines); flags override its fields")
    group.add_argument("--data", metavar="DIR", default=argparse.SUPPRESS,
                       help="dataset root: wsolevaluation layout (e.g. from `attribmap synth`) or "
                            "CUB_200_2011 as distributed")
    group.add_argument("--out", metavar="CKPT", default=argparse.SUPPRESS,
                       help="best-checkpoint path; the resumable state goes next to it (.last)")
    group.add_argument("--device", default=argparse.SUPPRESS, help="cpu or cuda (default cpu)")
    group.add_argument("--num-workers", type=int, metavar="N", default=argparse.SUPPRESS,
                       help="data-loading workers (default 0)")
    group.add_argument("--metadata-root", metavar="DIR", default=argparse.SUPPRESS,
                       help="metadata folder when not DATA/metadata")
    group.add_argument("--resume", action="store_true", default=argparse.SUPPRESS,
                       help="continue from the last checkpoint")
    group.add_argument("--no-progress", action="store_true", default=argparse.SUPPRESS,
                       help="no progress bar")
    group.add_argument("--print-recipe", action="store_true", default=argparse.SUPPRESS,
                       help="print the recipe as TOML and exit without training")


_METAVARS = {int: "N", float: "X", str: "NAME"}


def _parse_optional(kind: type):
    def parse(text: str):
        return None if text.lower() == "none" else kind(text)
    parse.__name__ = kind.__name__  # argparse names the type in its error message
    return parse


def _field_flags(parser: argparse.ArgumentParser, fields: Iterable[Tuple[str, Any, Any, Dict[str, Any]]],
                 show_defaults: bool) -> None:
    """One flag per recipe field, typed from its annotation, with its help text and choices."""
    from attribmap.train.recipe import split_optional

    group = parser.add_argument_group("recipe fields")
    for name, hint, default, meta in fields:
        flag = "--" + name.replace("_", "-")
        optional, base = split_optional(hint)
        text = meta.get("help", "")
        if show_defaults and default is not None:
            shown = ",".join(default) if isinstance(default, tuple) else default
            text += f" (default {shown})"
        kwargs: Dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": text}
        if base is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
            continue
        if typing.get_origin(base) is tuple:
            kwargs.update(type=str, metavar="A,B")
        else:
            metavar = "CKPT" if name in ("init", "classifier") else _METAVARS[base]
            kwargs.update(type=_parse_optional(base) if optional else base, metavar=metavar)
            if meta.get("choices") is not None:
                kwargs.update(choices=meta["choices"], metavar=None)
        group.add_argument(flag, **kwargs)


def _union_fields() -> List[Tuple[str, Any, Any, Dict[str, Any]]]:
    from attribmap.train.recipe import RECIPES, recipe_fields

    seen: Dict[str, Tuple[str, Any, Any, Dict[str, Any]]] = {}
    for cls in RECIPES.values():
        for name, hint, default, meta in recipe_fields(cls):
            if name not in seen:  # the top-level parser cannot type a field's choices per task
                seen[name] = (name, hint, default, {**meta, "choices": None})
    return list(seen.values())


def register(subparsers: Any) -> None:
    """Add ``attribmap train`` and one sub-command per task to ``subparsers``."""
    from attribmap.train.recipe import TASKS, recipe_fields

    parser = subparsers.add_parser(
        "train", help="train a classifier, an I2C classifier, a weight-map generator or an embedding",
        description="Train a model from a recipe given by flags or a TOML file (--config). "
                    "Checkpoints record their architecture and recipe, so `explain` and `bench` "
                    "rebuild the model from the file alone.")
    _run_flags(parser)
    _field_flags(parser, _union_fields(), show_defaults=False)
    parser.set_defaults(func=run_train, task=None)
    tasks = parser.add_subparsers(dest="task", metavar="TASK")
    for task, spec in TASKS.items():
        cls = spec.recipe
        first_line = (cls.__doc__ or "").strip().splitlines()[0].replace("``", "")
        sub = tasks.add_parser(task, help=spec.help, description=first_line)
        _run_flags(sub)
        _field_flags(sub, recipe_fields(cls), show_defaults=True)
        sub.set_defaults(func=run_train)


def _build_recipe(args: argparse.Namespace):
    from attribmap.train.recipe import RECIPES, load_recipe, recipe_class

    names = {name for cls in RECIPES.values() for name in cls.field_names()}
    overrides = {name: getattr(args, name) for name in sorted(names) if hasattr(args, name)}
    config = getattr(args, "config", None)
    if config is not None:
        recipe = load_recipe(config, task=args.task)
        return recipe.replace(**overrides) if overrides else recipe
    if args.task is None:
        raise ValueError(f"choose what to train: attribmap train {{{'|'.join(RECIPES)}}} --data DIR "
                         "--out CKPT, or attribmap train --config RECIPE.toml --data DIR --out CKPT")
    return recipe_class(args.task).from_dict(overrides)


def run_train(args: argparse.Namespace) -> int:
    """Build the recipe from the parsed ``args``, then train it; bad arguments raise ``ValueError`` / ``FileNotFoundError``."""
    recipe = _build_recipe(args)
    if getattr(args, "print_recipe", False):
        sys.stdout.write(recipe.to_toml())
        return 0
    for flag in ("data", "out"):
        if getattr(args, flag, None) is None:
            raise ValueError(f"--{flag} is required to train (the recipe says how, --data and --out say what and where)")
    if not os.path.isdir(args.data):
        raise FileNotFoundError(f"--data folder not found: {args.data!r}")
    from attribmap.train import train

    path, history = train(recipe, args.data, args.out, device=getattr(args, "device", "cpu"),
                          num_workers=getattr(args, "num_workers", 0), resume=getattr(args, "resume", False),
                          metadata_root=getattr(args, "metadata_root", None),
                          progress=False if getattr(args, "no_progress", False) else None, log=_log)
    if int(os.environ.get("RANK", "0")) == 0:
        best = history["best_score"]
        score = "" if best is None else f", score {best:.4f}"
        print(f"best checkpoint: {path} (epoch {history['best_epoch']}, step {history['best_step']}{score}); "
              f"resumable state: {history['last_checkpoint']}")
    return 0


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
