"""What a post-hoc method asks the capture to differentiate: small typed gradient requests.

A request says which vector ``v`` (N, K) of the logits is pulled back to the tapped layer:
the capture computes ``sum_j v[n, j] * dz_j / dF`` for every request of a call in one batched
vector-Jacobian product and caches the results by ``(layer, request)``. A new kind of
gradient is a new small class with a :meth:`GradientRequest.grad_output` method.

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
from typing import FrozenSet, Iterable, Union

import torch
import torch.nn.functional as F

__all__ = ["GradientRequest", "ScoreGradient", "LossGradient", "SCORE", "DEFAULT_DGL_ALPHA", "as_requests"]

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
