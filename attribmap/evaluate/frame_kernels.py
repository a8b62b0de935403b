"""Compiled (numba) check of preprocessed official-frame maps: one branch-free pass
instead of three numpy passes (isfinite, min, max). :mod:`attribmap.evaluate.frame`
falls back to numpy without numba.
"""
from __future__ import annotations

import numpy as np

from attribmap.evaluate._compiled import numba_available

__all__ = ["all_in_unit_interval"]

_KERNELS = None


def _build():
    import numba  # noqa: PLC0415

    @numba.njit(cache=True, nogil=True)
    def _in_unit(maps):
        flat = maps.reshape(-1)
        bad = 0
        for k in range(flat.shape[0]):  # branch-free, so that it vectorizes
            v = flat[k]
            bad += np.int64(v < 0.0) + np.int64(v > 1.0) + np.int64(v != v)
        return bad == 0

    return _in_unit


def _kernels():
    global _KERNELS
    if _KERNELS is None:
        _KERNELS = _build()
    return _KERNELS


def all_in_unit_interval(maps: np.ndarray):
    """Whether every value of ``maps`` is finite and within [0, 1]; None without numba."""
    if not numba_available() or maps.dtype != np.float64 or not maps.flags.c_contiguous:
        return None
    return bool(_kernels()(maps))
