"""The official evaluation frame: maps, boxes and masks brought to ``image_size`` pixels.

Every function here reproduces, number for number, what clovaai/wsolevaluation does before
it scores a map:

* :func:`resize_bicubic` is OpenCV's ``cv2.resize(..., interpolation=INTER_CUBIC)`` on a
  float64 array (Keys kernel with a = -0.75, half-pixel centres, replicated border,
  float32 kernel weights, float64 sums in OpenCV's order), written in numpy;
* :func:`normalize_minmax` is the reference's in-place ``cam -= min; cam /= max`` in
  float64, with a constant or non-finite map becoming all zeros;
* :func:`to_uint8` is ``(map * 255).astype(np.uint8)`` (truncation);
* :func:`rescale_boxes` is the reference's ``int(x * new / old)`` box rescaling;
* :func:`resize_mask_nearest` is ``cv2.resize(..., INTER_NEAREST)``.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from attribmap.errors import AttribmapError
from attribmap.evaluate.frame_kernels import all_in_unit_interval

__all__ = [
    "resize_bicubic",
    "normalize_minmax",
    "to_uint8",
    "official_maps",
    "rescale_boxes",
    "resize_mask_nearest",
    "union_mask",
    "as_numpy",
    "legacy_gt_boxes",
]

_CUBIC_A = np.float32(-0.75)


def as_numpy(array, dtype=np.float64) -> np.ndarray:
    """Convert a torch tensor (any device) or array-like ``array`` to a numpy array of ``dtype``."""
    if hasattr(array, "detach") and hasattr(array, "cpu"):
        array = array.detach().cpu().double().numpy()  # also handles float16 / bfloat16
    return np.asarray(array, dtype=dtype)


def _cubic_weights(fraction: np.ndarray) -> np.ndarray:
    """OpenCV's ``interpolateCubic`` in float32: (n,) fractions in [0,1) -> (n,4) weights."""
    x = fraction.astype(np.float32)
    a = _CUBIC_A
    one = np.float32(1)
    xp1 = x + one
    w0 = ((a * xp1 - np.float32(5) * a) * xp1 + np.float32(8) * a) * xp1 - np.float32(4) * a
    w1 = ((a + np.float32(2)) * x - (a + np.float32(3))) * x * x + one
    om = one - x
    w2 = ((a + np.float32(2)) * om - (a + np.float32(3))) * om * om + one
    w3 = one - w0 - w1 - w2
    return np.stack([w0, w1, w2, w3], axis=1).astype(np.float64)


def _cubic_taps(src_len: int, dst_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices (dst_len,4), clamped to the image, and their float32 weights."""
    scale = 1.0 / (float(dst_len) / float(src_len))
    centres = ((np.arange(dst_len, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    start = np.floor(centres).astype(np.int64)
    fraction = (centres - start.astype(np.float32)).astype(np.float32)
    taps = start[:, None] + np.arange(-1, 3)[None, :]
    return np.clip(taps, 0, src_len - 1), _cubic_weights(fraction)


def resize_bicubic(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize maps exactly like ``cv2.resize(m, (W, H), interpolation=cv2.INTER_CUBIC)``.

    Parameters
    ----------
    maps : ndarray, shape (N, h, w) or (h, w)
        Raw maps; converted to float64 first (the reference resizes float64 arrays).
    size : (H, W)
        Output height and width.

    Returns
    -------
    ndarray, float64, shape (N, H, W) or (H, W)
    """
    arr = np.asarray(maps, dtype=np.float64)
    single = arr.ndim == 2
    if single:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] < 1 or arr.shape[2] < 1:
        raise AttribmapError(f"maps must have shape (N, h, w) or (h, w) with h, w >= 1; got {arr.shape}")
    out_h, out_w = int(size[0]), int(size[1])
    if (arr.shape[1], arr.shape[2]) == (out_h, out_w):
        out = arr.copy()
        return out[0] if single else out
    taps_x, wx = _cubic_taps(arr.shape[2], out_w)
    taps_y, wy = _cubic_taps(arr.shape[1], out_h)
    # horizontal pass first, summed left to right like OpenCV's HResizeCubic
    g = arr[:, :, taps_x]  # (N, h, W, 4)
    rows = g[..., 0] * wx[:, 0] + g[..., 1] * wx[:, 1]
    rows = rows + g[..., 2] * wx[:, 2]
    rows = rows + g[..., 3] * wx[:, 3]
    # vertical pass, VResizeCubic order
    r = rows[:, taps_y, :]  # (N, H, 4, W)
    b = wy[None, :, :, None]
    out = r[:, :, 0] * b[:, :, 0] + r[:, :, 1] * b[:, :, 1]
    out = out + r[:, :, 2] * b[:, :, 2]
    out = out + r[:, :, 3] * b[:, :, 3]
    return out[0] if single else out


