"""Exact, order-independent sums of float64 values held in int64 arrays.

A float metric averaged over a dataset (a deletion AUC, an energy ratio) must give the same
number whether the images are scored in one process or spread over several, in any batch
order. A float64 running sum does not: ``(a + b) + c`` and ``a + (b + c)`` round differently.
Here every value is added **exactly**: a finite float64 is an integer multiple of 2**-1074,
so it is written as that integer, split into ``LIMBS`` signed 50-bit limbs (an int64 array
whose last axis is the limb axis). Limbs add as integers, so batches, shards and processes
(``torch.distributed`` all_reduce of int64) sum exactly in any order; :func:`exact_mean`
turns the total into the correctly rounded float64 mean.

The limbs cover magnitudes below 2**76 (far above any score here); a value outside raises.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from attribmap.errors import AttribmapError

__all__ = ["LIMBS", "exact_zeros", "exact_add", "exact_normalize", "exact_total", "exact_mean"]

_BITS = 50
_MASK = (1 << _BITS) - 1
#: Limbs per exact number: 2**-1074 .. 2**76 (1150 bits).
LIMBS = 23
_OFFSET = 1074  # bit 0 of limb 0 is worth 2**-1074
_LIMIT = 2.0 ** 76
#: Values added per pass before the carries are propagated (keeps every limb below 2**62).
_CHUNK = 2048


def exact_zeros(shape=()) -> np.ndarray:
    """A zero exact number (or an array of them): int64 of shape ``(*shape, LIMBS)``."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return np.zeros(shape + (LIMBS,), dtype=np.int64)


def exact_normalize(limbs: np.ndarray) -> np.ndarray:
    """Propagate carries of ``limbs`` in place so that every limb but the last lies in [0, 2**50); returns it."""
    for i in range(LIMBS - 1):
        carry = limbs[..., i] >> _BITS  # arithmetic shift: floor division, also for negatives
        limbs[..., i] -= carry << _BITS
        limbs[..., i + 1] += carry
    return limbs


def exact_add(limbs: np.ndarray, values, slots=None) -> np.ndarray:
    """Add float64 ``values`` exactly into ``limbs`` (in place); returns ``limbs``.

    Parameters
    ----------
    limbs : ndarray, int64, shape ``(*S, LIMBS)``
        Exact numbers, from :func:`exact_zeros`.
    values : array-like of float
        Finite values. Without ``slots`` they must have shape ``S`` or ``(n, *S)`` (n values
        added to each number); with ``slots`` they are 1-D.
    slots : array-like of int, optional
        Flat index (into ``S``) of the number each value is added to.
    """
    values = np.asarray(values, dtype=np.float64)
    numbers = limbs.reshape(-1, LIMBS)
    if slots is None:
        shape = limbs.shape[:-1]
        if values.shape == shape:
            values = values[None]
        if values.shape[1:] != shape:
            raise AttribmapError(f"values of shape {values.shape} do not fit exact numbers of shape {shape}")
        slots = np.broadcast_to(np.arange(numbers.shape[0]), values.shape[:1] + (numbers.shape[0],)).reshape(-1)
        values = values.reshape(-1)
    else:
        slots = np.asarray(slots, dtype=np.int64).reshape(-1)
        values = values.reshape(-1)
        if slots.shape != values.shape:
            raise AttribmapError(f"{values.size} values but {slots.size} slots")
    if values.size and not (np.isfinite(values).all() and np.abs(values).max() < _LIMIT):
        bad = values[~(np.isfinite(values) & (np.abs(values) < _LIMIT))][0]
        raise AttribmapError(f"an exact sum takes finite values below 2**76 in magnitude; got {bad!r}")
    for start in range(0, values.size, _CHUNK):
        _add_chunk(numbers, values[start:start + _CHUNK], slots[start:start + _CHUNK])
        exact_normalize(numbers)
    return limbs


def _add_chunk(numbers: np.ndarray, values: np.ndarray, slots: np.ndarray) -> None:
    mantissa, exponent = np.frexp(values)  # value = mantissa * 2**exponent, 0.5 <= |mantissa| < 1
    integer = np.abs(np.ldexp(mantissa, 53)).astype(np.int64)  # exact: 53 significant bits
    sign = np.where(values < 0, -1, 1).astype(np.int64)
    position = exponent.astype(np.int64) - 53 + _OFFSET  # value = +-integer * 2**(position - OFFSET)
    low = position < 0  # subnormals: the integer has that many trailing zero bits
    integer[low] >>= -position[low]
    position[low] = 0
    limb, shift = np.divmod(position, _BITS)
    flat = numbers.reshape(-1)
    base = slots * LIMBS + limb
    pieces = ((integer & ((np.int64(1) << (_BITS - shift)) - 1)) << shift,
              (integer >> (_BITS - shift)) & _MASK,
              integer >> (2 * _BITS - shift))
    for offset, piece in enumerate(pieces):
        keep = piece != 0
        np.add.at(flat, base[keep] + offset, sign[keep] * piece[keep])


def exact_total(limbs: np.ndarray) -> int:
    """One exact number (its ``limbs``, shape (LIMBS,)) as a Python int, in units of 2**-1074."""
    limbs = np.asarray(limbs, dtype=np.int64).reshape(LIMBS)
    return sum(int(value) << (_BITS * i) for i, value in enumerate(limbs.tolist()))


def exact_mean(limbs: np.ndarray, count: int) -> np.ndarray | float:
    """The correctly rounded float64 of ``sum / count`` for each exact number (NaN when count is 0).

    Parameters
    ----------
    limbs : ndarray, int64, shape ``(*S, LIMBS)``
    count : int

    Returns
    -------
    float (S empty) or ndarray float64 of shape S
    """
    limbs = np.asarray(limbs, dtype=np.int64)
    shape = limbs.shape[:-1]
    flat = limbs.reshape(-1, LIMBS)
    if count <= 0:
        out = np.full(flat.shape[0], np.nan)
    else:
        scale = int(count) << _OFFSET
        out = np.array([float(Fraction(exact_total(row), scale)) for row in flat], dtype=np.float64)
    return float(out[0]) if shape == () else out.reshape(shape)
