"""The two stopping scores on hand-made maps: the paper's S and the robust S (floor, margin)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from attribmap.errors import InputError
from attribmap.learned import robust_stopping_score, stopping_diagnostics, stopping_score


def two_blobs_on_a_floor() -> np.ndarray:
    """8x8 map at 0.5 with a 2x2 blob (rows/cols 1-2) and a 3x3 blob (rows/cols 4-6) at 1.0."""
    m = np.full((8, 8), 0.5)
    m[1:3, 1:3] = 1.0
    m[4:7, 4:7] = 1.0
    return m


def two_blobs_in_a_frame() -> np.ndarray:
    """10x10 map: bright 1-px frame (1.0), interior 0.3, blobs at 0.9 (2x2 at 2-3, 3x3 at 5-7)."""
    m = np.full((10, 10), 1.0)
    m[1:9, 1:9] = 0.3
    m[2:4, 2:4] = 0.9
    m[5:8, 5:8] = 0.9
    return m


def test_a_floor_above_a_tenth_of_the_max_makes_the_papers_s_one():
    maps = two_blobs_on_a_floor()[None]
    assert stopping_score(maps)[0] == 1.0          # every pixel passes max/10: one contour, the image
    # robust: R = M - 0.5 keeps the blobs (0.5 each); the 3x3 blob is the largest contour
    assert robust_stopping_score(maps, margin=0)[0] == pytest.approx(9 / 13)
    diag = stopping_diagnostics(maps, margin=0)
    assert diag["S_paper"][0] == 1.0 and diag["above"][0] == 1.0
    assert diag["S_robust"][0] == pytest.approx(9 / 13) and diag["above_robust"][0] == pytest.approx(13 / 64)
    assert diag["floor"][0] == 0.5


def test_a_bright_frame_makes_the_papers_s_one_and_the_margin_ignores_it():
    maps = two_blobs_in_a_frame()[None]
    assert stopping_score(maps)[0] == 1.0
    # margin 2: the 6x6 interior (rows/cols 2-7), floor 0.3, blobs 0.6: again 9 / 13
    assert robust_stopping_score(maps, margin=2)[0] == pytest.approx(9 / 13)
    diag = stopping_diagnostics(maps, margin=2)
    assert diag["floor"][0] == pytest.approx(0.3) and diag["above_robust"][0] == pytest.approx(13 / 36)


def test_percentile_floor_by_hand():
    m = np.arange(16.0).reshape(1, 4, 4)
    diag = stopping_diagnostics(m, floor="percentile", percentile=50, margin=0)
    assert diag["floor"][0] == 7.5
    # R = max(M - 7.5, 0) = 0.5 .. 7.5 on 8 .. 15; tau = 0.75 keeps 9 .. 15 (7 pixels, one blob)
    assert diag["above_robust"][0] == pytest.approx(7 / 16) and diag["S_robust"][0] == 1.0
    assert diag["above"][0] == pytest.approx(14 / 16)          # paper tau = 1.5: values 2 .. 15


def test_robust_equals_paper_on_maps_that_already_reach_zero_without_margin():
    rng = np.random.default_rng(0)
    maps = rng.random((6, 12, 12)) ** 3
    maps[:, 0, 0] = 0.0
    np.testing.assert_array_equal(robust_stopping_score(maps, margin=0), stopping_score(maps))
    as_tensor = robust_stopping_score(torch.from_numpy(maps), margin=0)
    assert isinstance(as_tensor, torch.Tensor) and as_tensor.dtype == torch.float64


def test_bad_robust_options_are_named():
    maps = np.zeros((1, 8, 8))
    with pytest.raises(InputError, match="floor must be one of"):
        robust_stopping_score(maps, floor="median")
    with pytest.raises(InputError, match="margin 4 leaves nothing of 8x8 maps"):
        robust_stopping_score(maps, margin=4)
    with pytest.raises(InputError, match=r"percentile must be in \[0, 100\], got 101"):
        stopping_diagnostics(maps, floor="percentile", percentile=101)
    assert robust_stopping_score(maps)[0] == 0.0               # an all-zero map scores 0
