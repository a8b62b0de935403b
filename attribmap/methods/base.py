"""The two shapes of a map extractor, shared by the registry, the built-in methods and captum.

* :class:`Method` - a **post-hoc** method: a pure function of a
  :class:`~attribmap.tap.Capture` (activations, logits, targets, cached gradients) and the
  tapped layer's name. Every post-hoc method of one call is served by **one** forward pass
  and one batched vector-Jacobian product for all their gradient requests.
* :class:`Extractor` - anything that runs on its own: captum methods (their own forward and
  backward passes), learned extractors (a generator, a classifier of their own), user code.

Both return *raw* maps (N, h, w): post-processing (upsampling, min-max) is the caller's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, FrozenSet, Mapping, Optional, Sequence, Union

import torch
from torch import nn

from attribmap.gradients import GradientRequest

__all__ = ["Method", "Extractor", "ExtractorResult", "Needs", "SHARED_PASS", "EXTRA_PASSES", "COSTS"]

#: Cost of a method that reads only the shared forward pass (and its shared backward passes).
SHARED_PASS = "shared"
#: Cost of a method that runs the model again (masked, noisy or ablated inputs, a graph from the input).
EXTRA_PASSES = "extra"
#: The costs a method may declare.
COSTS = (SHARED_PASS, EXTRA_PASSES)

#: A method's gradient needs: fixed, or a function of its keyword options.
Needs = Union[FrozenSet[GradientRequest], Callable[[Mapping[str, Any]], FrozenSet[GradientRequest]]]


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
    needs : frozenset of GradientRequest, or callable
        Gradients the method reads, computed together for all methods of one call; a callable
        ``needs(options) -> frozenset`` when they depend on the options (DGL's ``alpha``).
    layer_hint : callable, optional
        ``layer_hint(model) -> str | None``: the layer this method taps when the caller gives
        none (for example the class-map layer of an I2C model).
    extra_layers : callable, optional
        ``extra_layers(model, layer, options) -> names``: more layers the method reads besides
        the tapped one (RefineCAM's), tapped in the same forward pass when they can be named
        before it; the method must still work (one more forward pass) when they were not.
    cost : {"shared", "extra"}
        :data:`SHARED_PASS`: the method reads the one shared forward pass (and the gradients
        of the capture's shared backward passes) and runs no forward of its own;
        :data:`EXTRA_PASSES`: it runs the model again (Score-CAM's masked inputs, FullGrad's
        graph from the input, ...). The benchmark times extra-pass methods on their own.
    """

    name: str
    fn: Callable[..., torch.Tensor]
    description: str
    needs: Needs = field(default_factory=frozenset)
    layer_hint: Optional[Callable[[nn.Module], Optional[str]]] = None
    extra_layers: Optional[Callable[[nn.Module, str, Mapping[str, Any]], Sequence[str]]] = None
    cost: str = SHARED_PASS

    #: Post-hoc methods share the caller's tapped forward pass.
    shared_forward = True
    #: They read the target class of every image.
    needs_target = True

    def __post_init__(self) -> None:
        if self.cost not in COSTS:
            raise ValueError(f"cost of method {self.name!r} must be one of {COSTS}; got {self.cost!r}")

    def needs_for(self, options: Optional[Mapping[str, Any]] = None) -> FrozenSet[GradientRequest]:
        """The gradient requests of one call with keyword ``options``."""
        if callable(self.needs):
            return frozenset(self.needs(dict(options or {})))
        return frozenset(self.needs)


@dataclass
class ExtractorResult:
    """What an extractor returns for a batch.

    Attributes
    ----------
    maps : torch.Tensor
        (N, h, w) raw maps.
    logits : torch.Tensor or None
        (N, K) logits of the extractor's **own** classifier when it has one (an I2C model
        loaded from its checkpoint); None when it explains the caller's model or none.
    """

    maps: torch.Tensor
    logits: Optional[torch.Tensor] = None


class Extractor:
    """Base class for extractors that run on their own (not from a shared capture).

    Subclasses implement :meth:`__call__` and set :attr:`name` and :attr:`description`;
    one that carries its own classifier overrides :meth:`run` to return its logits too.

    Attributes
    ----------
    name, description : str
        Registry name and one-line description.
    uses_layer : bool
        True asks the caller to pass the resolved layer module as keyword ``layer``.
    needs_target : bool
        False for class-agnostic extractors: no forward pass is spent to find top-1 targets.
    shared_forward : bool
        Always False here: an extractor runs its own passes.
    cost : str
        Always :data:`EXTRA_PASSES` here.
    """

    name: str = "extractor"
    description: str = ""
    uses_layer: bool = False
    needs_target: bool = True
    shared_forward = False
    cost = EXTRA_PASSES

    def __call__(self, images: torch.Tensor, model: Optional[nn.Module], target: Optional[torch.Tensor],
                 **options) -> torch.Tensor:  # pragma: no cover - interface
        """Return raw maps (N, h, w) for ``images`` (N, C, H, W) and ``target`` (N,) or None."""
        raise NotImplementedError

    def run(self, images: torch.Tensor, model: Optional[nn.Module], target: Optional[torch.Tensor],
            **options) -> ExtractorResult:
        """Maps (and the logits of an own classifier, if any) of one batch.

        The default calls :meth:`__call__` and returns no logits.

        Parameters
        ----------
        images : torch.Tensor
            (N, C, H, W) input batch.
        model : nn.Module or None
            The classifier to explain; None for an extractor that needs none.
        target : torch.Tensor or None
            (N,) long target class per image; None for a class-agnostic extractor.
        **options
            Keyword options of the call, passed on to :meth:`__call__`.

        Returns
        -------
        ExtractorResult
            Raw maps (N, h, w), and logits (N, K) of the extractor's own classifier or None.
        """
        return ExtractorResult(self(images, model, target, **options))
