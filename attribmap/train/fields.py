"""Recipe fields: declaration with help text and range, coercion of given values, range checks.

Read by :mod:`attribmap.train.recipe` (validation), the ``attribmap train`` flags and the docs.
"""
from __future__ import annotations

import math
import os
import typing
from dataclasses import field
from typing import Any, Mapping, Optional, Tuple, Union

from attribmap.errors import AttribmapError

__all__ = ["RecipeError", "option", "split_optional", "coerce_value", "check_range"]


class RecipeError(AttribmapError):
    """A recipe field has a bad value, or a recipe mapping has unknown keys."""


def option(default: Any, help: str, *, minimum: Optional[float] = None, below: Optional[float] = None,
            above: Optional[float] = None, maximum: Optional[float] = None,
            choices: Optional[Tuple[Any, ...]] = None) -> Any:
    """A dataclass field with its ``default``, ``help`` text and range, read by validation, the CLI and the docs.

    ``minimum`` / ``maximum`` are inclusive bounds, ``above`` / ``below`` exclusive ones, and
    ``choices`` the allowed values (of each item, for a tuple field); None leaves one out.
    """
    return field(default=default, metadata={"help": help, "minimum": minimum, "below": below,
                                            "above": above, "maximum": maximum, "choices": choices})


def split_optional(hint: Any) -> Tuple[bool, Any]:
    """``(True, X)`` for a type ``hint`` ``Optional[X]``, ``(False, hint)`` otherwise."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is Union and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return True, rest[0]
    return False, hint


def coerce_value(name: str, value: Any, hint: Any) -> Any:
    """``value`` as the type ``hint`` names (int, float, str, bool, Tuple[str, ...], Optional).

    ``name`` is the field's name, for the :class:`RecipeError` a bad value raises.
    """
    optional, base = split_optional(hint)
    if value is None:
        if optional:
            return None
        raise RecipeError(f"{name} must not be None (expected {getattr(base, '__name__', base)})")
    if base is bool:
        if not isinstance(value, bool):
            raise RecipeError(f"{name} must be true or false, got {value!r}")
        return value
    if base is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecipeError(f"{name} must be an integer, got {value!r}")
        return int(value)
    if base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise RecipeError(f"{name} must be a finite number, got {value!r}")
        return float(value)
    if base is str:
        if not isinstance(value, str) and isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str) or not value:
            raise RecipeError(f"{name} must be a non-empty string, got {value!r}")
        return value
    if typing.get_origin(base) is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(v, str) and v for v in items):
            raise RecipeError(f"{name} must be a list of names, got {value!r}")
        return tuple(v.strip() for v in items)
    raise TypeError(f"recipe field {name} has an unsupported type {hint!r}")  # pragma: no cover


def check_range(name: str, value: Any, meta: Mapping[str, Any]) -> None:
    """Raise :class:`RecipeError`, naming the field ``name``, when ``value`` is outside the range or choices of ``meta``.

    ``meta`` is the field metadata :func:`option` writes.
    """
    if value is None:
        return
    choices = meta.get("choices")
    items = value if isinstance(value, tuple) else (value,)
    if choices is not None and any(v not in choices for v in items):
        raise RecipeError(f"{name} must be {'one of' if not isinstance(value, tuple) else 'made of'} "
                          f"{list(choices)}, got {value!r}")
    kind = "an integer" if isinstance(value, int) else "a number"
    if meta.get("minimum") is not None and value < meta["minimum"]:
        raise RecipeError(f"{name} must be {kind} >= {meta['minimum']}, got {value!r}")
    if meta.get("above") is not None and value <= meta["above"]:
        raise RecipeError(f"{name} must be {kind} > {meta['above']}, got {value!r}")
    low = (f"[{meta['minimum']}" if meta.get("minimum") is not None
           else f"({meta['above']}" if meta.get("above") is not None else "(-inf")
    if meta.get("below") is not None and value >= meta["below"]:
        raise RecipeError(f"{name} must be in {low}, {meta['below']}), got {value!r}")
    if meta.get("maximum") is not None and value > meta["maximum"]:
        raise RecipeError(f"{name} must be in {low}, {meta['maximum']}], got {value!r}")
