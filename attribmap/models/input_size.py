"""The input size a model is run at: given, recorded in its checkpoint's recipe, or the default.

``attribmap explain`` and ``attribmap bench`` share it (the checkpoint format is
:mod:`attribmap.models.checkpoint`).
"""
from __future__ import annotations

from typing import Optional, Tuple

from attribmap.models.checkpoint import read_recipe

__all__ = ["INPUT_SIZE_SOURCES", "recorded_input_size", "resolve_input_size"]

#: How each source of an input size (:func:`resolve_input_size`) is described, for logs and reports.
INPUT_SIZE_SOURCES = {"given": "given", "checkpoint": "recorded in the checkpoint's training recipe",
                      "default": "the default; the model records none"}


def recorded_input_size(checkpoint: str) -> Optional[int]:
    """The ``image_size`` of the training recipe recorded in a checkpoint (None when it has none).

    Parameters
    ----------
    checkpoint : str
        Path of a checkpoint written by ``attribmap train``.
    """
    recipe = read_recipe(checkpoint) or {}
    size = recipe.get("image_size")
    return int(size) if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None


def resolve_input_size(size: Optional[int], checkpoint: Optional[str]) -> Tuple[int, str]:
    """The model's input size and where it comes from (a key of :data:`INPUT_SIZE_SOURCES`).

    Parameters
    ----------
    size : int, optional
        A size given by the user: ``(size, "given")``.
    checkpoint : str, optional
        Otherwise the size its training recipe records, ``(recorded, "checkpoint")``, and
        failing that ``(attribmap.inputs.DEFAULT_SIZE, "default")``.
    """
    from attribmap.inputs import DEFAULT_SIZE

    if size is not None:
        return size, "given"
    recorded = recorded_input_size(checkpoint) if checkpoint is not None else None
    return (recorded, "checkpoint") if recorded is not None else (DEFAULT_SIZE, "default")
