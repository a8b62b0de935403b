"""``attribmap mosaic OUT``: n x n mosaics of confidently classified photos, as a WSOL dataset."""
from __future__ import annotations

import argparse
import os
import time
from typing import List

__all__ = ["register", "run_mosaic", "parse_photos"]


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add the ``mosaic`` sub-command to ``subparsers``."""
    from attribmap.data.mosaic import DEFAULT_THRESHOLD, PAPER_THRESHOLD

    parser = subparsers.add_parser(
        "mosaic", help="write grid-pointing-game mosaics as a WSOL dataset",
        description="Build n x n mosaics of photos of different classes, each classified correctly and "
                    "confidently alone by the model, and write them in the wsolevaluation layout: one entry per "
                    "(mosaic, target cell), the cell as box and mask, the cell's class as label. `attribmap "
                    "bench` then scores them, with the grid pointing game (Rao et al., CVPR 2022) and reference "
                    "rows. The same photos, model, settings and seed give byte-identical files.")
    parser.add_argument("out_dir", metavar="OUT", help="output directory")
    parser.add_argument("--grid", type=int, default=2, metavar="N", help="cells per side (default 2)")
    parser.add_argument("--count", type=int, default=8, metavar="M", help="number of mosaics (default 8)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the draw (default 0)")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="model name (torchvision, or attribmap's, e.g. efficientnet_lite0)")
    src.add_argument("--checkpoint", help="checkpoint written by `attribmap train`")
    parser.add_argument("--weights", default=None, help="state_dict path or DEFAULT (pretrained)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, metavar="P",
                        help=f"softmax probability each photo's top-1 class needs alone (default {DEFAULT_THRESHOLD}; "
                             f"Rao et al. use {PAPER_THRESHOLD}, which few bundled photos meet)")
    parser.add_argument("--cell-size", type=int, default=None, metavar="PX",
                        help="side of a cell in pixels (default: the model's input_size, else 224: a 2x2 mosaic "
                             "of efficientnet_lite0 is 448 px)")
    parser.add_argument("--photos", default=None, metavar="LIST",
                        help="comma-separated bundled photo names or image paths, a path optionally with its "
                             "ImageNet classes as PATH=C1+C2 (default: every bundled photo)")
    parser.add_argument("--split", default="test", help="split name (default test)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing split in OUT")
    parser.set_defaults(func=run_mosaic)


def parse_photos(text) -> List["MosaicPhoto"]:
    """``--photos`` ``text`` -> :class:`~attribmap.data.mosaic.MosaicPhoto` list (None: every bundled photo).

    Each item is a bundled photo name (``attribmap.data.photos``) or an image path, a path
    optionally followed by ``=C1+C2`` (the ImageNet classes it shows; without them any
    top-1 class is accepted).
    """
    from attribmap.data.mosaic import MosaicPhoto, bundled_photos
    from attribmap.errors import AttribmapError

    bundled = {photo.name: (photo.image, photo.labels) for photo in bundled_photos()}
    if text is None:
        if not bundled:
            raise AttribmapError("no bundled photos in this installation; give --photos PATH=CLASS,...")
        return [MosaicPhoto(name, image, labels) for name, (image, labels) in bundled.items()]
    photos = []
    for item in [t.strip() for t in str(text).split(",") if t.strip()]:
        path, _, classes = item.partition("=")
        if path in bundled and not classes:
            image, labels = bundled[path]
            photos.append(MosaicPhoto(path, image, labels))
            continue
        if not os.path.isfile(path):
            known = ", ".join(bundled) or "none"
            raise FileNotFoundError(f"--photos: {path!r} is neither an image file nor a bundled photo (bundled: "
                                    f"{known})")
        try:
            labels = tuple(int(c) for c in classes.split("+") if c.strip()) if classes else ()
        except ValueError:
            raise AttribmapError(f"--photos: classes of {path!r} must be integers joined by '+'; got "
                                 f"{classes!r}") from None
        photos.append(MosaicPhoto(os.path.splitext(os.path.basename(path))[0], path, labels))
    if not photos:
        raise AttribmapError("--photos names no photo")
    return photos


def run_mosaic(args: argparse.Namespace) -> int:
    """Write the mosaics of the parsed ``args``; prints what passed and where it went."""
    from attribmap.data.mosaic import write_mosaic_dataset
    from attribmap.fileio import check_output_dir
    from attribmap.inputs import model_input_size
    from attribmap.models.loading import load_classifier

    check_output_dir(args.out_dir, "OUT")
    photos = parse_photos(args.photos)
    started = time.perf_counter()
    model = load_classifier(args.model, args.weights, args.checkpoint).to(args.device)
    cell_size = args.cell_size if args.cell_size is not None else model_input_size(model)
    transform = _model_transform(model, cell_size)
    info = write_mosaic_dataset(args.out_dir, model, photos, grid=args.grid, count=args.count, seed=args.seed,
                                threshold=args.threshold, cell_size=cell_size, transform=transform,
                                split=args.split, device=args.device, overwrite=args.overwrite,
                                model_name=args.model or args.checkpoint)
    passed = [p for p in info["photos"] if p["passed"]]
    print(f"{len(passed)} of {len(info['photos'])} photos passed (p >= {args.threshold:g}): "
          + ", ".join(f"{p['name']} ({p['predicted']}, {p['probability']:.2f})" for p in passed))
    print(f"wrote {info['count']} {args.grid}x{args.grid} mosaics ({info['image_size']} px, {info['entries']} "
          f"entries) to {args.out_dir} in {time.perf_counter() - started:.1f} s")
    return 0


def _model_transform(model, cell_size: int):
    """The model's own preprocessing of a uint8 cell when it declares one, else None (the default)."""
    declared = getattr(model, "attribmap_transform", None)
    if declared is None:
        return None
    import torch
    from PIL import Image

    def transform(cell):
        out = declared(Image.fromarray(cell))
        return out if isinstance(out, torch.Tensor) else torch.as_tensor(out)
    return transform
