"""What a post-hoc method asks the capture to differentiate: small typed gradient requests.

A request says which vector ``v`` (N, K) of the logits is pulled back to the tapped layer:
the capture computes ``sum_j v[n, j] * dz_j / dF`` for every request of a call in one batched
vector-Jacobian product and caches the results by ``(layer, request)``. A new kind of
gradient is a new small class with a :meth:`GradientRequest.grad_output` method.

What is no pull-back of one logit-space vector (a Hessian-vector product, the gradients of
every layer) is a :class:`Derivative`: a small hashable class, defined next to the method that
reads it, whose :meth:`Derivative.compute` the capture calls once and caches
(:meth:`attribmap.tap.Capture.derive`). The tap itself knows no method.

Examples
--------
>>> SCORE
ScoreGradient()
>>> LossGradient(alpha=10.0) == LossGradient()
True
>>> sorted(map(repr, as_requests(["score", "loss@5"])))
['LossGradient(alpha=5.0)', 'ScoreGradient()']
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import FrozenSet, Iterable, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F

from attribmap.errors import LayerError

__all__ = ["GradientRequest", "ScoreGradient", "LossGradient", "FinerGradient", "Derivative", "SCORE",
           "DEFAULT_DGL_ALPHA", "NO_GRAPH", "as_requests", "vjp_rows"]

#: Why no gradient of a tapped layer exists.
NO_GRAPH = "the logits do not depend on the tapped layer; is the layer part of the path from input to output?"

#: alpha of the DGL loss gradient in the authors' code.
DEFAULT_DGL_ALPHA = 10.0


class GradientRequest:
    """Base class: a gradient of the tapped layer, defined by its logit-space vector."""

    def grad_output(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The vector ``v`` (N, K) pulled back through the network.

        Parameters
        ----------
        logits : torch.Tensor
            (N, K) logits of the forward pass (their values, not their graph, are used).
        targets : torch.Tensor
            (N,) long target class per image.
        """
        raise NotImplementedError  # pragma: no cover - interface


