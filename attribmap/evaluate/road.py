"""ROAD (Rong et al., 2022): remove the most / least relevant pixels, impute, re-classify."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from attribmap.errors import AttribmapError
from attribmap.evaluate.exact_sum import exact_add, exact_mean, exact_zeros
from attribmap.evaluate.framing import Frame
from attribmap.evaluate.imputation import noisy_linear_imputation
from attribmap.evaluate.imputation_batched import DEFAULT_TOLERANCE, batched_linear_imputation
from attribmap.evaluate.metric import Column, Metric, MetricInfo, Plot

__all__ = ["ROAD", "removed_counts", "SOLVERS"]

#: Percentages of pixels removed (9 points, as the ROAD paper and pytorch-grad-cam average).
DEFAULT_PERCENTS = (10, 20, 30, 40, 50, 60, 70, 80, 90)
_ORDERS = ("morf", "lerf")
#: How the imputation's linear systems are solved.
SOLVERS = ("cg", "exact")


def removed_counts(pixels: int, percents: Sequence[int]) -> np.ndarray:
    """Pixels removed out of ``pixels`` at each of ``percents``: ``round(p * pixels / 100)`` (halves up), int64."""
    percents = np.asarray(percents, dtype=np.int64)
    return (percents * int(pixels) + 50) // 100


class ROAD(Metric):
    """ROAD: RemOve And Debias, most relevant first (MoRF) and least relevant first (LeRF).

    For every percentage p of ``percents`` the p % most relevant pixels (MoRF), or the p %
    least relevant (LeRF), of the map at the input resolution are removed (ranked as for
    deletion: decreasing value, equal values in raster order; LeRF takes the end of that
    ranking) and filled by noisy linear imputation
    (:func:`~attribmap.evaluate.imputation.noisy_linear_imputation`, in the model's
    normalized input space); the perturbed image is classified. Reported: the mean target
    probability over the percentages and images (``ROAD_MoRF``, lower is better;
    ``ROAD_LeRF``, higher is better), the same for top-1 accuracy (percent), and the curves.

    Parameters
    ----------
    percents : sequence of int
        Percentages of pixels removed, each in (0, 100).
    noise : float
        Standard deviation of the imputation noise (0.01).
    seed : int
        The noise of image i at percentage j, order o comes from a generator seeded with
        ``(seed, i, j, o)``, i the image's stream index: the numbers do not depend on
        batching, sharding or the solver.
    solver : str
        ``"cg"`` (default): every perturbed image of a forward chunk imputed at once, in torch
        on the model's device (:func:`~attribmap.evaluate.imputation_batched.batched_linear_imputation`:
        multigrid-preconditioned conjugate gradients to a relative residual ``tol``);
        ``"exact"``: one scipy sparse LU per image, percentage and order
        (:func:`~attribmap.evaluate.imputation.noisy_linear_imputation`), the reference.
        The scores of the two agree to 1e-4 (tests/test_evaluate_road_solver.py).
    tol : float
        Relative residual at which ``"cg"`` stops.

    References
    ----------
    Rong, Leemann, Borisov, Kasneci, Kasneci, "A Consistent and Efficient Evaluation
    Strategy for Attribution Methods", ICML 2022.
    """

    name = "road"
    _exact_state = ("morf_score", "lerf_score")

    def __init__(self, percents: Sequence[int] = DEFAULT_PERCENTS, noise: float = 0.01, seed: int = 0,
                 solver: str = "cg", tol: float = DEFAULT_TOLERANCE) -> None:
        percents = tuple(int(p) for p in percents)
        if not percents or any(not (0 < p < 100) for p in percents):
            raise AttribmapError(f"ROAD percents must be integers in (0, 100); got {percents}")
        if not (float(noise) >= 0):
            raise AttribmapError(f"ROAD noise must be >= 0; got {noise!r}")
        if solver not in SOLVERS:
            raise AttribmapError(f"ROAD solver must be one of {SOLVERS}; got {solver!r}")
        if not (0 < float(tol) < 1):
            raise AttribmapError(f"ROAD tol must be in (0, 1); got {tol!r}")
        self.percents = percents
        self.noise = float(noise)
        self.seed = int(seed)
        self.solver = solver
        self.tol = float(tol)
        super().__init__()

    def _config(self) -> tuple:
        return (self.percents, self.noise, self.seed, self.solver, self.tol if self.solver == "cg" else None)

    def _new_state(self) -> dict:
        points = len(self.percents)
        state = {"count": np.zeros((), dtype=np.int64)}
        for order in _ORDERS:
            state[f"{order}_score"] = exact_zeros(points)
            state[f"{order}_hits"] = np.zeros(points, dtype=np.int64)
        return state

    @property
    def info(self) -> MetricInfo:
        plot = Plot("road_curves.png", "ROAD curves", "road_fraction", ("road_morf", "road_lerf"),
                    ("ROAD, most relevant first", "ROAD, least relevant first"), "fraction of pixels removed",
                    "target probability", ylim=(0.0, 1.02))
        return MetricInfo(
            name=self.name, title="ROAD (MoRF / LeRF)", family="faithfulness", needs=("images", "model"),
            columns=(Column("ROAD_MoRF", "ROAD MoRF", higher_is_better=False, digits=3, unit=""),
                     Column("ROAD_LeRF", "ROAD LeRF", digits=3, unit=""),
                     Column("ROAD_MoRF_accuracy", "ROAD MoRF acc", headline=False, higher_is_better=False),
                     Column("ROAD_LeRF_accuracy", "ROAD LeRF acc", headline=False)),
            curves=("road_fraction", "road_morf", "road_lerf", "road_morf_accuracy", "road_lerf_accuracy"),
            plots=(plot,), reference="Rong et al., ICML 2022 (ROAD)")

    def forwards_per_image(self) -> int:
        """Perturbed forward passes per image."""
        return 2 * len(self.percents)

    def update(self, frame: Frame) -> "ROAD":
        """Add ``frame``, a :class:`~attribmap.evaluate.framing.Frame` with the model and its images."""
        self.check_inputs(frame)
        inputs = frame.inputs
        order = frame.pixel_order()
        pixels = order.shape[1]
        counts = removed_counts(pixels, self.percents)
        height, width = inputs.height, inputs.width
        points = len(self.percents)
        jobs = np.array([(b, j, o) for b in range(frame.count) for o in range(2) for j in range(points)],
                        dtype=np.int64).reshape(-1, 3)

        def masks(keys: np.ndarray) -> np.ndarray:
            removed = np.zeros((len(keys), pixels), dtype=bool)
            for row, (b, j, o) in enumerate(keys.tolist()):
                k = int(counts[j])
                removed[row, order[b, :k] if o == 0 else order[b, pixels - k:]] = True
            return removed.reshape(len(keys), height, width)

        def rng(b: int, j: int, o: int) -> np.random.Generator:
            return np.random.default_rng([self.seed, int(frame.indices[b]), j, o])

        if self.solver == "exact":
            images = inputs.images.detach().cpu().double().numpy()

            def build(owners: np.ndarray, keys: np.ndarray) -> torch.Tensor:
                filled = [noisy_linear_imputation(images[b], removed, self.noise, rng(b, j, o))
                          for (b, j, o), removed in zip(keys.tolist(), masks(keys))]
                return torch.from_numpy(np.stack(filled)).to(inputs.device, inputs.images.dtype)
        else:
            def build(owners: np.ndarray, keys: np.ndarray) -> torch.Tensor:
                removed = masks(keys)
                where = torch.from_numpy(removed).to(inputs.device)
                source = inputs.images[torch.from_numpy(owners).to(inputs.device)]
                filled = batched_linear_imputation(source, where, tol=self.tol, dtype=torch.float64)
                if self.noise > 0:  # the same draws as the exact path: (C, removed pixels in raster order)
                    channels = filled.shape[1]
                    noise = np.zeros((len(keys), height, width, channels))
                    for row, ((b, j, o), r) in enumerate(zip(keys.tolist(), removed)):
                        noise[row][r] = rng(b, j, o).standard_normal((channels, int(r.sum()))).T
                    filled += self.noise * torch.from_numpy(noise).to(inputs.device).permute(0, 3, 1, 2)
                return filled.to(inputs.images.dtype)

        scores, correct = inputs.scores(build, jobs[:, 0], jobs)
        scores = scores.reshape(frame.count, 2, points)
        correct = correct.reshape(frame.count, 2, points)
        for o, name in enumerate(_ORDERS):
            exact_add(self._state[f"{name}_score"], scores[:, o])
            self._state[f"{name}_hits"] += correct[:, o].sum(axis=0)
        self._state["count"] += frame.count
        return self

    def compute(self) -> dict:
        """Means over percentages and images, and the curves over ``road_fraction`` = percents / 100.

        Returns
        -------
        dict with ``ROAD_MoRF`` / ``ROAD_LeRF`` (mean target probability),
        ``ROAD_MoRF_accuracy`` / ``ROAD_LeRF_accuracy`` (percent), ``road_morf`` /
        ``road_lerf`` (P,) mean probability per percentage, ``road_morf_accuracy`` /
        ``road_lerf_accuracy`` (P,) percent, ``road_fraction`` (P,), ``num_images``.
        """
        count = self._count()
        result = {"road_fraction": np.asarray(self.percents, dtype=np.float64) / 100.0, "num_images": count}
        for name, key in zip(_ORDERS, ("MoRF", "LeRF")):
            curve = exact_mean(self._state[f"{name}_score"], count)
            accuracy = 100.0 * self._state[f"{name}_hits"] / count
            result.update({f"ROAD_{key}": float(np.mean(curve)), f"ROAD_{key}_accuracy": float(np.mean(accuracy)),
                           f"road_{name}": curve, f"road_{name}_accuracy": accuracy})
        return result

    def series(self, result) -> dict:
        """``road_fraction`` and the four curves of ``result``."""
        return {k: np.asarray(result[k]) for k in self.info.curves}