def normalize_minmax(maps: np.ndarray) -> np.ndarray:
    """Min-max normalize each map to [0, 1] in float64, as the reference does.

    Parameters
    ----------
    maps : ndarray, shape (N, H, W) or (H, W)

    Returns
    -------
    ndarray, float64, same shape, values in [0, 1]; a map that is constant or holds any
    NaN or infinity becomes all zeros. The arithmetic is ``m - min`` then ``/ max``
    (a true division, not a multiplication by the reciprocal), so every value matches
    the reference bit for bit.
    """
    arr = np.array(maps, dtype=np.float64, copy=True, order="C")
    single = arr.ndim == 2
    out = normalize_inplace(arr[None] if single else arr)
    return out[0] if single else out


def normalize_inplace(arr: np.ndarray) -> np.ndarray:
    """:func:`normalize_minmax` on a float64 (N, H, W) array that may be overwritten."""
    for scoremap in arr:  # one map at a time, in place: no large temporaries
        if scoremap.size == 0:
            continue
        low, high = scoremap.min(), scoremap.max()
        if not (np.isfinite(low) and np.isfinite(high)) or low == high:
            scoremap[...] = 0.0
            continue
        scoremap -= low
        scoremap /= high - low  # == the max after the subtraction: rounding is monotone
    return arr


def to_uint8(maps: np.ndarray) -> np.ndarray:
    """``(maps * 255).astype(np.uint8)``: truncation of normalized ``maps`` in [0, 1]."""
    return (np.asarray(maps, dtype=np.float64) * 255).astype(np.uint8)


def official_maps(maps, image_size: int = 224) -> np.ndarray:
    """Raw maps -> official frame: bicubic resize to ``image_size`` squared, then min-max.

    Parameters
    ----------
    maps : Tensor or ndarray, shape (N, h, w)
        Raw maps at any resolution, any finite or non-finite values.
    image_size : int
        Side of the square evaluation frame (224 in the protocol).

    Returns
    -------
    ndarray, float64, shape (N, image_size, image_size), values in [0, 1]
    """
    arr = as_numpy(maps)
    if arr.ndim != 3:
        raise AttribmapError(f"maps must have shape (N, h, w); got shape {arr.shape}")
    if int(image_size) < 1:
        raise AttribmapError(f"image_size must be a positive int; got {image_size!r}")
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite maps become zeros, counted by the Evaluator
        resized = resize_bicubic(arr, (image_size, image_size))  # a fresh array
    return normalize_inplace(resized)


def rescale_boxes(boxes, image_size_wh: Sequence[float], image_size: int = 224) -> np.ndarray:
    """Rescale inclusive (x0, y0, x1, y1) boxes from an original image to the frame.

    Each coordinate becomes ``int(float(x) * image_size / W)`` (truncation), as in the
    reference's ``resize_bbox``.

    Parameters
    ----------
    boxes : array-like, shape (k, 4)
        Boxes in original-image pixels, x0 <= x1, y0 <= y1, all >= 0.
    image_size_wh : (W, H)
        Width and height of the original image.
    image_size : int
        Side of the square frame.

    Returns
    -------
    ndarray, int64, shape (k, 4)
    """
    arr = _box_array(boxes)
    width, height = (float(v) for v in image_size_wh)
    if not (width > 0 and height > 0):
        raise AttribmapError(f"image size must be (W, H) with W, H > 0; got {tuple(image_size_wh)}")
    _check_boxes(arr)
    return _scaled(arr, np.full(len(arr), width), np.full(len(arr), height), image_size)


def _box_array(boxes) -> np.ndarray:
    arr = as_numpy(boxes)
    if arr.ndim == 1 and arr.size == 4:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 4 or arr.shape[0] == 0:
        raise AttribmapError(f"boxes must have shape (k, 4) with k >= 1; got {arr.shape}")
    return arr


