"""Post-processing of raw maps: upsampling, min-max normalization, morphological closing.

The rules of :func:`attribmap.explain` (PROTOCOL.md, "Post-processing"): raw map (N, h, w)
-> bilinear upsample to the input's H x W (``align_corners=False``) -> min-max per image to
[0, 1]; a constant or non-finite map becomes all zeros.

"Constant" is decided on the raw map, before upsampling: bilinear weights that do not sum
to exactly 1 in floating point leave 1-ulp ripples on an upsampled constant map, which
min-max would stretch to [0, 1] noise. A raw map whose values differ by at most
:data:`FLAT_ULPS` units in the last place of its largest magnitude (the rounding of the
multi-scale average included) is constant.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import torch
import torch.nn.functional as F

__all__ = ["upsample", "minmax", "postprocess", "disk", "grey_closing", "resize_maps", "flat_maps", "FLAT_ULPS"]

#: Spread (in units in the last place of a map's largest magnitude) up to which a raw map is constant.
FLAT_ULPS = 8


def resize_maps(maps: torch.Tensor, size: Tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    """Resize ``maps`` (N, h, w) to ``size`` = (H, W) by interpolation ``mode`` (``align_corners=False``)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    x = maps.unsqueeze(1)
    if not x.is_floating_point():
        x = x.float()
    kwargs = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    return F.interpolate(x, size=tuple(size), mode=mode, **kwargs)[:, 0]


def upsample(maps: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling of raw ``maps`` (N, h, w) to ``size`` (H, W): (N, H, W)."""
    return resize_maps(maps, size, "bilinear")


def minmax(maps: torch.Tensor) -> torch.Tensor:
    """Min-max normalize each map of ``maps`` (N, H, W) to [0, 1].

    A map that is constant or holds a non-finite value becomes all zeros.
    """
    flat = maps.flatten(1)
    finite = torch.isfinite(flat).all(dim=1)
    safe = torch.where(torch.isfinite(flat), flat, torch.zeros_like(flat))
    lo = safe.min(dim=1, keepdim=True).values
    hi = safe.max(dim=1, keepdim=True).values
    span = hi - lo
    ok = finite & (span[:, 0] > 0)
    out = torch.where(ok[:, None], (safe - lo) / torch.where(span > 0, span, torch.ones_like(span)),
                      torch.zeros_like(safe))
    return out.clamp_(0, 1).view_as(maps)


def disk(radius: int, device=None) -> torch.Tensor:
    """Boolean disk footprint (2r+1, 2r+1) of ``radius`` r on ``device``: offsets with dx^2 + dy^2 <= r^2."""
    r = int(radius)
    yy, xx = torch.meshgrid(torch.arange(-r, r + 1, device=device), torch.arange(-r, r + 1, device=device),
                            indexing="ij")
    return (xx * xx + yy * yy) <= r * r


def _morph(maps: torch.Tensor, radius: int, dilate: bool) -> torch.Tensor:
    r = int(radius)
    fill = float("-inf") if dilate else float("inf")
    padded = F.pad(maps.unsqueeze(1), (r, r, r, r), value=fill)[:, 0]
    h, w = maps.shape[-2:]
    out = None
    footprint = disk(r)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            if not footprint[dy, dx]:
                continue
            window = padded[:, dy:dy + h, dx:dx + w]
            out = window if out is None else (torch.maximum(out, window) if dilate else torch.minimum(out, window))
    return out.clone()


def grey_closing(maps: torch.Tensor, radius: int) -> torch.Tensor:
    """Grey-level morphological closing (dilation then erosion) of ``maps`` with a disk of ``radius``.

    Pixels outside the image are ignored (padding with -inf for the dilation and +inf for
    the erosion), as scikit-image's ``closing`` does. Input and output are (N, H, W).
    """
    if int(radius) != radius or radius < 0:
        raise ValueError(f"close radius must be a non-negative integer; got {radius!r}")
    if radius == 0:
        return maps
    return _morph(_morph(maps, radius, dilate=True), radius, dilate=False)


def flat_maps(raw: torch.Tensor) -> torch.Tensor:
    """(N,) bool: which ``raw`` maps (N, h, w) are constant up to rounding (:data:`FLAT_ULPS`).

    Non-finite entries are ignored here (:func:`minmax` zeroes such maps anyway).
    """
    flat = raw.flatten(1)
    if not flat.is_floating_point():
        flat = flat.float()
    finite = torch.isfinite(flat)
    lo = torch.where(finite, flat, torch.full_like(flat, float("inf"))).amin(dim=1)
    hi = torch.where(finite, flat, torch.full_like(flat, float("-inf"))).amax(dim=1)
    scale = torch.maximum(lo.abs(), hi.abs())
    return (hi - lo) <= FLAT_ULPS * torch.finfo(flat.dtype).eps * scale


def postprocess(raw: torch.Tensor, size: Tuple[int, int], close: int = None) -> torch.Tensor:
    """``raw`` maps (N, h, w) -> (N, H, W) in [0, 1]: upsample to ``size``, optional closing of radius ``close``, min-max.

    A raw map that is constant (up to rounding, :func:`flat_maps`) becomes all zeros, also
    after upsampling.
    """
    raw = raw.float() if not raw.is_floating_point() else raw
    maps = upsample(raw, size)
    if close:
        maps = grey_closing(maps, close)
    out = minmax(maps)
    flat = flat_maps(raw)
    if bool(flat.any()):
        out = torch.where(flat.view(-1, 1, 1), torch.zeros_like(out), out)
    return out


def average_scales(raws: Sequence[torch.Tensor], size: Tuple[int, int]) -> torch.Tensor:
    """Average raw maps of several input scales after resizing each to ``size`` (h, w)."""
    return torch.stack([resize_maps(r, size) for r in raws]).mean(dim=0)
