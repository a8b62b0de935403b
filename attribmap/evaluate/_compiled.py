"""Whether the compiled (numba) kernels of :mod:`attribmap.evaluate` can be used."""
from __future__ import annotations

from functools import lru_cache

__all__ = ["numba_available"]


@lru_cache(maxsize=None)
def numba_available() -> bool:
    """Whether numba can be imported (the ``"tree"`` engine and fast PxAP binning need it)."""
    try:
        import numba  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True