def _check_boxes(arr: np.ndarray, owner: Optional[np.ndarray] = None) -> None:
    """Finite, >= 0 and x0 <= x1, y0 <= y1; the error names the first offending box (and its image)."""
    def where(bad: np.ndarray) -> str:
        return "" if owner is None else f"image {int(owner[bad][0])}: "

    bad = ~np.isfinite(arr).all(axis=1) | (arr < 0).any(axis=1)
    if bad.any():
        raise AttribmapError(f"{where(bad)}box coordinates must be finite and >= 0; got {arr[bad][0].tolist()}")
    bad = (arr[:, 2] < arr[:, 0]) | (arr[:, 3] < arr[:, 1])
    if bad.any():
        raise AttribmapError(f"{where(bad)}boxes must be x0 <= x1 and y0 <= y1 (inclusive x0,y0,x1,y1); "
                             f"got {arr[bad][0].tolist()}")


def _scaled(arr: np.ndarray, width: np.ndarray, height: np.ndarray, image_size: int) -> np.ndarray:
    """``int(x * image_size / W)`` per coordinate (the reference's float arithmetic)."""
    size = float(image_size)
    out = np.empty(arr.shape, dtype=np.int64)
    out[:, 0] = (arr[:, 0] * size / width).astype(np.int64)
    out[:, 1] = (arr[:, 1] * size / height).astype(np.int64)
    out[:, 2] = (arr[:, 2] * size / width).astype(np.int64)
    out[:, 3] = (arr[:, 3] * size / height).astype(np.int64)
    return out


