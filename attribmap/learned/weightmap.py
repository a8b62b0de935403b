"""Weight-map training losses (Shaharabany & Wolf) and the label-free stopping score.

Formulas as implemented (PROTOCOL.md section 2); ``M = g(I)`` in (0,1), shape (N,1,H,W):

* method I: ``CE(f(I * M), p(I)) + lam * mean(M)``, ``p(I) = softmax(f(I))`` computed without
  gradient (soft target; ``hard_target=True`` uses its argmax);
* triplet: ``mean_n max(||a_n - p_n||_2 - ||a_n - n_n||_2 + margin, 0)``;
* method II: with ``J^f = M * I`` and ``J^b = (1 - M) * I``,
  ``L_inner = triplet(f(I_a), f(J_a^f), f(J_a^b))``,
  ``L_outer = triplet(f(J_a^f), f(J_p^f), f(J_n^f))``, loss ``L_inner + L_outer + lam*mean(M_a)``;
* stopping score: ``tau = max(M)/10``; ``M^ = M`` where ``M >= tau`` else 0; box = largest
  contour's box of ``M^ > 0`` (inclusive); ``S = sum(M^ in box) / sum(M^)``; 0 for an
  all-zero (or non-finite) map.
"""
from __future__ import annotations

from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attribmap.errors import InputError

__all__ = ["method1_loss", "triplet_loss", "method2_loss", "stopping_score"]


def _check_masks(images: Tensor, masks: Tensor) -> None:
    if images.dim() != 4:
        raise InputError(f"images must be (N,C,H,W), got shape {tuple(images.shape)}")
    n, _, h, w = images.shape
    if masks.dim() != 4 or tuple(masks.shape) != (n, 1, h, w):
        raise InputError(f"masks must be (N,1,H,W) = {(n, 1, h, w)} to match the images, got "
                         f"{tuple(masks.shape)}")


def method1_loss(classifier: nn.Module, images: Tensor, masks: Tensor, lam: float = 1.0,
                 hard_target: bool = False) -> tuple[Tensor, dict[str, Tensor]]:
    """Method I loss: the masked image must keep the classifier's prediction.

    Parameters
    ----------
    classifier : nn.Module
        f, frozen by the caller (``requires_grad_(False)``, eval mode); (N,3,H,W) -> (N,K).
    images : Tensor (N,3,H,W)
        Images in f's normalized input space.
    masks : Tensor (N,1,H,W)
        Generator output M in (0,1); broadcast over channels.
    lam : float
        Weight of the area term mean(M).
    hard_target : bool
        Use argmax of p(I) as a hard label instead of the soft target p(I).

    Returns
    -------
    loss : scalar Tensor
        ``ce + lam * reg`` (differentiable in ``masks``).
    parts : dict
        ``{"ce": ..., "reg": ...}`` detached scalars for logging.
    """
    _check_masks(images, masks)
    with torch.no_grad():
        target_logits = classifier(images)
    logits = classifier(images * masks)
    if hard_target:
        ce = F.cross_entropy(logits, target_logits.argmax(dim=1))
    else:
        p = target_logits.softmax(dim=1)
        ce = -(p * logits.log_softmax(dim=1)).sum(dim=1).mean()
    reg = masks.mean()
    loss = ce + lam * reg
    return loss, {"ce": ce.detach(), "reg": reg.detach()}


def triplet_loss(anchor: Tensor, positive: Tensor, negative: Tensor,
                 margin: float = 1.0) -> Tensor:
    """``mean_n max(||a_n - p_n||_2 - ||a_n - n_n||_2 + margin, 0)`` (distances not squared).

    Parameters
    ----------
    anchor, positive, negative : Tensor (N,D)
        Embeddings.
    margin : float
        Margin (1 in the paper).

    Returns
    -------
    Scalar Tensor.
    """
    if anchor.dim() != 2 or anchor.shape != positive.shape or anchor.shape != negative.shape:
        raise InputError(f"triplet_loss needs three (N,D) tensors of one shape, got "
                         f"{tuple(anchor.shape)}, {tuple(positive.shape)}, {tuple(negative.shape)}")
    d_pos = torch.linalg.vector_norm(anchor - positive, dim=1)
    d_neg = torch.linalg.vector_norm(anchor - negative, dim=1)
    return torch.clamp(d_pos - d_neg + margin, min=0).mean()


