"""The legacy fixed-threshold protocol (CAM, ACoL, SPG, I2C, DGL tables): GT-known and top-1 loc.

Always label numbers from here "legacy": they are not comparable with MaxBoxAcc.

* frame: the image is resized to ``resize_size`` squared then center-cropped to
  ``crop_size``; GT boxes go through the same transform (scaled, shifted by the crop
  offset, truncated to int, clipped to the crop);
* map: bicubic to ``crop_size``, min-max, ``s8 = floor(255 x)``, foreground
  ``s8 > int(tau * max(s8))`` with one fixed tau;
* box: the largest contour's bounding rectangle as ``[x, y, x + w, y + h]`` (not
  clipped); no foreground gives ``[0, 0, 1, 1]``;
* hit: inclusive IoU >= ``iou_threshold`` with any GT box; top-1 loc also needs a
  correct top-1 prediction (denominator: all images).
"""
from __future__ import annotations

import numpy as np

from attribmap.errors import AttribmapError
from attribmap.evaluate.contours import mask_contours
from attribmap.evaluate.frame import legacy_gt_boxes
from attribmap.evaluate.framing import Frame
from attribmap.evaluate.iou import inclusive_iou
from attribmap.evaluate.metric import Column, Metric, MetricInfo

__all__ = ["LegacyLocalization", "legacy_box", "legacy_gt_boxes"]


def legacy_box(s8: np.ndarray, tau: float) -> np.ndarray:
    """The legacy box of one uint8 map ``s8`` cut at ``tau``: (4,) int64 ``[x, y, x + w, y + h]`` or [0, 0, 1, 1]."""
    level = int(float(tau) * s8.max())
    rect = mask_contours(s8 > level).largest_rect
    if rect is None:
        return np.array([0, 0, 1, 1], dtype=np.int64)
    x, y, w, h = rect
    return np.array([x, y, x + w, y + h], dtype=np.int64)


class LegacyLocalization(Metric):
    """GT-known and top-1 localization accuracy at one fixed threshold (legacy protocol).

    Parameters
    ----------
    tau : float
        Fixed threshold on the min-max map (0.2 in most legacy papers).
    resize_size, crop_size : int
        Resize then center-crop sizes of the legacy test transform (256 -> 224).
    iou_threshold : float
        IoU needed for a hit (0.5).

    References
    ----------
    Zhou et al., "Learning Deep Features for Discriminative Localization", CVPR 2016, and
    the tables of ACoL, SPG, I2C, DGL that follow its protocol.
    """

    name = "legacy"

    def __init__(self, tau: float = 0.2, resize_size: int = 256, crop_size: int = 224,
                 iou_threshold: float = 0.5) -> None:
        if not (0.0 <= float(tau) < 1.0):
            raise AttribmapError(f"tau must be in [0, 1); got {tau!r}")
        if int(crop_size) > int(resize_size):
            raise AttribmapError(f"crop_size ({crop_size}) must not exceed resize_size ({resize_size})")
        self.tau = float(tau)
        self.resize_size = int(resize_size)
        self.crop_size = int(crop_size)
        self.iou_threshold = float(iou_threshold)
        super().__init__()

    def _config(self) -> tuple:
        return (self.tau, self.resize_size, self.crop_size, self.iou_threshold)

    def _new_state(self) -> dict[str, np.ndarray]:
        zero = lambda: np.zeros((), dtype=np.int64)  # noqa: E731
        return {"count": zero(), "hits": zero(), "predicted": zero(), "top1_hits": zero()}

    @property
    def image_size(self) -> int:
        """Side of the frame the maps are scored in (the crop)."""
        return self.crop_size

    @property
    def info(self) -> MetricInfo:
        return MetricInfo(name=self.name, title=f"Legacy localization (fixed tau = {self.tau})",
                          family="localization", needs=("boxes",),
                          columns=(Column("GTKnownLoc", "GT-known loc"), Column("Top1Loc", "top-1 loc")),
                          reference="Zhou et al., CVPR 2016 (CAM); legacy fixed-threshold tables",
                          default_in=("legacy",))

    def update(self, frame: Frame) -> "LegacyLocalization":
        """Add a batch.

        Parameters
        ----------
        frame : Frame
            The batch in the crop's frame (:class:`~attribmap.evaluate.framing.Frame` of side
            ``crop_size``) with its GT boxes and the original image sizes; with ``correct``
            (top-1 flags) it also counts top-1 localization.
        """
        self.check_inputs(frame)
        flags = frame.correct
        s8 = frame.s8()
        for index, gt in enumerate(frame.legacy_boxes(self.resize_size, self.crop_size)):
            box = legacy_box(s8[index], self.tau)
            hit = bool((inclusive_iou(box[None], gt) >= self.iou_threshold).any())
            self._state["hits"] += hit
            if flags is not None and flags[index] and hit:
                self._state["top1_hits"] += 1
        self._state["count"] += frame.count
        if flags is not None:
            self._state["predicted"] += frame.count
        return self

    def compute(self) -> dict:
        """``GTKnownLoc`` (and ``Top1Loc`` when every image had a prediction flag), percent."""
        count = self._count()
        result = {"GTKnownLoc": 100.0 * int(self._state["hits"]) / count, "num_images": count,
                  "protocol": "legacy", "tau": self.tau}
        if int(self._state["predicted"]) == count:
            result["Top1Loc"] = 100.0 * int(self._state["top1_hits"]) / count
        return result
