"""Noisy linear imputation (Rong et al., ROAD, 2022): fill removed pixels from their neighbours.

Every removed pixel gets the weighted mean of its 8 neighbours inside the image (weight
1/6 for the 4 direct neighbours, 1/12 for the diagonal ones, renormalized over the
neighbours that exist); known neighbours enter with their values and removed neighbours
as unknowns, which gives one sparse linear system per channel (one matrix, C right-hand
sides). It is solved exactly (scipy's sparse LU), then ``noise * N(0, 1)`` is added to the
filled pixels.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from attribmap.errors import AttribmapError

__all__ = ["linear_imputation", "noisy_linear_imputation", "NEIGHBOUR_WEIGHTS"]

#: (dy, dx) -> weight of the neighbour.
NEIGHBOUR_WEIGHTS = tuple(((dy, dx), 1.0 / 6.0 if dy == 0 or dx == 0 else 1.0 / 12.0)
                          for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0))


def linear_imputation(image: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """The image with its removed pixels filled by the linear interpolation of their neighbours.

    Parameters
    ----------
    image : ndarray (C, H, W)
    removed : ndarray bool (H, W)
        Pixels to fill; at least one pixel must be kept.

    Returns
    -------
    ndarray float64 (C, H, W): the kept pixels unchanged, the removed ones solving
    ``sum_j w_ij (x_i - x_j) = 0`` over their neighbours j.
    """
    from scipy import sparse  # noqa: PLC0415
    from scipy.sparse.linalg import spsolve  # noqa: PLC0415

    image = np.asarray(image, dtype=np.float64)
    removed = np.asarray(removed, dtype=bool)
    if image.ndim != 3 or removed.shape != image.shape[1:]:
        raise AttribmapError(f"imputation needs an image (C, H, W) and a mask (H, W); got {image.shape} "
                             f"and {removed.shape}")
    out = image.copy()
    unknown = np.flatnonzero(removed.ravel())
    if len(unknown) == 0:
        return out
    if len(unknown) == removed.size:
        raise AttribmapError("imputation needs at least one kept pixel")
    channels, height, width = image.shape
    flat = image.reshape(channels, -1)
    variable = np.full(removed.size, -1, dtype=np.int64)
    variable[unknown] = np.arange(len(unknown))
    ys, xs = np.divmod(unknown, width)
    diagonal = np.zeros(len(unknown))
    rhs = np.zeros((len(unknown), channels))
    rows, cols, values = [], [], []
    for (dy, dx), weight in NEIGHBOUR_WEIGHTS:
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
        diagonal[inside] += weight
        neighbour = np.where(inside, ny * width + nx, 0)
        is_unknown = inside & (variable[neighbour] >= 0)
        is_known = inside & ~is_unknown
        rows.append(np.flatnonzero(is_unknown))
        cols.append(variable[neighbour[is_unknown]])
        values.append(np.full(int(is_unknown.sum()), -weight))
        rhs[is_known] += weight * flat[:, neighbour[is_known]].T
    index = np.arange(len(unknown))
    matrix = sparse.csc_matrix((np.concatenate(values + [diagonal]),
                                (np.concatenate(rows + [index]), np.concatenate(cols + [index]))),
                               shape=(len(unknown), len(unknown)))
    solution = spsolve(matrix, rhs)
    out.reshape(channels, -1)[:, unknown] = np.asarray(solution).reshape(len(unknown), channels).T
    return out


def noisy_linear_imputation(image: np.ndarray, removed: np.ndarray, noise: float = 0.01,
                            rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """:func:`linear_imputation` plus ``noise * N(0, 1)`` on the filled pixels (float64 (C, H, W)).

    Parameters
    ----------
    image : ndarray (C, H, W)
    removed : ndarray bool (H, W)
    noise : float
        Standard deviation of the added noise, in the image's units (0.01 as in ROAD).
    rng : numpy Generator, optional
        Source of the noise (default: a fresh unseeded one).
    """
    if not (noise >= 0):
        raise AttribmapError(f"noise must be >= 0; got {noise!r}")
    out = linear_imputation(image, removed)
    if noise > 0:
        rng = np.random.default_rng() if rng is None else rng
        mask = np.asarray(removed, dtype=bool)
        out[:, mask] += noise * rng.standard_normal((out.shape[0], int(mask.sum())))
    return out
