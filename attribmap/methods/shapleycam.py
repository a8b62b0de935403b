"""ShapleyCAM (Cai, 2025): Grad-CAM weights corrected by a second-order term.

w_k = mean_ij (g - H F / 2)_k with g = ds/dF and H F the Hessian of the score applied to the
activations (:class:`ScoreHessian`, a request of the capture: a double backward through its
graph); map ReLU(sum_k w_k F_k). Where the logits are linear in F (F feeds global average
pooling and a linear classifier) H F = 0 and ShapleyCAM equals Grad-CAM.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import torch

from attribmap.gradients import Derivative
from attribmap.methods.gradcam import weighted_channels
from attribmap.methods.perturbation import check_choice
from attribmap.tap import Capture
from attribmap.targets import interleave_rows

__all__ = ["shapleycam", "ScoreHessian", "SCORES"]

SCORES = ("logit", "rest")


@dataclass(frozen=True)
class ScoreHessian(Derivative):
    """The gradient of a per-row score and its Hessian applied to the activations.

    ``capture.derive(ScoreHessian(score), layer)`` returns ``(g, H F)`` with ``g = ds/dF`` and
    ``H F = d/dF <g, F>`` (F held fixed in the product), both (rows, C, h, w) on the layer's
    grid (one row per image and target, as :meth:`~attribmap.tap.Capture.activations`), from
    one double backward per target slot through the capture's graph. ``H F`` is zero where
    the logits are linear in F.

    Attributes
    ----------
    score : {"logit", "rest"}
        s = z_c (the target logit), or ReST, s = z_c - CE(z, c) = z_c + log p_c.
    """

    score: str = "logit"

    def __post_init__(self) -> None:
        if self.score not in SCORES:
            raise ValueError(f"score must be 'logit' or 'rest'; got {self.score!r}")

    def compute(self, capture: Capture, layer: str) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(g, H F)``, each (rows, C, h, w) on ``layer``'s grid (see the class docstring).

        Parameters
        ----------
        capture : Capture
            The recorded forward pass (its graph from ``layer`` to the logits is differentiated twice).
        layer : str
            The tapped layer F.

        Returns
        -------
        tuple of torch.Tensor
            ``(g, H F)``, each (rows, C, h, w).
        """
        feats = capture.graph_input(layer)
        layout = capture.layout(layer)
        grads, hvps = [], []
        with torch.inference_mode(False), torch.enable_grad():
            z = capture.image_logits
            rows = torch.arange(z.shape[0], device=z.device)
            # one double backward per target slot (a normal tensor even in inference mode)
            for column in capture.target_table.clone().unbind(1):
                chosen = z[rows, column]
                if self.score == "rest":
                    chosen = chosen + torch.log_softmax(z.float(), dim=1)[rows, column].to(z.dtype)
                (grad,) = torch.autograd.grad(chosen.sum(), feats, create_graph=True, retain_graph=True,
                                              allow_unused=True)
                if grad is None:
                    grad = torch.zeros_like(feats)
                hvp = None
                if grad.requires_grad:
                    (hvp,) = torch.autograd.grad(grad, feats, grad_outputs=feats.detach(), retain_graph=True,
                                                 allow_unused=True)
                grads.append(layout.to_grid(grad.detach()))
                hvps.append(layout.to_grid(torch.zeros_like(feats) if hvp is None else hvp.detach()))
        return interleave_rows(grads), interleave_rows(hvps)


def shapleycam(capture: Capture, layer: str, score: str = "logit") -> torch.Tensor:
    """ShapleyCAM: ReLU(sum_k mean_ij(g - H F / 2)_k F_k); (N, h, w).

    Parameters
    ----------
    capture : Capture
        The recorded forward pass: activations of ``layer`` (N, C, h, w), logits and
        targets, one row per image and target class, and the cached gradients.
    layer : str
        Name of the tapped layer whose activations F are read.
    score : {"logit", "rest"}
        The explained score: the target logit (pytorch-grad-cam's default target), or ReST,
        z_c - CE(z, c), the residual softmax target the paper proposes.

    Returns
    -------
    torch.Tensor
        (N, h, w) raw maps on the layer's grid, one per row of ``capture``.

    References
    ----------
    Cai, "CAMs as Shapley Value-based Explainers", arXiv:2501.06261, 2025.
    """
    check_choice(score, "score", SCORES)
    grad, hvp = capture.derive(ScoreHessian(score), layer)
    weights = (grad - 0.5 * hvp).mean(dim=(2, 3))
    return torch.relu(weighted_channels(weights, capture.activations(layer)))
