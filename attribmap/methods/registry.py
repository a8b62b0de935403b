"""Registry of map extractors by name.

Two kinds of extractors share the registry:

* **post-hoc methods** (:class:`Method`): pure functions of a :class:`~attribmap.tap.Capture`
  and the tapped layer name, returning a raw map (N, h, w); several of them are served by
  one forward pass and shared gradients;
* **extractor objects** (:class:`Extractor`): anything callable as
  ``extractor(images, model, target)`` returning raw maps (N, h, w) - captum methods,
  learned extractors, user code. They run on their own.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Dict, FrozenSet, Iterable, List, Optional, Union

import torch
from torch import nn

from attribmap.errors import MethodError

__all__ = ["Method", "Extractor", "register_method", "get_method", "methods", "unregister_method"]


@dataclass(frozen=True)
class Method:
    """A post-hoc extractor: ``fn(capture, layer, **options) -> raw map (N, h, w)``.

    Attributes
    ----------
    name : str
        Registry name.
    fn : callable
        Pure function of the capture; must not modify it.
    description : str
        One line shown by :func:`attribmap.methods`.
    needs : frozenset of str
        Gradients the method reads (``"score"``, ``"loss@<alpha>"``), computed together for
        all methods of one call.
    layer_hint : callable, optional
        ``layer_hint(model) -> str | None``: the layer this method taps when the caller gives
        none (for example the class-map layer of an I2C model).
    """

    name: str
    fn: Callable[..., torch.Tensor]
    description: str
    needs: FrozenSet[str] = field(default_factory=frozenset)
    layer_hint: Optional[Callable[[nn.Module], Optional[str]]] = None


class Extractor:
    """Base class for extractors that run on their own (not from a shared capture).

    Subclasses implement :meth:`__call__` and set :attr:`name` and :attr:`description`.
    ``uses_layer = True`` asks :func:`attribmap.explain` to pass the resolved layer module as
    the keyword argument ``layer``.
    """

    name: str = "extractor"
    description: str = ""
    uses_layer: bool = False
    #: False for class-agnostic extractors: no forward pass is spent to find top-1 targets.
    needs_target: bool = True

    def __call__(self, images: torch.Tensor, model: Optional[nn.Module], target: Optional[torch.Tensor],
                 **options) -> torch.Tensor:  # pragma: no cover - interface
        """Return raw maps (N, h, w) for ``images`` (N, C, H, W) and ``target`` (N,) or None."""
        raise NotImplementedError


_REGISTRY: Dict[str, Union[Method, Extractor]] = {}
_LOCK = threading.Lock()


def register_method(name: str, fn: Union[Callable[..., torch.Tensor], Extractor], description: str = "",
                    needs: Iterable[str] = (), layer_hint: Optional[Callable[[nn.Module], Optional[str]]] = None,
                    overwrite: bool = False) -> None:
    """Register a map extractor under ``name``.

    Parameters
    ----------
    name : str
        Name used with ``explain(..., method=name)``.
    fn : callable or Extractor
        Either a post-hoc function ``fn(capture, layer, **options) -> (N, h, w)`` reading a
        :class:`~attribmap.tap.Capture`, or an :class:`Extractor` instance.
    description : str
        One line for :func:`methods`.
    needs : iterable of str
        For post-hoc functions: the gradients they read (``"score"`` for dz_c/dF,
        ``"loss@10.0"`` for the DGL loss gradient with alpha = 10).
    layer_hint : callable, optional
        For post-hoc functions: ``layer_hint(model) -> str | None`` default layer.
    overwrite : bool
        Replace an existing registration instead of raising.
    """
    if not isinstance(name, str) or not name or name.startswith("captum:"):
        raise MethodError(f"invalid method name {name!r} (non-empty, not starting with 'captum:')")
    if isinstance(fn, Extractor):
        entry: Union[Method, Extractor] = fn
        if description:
            fn.description = description
    elif callable(fn):
        entry = Method(name, fn, description or (fn.__doc__ or "").strip().split("\n")[0],
                       frozenset(needs), layer_hint)
    else:
        raise MethodError(f"method {name!r} must be callable or an Extractor; got {type(fn).__name__}")
    with _LOCK:
        if name in _REGISTRY and not overwrite:
            raise MethodError(f"method {name!r} is already registered (pass overwrite=True to replace it)")
        _REGISTRY[name] = entry


def unregister_method(name: str) -> None:
    """Remove a registered method (raises MethodError if unknown)."""
    with _LOCK:
        if name not in _REGISTRY:
            raise MethodError(f"no method named {name!r}")
        del _REGISTRY[name]


def get_method(name: Union[str, Method, Extractor]) -> Union[Method, Extractor]:
    """Look a method up by name; ``captum:<Name>`` builds a captum adapter on demand."""
    if isinstance(name, (Method, Extractor)):
        return name
    if not isinstance(name, str):
        if callable(name):
            raise MethodError("pass a callable method through register_method() or wrap it in an "
                              "Extractor subclass")
        raise MethodError(f"method must be a name or an Extractor; got {type(name).__name__}")
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name.startswith("captum:"):
        from attribmap.methods.captum_methods import CaptumMethod

        return CaptumMethod(name[len("captum:"):])
    import difflib

    close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    raise MethodError(f"unknown method {name!r}{hint} (known: {', '.join(sorted(_REGISTRY))}, "
                      "or captum:<Name>)")


def methods() -> Dict[str, str]:
    """Registered methods (name -> one-line description), including common captum ones."""
    from attribmap.methods.captum_methods import LISTED_CAPTUM

    listing = {name: entry.description for name, entry in sorted(_REGISTRY.items())}
    for cname, desc in LISTED_CAPTUM.items():
        listing[f"captum:{cname}"] = desc
    return listing


def registered_names() -> List[str]:
    """Names registered in this process (captum names are created on demand)."""
    return sorted(_REGISTRY)
