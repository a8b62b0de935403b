"""ROAD's batched imputation (multigrid-preconditioned CG in torch) against the exact sparse LU.

The exact solve (:func:`attribmap.evaluate.imputation.linear_imputation`, scipy) is the
oracle. Tolerances sit orders of magnitude above what float rounding can produce and
orders below what a wrong equation, stencil or border gives (a wrong weight moves the
filled values by > 1e-2 on these images).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from attribmap.errors import AttribmapError
from attribmap.evaluate import ROAD, Framer, ModelInputs
from attribmap.evaluate.imputation import linear_imputation
from attribmap.evaluate.imputation_batched import batched_linear_imputation
from attribmap.evaluate.multigrid import MaskedMultigrid, _prolong, _restrict, apply_stencil


def _masks(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Hard cases: random, isolated unknowns, one big hole, whole rows and columns, the border ring, one kept pixel."""
    rng = np.random.default_rng(seed)
    masks = [rng.random((height, width)) < 0.6]
    isolated = np.zeros((height, width), dtype=bool)
    isolated[1::3, 1::3] = True  # no removed pixel touches another
    masks.append(isolated)
    hole = np.ones((height, width), dtype=bool)
    hole[-3:, -2:] = False  # 90 %+ removed, kept only in one corner: the far side is Neumann-like
    masks.append(hole)
    rows = np.zeros((height, width), dtype=bool)
    rows[[0, 3, 4, height - 1]] = True
    rows[:, [width // 2]] = True
    masks.append(rows)
    ring = np.zeros((height, width), dtype=bool)
    ring[[0, -1]] = True
    ring[:, [0, -1]] = True
    masks.append(ring)
    single = np.ones((height, width), dtype=bool)
    single[height // 2, 1] = False
    masks.append(single)
    masks.append(np.zeros((height, width), dtype=bool))  # nothing removed
    inner = np.zeros((height, width), dtype=bool)
    inner[height // 3:height // 3 + 3, width // 3:width // 3 + 2] = True  # solved on a box inside the image
    masks.append(inner)
    edge = np.zeros((height, width), dtype=bool)
    edge[:2, width // 4:width // 2 + 1] = True  # a box on the top border: d is the image's there, not the box's
    masks.append(edge)
    return np.stack(masks)


@pytest.mark.parametrize("shape", [(24, 24), (17, 30), (9, 5)])
def test_batched_imputation_equals_the_exact_solve(shape):
    height, width = shape
    rng = np.random.default_rng(1)
    masks = _masks(height, width)
    images = rng.normal(size=(len(masks), 3, height, width))
    expected = np.stack([linear_imputation(image, mask) for image, mask in zip(images, masks)])
    filled, iterations = batched_linear_imputation(torch.from_numpy(images), torch.from_numpy(masks), tol=1e-10,
                                                   return_iterations=True)
    assert filled.dtype == torch.float64 and filled.shape == images.shape
    assert np.abs(filled.numpy() - expected).max() < 1e-6  # observed ~1e-10 at tol 1e-10
    assert np.array_equal(filled.numpy()[:, :, ~masks[0]][0], images[0][:, ~masks[0]])  # kept pixels untouched
    assert 0 < iterations < 40  # the multigrid keeps CG short (plain CG needs hundreds on the big hole)
    single = filled.numpy()[5]  # one kept pixel: everything takes its value
    assert np.abs(single - images[5][:, height // 2, 1][:, None, None]).max() < 1e-6


def test_default_tolerance_and_chunks_agree_with_the_exact_solve():
    rng = np.random.default_rng(2)
    masks = _masks(20, 26, seed=3)
    images = rng.normal(size=(len(masks), 3, 20, 26)).astype(np.float32)
    expected = np.stack([linear_imputation(image, mask) for image, mask in zip(images, masks)])
    for chunk in (1, 3, 100):  # chunks of 1 solve the last two masks on boxes
        filled = batched_linear_imputation(torch.from_numpy(images), torch.from_numpy(masks), chunk=chunk)
        assert np.abs(filled.numpy() - expected).max() < 1e-3  # observed 3e-5 at the default 1e-5 residual


def test_the_multigrid_pieces_are_transposes_and_galerkin_products():
    torch.manual_seed(0)
    for height, width in ((13, 13), (12, 15)):
        unknown = torch.rand(2, 1, height, width) < 0.7
        grid = MaskedMultigrid(unknown, 1 / 6, 1 / 12, dtype=torch.float64, coarsest=2)
        coarse = torch.randn(2, 1, (height + 1) // 2, (width + 1) // 2, dtype=torch.float64)
        fine = torch.randn(2, 1, height, width, dtype=torch.float64)
        assert abs(float((_prolong(coarse, (height, width)) * fine).sum() - (coarse * _restrict(fine)).sum())) < 1e-9
        galerkin = _restrict(grid.apply_fine(grid.mask * _prolong(coarse, (height, width))))
        assert float((apply_stencil(grid.levels[0][0], coarse) - galerkin).abs().max()) < 1e-9
        u, v = (torch.randn(2, 3, height, width, dtype=torch.float64) * grid.mask for _ in range(2))
        assert abs(float((u * grid(v)).sum() - (v * grid(u)).sum())) < 1e-8  # a symmetric preconditioner
        assert float((u * grid(u)).sum()) > 0


def _sensitive_model(seed: int = 0) -> nn.Module:
    """A small CNN with large logits, so that the softmax moves visibly with the imputed pixels."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))
    with torch.no_grad():
        model[-1].weight.mul_(20.0)
    return model.eval()


@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_road_scores_of_both_solvers_agree(noise):
    rng = np.random.default_rng(4)
    images = torch.from_numpy(rng.normal(size=(3, 3, 20, 20)).astype(np.float32))
    maps = rng.random((3, 5, 5))
    targets = rng.integers(0, 3, 3)
    model = _sensitive_model()
    results = {}
    for solver in ("exact", "cg"):
        metric = ROAD(noise=noise, seed=7, solver=solver)
        frame = Framer(20).frame(maps, inputs=ModelInputs(model, images, targets, batch_size=7))
        results[solver] = metric.update(frame).compute()
    for key in ("road_morf", "road_lerf"):
        assert np.abs(results["cg"][key] - results["exact"][key]).max() < 1e-4  # observed ~7e-7 at the default tol
        assert np.ptp(results["exact"][key]) > 1e-2  # the curves move: the comparison has teeth
    for key in ("ROAD_MoRF", "ROAD_LeRF"):
        assert results["cg"][key] == pytest.approx(results["exact"][key], abs=1e-4)


def test_bad_inputs_give_one_line_errors():
    images = torch.zeros(2, 3, 6, 7)
    removed = torch.zeros(2, 6, 7, dtype=torch.bool)
    everything = removed.clone()
    everything[1] = True
    with pytest.raises(AttribmapError, match="at least one kept pixel; mask 1 removes all 42"):
        batched_linear_imputation(images, everything)
    with pytest.raises(AttribmapError, match=r"masks \(N, H, W\) = \(2, 6, 7\) for images \(2, 3, 6, 7\); got \(2, 7, 6\)"):
        batched_linear_imputation(images, torch.zeros(2, 7, 6, dtype=torch.bool))
    with pytest.raises(AttribmapError, match="bool mask tensor"):
        batched_linear_imputation(images, removed.float())
    with pytest.raises(AttribmapError, match=r"float images \(N, C, H, W\); got \(3, 6, 7\)"):
        batched_linear_imputation(images[0], removed)
    with pytest.raises(AttribmapError, match="tolerance must be in \\(0, 1\\); got 0"):
        batched_linear_imputation(images, removed, tol=0)
    with pytest.raises(AttribmapError, match="chunk must be a positive int; got 0"):
        batched_linear_imputation(images, removed, chunk=0)
    with pytest.raises(AttribmapError, match="ROAD solver must be one of \\('cg', 'exact'\\); got 'lu'"):
        ROAD(solver="lu")
    with pytest.raises(AttribmapError, match="ROAD tol must be in"):
        ROAD(tol=2.0)
    with pytest.raises(AttribmapError) as caught:
        batched_linear_imputation(images, everything)
    assert "\n" not in str(caught.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_batched_imputation_runs_on_the_images_device():
    rng = np.random.default_rng(5)
    masks = _masks(16, 16)
    images = rng.normal(size=(len(masks), 3, 16, 16))
    on_gpu = batched_linear_imputation(torch.from_numpy(images).cuda(), torch.from_numpy(masks).cuda(), tol=1e-10)
    assert on_gpu.device.type == "cuda"
    expected = np.stack([linear_imputation(image, mask) for image, mask in zip(images, masks)])
    assert np.abs(on_gpu.cpu().numpy() - expected).max() < 1e-6
