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
  all-zero (or non-finite) map;
* robust stopping score: the same on ``max(M[m:H-m, m:W-m] - floor, 0)`` (border margin m,
  floor = the minimum or a low percentile of that interior).
"""
from __future__ import annotations

from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attribmap.errors import InputError

__all__ = ["method1_loss", "triplet_loss", "method2_loss", "stopping_score", "robust_stopping_score",
           "stopping_diagnostics", "STOPPING_FLOORS"]


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

#: Floors the robust stopping score can subtract from a map.
STOPPING_FLOORS = ("min", "percentile")


def _largest_contour_box():
    try:
        from attribmap.evaluate import largest_contour_box
    except ImportError:  # package namespace not assembled yet: take it from its module
        from attribmap.evaluate.contours import largest_contour_box
    return largest_contour_box


def _as_maps(maps: ArrayLike, name: str) -> tuple[np.ndarray, bool]:
    is_tensor = isinstance(maps, Tensor)
    arr = maps.detach().cpu().double().numpy() if is_tensor else np.asarray(maps, np.float64)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 3:
        raise InputError(f"{name} expects maps (N,H,W), got shape {arr.shape}")
    return arr, is_tensor


def _box_share(m: np.ndarray, box_of) -> tuple[float, float]:
    """(S, share of pixels >= tau) of one map, with the paper's tau = max / 10."""
    peak = m.max() if m.size else 0.0
    if not np.isfinite(peak) or peak <= 0 or not np.isfinite(m).all():
        return 0.0, 0.0
    keep = m >= peak / 10.0
    m_hat = np.where(keep, m, 0.0)
    x0, y0, x1, y1 = (int(v) for v in box_of(m_hat > 0))
    return float(m_hat[y0:y1 + 1, x0:x1 + 1].sum() / m_hat.sum()), float(keep.mean())


def _floored(m: np.ndarray, floor: str, percentile: float, margin: int) -> tuple[np.ndarray, float]:
    """The robust score's map: border margin cut off, then the floor subtracted (clipped at 0)."""
    h, w = m.shape
    inner = m[margin:h - margin, margin:w - margin] if margin else m
    if not np.isfinite(inner).all():
        return np.zeros_like(inner), float("nan")
    value = float(inner.min()) if floor == "min" else float(np.percentile(inner, percentile))
    return np.maximum(inner - value, 0.0), value


def _check_robust(floor: str, percentile: float, margin: int, shape: tuple) -> None:
    if floor not in STOPPING_FLOORS:
        raise InputError(f"floor must be one of {STOPPING_FLOORS}, got {floor!r}")
    if not 0.0 <= float(percentile) <= 100.0:
        raise InputError(f"percentile must be in [0, 100], got {percentile!r}")
    if isinstance(margin, bool) or not isinstance(margin, int) or margin < 0:
        raise InputError(f"margin must be an integer >= 0, got {margin!r}")
    if 2 * margin >= min(shape[-2:]):
        raise InputError(f"margin {margin} leaves nothing of {shape[-2]}x{shape[-1]} maps")


def stopping_score(maps: ArrayLike) -> ArrayLike:
    """Label-free early-stopping score S of each weight map, exactly as the paper defines it.

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
    scores 0. Average S over held-out *training* images and keep the checkpoint with the
    highest mean. A map whose floor is above max/10 (every pixel kept) or that has a bright
    frame scores S = 1 whatever its interior holds: see :func:`robust_stopping_score`.

    References
    ----------
    Shaharabany & Wolf, "Learning a Weight Map for Weakly-Supervised Localization"
    (section "early stopping without labels").
    """
    arr, is_tensor = _as_maps(maps, "stopping_score")
    box_of = _largest_contour_box()
    scores = np.array([_box_share(m, box_of)[0] for m in arr], dtype=np.float64)
    return torch.from_numpy(scores) if is_tensor else scores


def robust_stopping_score(maps: ArrayLike, floor: str = "min", percentile: float = 5.0,
                          margin: int = 2) -> ArrayLike:
    """Stopping score S with the map's floor subtracted and a border margin ignored.

    Parameters
    ----------
    maps : Tensor or ndarray (N,H,W) (or (N,1,H,W))
        Weight maps.
    floor : {"min", "percentile"}
        Subtracted from each map (after the margin is cut off): its minimum, or its
        ``percentile``-th percentile; values below the floor become 0.
    percentile : float
        In [0, 100], for ``floor="percentile"``.
    margin : int
        Pixels within ``margin`` of the border are left out (a frame artefact cannot form
        the largest contour).

    Returns
    -------
    (N,) float64 in [0, 1], same kind as the input.

    Notes
    -----
    Per map: ``R = max(M[m:H-m, m:W-m] - floor, 0)``, then :func:`stopping_score` of R
    (``tau = max(R) / 10``, largest contour's box, mass share). With ``floor="min"`` and
    ``margin=0`` a map of values in [a, b] is scored as if it were in [0, b - a].
    """
    arr, is_tensor = _as_maps(maps, "robust_stopping_score")
    _check_robust(floor, percentile, margin, arr.shape)
    box_of = _largest_contour_box()
    scores = np.array([_box_share(_floored(m, floor, percentile, margin)[0], box_of)[0] for m in arr],
                      dtype=np.float64)
    return torch.from_numpy(scores) if is_tensor else scores


def stopping_diagnostics(maps: ArrayLike, floor: str = "min", percentile: float = 5.0,
                         margin: int = 2) -> dict[str, np.ndarray]:
    """Both stopping scores of each map and why they are what they are.

    Parameters
    ----------
    maps : Tensor or ndarray (N,H,W) (or (N,1,H,W))
        Weight maps.
    floor, percentile, margin
        As in :func:`robust_stopping_score`.

    Returns
    -------
    dict of (N,) float64 arrays
        ``S_paper`` (:func:`stopping_score`), ``above`` (share of pixels >= max/10, the
        support the paper's S boxes), ``S_robust`` (:func:`robust_stopping_score`),
        ``above_robust`` (the same share for the floored map) and ``floor`` (the value
        subtracted, in the map's units).
    """
    arr, _ = _as_maps(maps, "stopping_diagnostics")
    _check_robust(floor, percentile, margin, arr.shape)
    box_of = _largest_contour_box()
    out = {key: np.zeros(arr.shape[0]) for key in ("S_paper", "above", "S_robust", "above_robust", "floor")}
    for i, m in enumerate(arr):
        out["S_paper"][i], out["above"][i] = _box_share(m, box_of)
        floored, out["floor"][i] = _floored(m, floor, percentile, margin)
        out["S_robust"][i], out["above_robust"][i] = _box_share(floored, box_of)
    return out
