"""The paper's figure: each method's map of one image at every cascading randomization stage (PNG)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence, Union

__all__ = ["sanity_figure"]


def _display(image):
    """``image`` (H, W) in [0, 1] rescaled so that its 99th percentile is 1 (clipped)."""
    import numpy as np

    top = float(np.percentile(image, 99)) if image.size else 0.0
    return np.clip(image / top, 0.0, 1.0) if top > 0 else image


def sanity_figure(result, path: Union[str, "os.PathLike[str]"], mean: Optional[Sequence[float]] = None,
                  std: Optional[Sequence[float]] = None, cmap: str = "gray") -> Path:
    """Write the cascading randomization figure of ``result`` to ``path`` (PNG, atomically).

    One row per method, one column per stage (the image first, then the trained model's map,
    then one more block randomized per column down to the stem), each map shown as
    :func:`~attribmap.sanity.similarity.as_image` (absolute value over its maximum), as in
    Adebayo et al.'s Figure 2, clipped at its 99th percentile for display (a few extreme
    gradient pixels would otherwise leave the rest black).

    Parameters
    ----------
    result : SanityResult
    path : path
    mean, std : sequence of float, optional
        Normalization of the image tensor (default ImageNet's).
    cmap : str
        Colormap of the maps.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from attribmap.inputs import IMAGENET_MEAN, IMAGENET_STD
    from attribmap.viz import save_figure, to_display

    methods = list(result.maps)
    stages = result.stages
    rows, cols = len(methods), len(stages) + 1
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.4 * rows + 0.4), squeeze=False)
    image = to_display(result.image, mean or IMAGENET_MEAN, std or IMAGENET_STD) if result.image is not None else None
    for row, method in enumerate(methods):
        for col in range(cols):
            ax = axes[row][col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                if image is not None:
                    ax.imshow(image)
                ax.set_ylabel(method, fontsize=7, rotation=0, ha="right", va="center")
            else:
                ax.imshow(_display(result.maps[method][col - 1]), cmap=cmap, vmin=0.0, vmax=1.0)
            if row == 0:
                ax.set_title("image" if col == 0 else stages[col - 1], fontsize=6, rotation=45, ha="left")
    height = 1.4 * rows + 0.4
    fig.subplots_adjust(top=1.0 - 0.5 / height, bottom=0.1 / height)  # the title right above the stage names
    fig.suptitle("cascading randomization from the logits down (left: trained)", fontsize=8)
    return save_figure(fig, path, dpi=90)
