"""``attribmap synth OUT_DIR``: write the synthetic WSOL suite, then print its reference rows."""
from __future__ import annotations

import argparse

__all__ = ["register", "run_synth"]


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add the ``synth`` sub-command to ``subparsers``."""
    parser = subparsers.add_parser(
        "synth", help="generate the synthetic WSOL suite",
        description="Write a seeded synthetic WSOL dataset (images, class labels, boxes, masks; "
                    "train/val/test, and pretrain for version 2) in the wsolevaluation metadata layout. "
                    "The same seed and options give byte-identical files. For a version-2 suite with a "
                    "test split, the reference rows of the test split and the ground-truth part of the "
                    "validity check are printed afterwards.")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="output directory")
    parser.add_argument("--generator", type=int, default=2, choices=(1, 2), metavar="V",
                        help="generator version: 2 (default) or 1 (the first suite, byte for byte)")
    parser.add_argument("--classes", type=int, default=None, metavar="K",
                        help="number of classes (2..64; default 8, version 1: 4)")
    parser.add_argument("--per-class", type=int, default=None, metavar="N",
                        help="training images per class (default 100, version 1: 120)")
    parser.add_argument("--val-per-class", type=int, default=None, metavar="N",
                        help="val images per class (default 25; 0 = no val split)")
    parser.add_argument("--test-per-class", type=int, default=None, metavar="N",
                        help="test images per class (default 25; 0 = no test split)")
    parser.add_argument("--pretrain-per-class", type=int, default=None, metavar="N",
                        help="version 2: pretrain images per class (default: as --per-class; 0 = none)")
    parser.add_argument("--size", type=int, default=None, metavar="S",
                        help="nominal image side in pixels (default 128, version 1: 96)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing suite in OUT_DIR")
    parser.add_argument("--grid", type=int, default=8, metavar="G",
                        help="CAM grid of the pooled reference row (default 8)")
    parser.add_argument("--engine", default="auto", choices=("auto", "tree", "opencv", "numpy"),
                        help="contour engine for scoring the reference rows (same numbers; default auto)")
    parser.add_argument("--no-check", action="store_true",
                        help="skip scoring the reference rows and the validity check")
    parser.set_defaults(func=run_synth)


def run_synth(args: argparse.Namespace) -> int:
    """Generate the suite described by ``args``; prints a summary, the reference rows and the check."""
    from attribmap.data.synthetic import check_suite, format_reference_table, generate_suite, score_reference_rows

    summary = generate_suite(args.out_dir, classes=args.classes, per_class=args.per_class, size=args.size,
                             seed=args.seed, val_per_class=args.val_per_class, test_per_class=args.test_per_class,
                             overwrite=args.overwrite, version=args.generator,
                             pretrain_per_class=args.pretrain_per_class)
    counts = ", ".join(f"{split} {info['images']} images / {info['objects']} objects"
                       for split, info in summary["splits"].items())
    print(f"wrote synthetic WSOL suite (generator {summary['generator_version']}) to {args.out_dir}: "
          f"{summary['classes']} classes; {counts}")
    if args.no_check:
        return 0
    if summary["generator_version"] < 2 or "test" not in summary["splits"]:
        print("reference rows: not scored (they need a version-2 suite with a test split)")
        return 0
    scores = score_reference_rows(args.out_dir, "test", grid=args.grid, engine=args.engine)
    print(f"reference rows of the test split ({summary['splits']['test']['images']} images, official protocol):")
    print(format_reference_table(scores, grid=args.grid))
    print("validity check:")
    print(check_suite(scores))
    return 0
