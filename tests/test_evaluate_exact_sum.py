"""Exact float sums in int64 limbs: order-independent, correctly rounded, mergeable."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from attribmap.errors import AttribmapError
from attribmap.evaluate.exact_sum import exact_add, exact_mean, exact_normalize, exact_total, exact_zeros


def _values(rng, count):
    return np.concatenate([rng.random(count), rng.normal(size=count) * 1e6, -rng.random(count) * 1e-300,
                           [5e-324, -5e-324, 2.0 ** 70, 1.0, -1.0, 0.0]])


def test_the_mean_is_the_correctly_rounded_exact_mean_in_any_order():
    rng = np.random.default_rng(0)
    values = _values(rng, 3000)
    expected = float(sum(Fraction(v) for v in values.tolist()) / len(values))
    forward, backward = exact_zeros(), exact_zeros()
    exact_add(forward, values)
    exact_add(backward, values[::-1])
    assert np.array_equal(forward, backward)
    assert exact_mean(forward, len(values)) == expected
    assert exact_total(forward) == sum(Fraction(v) for v in values.tolist()) * 2 ** 1074


def test_pieces_added_as_integers_equal_one_pass():
    rng = np.random.default_rng(1)
    values = _values(rng, 500)
    whole = exact_add(exact_zeros(), values)
    parts = [exact_add(exact_zeros(), chunk) for chunk in np.array_split(rng.permutation(values), 7)]
    merged = exact_normalize(sum(parts))
    assert np.array_equal(merged, whole)


def test_arrays_of_numbers_and_slots():
    rng = np.random.default_rng(2)
    values = rng.random((9, 2, 3))
    limbs = exact_add(exact_zeros((2, 3)), values)
    means = exact_mean(limbs, 9)
    for index in np.ndindex(2, 3):
        assert means[index] == float(sum(Fraction(v) for v in values[(slice(None),) + index].tolist()) / 9)
    slotted = exact_add(exact_zeros(6), values.reshape(9, 6).reshape(-1), slots=np.tile(np.arange(6), 9))
    assert np.array_equal(slotted.reshape(2, 3, -1), limbs)
    assert np.isnan(exact_mean(limbs, 0)).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf, 2.0 ** 80])
def test_values_it_cannot_hold_are_refused(bad):
    with pytest.raises(AttribmapError, match="finite values"):
        exact_add(exact_zeros(), [1.0, bad])
    with pytest.raises(AttribmapError, match="do not fit"):
        exact_add(exact_zeros(3), np.ones((2, 4)))
