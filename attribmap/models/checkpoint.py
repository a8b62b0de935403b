"""Checkpoint files: the format, validated reading and rebuilding a model for inference.

A checkpoint is a plain ``dict`` holding only Python scalars, strings, lists, dicts and
tensors, so it loads with ``torch.load(path, weights_only=True)`` (no pickled classes):

=================  ==========================================================================
key                content
=================  ==========================================================================
``format``         ``"attribmap-ckpt"``
``version``        ``1``
``task``           ``"classifier"``, ``"i2c"``, ``"weightmap"``, ``"embedding"`` or a custom name
``arch``           ``{"arch": str, "num_classes": int | None, "kwargs": dict}`` (rebuild recipe)
``model``          the model's ``state_dict``
``optimizer``      optimizer ``state_dict`` (``None`` in a *best* checkpoint)
``scheduler``      lr-schedule ``state_dict`` or ``None``
``epoch``          number of completed epochs
``best_score``     highest ``evaluate_fn`` score so far (``None`` without one)
``best_epoch``     epoch (1-based) that reached ``best_score``
``history``        one dict of floats per completed epoch
``rng``            torch / CUDA / numpy / python random states after the epoch
``extra``          task data: ``"i2c_bank"`` (centre bank state), ``"init"`` report, ...
``recipe``         the full training recipe as a plain dict (``None`` / absent in old files)
``step``           steps into ``epoch`` when the file was taken (a mid-epoch evaluation)
``evaluations``    one dict per held-out evaluation (score and diagnostics)
``kind``           ``"last"`` (full state, used by ``resume``), ``"best"`` or ``"evaluation"``
=================  ==========================================================================

Files written by :func:`attribmap.train.fit` (:mod:`attribmap.train.checkpoint`) for
``checkpoint="run/model.pt"``:
``run/model.pt`` holds the best epoch's weights (highest score; the final epoch when no
score is computed) and ``run/model.last.pt`` the latest epoch with optimizer, schedule and
RNG states, which ``resume=True`` continues from.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import torch
from torch import nn

from attribmap.errors import AttribmapError

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "load_checkpoint",
    "build_from_arch",
    "load_model",
    "read_recipe",
]

PathLike = Union[str, "os.PathLike[str]"]

CHECKPOINT_FORMAT = "attribmap-ckpt"
CHECKPOINT_VERSION = 1
_REQUIRED_KEYS = ("format", "version", "task", "arch", "model", "epoch")


class CheckpointError(AttribmapError):
    """A file is not a readable attribmap checkpoint, or does not fit the requested use."""


def load_checkpoint(path: PathLike, map_location: Union[str, torch.device] = "cpu") -> Dict[str, Any]:
    """Read and validate an attribmap checkpoint with ``torch.load(weights_only=True)``.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save_checkpoint` (e.g. by :func:`attribmap.train.fit`).
    map_location : str or torch.device
        Where tensors are loaded (default CPU).

    Returns
    -------
    dict
        The checkpoint (see the module docstring for its keys).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    CheckpointError
        The file cannot be read safely, is not an attribmap checkpoint, or has a newer version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {str(path)!r}")
    try:
        state = torch.load(str(path), map_location=map_location, weights_only=True)
    except Exception as exc:  # unpickling errors come in several types across torch versions
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"cannot read {str(path)!r} as an attribmap checkpoint (torch.load with "
            f"weights_only=True failed: {first_line})"
        ) from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"{str(path)!r} is not an attribmap checkpoint: expected format "
            f"{CHECKPOINT_FORMAT!r}, found {found!r}"
        )
    version = state.get("version")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION or version < 1:
        raise CheckpointError(
            f"{str(path)!r} has checkpoint version {version!r}; this attribmap reads versions "
            f"1..{CHECKPOINT_VERSION}"
        )
    missing = [key for key in _REQUIRED_KEYS if key not in state]
    if missing:
        raise CheckpointError(f"{str(path)!r} lacks the checkpoint keys {missing}")
    arch = state["arch"]
    if not isinstance(arch, dict) or not isinstance(arch.get("arch"), str):
        raise CheckpointError(
            f"{str(path)!r} records no architecture: expected arch = "
            f"{{'arch': name, 'num_classes': int, 'kwargs': dict}}, found {arch!r}"
        )
    return state


def build_from_arch(arch: Mapping[str, Any]) -> nn.Module:
    """Build an untrained module (no pretrained weights) from a checkpoint's ``arch`` record.

    Parameters
    ----------
    arch : mapping
        ``{"arch": name, "num_classes": int, "kwargs": dict}`` as written by
        :func:`attribmap.models.arch_config`; rebuilt with :func:`attribmap.models.build_model`
        (classifiers, I2C classifiers, ``siamese_resnet18``, ``weightmap_<encoder>``).
    """
    from attribmap.models.registry import build_model
    from attribmap.models.zoo import LEGACY_KWARGS

    # options a checkpoint does not record take the value it was trained with, not today's default
    kwargs = {**LEGACY_KWARGS.get(str(arch.get("arch")), {}), **dict(arch.get("kwargs") or {})}
    kwargs.pop("weights", None)  # the checkpoint supplies every weight
    num_classes = arch.get("num_classes")
    return build_model(arch["arch"], int(num_classes or 0), weights=None, **kwargs)


def load_model(path: PathLike, device: Union[str, torch.device] = "cpu") -> nn.Module:
    """Rebuild a trained model from a checkpoint file alone, in eval mode.

    Works for every task: a classifier, an I2C classifier, a Siamese embedding, or a
    weight-map generator (whose forward gives (N,1,H,W) maps in (0,1)).

    Parameters
    ----------
    path : str or path-like
        A checkpoint written by :mod:`attribmap.train` (best or last).
    device : str or torch.device
        Device of the returned model.

    Returns
    -------
    torch.nn.Module
        The model with the checkpoint's weights, ``eval()`` mode, on ``device``.
    """
    state = load_checkpoint(path)
    try:
        model = build_from_arch(state["arch"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"cannot rebuild the architecture {state['arch']!r} recorded in {str(path)!r}: {exc}"
        ) from exc
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise CheckpointError(
            f"the weights in {str(path)!r} do not fit architecture {state['arch']!r}: {first_line}"
        ) from exc
    return model.to(device).eval()


def read_recipe(path: PathLike) -> Optional[Dict[str, Any]]:
    """The training recipe recorded in a checkpoint, as a plain dict (None for older files).

    Parameters
    ----------
    path : str or path-like
        A checkpoint written by :mod:`attribmap.train`.

    Returns
    -------
    dict or None
        ``{"task": ..., "arch": ..., "epochs": ..., ...}`` exactly as
        :meth:`attribmap.train.Recipe.to_dict` wrote it (JSON-ready: strings, numbers,
        booleans, lists, None); ``None`` when the checkpoint predates recorded recipes.
        :func:`attribmap.train.recipe_from_dict` turns it back into a recipe.

    Example
    -------
    ::

        recipe = read_recipe("runs/i2c.pt")
        results["recipes"]["i2c"] = recipe       # e.g. into a results.json
    """
    recipe = load_checkpoint(path).get("recipe")
    return dict(recipe) if isinstance(recipe, Mapping) else None