@dataclass(frozen=True)
class ScoreGradient(GradientRequest):
    """G^c = dz_c / dF: the gradient of the target **logit** (v = onehot(c))."""

    def grad_output(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.one_hot(targets, logits.shape[1]).to(logits.dtype)


@dataclass(frozen=True)
class LossGradient(GradientRequest):
    """G^L of DGL: v = softmax(z) - alpha * onehot(c) (the authors' TensorFlow semantics).

    This is *not* autograd of alpha * cross-entropy, which would give alpha * (p - onehot).

    Attributes
    ----------
    alpha : float
        Weight of the one-hot term (10 in the authors' code).
    """

    alpha: float = DEFAULT_DGL_ALPHA

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", float(self.alpha))

    def grad_output(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        z = logits.detach()
        p = torch.softmax(z.float(), dim=1).to(z.dtype)
        return p - self.alpha * F.one_hot(targets, z.shape[1]).to(z.dtype)


@dataclass(frozen=True)
class FinerGradient(GradientRequest):
    """Finer-CAM's contrastive score: the target against its most similar classes.

    The references d_1..d_T of a row are the T classes whose logits are closest to the
    target's (the target excluded). Two definitions of the score s:

    * ``weighting="mean"`` (torchcam, the paper's averaged form): s = z_c - gamma * mean_t z_{d_t};
    * ``weighting="softmax"`` (pytorch-grad-cam's ``FinerWeightedTarget``):
      s = sum_t p_t (z_c - gamma z_{d_t}) / (sum_t p_t + 1e-9) with p = softmax(z), the
      gradient taken through the probabilities too.

    Attributes
    ----------
    gamma : float
        Comparison strength.
    references : int
        T, capped at K - 1.
    weighting : {"mean", "softmax"}
        Which definition of s (above) is used.
    """

    gamma: float = 0.6
    references: int = 3
    weighting: str = "mean"

    def __post_init__(self) -> None:
        object.__setattr__(self, "gamma", float(self.gamma))
        if isinstance(self.references, bool) or not isinstance(self.references, int) or self.references < 1:
            raise ValueError(f"references must be a positive int; got {self.references!r}")
        if self.weighting not in ("mean", "softmax"):
            raise ValueError(f"weighting must be 'mean' or 'softmax'; got {self.weighting!r}")

    def reference_classes(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(N, T) classes whose logits are closest to each row's target logit.

        Parameters
        ----------
        logits : torch.Tensor
            (N, K) logits (their values, not their graph, are used).
        targets : torch.Tensor
            (N,) long target class per row; it is never one of its own references.

        Returns
        -------
        torch.Tensor
            (N, T) long class indices, the closest first, T = min(``references``, K - 1).

        Raises
        ------
        ValueError
            The model has fewer than two classes.
        """
        z = logits.detach()
        count = min(self.references, z.shape[1] - 1)
        if count < 1:
            raise ValueError("Finer-CAM needs a model with at least two classes")
        distance = (z - z.gather(1, targets.view(-1, 1))).abs()
        distance.scatter_(1, targets.view(-1, 1), float("inf"))
        return distance.topk(count, dim=1, largest=False).indices

    def score(self, logits: torch.Tensor, targets: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        """The contrastive score s (N,) of ``logits`` (differentiable).

        Parameters
        ----------
        logits : torch.Tensor
            (N, K) logits; the score is differentiable with respect to them.
        targets : torch.Tensor
            (N,) long target class per row.
        references : torch.Tensor
            (N, T) long reference classes per row, as :meth:`reference_classes` returns.

        Returns
        -------
        torch.Tensor
            (N,) score s of each row, as defined by ``weighting``.
        """
        target = logits.gather(1, targets.view(-1, 1))[:, 0]
        others = logits.gather(1, references)
        if self.weighting == "mean":
            return target - self.gamma * others.mean(dim=1)
        p = torch.softmax(logits, dim=1).gather(1, references)
        return (p * (target[:, None] - self.gamma * others)).sum(dim=1) / (p.sum(dim=1) + 1e-9)

    def grad_output(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # the caller may be inside inference mode: autograd needs normal tensors
        with torch.inference_mode(False), torch.enable_grad():
            z = logits.detach().clone().requires_grad_(True)
            targets = targets.clone()
            references = self.reference_classes(z, targets)
            (v,) = torch.autograd.grad(self.score(z, targets, references).sum(), z)
        return v.detach()


class Derivative:
    """Base class: a quantity computed from a capture beyond the shared vector-Jacobian product.

    Subclasses are hashable (frozen dataclasses): equal requests share one cache entry of
    :meth:`attribmap.tap.Capture.derive`.
    """

    def compute(self, capture, layer: str):
        """What the request asks for, computed from ``capture`` (called once per layer and request).

        Parameters
        ----------
        capture : attribmap.tap.Capture
            The recorded forward pass (its :meth:`~attribmap.tap.Capture.graph_input`,
            logits, targets, model and images).
        layer : str
            The tapped layer the request was made for.
        """
        raise NotImplementedError  # pragma: no cover - interface


#: The request most methods make.
SCORE = ScoreGradient()

RequestLike = Union[GradientRequest, str]


def as_requests(needs: Iterable[RequestLike]) -> FrozenSet[GradientRequest]:
    """Normalize gradient ``needs``: requests pass through; ``"score"`` and ``"loss@<alpha>"``
    (the string forms :func:`attribmap.register_method` also accepts) become requests.

    Raises
    ------
    ValueError
        A string that names no gradient kind.
    """
    out = set()
    for need in needs:
        if isinstance(need, GradientRequest):
            out.add(need)
        elif need == "score":
            out.add(SCORE)
        elif isinstance(need, str) and need.startswith("loss@"):
            try:
                out.add(LossGradient(float(need[len("loss@"):])))
            except ValueError as exc:
                raise ValueError(f"bad gradient need {need!r}: expected 'loss@<alpha>' with a number") from exc
        else:
            raise ValueError(f"unknown gradient need {need!r}; expected 'score', 'loss@<alpha>' or a "
                             "GradientRequest")
    return frozenset(out)


def vjp_rows(outputs: torch.Tensor, inputs: torch.Tensor, rows: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """Vector-Jacobian products of ``outputs`` wrt ``inputs``, one per row of grad outputs.

    One batched ``torch.autograd.grad`` call (``is_grads_batched``), or one call per row where
    a backward formula has no batching rule; the graph is retained.

    Parameters
    ----------
    outputs : torch.Tensor
        (N, K) logits, part of a graph that starts at ``inputs``.
    inputs : torch.Tensor
        The recorded layer output the products are taken with respect to.
    rows : sequence of torch.Tensor
        Grad outputs, each shaped like ``outputs``.

    Returns
    -------
    list of torch.Tensor
        One gradient per row, shaped like ``inputs`` (zeros where ``outputs`` does not depend on it).

    Raises
    ------
    LayerError
        ``outputs`` has no graph at all.
    """
    if outputs.grad_fn is None:
        raise LayerError(NO_GRAPH)
    with torch.enable_grad():
        if len(rows) == 1:
            (grad,) = torch.autograd.grad(outputs, inputs, rows[0], retain_graph=True, allow_unused=True)
            return [_zeros_if_none(grad, inputs)]
        stacked = torch.stack(list(rows))
        try:
            (grad,) = torch.autograd.grad(outputs, inputs, stacked, retain_graph=True,
                                          is_grads_batched=True, allow_unused=True)
            grad = _zeros_if_none(grad, inputs.expand(len(rows), *inputs.shape))
            return list(grad.unbind(0))
        except RuntimeError:
            # some backward formulas have no batching rule: fall back to one VJP per row
            return [_zeros_if_none(torch.autograd.grad(outputs, inputs, row, retain_graph=True,
                                                       allow_unused=True)[0], inputs) for row in rows]


def _zeros_if_none(grad: Optional[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like) if grad is None else grad.detach()
