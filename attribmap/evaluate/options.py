"""A metric's options, read from its constructor: :class:`MetricOption` and :func:`options_of`.

Every keyword of a metric's ``__init__`` (but ``image_size``, which the evaluator sets from
its frame) is an option whose type comes from the annotation and whose default from the
signature. The command line gives option values as text (``--metric-option
deletion.steps=20``); :meth:`MetricOption.parse` turns the text into the declared type.
"""
from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass
from typing import Any, Callable, Tuple

from attribmap.errors import AttribmapError

__all__ = ["MetricOption", "options_of", "KINDS", "FRAME_OPTIONS"]

#: Option kinds and how each reads its text: a scalar, or a comma-separated tuple.
KINDS = ("int", "float", "str", "bool", "ints", "floats")

#: Constructor keywords the evaluator sets itself (not user options).
FRAME_OPTIONS = ("image_size",)

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class MetricOption:
    """One constructor option of a metric.

    Attributes
    ----------
    name : str
        The keyword (``"steps"``).
    kind : str
        One of :data:`KINDS`: ``"int"``, ``"float"``, ``"str"``, ``"bool"``, or ``"ints"`` /
        ``"floats"`` for a tuple of numbers.
    default : object
        The constructor's default (None when it has none or its default is None).
    optional : bool
        None is a valid value (the annotation is ``Optional[...]``); the text ``none`` gives it.
    """

    name: str
    kind: str
    default: Any = None
    optional: bool = False

    @property
    def expected(self) -> str:
        """Words for the expected text (``"an int"``, ``"ints separated by commas"``)."""
        words = {"int": "an int", "float": "a number", "str": "a string", "bool": "true or false",
                 "ints": "ints separated by commas", "floats": "numbers separated by commas"}[self.kind]
        return words + (" (or none)" if self.optional else "")

    def parse(self, text: Any, where: str = "") -> Any:
        """The value of ``text`` in this option's kind.

        Parameters
        ----------
        text : str or object
            The text from the command line; a non-string value is returned unchanged.
        where : str
            Name of the option in the error message (``"deletion.steps"``).

        Raises
        ------
        AttribmapError
            ``text`` does not read as this kind (one line naming it and what was expected).
        """
        if not isinstance(text, str):
            return text
        stripped = text.strip()
        if self.optional and stripped.lower() == "none":
            return None
        try:
            return _read(self.kind, stripped)
        except ValueError:
            raise AttribmapError(f"metric option {where or self.name}={text!r}: expected {self.expected}") from None


def _read(kind: str, text: str) -> Any:
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "bool":
        if text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        raise ValueError(text)
    if kind in ("ints", "floats"):
        items = [t.strip() for t in text.strip("()[]").split(",") if t.strip()]
        if not items:
            raise ValueError(text)
        return tuple(int(t) if kind == "ints" else float(t) for t in items)
    return text


def _kind(annotation: Any) -> Tuple[str, bool]:
    """``(kind, optional)`` of a resolved type annotation (``"str"`` when it is none of the kinds)."""
    args = typing.get_args(annotation)
    optional = typing.get_origin(annotation) is typing.Union and type(None) in args
    if optional:
        rest = [a for a in args if a is not type(None)]
        annotation = rest[0] if len(rest) == 1 else str
        args = typing.get_args(annotation)
    for scalar in (bool, int, float):
        if annotation is scalar:
            return scalar.__name__, optional
    if typing.get_origin(annotation) in (tuple, list, typing.get_origin(typing.Sequence[int])) and args:
        return ("ints" if args[0] is int else "floats"), optional
    return "str", optional


def options_of(factory: Callable[..., Any]) -> Tuple[MetricOption, ...]:
    """The options of the metric class ``factory``, from its constructor's signature.

    Parameters
    ----------
    factory : callable
        A :class:`~attribmap.evaluate.metric.Metric` class (or a function building one).

    Returns
    -------
    tuple of MetricOption
        In signature order; ``image_size`` (set by the evaluator) is left out.
    """
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # an annotation that does not resolve reads as text
        hints = {}
    options = []
    for parameter in inspect.signature(factory).parameters.values():
        if parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            continue
        if parameter.name in FRAME_OPTIONS:
            continue
        default = None if parameter.default is parameter.empty else parameter.default
        if parameter.name in hints:
            kind, optional = _kind(hints[parameter.name])
        else:  # no annotation: the default's type tells
            kind, optional = _kind(type(default)) if default is not None else ("str", True)
        options.append(MetricOption(parameter.name, kind, default, optional or default is None))
    return tuple(options)
