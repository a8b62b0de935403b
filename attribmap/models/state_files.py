"""State-dict files: read one safely, load it into a model with a clear summary of any mismatch.

The leaf of :mod:`attribmap.models`: no other attribmap module is imported here, so the model
definitions (:mod:`~attribmap.models.efficientnet_lite`) and the loaders
(:mod:`~attribmap.models.loading`) both read it without an import circle.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Dict, Union

import torch
from torch import nn

from attribmap.errors import AttribmapError

__all__ = ["load_state_dict_file", "load_state_into"]


def load_state_dict_file(path: Union[str, os.PathLike]) -> Dict[str, torch.Tensor]:
    """Read a ``state_dict`` file safely (``torch.load(weights_only=True)``).

    Accepts a plain state dict or one nested under ``"state_dict"`` / ``"model"`` (the
    usual training-script layouts).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    dict of str to Tensor

    Raises
    ------
    FileNotFoundError
        No such file.
    AttribmapError
        The file cannot be loaded safely (not a torch file, truncated, a pickle of
        arbitrary objects) or holds no mapping of parameter names to tensors; the message
        names the file and the reason in one line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {str(path)!r}")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing a file
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in several types across torch versions
        raise AttribmapError(f"cannot load weights from {str(path)!r}: {_load_failure(path, exc)}") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state:
        kind = type(state).__name__ if not isinstance(state, dict) else "an empty dict"
        raise AttribmapError(f"{str(path)!r} holds {kind}, not a state dict (a mapping of parameter names to "
                             "tensors)")
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise AttribmapError(f"{str(path)!r} is not a state dict: entry {bad[0]!r} is not a named tensor "
                             f"({len(bad)} of {len(state)} entries)")
    return state


_MAGIC = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
          b"BM": "a BMP image", b"%PDF": "a PDF document"}


def _load_failure(path: Path, exc: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` failed, from the file's first bytes (and never
    torch's advice to unpickle anyway)."""
    with open(path, "rb") as handle:
        head = handle.read(8)
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            return f"it is {kind}, not a torch file"
    if head.startswith(b"PK"):
        return "a torch zip archive that is truncated or corrupt (could not be read to the end)"
    if head.startswith(b"\x80"):
        return ("it holds pickled Python objects that a weights-only load refuses (save the model's "
                "state_dict() instead)")
    first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
    return f"not a torch file ({first})"


def load_state_into(model: nn.Module, state: Dict[str, torch.Tensor], path, name: str) -> None:
    """``model.load_state_dict(state)``; a mismatch raises with a short, counted summary naming ``path`` / ``name``."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("with another shape", shapes)):
            if keys:
                shown = ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")
                parts.append(f"{len(keys)} {label} ({shown})")
        raise AttribmapError(f"weights in {str(path)!r} do not fit {name}: " + "; ".join(parts)
                             + f" of {len(own)} keys; is it a state dict of another architecture?")
    model.load_state_dict(state)
