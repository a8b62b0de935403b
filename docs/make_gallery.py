"""Draw the figures of docs/gallery.rst from a tiny synthetic suite (run by docs/conf.py at build start).

Everything is made on the spot, on the CPU, in a few seconds: a synthetic WSOL suite of four
test images (``attribmap.data.synthetic``), a torchvision ResNet-18 with *random* weights
(seeded; nothing is downloaded), its CAM / Grad-CAM / DGL maps, the official scoring of those
maps (``evaluate_maps``, OpenCV contour engine so nothing is compiled) and the library's own
figure functions: :func:`attribmap.viz.save_overlay`, :func:`attribmap.viz.method_grid`,
:func:`attribmap.bench.report.plot_curves` and :func:`attribmap.bench.report.plot_qualitative`. The maps of
an untrained network show what the figures look like, not how well anything localizes.

Usage: ``python docs/make_gallery.py [OUT_DIR]`` (default ``docs/_generated/gallery``).
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parent / "_generated" / "gallery"
METHODS = ("cam", "gradcam", "dgl")
#: The figures written, in the order of docs/gallery.rst.
FIGURES = ("overlay.png", "methods.png", "qualitative.png", "boxacc_curves.png", "pxap_pr_curves.png",
           "peak_iou_curves.png")
FRAME = 224
SIZE = 64  # model input side


def build(out_dir: Path = DEFAULT_OUT) -> List[Path]:
    """Write :data:`FIGURES` into ``out_dir``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import torch
    import torchvision

    import attribmap
    from attribmap.data import WSOLDataset, collate_wsol, official_transform
    from attribmap.data.synthetic import generate_suite
    from attribmap.evaluate import Evaluator, Framer, evaluate_maps
    from attribmap.evaluate.contours import largest_contour_box
    from attribmap.bench.report import plot_curves, plot_qualitative
    from attribmap.viz import method_grid, save_overlay

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=2).eval()
    with tempfile.TemporaryDirectory() as suite:
        generate_suite(suite, classes=2, per_class=1, size=64, val_per_class=0, test_per_class=2,
                       pretrain_per_class=0)
        dataset = WSOLDataset(suite, "test", transform=official_transform(SIZE))
        batch = collate_wsol([dataset[i] for i in range(len(dataset))])
    images, labels = batch["image"], batch["label"]
    raw = attribmap.Explainer(model).explain_many(images, list(METHODS), target=labels, raw=True)
    shown = {name: attribmap.postprocess.postprocess(maps, tuple(images.shape[-2:])) for name, maps in raw.items()}

    written = [save_overlay(out_dir / "overlay.png", images[0], shown["gradcam"][0], title="Grad-CAM")]
    written.append(method_grid(images, shown, path=out_dir / "methods.png"))

    boxes = [b.numpy() for b in batch["boxes"]]
    sizes = batch["size"].numpy()
    masks = [m.numpy() for m in batch["mask"]]
    curves: Dict[str, Dict[str, np.ndarray]] = {}
    for name, maps in raw.items():
        scores = evaluate_maps(maps, boxes=boxes, image_sizes=sizes, masks=masks, delta=0.01, engine="opencv")
        curves[name] = scores["series"]
    framed = {name: Framer(FRAME).frame(maps, boxes=boxes, image_sizes=sizes) for name, maps in raw.items()}
    frame_images = torch.nn.functional.interpolate(images, size=(FRAME, FRAME), mode="bilinear", align_corners=False)
    predicted = {name: [np.array(largest_contour_box(m > 127)) for m in frame.s8()] for name, frame in framed.items()}
    written.append(plot_qualitative({"images": frame_images, "maps": {n: torch.from_numpy(f.maps) for n, f in
                                                                      framed.items()},
                                     "boxes": next(iter(framed.values())).boxes, "pred_boxes": predicted},
                                    out_dir / "qualitative.png"))
    plots = {plot.file: plot for info in Evaluator(["boxes", "pxap", "peak_iou"]).infos() for plot in info.plots}
    for file in FIGURES[3:]:
        written.append(plot_curves(plots[file], curves, out_dir / file))
    return written


def main(argv: List[str]) -> int:
    started = time.perf_counter()
    paths = build(Path(argv[0]) if argv else DEFAULT_OUT)
    print(f"wrote {len(paths)} figures to {paths[0].parent} in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
