"""Deletion and insertion curves (Petsiuk et al., 2018): the machinery both metrics share.

Pixels are ranked by the map at the model's input resolution (most relevant first; equal
values in raster order). In ``steps`` equal steps, step s perturbs the first
``k_s = floor(s * H * W / steps)`` pixels of the ranking (every channel):

* **deletion** starts from the image and replaces them by the baseline (zeros in the
  model's input space, or a blurred copy);
* **insertion** starts from the baseline (a blurred copy by default) and puts the image's
  pixels back.

The score at each step is the softmax probability of the target class; the AUC is the
trapezoid rule over the fraction of pixels ``k_s / (H * W)``, so it lies in [0, 1]. The
intermediate steps of a batch run as chunked batched forwards
(:class:`~attribmap.evaluate.perturbation.ModelInputs`); the two end points are the clean
image and the baseline, whose scores are computed once per batch and shared (the zero
image once for all images).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from attribmap.errors import AttribmapError
from attribmap.evaluate.exact_sum import exact_add, exact_mean, exact_zeros
from attribmap.evaluate.framing import Frame
from attribmap.evaluate.metric import Column, Metric, MetricInfo, Plot
from attribmap.evaluate.perturbation import BASELINES, step_counts, trapezoid_auc

__all__ = ["CausalCurve"]

_REFERENCE = "Petsiuk et al., RISE, BMVC 2018 (deletion and insertion)"


class CausalCurve(Metric):
    """Base of :class:`~attribmap.evaluate.Deletion` and :class:`~attribmap.evaluate.Insertion`.

    Parameters
    ----------
    steps : int
        Number of steps n (the curve has n + 1 points).
    baseline : {"zeros", "blur"}, optional
        What removed pixels become (deletion; default ``"zeros"``) or what the image starts
        from (insertion; default ``"blur"``).
    blur_sigma, blur_kernel : float, int
        The Gaussian blur of the ``"blur"`` baseline (sigma 5, 11 x 11, as Petsiuk et al.).

    Notes
    -----
    State: ``count``, and exact sums (:mod:`attribmap.evaluate.exact_sum`) of the per-image
    AUC and of the per-step scores, so batches and processes merge to the same numbers.
    """

    deleting: bool = True
    default_baseline: str = "zeros"
    _exact_state = ("auc", "curve")

    def __init__(self, steps: int = 50, baseline: Optional[str] = None, blur_sigma: float = 5.0,
                 blur_kernel: int = 11) -> None:
        baseline = self.default_baseline if baseline is None else baseline
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise AttribmapError(f"steps must be a positive int; got {steps!r}")
        if baseline not in BASELINES:
            raise AttribmapError(f"baseline must be one of {BASELINES}; got {baseline!r}")
        self.steps = steps
        self.baseline = baseline
        self.blur_sigma = float(blur_sigma)
        self.blur_kernel = int(blur_kernel)
        super().__init__()

    def _config(self) -> tuple:
        return (self.steps, self.baseline, self.blur_sigma, self.blur_kernel)

    def _new_state(self) -> dict:
        return {"count": np.zeros((), dtype=np.int64), "auc": exact_zeros(), "curve": exact_zeros(self.steps + 1)}

    @property
    def _key(self) -> str:
        return "Deletion" if self.deleting else "Insertion"

    @property
    def info(self) -> MetricInfo:
        word = self.name
        plot = Plot(f"{word}_curves.png", f"{self._key} curves ({self.baseline} baseline)", f"{word}_fraction",
                    (f"{word}_score",), (f"{self._key}, {self.baseline} baseline",),
                    "fraction of pixels " + ("removed" if self.deleting else "inserted"),
                    "target probability", ylim=(0.0, 1.02))
        return MetricInfo(name=word, title=f"{self._key} AUC", family="faithfulness", needs=("images", "model"),
                          columns=(Column(self._key, f"{word} AUC", higher_is_better=not self.deleting, digits=3,
                                          unit=""),),
                          curves=(f"{word}_fraction", f"{word}_score"), plots=(plot,), reference=_REFERENCE)

    def forwards_per_image(self) -> int:
        """Perturbed forward passes per image (the shared end points not counted)."""
        return self.steps - 1

    def curves(self, frame: Frame) -> np.ndarray:
        """The per-image curves of one ``frame``: target probability after each step, (N, steps + 1)."""
        self.check_inputs(frame)
        inputs = frame.inputs
        count, pixels = frame.count, inputs.height * inputs.width
        counts = step_counts(pixels, self.steps)
        base = inputs.baseline(self.baseline, self.blur_sigma, self.blur_kernel)
        clean = inputs.clean()[0]
        at_baseline = inputs.baseline_scores(self.baseline, self.blur_sigma, self.blur_kernel)[0]
        curves = np.empty((count, self.steps + 1), dtype=np.float64)
        curves[:, 0], curves[:, -1] = (clean, at_baseline) if self.deleting else (at_baseline, clean)
        if self.steps > 1:
            device = inputs.device
            ranks = torch.from_numpy(frame.pixel_ranks()).to(device)
            limits = torch.from_numpy(counts).to(device)
            images = inputs.images
            start, end = (base, images) if not self.deleting else (images, base)
            shape = (1,) + tuple(images.shape[2:])

            def build(owners: np.ndarray, steps: np.ndarray) -> torch.Tensor:
                own = torch.from_numpy(owners).to(device)
                changed = ranks[own] < limits[torch.from_numpy(steps).to(device)][:, None]
                changed = changed.view((len(owners),) + shape)
                return torch.where(changed, end[own], start[own])

            interior = np.arange(1, self.steps)
            owners = np.repeat(np.arange(count), len(interior))
            scores, _ = inputs.scores(build, owners, np.tile(interior, count))
            curves[:, 1:-1] = scores.reshape(count, len(interior))
        return curves

    def update(self, frame: Frame) -> "CausalCurve":
        """Add ``frame``, a :class:`~attribmap.evaluate.framing.Frame` with the model and its images."""
        curves = self.curves(frame)
        pixels = frame.inputs.height * frame.inputs.width
        fraction = step_counts(pixels, self.steps) / float(pixels)
        exact_add(self._state["auc"], trapezoid_auc(fraction, curves))
        exact_add(self._state["curve"], curves)
        self._state["count"] += frame.count
        return self

    def compute(self) -> dict:
        """The mean AUC (``Deletion`` / ``Insertion``, in [0, 1]) and the mean curve.

        Returns
        -------
        dict with the AUC, ``<name>_score`` (steps + 1,) the mean target probability after
        each step, ``<name>_fraction`` (steps + 1,) = s / steps, ``num_images``.
        """
        count = self._count()
        word = self.name
        return {self._key: exact_mean(self._state["auc"], count),
                f"{word}_score": exact_mean(self._state["curve"], count),
                f"{word}_fraction": np.arange(self.steps + 1) / self.steps, "num_images": count}

    def series(self, result) -> dict:
        """``<name>_fraction`` and ``<name>_score`` of ``result``."""
        word = self.name
        return {f"{word}_fraction": np.asarray(result[f"{word}_fraction"]),
                f"{word}_score": np.asarray(result[f"{word}_score"])}
