"""A batched geometric multigrid V-cycle for 9-point stencil systems on masked grids (torch).

Used as the preconditioner of :mod:`attribmap.evaluate.imputation_batched`. Each of S
systems lives on an (H, W) grid; a boolean mask marks its unknowns. The finest operator is

    (A v)_i = d_i v_i - sum_j K_(j - i) v_j      for unknown i (v zero on known pixels),

with K a symmetric 3 x 3 kernel and ``d = K * 1`` (zero padding: the neighbours that exist).
Coarser levels are Galerkin products ``P^T A P`` with bilinear prolongation P (coarse node
J at fine node 2J), stored as variable 9-point stencils (S, 9, h, w) and computed by probing
with the 9 colours of a 3 x 3 tiling. Smoothing is damped Jacobi, bounded by the l1-Jacobi
weight so that every level's smoother converges in the A-norm: the V-cycle (same number of
pre- and post-sweeps) is then a symmetric positive definite preconditioner for conjugate
gradients.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F

__all__ = ["MaskedMultigrid", "apply_stencil", "neighbour_sum", "existing_weights"]

#: Jacobi damping (capped by the l1 weight 1.9 / sum_j |a_ij|).
_OMEGA = 0.9
_L1_CAP = 1.9
#: Grids with more nodes than this probe their Galerkin product one colour at a time (see ``_galerkin``).
_PROBE_TOGETHER = 128 * 128


def apply_stencil(stencil: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Apply a variable 9-point stencil.

    Parameters
    ----------
    stencil : Tensor (S, 9, h, w)
        ``stencil[:, 3 * (dy + 1) + (dx + 1), y, x]`` is the coefficient of ``v[y + dy, x + dx]``
        in row (y, x); neighbours outside the grid count as zero.
    v : Tensor (S, C, h, w)

    Returns
    -------
    Tensor (S, C, h, w)
    """
    h, w = v.shape[-2:]
    padded = F.pad(v, (1, 1, 1, 1))
    out = stencil[:, 4:5] * v
    for k in range(9):
        if k != 4:
            dy, dx = divmod(k, 3)
            out = out + stencil[:, k:k + 1] * padded[..., dy:dy + h, dx:dx + w]
    return out


def neighbour_sum(v: torch.Tensor, direct: float, diagonal: float) -> torch.Tensor:
    """``sum_j K_(j - i) v_j``, neighbours outside the grid zero.

    Shifted slices, not ``conv2d``: a 1-channel 3 x 3 convolution runs ~10x slower on the CPU.

    Parameters
    ----------
    v : Tensor (..., h, w)
    direct, diagonal : float
        K: ``direct`` on the 4 direct neighbours, ``diagonal`` on the 4 diagonal ones, 0 at the centre.

    Returns
    -------
    Tensor (..., h, w)
    """
    h, w = v.shape[-2:]
    padded = F.pad(v, (1, 1, 1, 1))
    vertical = padded[..., 0:h, :] + padded[..., 2:h + 2, :]  # (..., h, w + 2): above + below
    side = padded[..., 1:h + 1, 0:w] + padded[..., 1:h + 1, 2:w + 2]
    return direct * (vertical[..., 1:w + 1] + side) + diagonal * (vertical[..., 0:w] + vertical[..., 2:w + 2])


def _prolong_rows(coarse: torch.Tensor, n: int) -> torch.Tensor:
    """Linear interpolation along dim -2 to length ``n`` (coarse node J at fine node 2J).

    For even ``n`` the last fine node lies beyond the last coarse node and copies it: constants
    are reproduced up to the image border, where the imputation's equations are Neumann-like
    (renormalized over the neighbours that exist); zero there would slow the cycle down ~2x.
    Written into a (..., m, 2, w) buffer (even, odd rows) without concatenation.
    """
    m = coarse.shape[-2]
    out = coarse.new_empty(coarse.shape[:-2] + (m, 2, coarse.shape[-1]))
    out[..., 0, :] = coarse
    out[..., :m - 1, 1, :] = (coarse[..., :-1, :] + coarse[..., 1:, :]).mul_(0.5)
    out[..., m - 1, 1, :] = coarse[..., m - 1, :]
    return out.flatten(-3, -2)[..., :n, :]


def _prolong_columns(coarse: torch.Tensor, n: int) -> torch.Tensor:
    """:func:`_prolong_rows` along dim -1."""
    m = coarse.shape[-1]
    out = coarse.new_empty(coarse.shape + (2,))
    out[..., 0] = coarse
    out[..., :m - 1, 1] = (coarse[..., :-1] + coarse[..., 1:]).mul_(0.5)
    out[..., m - 1, 1] = coarse[..., m - 1]
    return out.flatten(-2)[..., :n]


