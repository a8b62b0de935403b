"""Recipe: reproduce the published CAM numbers of "Evaluating WSOL Right" (Choe et al., CVPR 2020).

The numbers, the recipe and the pipeline are :mod:`attribmap.experiments.published` (read its
docstring for the published table and the recipe); this script is its command line.

What you need (nothing is downloaded by this script):

1. the images of the dataset, laid out as clovaai/wsolevaluation's ``dataset/`` folder
   (``dataset/CUB``, ``dataset/ILSVRC``, ``dataset/OpenImages``), and its ``metadata/``
   folder (``metadata/CUB/{train,val,test}`` ...);
2. a CAM classifier: either a checkpoint from ``attribmap train classifier`` (``--checkpoint``),
   or let this script train one (``--train``) from ImageNet-pretrained torchvision weights
   (``--weights DEFAULT``, in the torchvision cache) with the protocol's CAM recipe
   (:func:`attribmap.experiments.published.cam_recipe`). ``--lr`` defaults to 2.3222617e-4, the
   learning rate found in public wsolevaluation run scripts for ResNet50 on CUB (check it
   against the authors' hyper-parameter sheet, which also gives the values for the other
   architectures and datasets).

Then (ResNet50 on CUB)::

    python benchmarks/reproduce_paper.py --dataset cub --arch resnet50 \
        --data wsolevaluation/dataset/CUB --metadata wsolevaluation/metadata/CUB \
        --train --weights DEFAULT --device cuda --out repro_cub_r50

prints the measured MaxBoxAccV2 next to the published 63.0. ``--synthetic`` runs the same
recipe end to end on a small synthetic suite with a CPU-sized network (about a minute; the
"published" column then shows the CUB figure only as a reference point).

Deviations to expect: scores move by about +-1 point between training runs; the decay
period of the 10-epoch ImageNet / OpenImages runs is not known here (no decay is applied).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from attribmap.experiments.published import DEFAULT_LR, METRIC, WSOL_ARCH, reproduce
from attribmap.bench.report import results_table


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, run :func:`~attribmap.experiments.published.reproduce`, print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(METRIC), default="cub")
    parser.add_argument("--arch", choices=sorted(WSOL_ARCH), default="resnet50")
    parser.add_argument("--data", help="dataset images root (wsolevaluation dataset/<NAME>) or CUB_200_2011")
    parser.add_argument("--metadata", help="wsolevaluation metadata/<NAME> directory")
    parser.add_argument("--checkpoint", help="an existing CAM classifier checkpoint (skips training)")
    parser.add_argument("--train", action="store_true", help="train the CAM classifier first")
    parser.add_argument("--weights", default="DEFAULT", help="pretrained backbone weights for --train")
    parser.add_argument("--lr", type=float, default=DEFAULT_LR, help="base learning rate for --train")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=32, help="benchmark batch size")
    parser.add_argument("--delta", type=float, default=0.001, help="threshold step (protocol: 0.001)")
    parser.add_argument("--out", default="repro_out")
    parser.add_argument("--synthetic", action="store_true",
                        help="run the recipe end to end on a small synthetic suite (CPU, about a minute)")
    args = parser.parse_args(argv)
    if not args.synthetic:
        if not args.data:
            parser.error("--data is required (or --synthetic)")
        if args.checkpoint is None and not args.train:
            parser.error("give --checkpoint CKPT or --train")
    results, line = reproduce(Path(args.out), dataset=args.dataset, arch=args.arch, data=args.data,
                              metadata=args.metadata, checkpoint=args.checkpoint, lr=args.lr, weights=args.weights,
                              synthetic=args.synthetic, device=args.device, batch_size=args.batch_size,
                              delta=args.delta, log=lambda text: print(text, file=sys.stderr, flush=True))
    print(results_table(results))
    print(line)
    print(f"report: {(Path(args.out) / 'report' / 'results.md').resolve()}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
