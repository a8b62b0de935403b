"""Average drop and increase in confidence (Chattopadhay et al., Grad-CAM++, 2018)."""
from __future__ import annotations

import numpy as np
import torch

from attribmap.evaluate.exact_sum import exact_add, exact_mean, exact_zeros
from attribmap.evaluate.framing import Frame
from attribmap.evaluate.metric import Column, Metric, MetricInfo

__all__ = ["AverageDrop", "confidence_change"]


def confidence_change(clean: np.ndarray, masked: np.ndarray):
    """Per-image drop ``max(0, Y - O) / Y`` (0 where Y = 0) and increase flag ``O > Y``.

    Parameters
    ----------
    clean, masked : ndarray float64 (N,)
        Y = target probability of the image, O = of the image times its map.

    Returns
    -------
    drop : ndarray float64 (N,) in [0, 1]
    increase : ndarray bool (N,)
    """
    clean = np.asarray(clean, dtype=np.float64)
    masked = np.asarray(masked, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        drop = np.where(clean > 0, np.maximum(0.0, clean - masked) / clean, 0.0)
    return drop, masked > clean


class AverageDrop(Metric):
    """Average drop (lower is better) and increase in confidence (higher is better).

    With Y the target probability of the image X and O that of ``X * M`` (M the map at the
    input resolution, min-max in [0, 1], the same for every channel; the product is taken
    in the model's normalized input space): drop = 100 x mean of ``max(0, Y - O) / Y``,
    increase = 100 x share of images with ``O > Y``. An image with Y = 0 adds 0 to the drop.

    References
    ----------
    Chattopadhay, Sarkar, Howlader, Balasubramanian, "Grad-CAM++: Generalized
    Gradient-Based Visual Explanations for Deep Convolutional Networks", WACV 2018.
    """

    name = "drop"
    _exact_state = ("drop",)

    def _config(self) -> tuple:
        return ()

    def _new_state(self) -> dict:
        return {"count": np.zeros((), dtype=np.int64), "increase": np.zeros((), dtype=np.int64),
                "drop": exact_zeros()}

    @property
    def info(self) -> MetricInfo:
        return MetricInfo(name=self.name, title="Average drop / increase in confidence", family="faithfulness",
                          needs=("images", "model"),
                          columns=(Column("AverageDrop", "average drop", higher_is_better=False),
                                   Column("IncreaseInConfidence", "increase in confidence")),
                          reference="Chattopadhay et al., Grad-CAM++, WACV 2018")

    def forwards_per_image(self) -> int:
        """Forward passes per image (the masked image)."""
        return 1

    def update(self, frame: Frame) -> "AverageDrop":
        """Add ``frame``, a :class:`~attribmap.evaluate.framing.Frame` with the model and its images."""
        self.check_inputs(frame)
        inputs = frame.inputs
        weights = torch.from_numpy(frame.input_maps()).to(inputs.device, inputs.images.dtype).unsqueeze(1)
        masked, _ = inputs.scores(lambda owners, _: inputs.images[owners] * weights[owners], np.arange(frame.count))
        drop, increase = confidence_change(inputs.clean()[0], masked)
        exact_add(self._state["drop"], drop)
        self._state["increase"] += int(increase.sum())
        self._state["count"] += frame.count
        return self

    def compute(self) -> dict:
        """``AverageDrop`` and ``IncreaseInConfidence`` (percent), ``num_images``."""
        count = self._count()
        return {"AverageDrop": 100.0 * exact_mean(self._state["drop"], count),
                "IncreaseInConfidence": 100.0 * int(self._state["increase"]) / count, "num_images": count}