def _restrict_rows(fine: torch.Tensor) -> torch.Tensor:
    """Transpose of :func:`_prolong_rows`: length n -> (n + 1) // 2 along dim -2."""
    n = fine.shape[-2]
    m = (n + 1) // 2
    out = fine[..., 0::2, :].clone()
    odd = 0.5 * fine[..., 1::2, :]  # fine row 2J + 1 feeds coarse J and J + 1 (J itself twice past the end)
    out[..., :n // 2, :] += odd
    out[..., 1:, :] += odd[..., :m - 1, :]
    if n % 2 == 0:
        out[..., m - 1, :] += odd[..., m - 1, :]
    return out


def _restrict_columns(fine: torch.Tensor) -> torch.Tensor:
    """Transpose of :func:`_prolong_columns`: length n -> (n + 1) // 2 along dim -1."""
    n = fine.shape[-1]
    m = (n + 1) // 2
    out = fine[..., 0::2].clone()
    odd = 0.5 * fine[..., 1::2]
    out[..., :n // 2] += odd
    out[..., 1:] += odd[..., :m - 1]
    if n % 2 == 0:
        out[..., m - 1] += odd[..., m - 1]
    return out


def _prolong(coarse: torch.Tensor, shape: Tuple[int, int]) -> torch.Tensor:
    """Bilinear interpolation of (..., h, w) to (..., *shape) (coarse node J at fine node 2J)."""
    return _prolong_columns(_prolong_rows(coarse, shape[0]), shape[1])


def _restrict(fine: torch.Tensor) -> torch.Tensor:
    """Transpose of :func:`_prolong`: (..., H, W) -> (..., (H + 1) // 2, (W + 1) // 2)."""
    return _restrict_columns(_restrict_rows(fine))


class MaskedMultigrid:
    """V-cycle preconditioner for the masked 9-point system (built once, applied many times).

    Parameters
    ----------
    unknown : Tensor bool (S, 1, H, W)
        The unknowns of each system.
    direct, diagonal : float
        The neighbour weights of K (the operator's off-diagonal is ``-K``).
    dtype : torch.dtype
        Precision of the cycle (float32 suffices for a preconditioner).
    sweeps : int
        Jacobi sweeps before and after each coarse correction.
    coarsest : int
        Stop coarsening when a side is at most this; there ``coarse_sweeps`` Jacobi sweeps.
    coarse_sweeps : int
    existing : Tensor (1, 1, H, W), optional
        ``d``, the summed weights of the neighbours that exist (default: those inside the
        (H, W) grid; a crop of a larger image passes the image's).
    """

    def __init__(self, unknown: torch.Tensor, direct: float, diagonal: float, dtype: torch.dtype = torch.float32,
                 sweeps: int = 1, coarsest: int = 4, coarse_sweeps: int = 8,
                 existing: Optional[torch.Tensor] = None) -> None:
        self.weights = (float(direct), float(diagonal))
        self.dtype = dtype
        self.mask = unknown.to(dtype)
        self.sweeps = int(sweeps)
        self.coarse_sweeps = int(coarse_sweeps)
        self.diagonal = (existing_weights(tuple(unknown.shape[-2:]), direct, diagonal, dtype, unknown.device)
                         if existing is None else existing.to(dtype))
        unknown_neighbours = neighbour_sum(self.mask, *self.weights)
        self.fine_weight = self.mask * self._jacobi_weight(self.diagonal, self.diagonal + unknown_neighbours)
        self.levels: List[Tuple[torch.Tensor, torch.Tensor]] = []  # (stencil, Jacobi weight) of each coarse level
        shape = tuple(unknown.shape[-2:])
        apply = (lambda v: self.apply_fine(self.mask * v))  # prolonged probes are not zero on known pixels
        while min(shape) > coarsest:
            stencil = self._galerkin(apply, shape, unknown.shape[0], unknown.device)
            diagonal_entries = stencil[:, 4:5]
            l1 = stencil.abs().sum(dim=1, keepdim=True)
            self.levels.append((stencil, self._jacobi_weight(diagonal_entries, l1)))
            shape = tuple(stencil.shape[-2:])
            apply = (lambda st: (lambda v: apply_stencil(st, v)))(stencil)

    @staticmethod
    def _jacobi_weight(diagonal: torch.Tensor, l1: torch.Tensor) -> torch.Tensor:
        """min(omega / a_ii, 1.9 / sum_j |a_ij|), 0 where the row is empty."""
        safe_diagonal = torch.where(diagonal > 0, diagonal, torch.ones_like(diagonal))
        safe_l1 = torch.where(l1 > 0, l1, torch.ones_like(l1))
        weight = torch.minimum(_OMEGA / safe_diagonal, _L1_CAP / safe_l1)
        return torch.where(diagonal > 0, weight, torch.zeros_like(weight))

    def apply_fine(self, v: torch.Tensor) -> torch.Tensor:
        """The finest operator on (S, C, H, W) (``v`` zero on known pixels; the result is too)."""
        return self.mask * (self.diagonal * v - neighbour_sum(v, *self.weights))

    def _galerkin(self, apply, shape: Tuple[int, int], systems: int, device) -> torch.Tensor:
        """``P^T A P`` as a stencil (S, 9, h, w), by probing with the 9 colours of a 3 x 3 tiling.

        A probe is the same for every system (the operators broadcast it). On coarse grids the 9
        probes go through together as channels of one (1, 9, h, w) tensor (a tenth of the calls,
        which dominate there); on the finest grid one at a time, so that the arrays stay in the
        cache (together they ran ~40 % slower there on the CPU).
        """
        h, w = (shape[0] + 1) // 2, (shape[1] + 1) // 2
        ys = torch.arange(h, device=device).view(1, h, 1)
        xs = torch.arange(w, device=device).view(1, 1, w)
        colour = torch.arange(9, device=device).view(9, 1, 1)
        cy, cx = colour // 3, colour % 3
        probes = ((ys % 3 == cy) & (xs % 3 == cx)).to(self.dtype)[None]  # (1, 9, h, w)
        # row (y, x) met the column of colour (cy, cx) at offset ((cy - y + 1) % 3 - 1, ...)
        k = ((cy - ys + 1) % 3) * 3 + ((cx - xs + 1) % 3)  # (9, h, w)
        stencil = torch.zeros((systems, 9, h, w), dtype=self.dtype, device=device)
        groups = [slice(c, c + 1) for c in range(9)] if shape[0] * shape[1] > _PROBE_TOGETHER else [slice(0, 9)]
        for group in groups:
            response = _restrict(apply(_prolong(probes[:, group], shape)))  # (S, colours, h, w)
            stencil.scatter_add_(1, k[group].expand(response.shape), response)
        return stencil

    def __call__(self, residual: torch.Tensor) -> torch.Tensor:
        """One V-cycle from zero: an approximation of ``A^-1 residual``, (S, C, H, W), zero on known pixels.

        Runs in the cycle's dtype and returns the residual's.
        """
        return self._cycle(0, residual.to(self.dtype)).to(residual.dtype)

    def _cycle(self, level: int, residual: torch.Tensor) -> torch.Tensor:
        if level == 0:
            apply, weight = self.apply_fine, self.fine_weight
        else:
            stencil, weight = self.levels[level - 1]
            apply = (lambda v: apply_stencil(stencil, v))
        if level == len(self.levels):  # the coarsest: Jacobi sweeps only
            return self._smooth(apply, weight, residual, None, self.coarse_sweeps)
        x = self._smooth(apply, weight, residual, None, self.sweeps)
        coarse = self._cycle(level + 1, _restrict(residual - apply(x)))
        correction = _prolong(coarse, tuple(residual.shape[-2:]))
        if level == 0:
            correction = correction * self.mask
        x = x + correction
        return self._smooth(apply, weight, residual, x, self.sweeps)

    @staticmethod
    def _smooth(apply, weight: torch.Tensor, residual: torch.Tensor, x, sweeps: int) -> torch.Tensor:
        for _ in range(sweeps):
            x = weight * residual if x is None else x + weight * (residual - apply(x))
        return x


def existing_weights(shape: Tuple[int, int], direct: float, diagonal: float, dtype: torch.dtype,
                     device) -> torch.Tensor:
    """``d``: the summed weights of each pixel's neighbours inside the grid.

    Parameters
    ----------
    shape : (int, int)
        (H, W).
    direct, diagonal : float
        The neighbour weights (see :func:`neighbour_sum`).
    dtype : torch.dtype
    device : torch.device or str

    Returns
    -------
    Tensor (1, 1, H, W)
    """
    ones = torch.ones((1, 1) + tuple(shape), dtype=dtype, device=device)
    return neighbour_sum(ones, direct, diagonal)
