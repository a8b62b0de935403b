"""ROAD's linear imputation for many images at once, in torch, on the images' device.

Solves the same system as :func:`attribmap.evaluate.imputation.linear_imputation` (every
removed pixel the weighted mean of its existing neighbours, weights 1/6 direct, 1/12
diagonal) for a batch of images and masks together. As assembled, ``d_i x_i - sum_j w_ij x_j
= sum_k w_ik y_k`` (j removed, k kept neighbours, ``d_i`` the weights of the neighbours that
exist) has a symmetric matrix ``D - W``: w depends only on the offset. It is positive definite
once a pixel is kept (each connected group of removed pixels touches a kept one, so the
matrix is irreducibly diagonally dominant), so conjugate gradients apply, preconditioned by a
multigrid V-cycle (:class:`~attribmap.evaluate.multigrid.MaskedMultigrid`: plain CG needs
thousands of iterations on a 224 px image with 90 % removed in one blob, the V-cycle keeps it
to about ten). The iterations run in float32 and are refined in float64 until
``||r|| <= tol * ||b||`` for every image and channel.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch

from attribmap.errors import AttribmapError
from attribmap.evaluate.imputation import NEIGHBOUR_WEIGHTS
from attribmap.evaluate.multigrid import MaskedMultigrid, existing_weights, neighbour_sum

__all__ = ["batched_linear_imputation", "default_chunk", "DEFAULT_TOLERANCE"]

#: Relative residual at which the conjugate gradients stop (the tests and
#: benchmarks/speed_metrics.py check the ROAD scores against the exact solve's).
DEFAULT_TOLERANCE = 1e-5
_MAX_ITERATIONS = 100  # per refinement round
_MAX_ROUNDS = 6
_INNER_TOLERANCE = 1e-3


def _weights() -> Tuple[float, float]:
    """(direct, diagonal) neighbour weights of :data:`~attribmap.evaluate.imputation.NEIGHBOUR_WEIGHTS`."""
    table = dict(NEIGHBOUR_WEIGHTS)
    return table[(0, 1)], table[(1, 1)]


def _check(images: torch.Tensor, removed: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise AttribmapError(f"imputation needs float images (N, C, H, W); got {shape}")
    if not isinstance(removed, torch.Tensor) or removed.dtype != torch.bool:
        kind = removed.dtype if isinstance(removed, torch.Tensor) else type(removed).__name__
        raise AttribmapError(f"imputation needs a bool mask tensor (N, H, W); got {kind}")
    expected = (images.shape[0],) + tuple(images.shape[2:])
    if tuple(removed.shape) != expected:
        raise AttribmapError(f"imputation needs masks (N, H, W) = {expected} for images {tuple(images.shape)}; "
                             f"got {tuple(removed.shape)}")
    if images.shape[0] and bool(removed.flatten(1).all(dim=1).any()):
        first = int(removed.flatten(1).all(dim=1).nonzero()[0, 0])
        raise AttribmapError(f"imputation needs at least one kept pixel; mask {first} removes all "
                             f"{removed.shape[1] * removed.shape[2]}")


def batched_linear_imputation(images: torch.Tensor, removed: torch.Tensor, tol: float = DEFAULT_TOLERANCE,
                              dtype: Optional[torch.dtype] = torch.float64, chunk: Optional[int] = None,
                              return_iterations: bool = False):
    """The images with their removed pixels filled by linear interpolation of their neighbours.

    Parameters
    ----------
    images : Tensor (N, C, H, W)
    removed : Tensor bool (N, H, W)
        Pixels to fill, on the device of ``images``; every mask must keep a pixel.
    tol : float
        Stop when the residual of every image and channel is at most ``tol`` times its
        right-hand side's (2-norms).
    dtype : torch.dtype
        Precision of the result and of the refinement's residuals (float64 by default; the
        inner iterations always run in float32). With float64 and the default ``tol`` the
        ROAD scores equal the exact solve's to 1e-4 with a wide margin (see the tests).
    chunk : int, optional
        Images solved together (default :func:`default_chunk` of the device: on the CPU a
        few, so that the iterations' arrays stay in the cache, ~3x faster than all at once).
    return_iterations : bool
        Also return the largest number of conjugate-gradient iterations of a chunk.

    Returns
    -------
    Tensor (N, C, H, W) of ``dtype``: kept pixels unchanged, removed ones solving
    ``sum_j w_ij (x_i - x_j) = 0``; with ``return_iterations`` a tuple (that, int).
    """
    _check(images, removed)
    if not (0 < float(tol) < 1):
        raise AttribmapError(f"imputation tolerance must be in (0, 1); got {tol!r}")
    dtype = images.dtype if dtype is None else dtype
    chunk = default_chunk(images.device) if chunk is None else int(chunk)
    if chunk < 1:
        raise AttribmapError(f"imputation chunk must be a positive int; got {chunk!r}")
    parts, iterations = [], 0
    for start in range(0, images.shape[0], chunk):
        part, count = _solve(images[start:start + chunk].to(dtype), removed[start:start + chunk, None], float(tol))
        parts.append(part)
        iterations = max(iterations, count)
    filled = torch.cat(parts) if parts else images.to(dtype).clone()
    return (filled, iterations) if return_iterations else filled


def default_chunk(device: "torch.device | str") -> int:
    """Images solved together by default on ``device``: all of them on CUDA, 4 elsewhere.

    On the CPU each (4, 3, 224, 224) float32 array of the cycle is 2.4 MB, so the working set
    stays in a 32 MB cache (~3x faster per element than 18 images at once).
    """
    return 1 << 30 if torch.device(device).type == "cuda" else 4


def _solve(images: torch.Tensor, unknown: torch.Tensor, tol: float) -> Tuple[torch.Tensor, int]:
    """Fill the images (S, C, H, W) at ``unknown`` (S, 1, H, W): (filled, iterations).

    The system is solved on the smallest box holding the removed pixels and their
    neighbours (the weights of the neighbours that exist stay the whole image's). Mixed
    precision: conjugate gradients in float32 (the V-cycle too) to a relative residual
    of 1e-3, then the residual recomputed in the images' dtype and the correction solved the
    same way (iterative refinement), until ``tol`` is met; float32 alone stalls near 1e-5.
    """
    if not bool(unknown.any()):
        return images.clone(), 0
    dtype, device = images.dtype, images.device
    direct, diagonal = _weights()
    existing = existing_weights(tuple(images.shape[-2:]), direct, diagonal, dtype, device)
    rows, cols = _span(unknown.any(dim=3).flatten(0, 1).any(dim=0)), _span(unknown.any(dim=2).flatten(0, 1).any(dim=0))
    if (rows[1] - rows[0], cols[1] - cols[0]) != tuple(images.shape[-2:]):  # solve on the removed pixels' box
        crop = (Ellipsis, slice(*rows), slice(*cols))
        filled, iterations = _solve_box(images[crop], unknown[crop], existing[crop], tol)
        out = images.clone()
        out[crop] = filled
        return out, iterations
    return _solve_box(images, unknown, existing, tol)


def _span(flags: torch.Tensor) -> Tuple[int, int]:
    """[first - 1, last + 2) of the True entries of a 1-D bool tensor, within its length: the box and its ring."""
    where = flags.nonzero()
    return max(int(where[0]) - 1, 0), min(int(where[-1]) + 2, int(flags.shape[0]))


def _solve_box(images: torch.Tensor, unknown: torch.Tensor, existing: torch.Tensor,
               tol: float) -> Tuple[torch.Tensor, int]:
    """:func:`_solve` on a box that holds every removed pixel and its neighbours; ``existing`` (1, 1, h, w) is ``d``."""
    dtype, device = images.dtype, images.device
    direct, diagonal = _weights()
    known = torch.where(unknown, torch.zeros((), dtype=dtype, device=device), images)
    mask = unknown.to(dtype)

    def operator(v: torch.Tensor) -> torch.Tensor:
        return mask * (existing * v - neighbour_sum(v, direct, diagonal))

    preconditioner = MaskedMultigrid(unknown, direct, diagonal, dtype=torch.float32, existing=existing)
    rhs = mask * neighbour_sum(known, direct, diagonal)
    solution = torch.zeros_like(rhs)
    residual = rhs
    limit = (tol ** 2) * _dot(rhs, rhs)
    iterations = 0
    for _ in range(_MAX_ROUNDS):
        size = _dot(residual, residual)
        if bool((size <= limit).all()):
            return known + solution, iterations
        # each round asks float32 for 1e-3 of the residual, or less where less is missing
        wanted = torch.where(size > 0, limit / torch.where(size > 0, size, torch.ones_like(size)), torch.ones_like(size))
        wanted = wanted.clamp(min=_INNER_TOLERANCE ** 2, max=1.0).to(torch.float32)
        correction, count = _pcg(preconditioner.apply_fine, preconditioner, residual.to(torch.float32), wanted)
        iterations += count
        solution = solution + correction.to(dtype)
        residual = rhs - operator(solution)
    if bool((_dot(residual, residual) <= limit).all()):
        return known + solution, iterations
    raise AttribmapError(f"imputation did not converge to tolerance {tol!r} in {_MAX_ROUNDS} refinement rounds")


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(dim=(-2, -1), keepdim=True, dtype=torch.float64)


def _pcg(apply, preconditioner, rhs: torch.Tensor, squared_tolerance: torch.Tensor) -> Tuple[torch.Tensor, int]:
    """Preconditioned conjugate gradients from zero, one scalar recurrence per (image, channel).

    Stops when ``||r||^2 <= squared_tolerance * ||rhs||^2`` everywhere (dot products in float64).
    """
    x = torch.zeros_like(rhs)
    r = rhs.clone()
    limit = squared_tolerance.to(torch.float64) * _dot(rhs, rhs)
    if bool((_dot(r, r) <= limit).all()):
        return x, 0
    z = preconditioner(r)
    p = z
    rz = _dot(r, z)
    for iteration in range(1, _MAX_ITERATIONS + 1):
        q = apply(p)
        pq = _dot(p, q)
        alpha = torch.where(pq > 0, rz / torch.where(pq > 0, pq, torch.ones_like(pq)), torch.zeros_like(pq))
        x = x + alpha.to(x.dtype) * p
        r = r - alpha.to(r.dtype) * q
        if bool((_dot(r, r) <= limit).all()):
            return x, iteration
        z = preconditioner(r)
        rz_new = _dot(r, z)
        beta = torch.where(rz > 0, rz_new / torch.where(rz > 0, rz, torch.ones_like(rz)), torch.zeros_like(rz))
        p = z + beta.to(z.dtype) * p
        rz = rz_new
    return x, _MAX_ITERATIONS
