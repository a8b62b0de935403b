"""The one registry of map extractors: name -> what it is and how to build it.

An entry may hold

* a **post-hoc** :class:`~attribmap.methods.base.Method` or a ready
  :class:`~attribmap.methods.base.Extractor` (usable in :func:`attribmap.explain`), and/or
* a **checkpoint builder** ``build(path, device, **options) -> Extractor`` for learned
  extractors that are files of their own (the weight-map generator), with the checkpoint
  tasks it accepts.

Name prefixes are served by **resolvers** registered by the modules that own them (the
captum adapter registers ``captum:``), so this module imports none of them. Post-hoc
methods given a checkpoint (``i2c=runs/i2c.pt`` in the benchmark) run on that checkpoint's
model; that rule lives with the benchmark, not here.
"""
from __future__ import annotations

import difflib
import threading
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import torch
from torch import nn

from attribmap.errors import MethodError
from attribmap.gradients import as_requests
from attribmap.methods.base import COSTS, SHARED_PASS, Extractor, Method

__all__ = ["Registration", "register_method", "register_extractor", "register_resolver", "unregister_method",
           "get_method", "lookup", "methods", "registered_names", "resolver_prefixes"]

CheckpointBuilder = Callable[..., Extractor]
Resolver = Callable[[str], Union[Method, Extractor]]


@dataclass(frozen=True)
class Registration:
    """One registry entry.

    Attributes
    ----------
    name, description : str
    extractor : attribmap.methods.base.Method, attribmap.Extractor or None
        What :func:`attribmap.explain` runs under this name (None: only buildable from a
        checkpoint).
    from_checkpoint : callable or None
        ``from_checkpoint(path, device, **options) -> Extractor``.
    checkpoint_tasks : tuple of str
        Checkpoint tasks ``from_checkpoint`` accepts (``("weightmap",)``).
    """

    name: str
    description: str
    extractor: Optional[Union[Method, Extractor]] = None
    from_checkpoint: Optional[CheckpointBuilder] = None
    checkpoint_tasks: Tuple[str, ...] = ()


_REGISTRY: Dict[str, Registration] = {}
_RESOLVERS: Dict[str, Tuple[Resolver, Mapping[str, str]]] = {}
_LOCK = threading.Lock()


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name or ":" in name or "@" in name or "=" in name:
        raise MethodError(f"invalid method name {name!r} (non-empty, without ':', '@' or '=')")


def _store(entry: Registration, overwrite: bool) -> None:
    with _LOCK:
        if entry.name in _REGISTRY and not overwrite:
            raise MethodError(f"method {entry.name!r} is already registered (pass overwrite=True to replace it)")
        _REGISTRY[entry.name] = entry


def register_method(name: str, fn: Union[Callable[..., torch.Tensor], Extractor], description: str = "",
                    needs: Union[Iterable, Callable] = (),
                    layer_hint: Optional[Callable[[nn.Module], Optional[str]]] = None,
                    overwrite: bool = False, extra_layers: Optional[Callable] = None, cost: str = SHARED_PASS) -> None:
    """Register a map extractor under ``name``.

    Parameters
    ----------
    name : str
        Name used with ``explain(..., method=name)``.
    fn : callable or attribmap.Extractor
        Either a post-hoc function ``fn(capture, layer, **options) -> (N, h, w)`` reading a
        :class:`~attribmap.tap.Capture`, or an :class:`~attribmap.methods.base.Extractor`.
    description : str
        One line for :func:`methods` (default: the first docstring line).
    needs : iterable or callable
        For post-hoc functions: the gradients they read, as
        :class:`~attribmap.gradients.GradientRequest` objects (or ``"score"`` /
        ``"loss@<alpha>"``), or a callable ``needs(options) -> requests``.
    layer_hint : callable, optional
        For post-hoc functions: ``layer_hint(model) -> str | None`` default layer.
    overwrite : bool
        Replace an existing registration instead of raising.
    extra_layers : callable, optional
        For post-hoc functions that read more layers than the tapped one:
        ``extra_layers(model, layer, options) -> names``, tapped in the same forward pass
        (:class:`~attribmap.methods.base.Method`).
    cost : {"shared", "extra"}
        For post-hoc functions: ``"shared"`` (the default) when the function reads only the
        capture's shared forward pass, ``"extra"`` when it runs the model again (the benchmark
        then times it on its own).

    Examples
    --------
    >>> import attribmap, torch
    >>> from attribmap.gradients import SCORE
    >>> def gradient_energy(capture, layer):
    ...     return capture.score_grad(layer).pow(2).sum(dim=1)
    >>> attribmap.register_method("gradient-energy", gradient_energy, needs={SCORE})
    >>> attribmap.unregister_method("gradient-energy")
    """
    _check_name(name)
    if isinstance(fn, Extractor):
        if description:
            fn.description = description
        entry = Registration(name, fn.description, extractor=fn)
    elif callable(fn):
        if cost not in COSTS:
            raise MethodError(f"cost of method {name!r} must be one of {COSTS}; got {cost!r}")
        requests = needs if callable(needs) else as_requests(needs)
        text = description or (fn.__doc__ or "").strip().split("\n")[0]
        method = Method(name, fn, text, requests, layer_hint, extra_layers=extra_layers, cost=cost)
        entry = Registration(name, text, extractor=method)
    else:
        raise MethodError(f"method {name!r} must be callable or an Extractor; got {type(fn).__name__}")
    _store(entry, overwrite)