def resize_mask_nearest(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize like ``cv2.resize(m, (W, H), interpolation=INTER_NEAREST)``.

    Source index = ``floor(dst * (1 / (dst_len / src_len)))``, clamped to the image.

    Parameters
    ----------
    mask : ndarray, shape (h, w) (or (k, h, w); the last two axes are resized)
    size : (H, W)
    """
    arr = np.asarray(mask)
    if arr.ndim < 2 or arr.shape[-1] < 1 or arr.shape[-2] < 1:
        raise AttribmapError(f"a mask must have shape (h, w) or (k, h, w); got {arr.shape}")
    out_h, out_w = int(size[0]), int(size[1])
    src_h, src_w = arr.shape[-2], arr.shape[-1]
    if (src_h, src_w) == (out_h, out_w):
        return arr
    fy = 1.0 / (float(out_h) / float(src_h))
    fx = 1.0 / (float(out_w) / float(src_w))
    rows = np.minimum(np.floor(np.arange(out_h) * fy).astype(np.int64), src_h - 1)
    cols = np.minimum(np.floor(np.arange(out_w) * fx).astype(np.int64), src_w - 1)
    return arr[..., rows[:, None], cols[None, :]]


def union_mask(mask, image_size: int = 224) -> np.ndarray:
    """One image's ``mask`` (h, w) or instance masks (k, h, w) -> (S, S) bool, foreground > 0.5.

    Nearest resize to the frame of side S = ``image_size``, threshold at 0.5, union over
    instances (reference ``get_mask``). For 0/1, bool or 0/255 masks the threshold is the same
    as ``> 0``.
    """
    if isinstance(mask, np.ndarray) and mask.shape == (image_size, image_size):
        if mask.dtype == bool:
            return mask
        if np.issubdtype(mask.dtype, np.integer):
            return mask > 0  # the same as > 0.5 for integers, without a float copy
    arr = as_numpy(mask, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[0] == 0:
        raise AttribmapError(f"a mask must have shape (h, w) or (k, h, w) with k >= 1; got {arr.shape}")
    resized = resize_mask_nearest(arr, (image_size, image_size))
    return (resized > 0.5).any(axis=0)


def frame_scoremaps(maps, image_size: int = 224, preprocessed: bool = False) -> np.ndarray:
    """Maps of a batch in the official frame: (N, S, S) float64 in [0, 1].

    ``preprocessed=False`` (default): raw maps (N, h, w) at any resolution go through
    :func:`official_maps`. ``preprocessed=True``: the maps are already resized and
    normalized; they must be (N, S, S) with values in [0, 1].
    """
    if not preprocessed:
        return official_maps(maps, image_size)
    arr = as_numpy(maps)
    if arr.ndim != 3 or arr.shape[1:] != (image_size, image_size):
        raise AttribmapError(f"preprocessed maps must have shape (N, {image_size}, {image_size}); got {arr.shape}")
    inside = all_in_unit_interval(arr)
    if inside is None:
        inside = bool(np.isfinite(arr).all() and arr.min(initial=0.0) >= 0 and arr.max(initial=0.0) <= 1)
    if not inside:
        raise AttribmapError("preprocessed maps must hold finite values in [0, 1]")
    return arr


def frame_boxes(boxes, image_sizes, count: int, image_size: int = 224, indices=None) -> list[np.ndarray]:
    """Per-image GT boxes in the frame: list of N int64 arrays (k_i, 4).

    Parameters
    ----------
    boxes : sequence of N array-likes (k_i, 4)
        Inclusive x0, y0, x1, y1 in original-image pixels (or frame pixels when
        ``image_sizes`` is None).
    image_sizes : array-like (N, 2) of (W, H), or None
    count : int
        Number of maps in the batch (N).
    indices : array-like (N,) of int, optional
        Stream positions of the images, used to name an image in errors (default 0 .. N-1).

    Raises
    ------
    AttribmapError
        A box with negative or non-finite coordinates, ``x1 < x0`` or ``y1 < y0``, or outside
        its image: ``x1 > W`` or ``y1 > H`` (``x1 == W`` is accepted, as in the dataset
        readers: boxes made as ``x + width`` reach it), or outside the frame when
        ``image_sizes`` is None. The message names the image.
    """
    if boxes is None or len(boxes) != count:
        got = None if boxes is None else len(boxes)
        raise AttribmapError(f"boxes must be a sequence of {count} arrays (k, 4), one per map; got {got}")
    arrays = [_box_array(b) for b in boxes]
    if not arrays:
        return []
    counts = [len(a) for a in arrays]
    stacked = np.concatenate(arrays).astype(np.float64, copy=False)  # all boxes at once
    owner = np.repeat(np.arange(count) if indices is None else np.asarray(indices).reshape(-1), counts)
    _check_boxes(stacked, owner)
    if image_sizes is None:
        side = np.full(len(stacked), float(image_size))
        scaled = _scaled(stacked, side, side, image_size)
        outside = (scaled > image_size - 1).any(axis=1)
        if outside.any():
            raise AttribmapError(f"image {int(owner[outside][0])}: boxes given without image_sizes must lie in the "
                                 f"{image_size}x{image_size} frame; got {scaled[outside][0].tolist()}")
    else:
        sizes = as_numpy(image_sizes)
        if sizes.shape != (count, 2):
            raise AttribmapError(f"image_sizes must have shape ({count}, 2) as (W, H); got {sizes.shape}")
        if not ((sizes > 0).all() and np.isfinite(sizes).all()):
            bad = sizes[~((sizes > 0).all(axis=1) & np.isfinite(sizes).all(axis=1))][0]
            raise AttribmapError(f"image size must be (W, H) with W, H > 0; got {tuple(bad.tolist())}")
        per_box = np.repeat(sizes.astype(np.float64), counts, axis=0)
        outside = (stacked[:, 2] > per_box[:, 0]) | (stacked[:, 3] > per_box[:, 1])
        if outside.any():
            first = int(np.flatnonzero(outside)[0])
            raise AttribmapError(f"image {int(owner[first])}: box (x0, y0, x1, y1) = {stacked[first].tolist()} lies "
                                 f"outside its image of size (W, H) = {tuple(per_box[first].tolist())}")
        scaled = _scaled(stacked, per_box[:, 0], per_box[:, 1], image_size)
    return np.split(scaled, np.cumsum(counts)[:-1])


def batch_correct(correct, count: int):
    """Top-1 correctness flags as (N,) bool, or None."""
    if correct is None:
        return None
    arr = as_numpy(correct, dtype=np.float64).reshape(-1)
    if arr.shape != (count,):
        raise AttribmapError(f"correct must hold {count} booleans (one per map); got shape {arr.shape}")
    return arr != 0


def legacy_gt_boxes(boxes, image_size_wh, resize_size: int = 256, crop_size: int = 224) -> np.ndarray:
    """Original-pixel ``boxes`` (k, 4) -> boxes in the center crop, (k, 4) int64.

    Parameters
    ----------
    boxes : array-like (k, 4)
        Inclusive boxes in original pixels.
    image_size_wh : (W, H)
        The original image's size.
    resize_size, crop_size : int
        The legacy frame: resize to ``resize_size`` squared, then center crop ``crop_size``.
    """
    scaled = as_numpy(boxes).reshape(-1, 4)
    rescale_boxes(scaled, image_size_wh, resize_size)  # validates the boxes and size
    width, height = (float(v) for v in image_size_wh)
    offset = int(round((resize_size - crop_size) / 2.0))
    out = np.empty(scaled.shape, dtype=np.float64)
    out[:, [0, 2]] = scaled[:, [0, 2]] * resize_size / width - offset
    out[:, [1, 3]] = scaled[:, [1, 3]] * resize_size / height - offset
    return np.clip(out, 0, crop_size - 1).astype(np.int64)