def method2_loss(embed: nn.Module, generator: nn.Module, anchor: Tensor, positive: Tensor,
                 negative: Tensor, lam: float = 1.0) -> tuple[Tensor, dict[str, Tensor]]:
    """Method II loss for the generator, given a frozen Siamese embedding ``embed``.

    Parameters
    ----------
    embed : nn.Module
        f, trained beforehand with :func:`triplet_loss` and frozen by the caller;
        (N,3,H,W) -> (N,D).
    generator : nn.Module
        g, (N,3,H,W) -> M (N,1,H,W) in (0,1).
    anchor, positive, negative : Tensor (N,3,H,W)
        I_a, I_p (same class as I_a), I_n (another class), normalized images.
    lam : float
        Weight of mean(M_a).

    Returns
    -------
    loss : scalar Tensor
        ``inner + outer + lam * reg``.
    parts : dict
        ``{"inner", "outer", "reg"}`` detached scalars.

    Notes
    -----
    g runs once on the concatenation (I_a, I_p, I_n) and f once on
    (I_a, J_a^f, J_a^b, J_p^f, J_n^f); with BatchNorm in training mode the statistics are
    therefore those of the joint batch.
    """
    for name, t in (("anchor", anchor), ("positive", positive), ("negative", negative)):
        if t.dim() != 4 or t.shape != anchor.shape:
            raise InputError(f"{name} must be (N,3,H,W) like anchor {tuple(anchor.shape)}, got "
                             f"{tuple(t.shape)}")
    n = anchor.shape[0]
    masks = generator(torch.cat((anchor, positive, negative)))
    m_a, m_p, m_n = masks[:n], masks[n:2 * n], masks[2 * n:]
    fg_a = m_a * anchor
    batch = torch.cat((anchor, fg_a, (1 - m_a) * anchor, m_p * positive, m_n * negative))
    e = embed(batch)
    e_img, e_fg_a, e_bg_a, e_fg_p, e_fg_n = e.split(n)
    inner = triplet_loss(e_img, e_fg_a, e_bg_a)
    outer = triplet_loss(e_fg_a, e_fg_p, e_fg_n)
    reg = m_a.mean()
    loss = inner + outer + lam * reg
    return loss, {"inner": inner.detach(), "outer": outer.detach(), "reg": reg.detach()}


ArrayLike = Union[Tensor, np.ndarray]


def stopping_score(maps: ArrayLike) -> ArrayLike:
    """Label-free early-stopping score S of each weight map (higher = more complete box).

    Parameters
    ----------
    maps : Tensor or ndarray (N,H,W) (or (N,1,H,W))
        Weight maps, typically in [0,1].

    Returns
    -------
    (N,) float64, same kind as the input (Tensor on the CPU, or ndarray), in [0, 1].

    Notes
    -----
    Per map: ``tau = max(M) / 10``; values below tau are set to 0 giving M^; the box is
    :func:`attribmap.evaluate.largest_contour_box` of ``M^ > 0`` (largest contour by polygon
    area, box ``[x, y, min(x+w, W-1), min(y+h, H-1)]``, inclusive);
    ``S = sum of M^ inside the box / sum of M^``. A map whose maximum is <= 0 or not finite
    scores 0. Average S over held-out *training* images after each epoch and keep the
    checkpoint with the highest mean.
    """
    try:
        from attribmap.evaluate import largest_contour_box
    except ImportError:  # package namespace not assembled yet: take it from its module
        from attribmap.evaluate.contours import largest_contour_box

    is_tensor = isinstance(maps, Tensor)
    arr = maps.detach().cpu().double().numpy() if is_tensor else np.asarray(maps, np.float64)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 3:
        raise InputError(f"stopping_score expects maps (N,H,W), got shape {arr.shape}")
    scores = np.zeros(arr.shape[0], dtype=np.float64)
    for i, m in enumerate(arr):
        peak = m.max() if m.size else 0.0
        if not np.isfinite(peak) or peak <= 0 or not np.isfinite(m).all():
            continue
        m_hat = np.where(m >= peak / 10.0, m, 0.0)
        x0, y0, x1, y1 = (int(v) for v in largest_contour_box(m_hat > 0))
        scores[i] = m_hat[y0:y1 + 1, x0:x1 + 1].sum() / m_hat.sum()
    return torch.from_numpy(scores) if is_tensor else scores