def register_extractor(name: str, from_checkpoint: CheckpointBuilder, description: str,
                       checkpoint_tasks: Iterable[str] = (), overwrite: bool = False) -> None:
    """Register a learned extractor that is built from a checkpoint file of its own.

    Parameters
    ----------
    name : str
        Name used in ``attribmap bench --extractor NAME=CHECKPOINT``.
    from_checkpoint : callable
        ``from_checkpoint(path, device, **options) -> Extractor``.
    description : str
        One line for :func:`methods`.
    checkpoint_tasks : iterable of str
        The checkpoint ``task`` values the builder accepts (checked before building).
    overwrite : bool
        Replace an existing registration instead of raising.
    """
    _check_name(name)
    if not callable(from_checkpoint):
        raise MethodError(f"from_checkpoint of {name!r} must be callable; got {type(from_checkpoint).__name__}")
    _store(Registration(name, description, from_checkpoint=from_checkpoint,
                        checkpoint_tasks=tuple(checkpoint_tasks)), overwrite)


def register_resolver(prefix: str, resolve: Resolver, listing: Optional[Mapping[str, str]] = None) -> None:
    """Serve every name ``"<prefix>:<rest>"`` with ``resolve(rest)``.

    Parameters
    ----------
    prefix : str
        The prefix without the colon (``"captum"``).
    resolve : callable
        ``resolve(rest) -> Method | Extractor``; raises :class:`~attribmap.errors.MethodError`
        for an unknown ``rest``.
    listing : mapping, optional
        ``rest -> description`` of commonly used names, shown by :func:`methods`.
    """
    if not isinstance(prefix, str) or not prefix or ":" in prefix:
        raise MethodError(f"invalid resolver prefix {prefix!r}")
    with _LOCK:
        _RESOLVERS[prefix] = (resolve, dict(listing or {}))


def unregister_method(name: str) -> None:
    """Remove a registered method (raises MethodError if unknown).

    Parameters
    ----------
    name : str
        Registry name of the method, as given to :func:`register_method`.

    Raises
    ------
    MethodError
        No method is registered under ``name``.
    """
    with _LOCK:
        if name not in _REGISTRY:
            raise MethodError(f"no method named {name!r}")
        del _REGISTRY[name]


def lookup(name: str) -> Registration:
    """The registration of ``name`` (a resolver builds one for prefixed names).

    Raises
    ------
    MethodError
        Unknown name; the message lists the closest registered names.
    """
    if not isinstance(name, str):
        raise MethodError(f"method must be a name or an Extractor; got {type(name).__name__}")
    entry = _REGISTRY.get(name)
    if entry is not None:
        return entry
    prefix, colon, rest = name.partition(":")
    if colon and prefix in _RESOLVERS:
        found = _RESOLVERS[prefix][0](rest)
        return Registration(name, getattr(found, "description", ""), extractor=found)
    close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    prefixes = "".join(f", or {p}:<Name>" for p in sorted(_RESOLVERS))
    raise MethodError(f"unknown method {name!r}{hint} (known: {', '.join(sorted(_REGISTRY))}{prefixes})")


def get_method(name: Union[str, Method, Extractor]) -> Union[Method, Extractor]:
    """The extractor :func:`attribmap.explain` runs for ``name``.

    Raises
    ------
    MethodError
        Unknown name, or a learned extractor that exists only as a checkpoint file.
    """
    if isinstance(name, (Method, Extractor)):
        return name
    if not isinstance(name, str) and callable(name):
        raise MethodError("pass a callable method through register_method() or wrap it in an "
                          "Extractor subclass")
    entry = lookup(name)
    if entry.extractor is None:
        raise MethodError(f"{name!r} is a learned extractor built from its checkpoint file: load it "
                          f"(e.g. {name}=PATH in `attribmap bench --extractor`) instead of naming it alone")
    return entry.extractor


def methods() -> Dict[str, str]:
    """Registered extractors (name -> one-line description), plus common prefixed names."""
    listing = {name: entry.description for name, entry in sorted(_REGISTRY.items())}
    for prefix, (_, names) in sorted(_RESOLVERS.items()):
        for rest, description in names.items():
            listing[f"{prefix}:{rest}"] = description
    return listing


def resolver_prefixes() -> Tuple[str, ...]:
    """The registered name prefixes (``("captum",)`` by default)."""
    return tuple(sorted(_RESOLVERS))


def registered_names() -> List[str]:
    """Names registered in this process (prefixed names are created on demand)."""
    return sorted(_REGISTRY)
