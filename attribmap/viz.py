"""Figures: a map over its image, and a grid of several methods side by side (PNG)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

import numpy as np
import torch

from attribmap.inputs import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["to_display", "overlay", "save_overlay", "method_grid", "save_figure"]


def to_display(image, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> np.ndarray:
    """An ``image`` as float RGB (H, W, 3) in [0, 1] for display.

    A float tensor (3, H, W) is assumed normalized with ``mean`` and ``std`` (ImageNet's by
    default; pass ``mean=(0,0,0), std=(1,1,1)`` for [0, 1] tensors); a uint8 ndarray
    (H, W, 3) or a PIL image is scaled by 1/255.
    """
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu().float()
        if t.dim() == 4:
            t = t[0]
        t = t * torch.tensor(std).view(-1, 1, 1) + torch.tensor(mean).view(-1, 1, 1)
        arr = t.permute(1, 2, 0).numpy()
    else:
        arr = np.asarray(image)
        arr = arr.astype(np.float64) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float64)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return np.clip(arr[:, :, :3], 0.0, 1.0)


def _to_numpy_map(heat) -> np.ndarray:
    if isinstance(heat, torch.Tensor):
        heat = heat.detach().cpu().float().numpy()
    heat = np.asarray(heat, dtype=np.float64)
    if heat.ndim == 3 and heat.shape[0] == 1:
        heat = heat[0]
    if heat.ndim != 2:
        raise ValueError(f"a map must be (H, W); got shape {heat.shape}")
    return heat


def overlay(image, heat, cmap: str = "jet", alpha: float = 0.5) -> np.ndarray:
    """Blend a map ``heat`` (H, W) in [0, 1] over ``image``; returns float RGB (H, W, 3) in [0, 1].

    The map is coloured by the matplotlib colormap ``cmap`` and blended with weight ``alpha``;
    it is resized (bilinear) to the image when their sizes differ.
    """
    import matplotlib

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1]; got {alpha}")
    rgb = to_display(image)
    heat = _to_numpy_map(heat)
    if heat.shape != rgb.shape[:2]:
        t = torch.from_numpy(heat)[None, None]
        heat = torch.nn.functional.interpolate(t, size=rgb.shape[:2], mode="bilinear",
                                               align_corners=False)[0, 0].numpy()
    colours = matplotlib.colormaps[cmap](np.clip(heat, 0, 1))[:, :, :3]
    return (1 - alpha) * rgb + alpha * colours


def save_figure(fig, path: Union[str, os.PathLike], dpi: int = 100) -> Path:
    """Save the matplotlib figure ``fig`` to ``path`` as PNG at ``dpi`` atomically (temporary file + rename) and close it."""
    import matplotlib.pyplot as plt

    from attribmap.fileio import atomic_open

    path = Path(path)
    try:
        with atomic_open(path, "wb") as stream:
            fig.savefig(stream, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def save_overlay(path, image, heat, cmap: str = "jet", alpha: float = 0.5, title: Optional[str] = None) -> Path:
    """Write :func:`overlay` of one ``image`` and map ``heat`` (``cmap``, ``alpha``) to ``path`` (PNG), with an optional ``title``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(overlay(image, heat, cmap, alpha))
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def method_grid(images, maps: Mapping[str, torch.Tensor], path=None, cmap: str = "jet", alpha: float = 0.5,
                boxes: Optional[Sequence] = None, pred_boxes: Optional[Mapping[str, Sequence]] = None,
                size: float = 2.2):
    """A grid: one row per image, the image then one column per method.

    Parameters
    ----------
    images : tensor (N, 3, H, W) (ImageNet-normalized) or a list of displayable images
    maps : mapping of method name to (N, H, W) maps in [0, 1]
    path : path, optional
        Write the figure there as PNG (atomically); otherwise return the figure.
    cmap, alpha
        Colormap and blending weight of the overlays (:func:`overlay`).
    boxes : list of (k, 4) arrays, optional
        Ground-truth boxes (inclusive x0, y0, x1, y1 in the displayed frame), drawn in green.
    pred_boxes : mapping of method name to a list of (4,) boxes, optional
        Predicted boxes, drawn in red.
    size : float
        Side of one panel in inches.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    n = len(images)
    names = list(maps)
    fig, axes = plt.subplots(n, len(names) + 1, figsize=(size * (len(names) + 1), size * n), squeeze=False)

    def draw(ax, box, colour):
        x0, y0, x1, y1 = [float(v) for v in box]
        ax.add_patch(Rectangle((x0, y0), x1 - x0 + 1, y1 - y0 + 1, fill=False, edgecolor=colour, linewidth=1.5))

    for i in range(n):
        axes[i, 0].imshow(to_display(images[i]))
        for j, name in enumerate(names):
            ax = axes[i, j + 1]
            ax.imshow(overlay(images[i], maps[name][i], cmap, alpha))
            if boxes is not None:
                for box in np.asarray(boxes[i]).reshape(-1, 4):
                    draw(ax, box, "lime")
            if pred_boxes is not None and name in pred_boxes:
                draw(ax, pred_boxes[name][i], "red")
            if i == 0:
                ax.set_title(name, fontsize=9)
        if boxes is not None:
            for box in np.asarray(boxes[i]).reshape(-1, 4):
                draw(axes[i, 0], box, "lime")
        if i == 0:
            axes[i, 0].set_title("image", fontsize=9)
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.tight_layout()
    if path is not None:
        return save_figure(fig, path)
    return fig
