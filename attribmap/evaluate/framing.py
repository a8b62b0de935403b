"""The one place where a batch is brought to the evaluation frame: :class:`Framer` -> :class:`Frame`.

Every metric reads a :class:`Frame`: the maps of the batch in the official frame (bicubic to
``image_size`` squared, min-max in float64: :func:`~attribmap.evaluate.frame.official_maps`),
the GT boxes rescaled to it (``int(x * S / W)``), the masks (nearest, > 0.5, union of
instances; ignore minus foreground), the top-1 flags and, for the faithfulness metrics, the
model and its input images (:class:`~attribmap.evaluate.perturbation.ModelInputs`). What
several metrics derive from the same batch (the uint8 cut, the pixel sets, the PxAP
histograms, the maps at the input resolution, the pixel ranking) is computed on first use
and kept in the frame, so that it is computed once per batch whatever the metrics.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from attribmap.errors import AttribmapError
from attribmap.evaluate.frame import (as_numpy, batch_correct, frame_boxes, frame_scoremaps, legacy_gt_boxes,
                                      normalize_inplace, resize_bicubic, to_uint8, union_mask)
from attribmap.evaluate.histogram import split_histograms

__all__ = ["Frame", "Framer", "INPUTS"]

#: What a metric can need from a frame (``"raw"``: the maps as given, before framing).
INPUTS = ("boxes", "masks", "correct", "images", "model", "raw")


def _per_image(masks, count: int, name: str) -> Optional[list]:
    if masks is None:
        return None
    if len(masks) != count:
        raise AttribmapError(f"{name} must hold {count} masks (one per map); got {len(masks)}")
    return list(masks)


class Frame:
    """One batch in the evaluation frame (built by :class:`Framer`; read-only for metrics).

    Attributes
    ----------
    maps : ndarray, float64, shape (N, S, S)
        Official-frame maps in [0, 1].
    size : int
        S, the side of the frame.
    count : int
        N.
    boxes : list of N int64 arrays (k_i, 4), or None
        GT boxes in frame pixels (inclusive x0, y0, x1, y1).
    raw_boxes, image_sizes
        The boxes as given (original pixels) and the original (W, H) sizes, or None.
    correct : ndarray bool (N,), or None
        Top-1 prediction == label.
    inputs : ModelInputs or None
        The model, its input images and the target classes (faithfulness metrics).
    indices : ndarray int64 (N,)
        Position of each image in the evaluated stream (dataset index in the benchmark):
        seeds the per-image noise of stochastic metrics.
    nonfinite : ndarray bool (N,), or None
        Whether each raw map held a NaN or infinite value (it is framed as all zeros);
        None for preprocessed maps.

    Parameters
    ----------
    masks, ignore : list of N arrays, or None
        Foreground and ignore masks as given (framed on first use by :meth:`histograms`).
    raw : ndarray (N, h, w), or None
        The maps before framing (for the maps at the input resolution).
    """

    def __init__(self, maps: np.ndarray, size: int, *, boxes=None, raw_boxes=None, image_sizes=None, masks=None,
                 ignore=None, correct=None, inputs=None, indices=None, raw=None, nonfinite=None) -> None:
        self.maps = maps
        self.size = int(size)
        self.count = int(maps.shape[0])
        self.boxes = boxes
        self.raw_boxes = raw_boxes
        self.image_sizes = image_sizes
        self.correct = correct
        self.inputs = inputs
        self.indices = indices
        self._masks = masks
        self._ignore = ignore
        self._raw = raw
        self.nonfinite = nonfinite
        self._cache: Dict[Any, Any] = {}

    def has(self, need: str) -> bool:
        """Whether the frame provides ``need`` (one of :data:`INPUTS`)."""
        if need == "boxes":
            return self.boxes is not None
        if need == "masks":
            return self._masks is not None
        if need == "correct":
            return self.correct is not None
        if need in ("images", "model"):
            return self.inputs is not None
        if need == "raw":
            return self._raw is not None
        raise AttribmapError(f"unknown metric input {need!r}; expected one of {INPUTS}")

    def cached(self, key, make):
        """``make()`` the first time ``key`` is asked for, the kept value afterwards."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def s8(self) -> np.ndarray:
        """``uint8(255 * maps)`` (truncation), (N, S, S)."""
        return self.cached("s8", lambda: to_uint8(self.maps))

    def raw_maps(self) -> np.ndarray:
        """The maps as given, before any resize or min-max: float64 (N, h, w).

        A map that held NaN or infinite values (see ``nonfinite``) is all zeros here, as in
        the frame. Only frames of raw maps have them (``has("raw")``); metrics that read the
        sign or the scale of a map (the grid pointing game) need them.
        """
        if self._raw is None:
            raise AttribmapError("this metric needs the raw maps (before min-max); this batch was given "
                                 "preprocessed maps")

        def make():
            raw = np.array(self._raw, dtype=np.float64, copy=True)
            if self.nonfinite is not None and self.nonfinite.any():
                raw[self.nonfinite] = 0.0
            return raw
        return self.cached("raw_maps", make)

    def pixel_sets(self) -> Tuple[np.ndarray, np.ndarray]:
        """Foreground and kept background pixels, two bool arrays (N, S, S)."""
        return self.cached("pixel_sets", self._pixel_sets)

    def _pixel_sets(self):
        if self._masks is None:
            raise AttribmapError("this metric needs masks; the batch has none")
        foreground = np.empty(self.maps.shape, dtype=bool)
        background = np.empty(self.maps.shape, dtype=bool)
        for index in range(self.count):
            foreground[index] = union_mask(self._masks[index], self.size)
            np.logical_not(foreground[index], out=background[index])
            if self._ignore is not None and self._ignore[index] is not None:
                background[index] &= ~union_mask(self._ignore[index], self.size)
        return foreground, background

    def histograms(self, edges: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Counts of the map values at foreground / background pixels in the bins of ``edges``."""
        edges = np.ascontiguousarray(edges, dtype=np.float64)

        def make():
            foreground, background = self.pixel_sets()
            fg = np.zeros(len(edges) - 1, dtype=np.int64)
            bg = np.zeros(len(edges) - 1, dtype=np.int64)
            # the whole batch in one pass (per-map calls cost more than the binning itself)
            split_histograms(self.maps, foreground, background, edges, fg, bg)
            return fg, bg
        return self.cached(("histograms", edges.tobytes()), make)

    def legacy_boxes(self, resize_size: int, crop_size: int) -> List[np.ndarray]:
        """GT boxes in the legacy frame (resize to ``resize_size`` then center crop ``crop_size``), one (k, 4) array per image."""
        def make():
            if self.raw_boxes is None or self.image_sizes is None:
                raise AttribmapError("the legacy protocol needs boxes and image_sizes")
            return [legacy_gt_boxes(b, s, resize_size, crop_size) for b, s in zip(self.raw_boxes, self.image_sizes)]
        return self.cached(("legacy_boxes", resize_size, crop_size), make)

    def input_maps(self) -> np.ndarray:
        """The maps at the model's input resolution: float64 (N, H, W) in [0, 1].

        The official-frame maps themselves when the input is S x S; otherwise the raw maps
        (the frame maps when they were given preprocessed) bicubic to H x W, then min-max,
        exactly as the frame is made.
        """
        if self.inputs is None:
            raise AttribmapError("this metric needs the model and its input images; the batch has none")
        height, width = self.inputs.height, self.inputs.width
        if (height, width) == (self.size, self.size):
            return self.maps

        def make():
            source = self._raw if self._raw is not None else self.maps
            return normalize_inplace(resize_bicubic(source, (height, width)))
        return self.cached("input_maps", make)

    def pixel_order(self) -> np.ndarray:
        """Pixels from the most to the least relevant, int64 (N, H*W) flat indices.

        Sorted by decreasing value of :meth:`input_maps`; equal values keep raster order.
        """
        def make():
            flat = self.input_maps().reshape(self.count, -1)
            return np.argsort(-flat, axis=1, kind="stable")
        return self.cached("pixel_order", make)

    def pixel_ranks(self) -> np.ndarray:
        """Inverse of :meth:`pixel_order`: the rank of every pixel (0 = most relevant), int64 (N, H*W)."""
        def make():
            order = self.pixel_order()
            ranks = np.empty_like(order)
            np.put_along_axis(ranks, order, np.arange(order.shape[1])[None].repeat(self.count, 0), axis=1)
            return ranks
        return self.cached("pixel_ranks", make)


class Framer:
    """Brings a batch to the evaluation frame once: ``Framer(224).frame(maps, boxes=...)``.

    Parameters
    ----------
    image_size : int
        Side S of the square evaluation frame (224 in the protocol).
    """

    def __init__(self, image_size: int = 224) -> None:
        if isinstance(image_size, bool) or int(image_size) < 1:
            raise AttribmapError(f"image_size must be a positive int; got {image_size!r}")
        self.image_size = int(image_size)

    def frame(self, maps, *, boxes: Optional[Sequence] = None, image_sizes=None, masks=None, ignore=None,
              correct=None, inputs=None, indices=None, preprocessed: bool = False) -> Frame:
        """Frame one batch.

        Parameters
        ----------
        maps : Tensor (any device) or ndarray, shape (N, h, w)
            Raw maps of the ground-truth class, any resolution (``preprocessed=True``:
            already (N, S, S) in [0, 1]).
        boxes : sequence of N array-likes (k_i, 4), optional
            GT boxes, inclusive x0, y0, x1, y1, in original-image pixels.
        image_sizes : array-like (N, 2) as (W, H), optional
            Original sizes; None means the boxes are already in frame pixels.
        masks, ignore : sequence of N arrays (Hm, Wm) or (k, Hm, Wm), or array (N, Hm, Wm), optional
            Foreground / ignore regions (> 0.5, union over instances), any resolution.
        correct : array-like (N,) of bool, optional
            Whether the top-1 prediction equals the label.
        inputs : ModelInputs, optional
            Model, images and targets for the faithfulness metrics.
        indices : array-like (N,) of int, optional
            Stream positions of the images (default 0 .. N-1).
        preprocessed : bool
            The maps are already in the frame.

        Returns
        -------
        Frame
        """
        raw = None
        if not preprocessed:
            raw = as_numpy(maps)
        framed = frame_scoremaps(maps if raw is None else raw, self.image_size, preprocessed)
        count = framed.shape[0]
        if indices is None:
            index_array = np.arange(count, dtype=np.int64)
        else:
            index_array = np.asarray(indices, dtype=np.int64).reshape(-1)
            if index_array.shape != (count,):
                raise AttribmapError(f"indices must hold {count} ints (one per map); got shape {index_array.shape}")
        frame_box_list = raw_boxes = sizes = None
        if boxes is not None:
            frame_box_list = frame_boxes(boxes, image_sizes, count, self.image_size, index_array)
            raw_boxes = list(boxes)
            sizes = None if image_sizes is None else as_numpy(image_sizes)
        if inputs is not None and inputs.count != count:
            raise AttribmapError(f"{count} maps but {inputs.count} input images")
        return Frame(framed, self.image_size, boxes=frame_box_list, raw_boxes=raw_boxes, image_sizes=sizes,
                     masks=_per_image(masks, count, "masks"), ignore=_per_image(ignore, count, "ignore"),
                     correct=batch_correct(correct, count), inputs=inputs, indices=index_array,
                     raw=raw if raw is not None and raw.ndim == 3 else None,
                     nonfinite=None if raw is None else ~np.isfinite(raw.reshape(count, -1)).all(axis=1))
