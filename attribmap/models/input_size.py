"""The input size a model is run at: given, recorded in its checkpoint's recipe, the model's own, or the default.

``attribmap explain`` and ``attribmap bench`` share it (the checkpoint format is
:mod:`attribmap.models.checkpoint`).
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

from attribmap.models.checkpoint import read_recipe

__all__ = ["INPUT_SIZE_SOURCES", "recorded_input_size", "resolve_input_size"]

#: How each source of an input size (:func:`resolve_input_size`) is described, for logs and reports.
INPUT_SIZE_SOURCES = {"given": "given", "checkpoint": "recorded in the checkpoint's training recipe",
                      "model": "the resolution the model was trained at",
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


def resolve_input_size(size: Optional[int], checkpoint: Optional[str], model: Any = None) -> Tuple[int, str]:
    """The model's input size and where it comes from (a key of :data:`INPUT_SIZE_SOURCES`).

    Parameters
    ----------
    size : int, optional
        A size given by the user: ``(size, "given")``.
    checkpoint : str, optional
        Otherwise the size its training recipe records, ``(recorded, "checkpoint")``.
    model : nn.Module or str, optional
        Failing that, the size the model says it was trained at (an int ``input_size``
        attribute of at least 32, as the pretrained Lite models have), ``(size, "model")``;
        a name stands for the model it builds (``"efficientnet_lite1"``: 240; a name that
        declares nothing, such as a torchvision model's, gives the default); failing that
        ``(attribmap.inputs.DEFAULT_SIZE, "default")``.
    """
    from attribmap.inputs import DEFAULT_SIZE, declared_input_size

    if size is not None:
        return size, "given"
    recorded = recorded_input_size(checkpoint) if checkpoint is not None else None
    if recorded is not None:
        return recorded, "checkpoint"
    if isinstance(model, str):
        from attribmap.models.efficientnet_lite import LITE_VARIANTS

        return (LITE_VARIANTS[model][2], "model") if model in LITE_VARIANTS else (DEFAULT_SIZE, "default")
    declared = declared_input_size(model)
    if declared is not None:
        return declared, "model"
    return DEFAULT_SIZE, "default"
