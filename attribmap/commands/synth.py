"""``attribmap synth OUT_DIR``: write the synthetic WSOL suite (wsolevaluation layout)."""
from __future__ import annotations

import argparse

__all__ = ["register", "run_synth"]


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add the ``synth`` sub-command."""
    parser = subparsers.add_parser(
        "synth", help="generate the synthetic WSOL suite",
        description="Write a seeded synthetic WSOL dataset (images, class labels, boxes, masks; "
                    "train/val/test) in the wsolevaluation metadata layout. The same seed and "
                    "options give byte-identical files.")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="output directory")
    parser.add_argument("--classes", type=int, default=4, metavar="K", help="number of classes (2..64; default 4)")
    parser.add_argument("--per-class", type=int, default=120, metavar="N",
                        help="training images per class (default 120)")
    parser.add_argument("--val-per-class", type=int, default=25, metavar="N",
                        help="val images per class (default 25; 0 = no val split)")
    parser.add_argument("--test-per-class", type=int, default=25, metavar="N",
                        help="test images per class (default 25; 0 = no test split)")
    parser.add_argument("--size", type=int, default=96, metavar="S", help="nominal image side in pixels (default 96)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing suite in OUT_DIR")
    parser.set_defaults(func=run_synth)


def run_synth(args: argparse.Namespace) -> int:
    """Generate the suite described by ``args``; prints one summary line."""
    from attribmap.data.synthetic import generate_suite

    summary = generate_suite(args.out_dir, classes=args.classes, per_class=args.per_class, size=args.size,
                             seed=args.seed, val_per_class=args.val_per_class,
                             test_per_class=args.test_per_class, overwrite=args.overwrite)
    counts = ", ".join(f"{split} {info['images']} images / {info['objects']} objects"
                       for split, info in summary["splits"].items())
    print(f"wrote synthetic WSOL suite to {args.out_dir}: {args.classes} classes; {counts}")
    return 0
