"""``attribmap check DATA``: decode every image of a dataset split once and list every problem.

Examples
--------
::

    attribmap check suite --split test
    attribmap check CUB_200_2011 --split all
    attribmap check ILSVRC --metadata wsolevaluation/metadata/ILSVRC --split val
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Tuple

__all__ = ["register", "run_check", "check_split"]


def register(subparsers) -> None:
    """Add the ``check`` sub-command to ``subparsers`` (the CLI's argparse sub-parsers)."""
    parser = subparsers.add_parser(
        "check", help="decode every image of a dataset split once and list every problem (exit 2 if any)",
        description="Open a dataset split (the metadata checks stop at the first malformed line), then "
                    "decode every image and mask once and list every problem as FILE:LINE: MESSAGE: "
                    "unreadable files (empty, not an image, truncated), sizes that differ from "
                    "image_sizes.txt, boxes outside the real image. Exit status 0 when everything reads, "
                    "2 otherwise.")
    add_data_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_check)


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """``DATA``, ``--split`` and ``--metadata``, as ``attribmap bench`` reads them."""
    parser.add_argument("data", metavar="DATA", help="dataset: wsolevaluation layout, CUB_200_2011 as "
                                                     "distributed, or a synthetic suite")
    parser.add_argument("--split", default="test", help="split to check (default test)")
    parser.add_argument("--metadata", metavar="DIR", help="wsolevaluation metadata directory when it is not "
                                                          "DATA/metadata")


def check_split(data: str, split: str, metadata=None, progress: bool = False) -> Tuple[int, List[str]]:
    """The number of images checked and every problem of one split as ``"FILE:LINE: message"``
    lines (empty when all is well).

    A metadata error that stops the opening of the dataset is one line (0 images checked).

    Parameters
    ----------
    data : str
        Dataset root.
    split : str
        Split to check (``test``, ``train``, ...).
    metadata : str, optional
        Metadata folder (default: ``<data>/metadata``).
    progress : bool
        Show a progress bar on stderr.
    """
    from attribmap.data.formats import open_dataset
    from attribmap.data.check import check_images
    from attribmap.data.errors import MetadataError
    from attribmap.errors import ImageReadError

    try:
        dataset, _ = open_dataset(data, split, metadata=metadata, check_sizes=False, require_localization=False)
    except (MetadataError, ImageReadError) as exc:
        return 0, [str(exc)]
    from tqdm import tqdm

    with tqdm(total=len(dataset.records), unit="img", desc="check", disable=not progress, leave=False) as bar:
        return len(dataset.records), [str(p) for p in check_images(dataset.records, progress=bar.update)]


def run_check(args: argparse.Namespace) -> int:
    """Print every problem (stdout) and a summary line (stderr); 2 when there are problems.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``attribmap check`` arguments.
    """
    count, problems = check_split(args.data, args.split, args.metadata,
                                  progress=not args.no_progress and sys.stderr.isatty())
    for line in problems:
        print(line)
    print(summary(args.data, args.split, count, problems), file=sys.stderr)
    return 2 if problems else 0


def summary(data: str, split: str, count: int, problems: List[str]) -> str:
    """The last line of a check: how many images, how many problems."""
    if problems:
        return (f"attribmap check: {len(problems)} problem{'s' if len(problems) > 1 else ''} in split {split!r} "
                f"of {data} ({count} images decoded)")
    return f"attribmap check: all {count} images of split {split!r} of {data} read, sizes and boxes agree"
