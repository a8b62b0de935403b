"""Extractor specifications as one string: ``NAME[@LAYER][=CHECKPOINT][:KEY=VALUE...]``.

The same syntax names an extractor in :meth:`attribmap.Explainer.explain_many`, in
``attribmap explain --method`` and in ``attribmap bench --methods / --extractor``:

==============================================  =============================================
spec                                            meaning
==============================================  =============================================
``gradcam``                                     a registered method with its defaults
``dgl@layer3``                                  tapped at ``layer3`` (not the default layer)
``dgl:alpha=5``                                 a keyword option (a Python literal, else a
                                                string)
``dgl@Mixed_6e:scales=(0.75,1,1.25):close=3``   several options; ``scales`` / ``close`` are
                                                the generic multi-scale and closing options
``i2c=runs/i2c.pt``                             the method run on a checkpoint's model
``weightmap=runs/wm.pt``                        a learned extractor built from its checkpoint
``captum:IntegratedGradients:n_steps=16``       a name with a registered prefix
``i2c=ablation.pt:label=i2c-ablation``          named ``i2c-ablation`` in results
==============================================  =============================================

Examples
--------
>>> spec = ExtractorSpec.parse("dgl@layer3:alpha=5")
>>> spec.name, spec.layer, spec.options
('dgl', 'layer3', (('alpha', 5),))
>>> spec.label
'dgl@layer3:alpha=5'
>>> ExtractorSpec.parse("i2c=runs/i2c.pt").label
'i2c'
>>> split_specs("cam, dgl:scales=(1, 0.5),captum:Saliency")
['cam', 'dgl:scales=(1, 0.5)', 'captum:Saliency']
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from attribmap.errors import MethodError

__all__ = ["ExtractorSpec", "split_specs", "GENERIC_OPTIONS"]

#: Options that every extractor accepts (handled by the caller, not by the method):
#: multi-scale averaging, morphological closing, and the name results use.
GENERIC_OPTIONS = ("scales", "close", "label")

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.+\-]*")
_SUFFIX = re.compile(r"[A-Za-z0-9_.+\-]+")  # after a prefix: "captum:Saliency", "const:2"
_OPTION = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.S)


def _literal(text: str) -> Any:
    """A Python literal when ``text`` is one (``5``, ``0.5``, ``True``, ``(1, 2)``), else the text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


def _split_top_level(text: str, separator: str) -> List[str]:
    """Split on ``separator`` outside parentheses and brackets."""
    parts, depth, current = [], 0, []
    for char in text:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(0, depth - 1)
        if char == separator and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def split_specs(text: str) -> List[str]:
    """``"cam, dgl@layer3,captum:Saliency"`` -> a list of spec strings.

    Commas inside parentheses or brackets (``scales=(1, 0.5)``) do not split; blanks and
    repeats are dropped, order kept.

    Parameters
    ----------
    text : str
        Comma-separated extractor specs (anything else is converted with ``str``).

    Returns
    -------
    list of str
        The specs, stripped, in order of first appearance.
    """
    out: List[str] = []
    for part in _split_top_level(str(text), ","):
        part = part.strip()
        if part and part not in out:
            out.append(part)
    return out


@dataclass(frozen=True)
class ExtractorSpec:
    """One extractor as the user named it.

    Attributes
    ----------
    name : str
        Registry name (``"dgl"``, ``"captum:Saliency"``, ``"weightmap"``, ...).
    layer : str or None
        Layer override (``@LAYER``).
    checkpoint : str or None
        Checkpoint file (``=CHECKPOINT``): the model the method runs on, or the learned
        extractor's own file.
    options : tuple of (key, value)
        Keyword options in the order given (hashable).
    """

    name: str
    layer: Optional[str] = None
    checkpoint: Optional[str] = None
    options: Tuple[Tuple[str, Any], ...] = ()

    @classmethod
    def parse(cls, text: str) -> "ExtractorSpec":
        """Parse ``NAME[@LAYER][=CHECKPOINT][:KEY=VALUE...]``.

        Parameters
        ----------
        text : str
            One extractor spec (``"gradcam"``, ``"dgl@layer3:alpha=5"``,
            ``"captum:Saliency"``).

        Returns
        -------
        ExtractorSpec

        Raises
        ------
        MethodError
            Empty text, a malformed name, an option without ``KEY=VALUE``, or a repeated key.
        """
        if not isinstance(text, str) or not text.strip():
            raise MethodError(f"an extractor must be named as NAME[@LAYER][=CHECKPOINT][:KEY=VALUE...]; "
                              f"got {text!r}")
        from attribmap.methods.registry import resolver_prefixes

        segments = _split_top_level(text.strip(), ":")
        head = segments.pop(0).strip()
        if head in resolver_prefixes() and segments:  # "captum:Saliency": the prefix's next token
            head = f"{head}:{segments.pop(0).strip()}"
        name_part, _, checkpoint = head.partition("=")
        name, _, layer = name_part.partition("@")
        prefix, _, rest = name.partition(":")
        if not _NAME.fullmatch(prefix) or (rest and not _SUFFIX.fullmatch(rest)) or (":" in name and not rest):
            raise MethodError(f"bad extractor name {name!r} in {text!r}; expected letters, digits, '_', '-', "
                              "'.' or '+' (e.g. 'gradcam', 'dgl@layer3', 'captum:Saliency')")
        if "@" in name_part and not layer.strip():
            raise MethodError(f"empty layer after '@' in {text!r}")
        if "=" in head and not checkpoint.strip():
            raise MethodError(f"empty checkpoint after '=' in {text!r}")
        options: Dict[str, Any] = {}
        for segment in segments:
            match = _OPTION.fullmatch(segment.strip())
            if match is None:
                raise MethodError(f"bad option {segment!r} in {text!r}; expected KEY=VALUE (e.g. 'alpha=5')")
            key, value = match.group(1), match.group(2).strip()
            if key in options:
                raise MethodError(f"option {key!r} given twice in {text!r}")
            options[key] = _hashable(_literal(value))
        return cls(name=name, layer=layer.strip() or None, checkpoint=checkpoint.strip() or None,
                   options=tuple(options.items()))

    @property
    def option_dict(self) -> Dict[str, Any]:
        """The options as a dict."""
        return dict(self.options)

    @property
    def method_options(self) -> Dict[str, Any]:
        """The options passed to the method (all but :data:`GENERIC_OPTIONS`)."""
        return {k: v for k, v in self.options if k not in GENERIC_OPTIONS}

    @property
    def generic_options(self) -> Dict[str, Any]:
        """``scales`` / ``close`` / ``label`` when given."""
        return {k: v for k, v in self.options if k in GENERIC_OPTIONS}

    @property
    def label(self) -> str:
        """How results name this extractor: the ``label`` option, else the spec without its
        checkpoint."""
        given = self.option_dict.get("label")
        if given is not None:
            return str(given)
        text = self.name + (f"@{self.layer}" if self.layer else "")
        return text + "".join(f":{k}={_format(v)}" for k, v in self.options)

    def __str__(self) -> str:
        text = self.name + (f"@{self.layer}" if self.layer else "")
        text += f"={self.checkpoint}" if self.checkpoint else ""
        return text + "".join(f":{k}={_format(v)}" for k, v in self.options)


def _format(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):
        return "(" + ",".join(_format(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)
