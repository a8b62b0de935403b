"""``attribmap bench``: score extractors on a WSOL dataset with one protocol and write a report.

Examples
--------
::

    attribmap bench --data suite --checkpoint runs/cls.pt --methods cam,gradcam,dgl@layer3 \\
        --extractor i2c=runs/i2c.pt --extractor weightmap=runs/wm.pt --input-size 64 --out bench_out
    attribmap bench --data CUB_200_2011 --model resnet50 --weights resnet50_cub.pth \\
        --layer layer4 --methods cam --out cub_cam
    torchrun --nproc_per_node=2 -m attribmap bench --data suite --checkpoint runs/cls.pt --out bench_out
    attribmap bench --data suite --checkpoint runs/cls.pt --methods cam,gradcam \\
        --faithfulness deletion,insertion,drop,road --device cuda --out bench_faithful
    attribmap bench --data suite --checkpoint runs/cls.pt --methods cam --metrics top1,boxes,deletion \\
        --metric-option deletion.steps=20 --metric-option deletion.baseline=blur --out bench_chosen
"""
from __future__ import annotations

import argparse
import os
import sys

__all__ = ["register", "run_bench", "input_size_line"]


def register(subparsers) -> None:
    """Add the ``bench`` sub-command to ``subparsers``."""
    parser = subparsers.add_parser(
        "bench", help="score extractors on a WSOL dataset and write a report",
        description="Score a set of map extractors on one split of a WSOL dataset with one protocol "
                    "(official wsolevaluation protocol by default) in a single pass, and write "
                    "results.json, results.md, curves.npz and figures to --out. Maps are those of the "
                    "ground-truth class (GT-known). Under torchrun the split is sharded across processes "
                    "and the counts are summed, giving the single-process numbers.")
    _add_data_and_model(parser)
    _add_extractors(parser)
    _add_protocol(parser)
    _add_metrics(parser)
    _add_run(parser)
    parser.set_defaults(func=run_bench)


def _add_data_and_model(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument("--data", required=True, metavar="DIR",
                      help="dataset: wsolevaluation layout (metadata/<split>/), CUB_200_2011 as distributed, "
                           "or a synthetic suite from `attribmap synth`")
    data.add_argument("--split", default="test", help="split to score (default test)")
    data.add_argument("--metadata", metavar="DIR", help="wsolevaluation metadata directory when it is not "
                                                         "DIR/metadata (e.g. wsolevaluation/metadata/CUB)")
    model = parser.add_argument_group("model")
    source = model.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", metavar="CKPT", help="classifier checkpoint from `attribmap train`")
    source.add_argument("--model", metavar="NAME", help="torchvision model name (resnet50, vgg16, ...)")
    model.add_argument("--weights", metavar="W", help="with --model: local state_dict path, or a torchvision "
                                                      "weights name such as DEFAULT")
    model.add_argument("--layer", metavar="L", help="layer tapped by the post-hoc methods (default: automatic)")


def _add_extractors(parser: argparse.ArgumentParser) -> None:
    from attribmap.bench.config import DEFAULT_METHODS

    extractors = parser.add_argument_group("extractors")
    extractors.add_argument("--methods", default=",".join(DEFAULT_METHODS), metavar="LIST",
                            help="comma-separated extractor specs NAME[@LAYER][:KEY=VALUE...] run on the main "
                                 "model, e.g. cam,dgl@layer3:alpha=5,captum:Saliency "
                                 f"(default {','.join(DEFAULT_METHODS)}; '' for none)")
    extractors.add_argument("--extractor", action="append", default=[], metavar="SPEC",
                            help="one more extractor NAME[@LAYER][=CHECKPOINT][:KEY=VALUE...], repeatable: "
                                 "i2c=runs/i2c.pt (a method on a checkpoint's model), weightmap=runs/wm.pt "
                                 "(a learned extractor), dgl@layer3:scales=(0.5,1,1.5):close=3, ...")
    extractors.add_argument("--i2c", metavar="CKPT", help="alias of --extractor i2c=CKPT")
    extractors.add_argument("--weightmap", metavar="CKPT", help="alias of --extractor weightmap=CKPT")


def _add_protocol(parser: argparse.ArgumentParser) -> None:
    protocol = parser.add_argument_group("protocol")
    protocol.add_argument("--protocol", choices=("official", "legacy"), default="official",
                          help="official (MaxBoxAcc, MaxBoxAccV2, PxAP; default) or legacy fixed threshold")
    protocol.add_argument("--delta", type=float, default=0.001, help="threshold step of the official protocol "
                                                                     "(default 0.001)")
    protocol.add_argument("--tau", type=float, default=0.2, help="fixed threshold of the legacy protocol "
                                                                 "(default 0.2)")
    protocol.add_argument("--per-class", action="store_true",
                          help="also report MaxBoxAcc, MaxBoxAccV2 and PxAP of each class")



def _add_metrics(parser: argparse.ArgumentParser) -> None:
    """The metric choice (``--metrics``, ``--metric-option``) and the faithfulness flags."""
    from attribmap.evaluate.registry import FAITHFULNESS, metric_names

    chosen = parser.add_argument_group("metrics")
    chosen.add_argument("--metrics", default=None, metavar="LIST",
                        help="exactly the metrics to score, comma-separated registered names: "
                             f"{','.join(metric_names())} (default: top1 and the protocol's localization "
                             "metrics for what the split has; --faithfulness adds to either)")
    chosen.add_argument("--metric-option", action="append", default=[], metavar="NAME.KEY=VALUE",
                        help="one metric option, repeatable, the value read as the option's type: "
                             "deletion.steps=20, road.percents=30,70, boxes.iou_thresholds=50 ... (wins over "
                             "the named flags --steps, --road-noise, ..., which are its aliases)")
    faithful = parser.add_argument_group("faithfulness (off by default: they cost perturbed forward passes)")
    faithful.add_argument("--faithfulness", default="", metavar="LIST",
                          help=f"faithfulness metrics to add: some of {','.join(FAITHFULNESS)}, or all; scored "
                               "on the ground-truth class with the model behind each extractor")
    faithful.add_argument("--faithfulness-batch-size", type=int, default=None, metavar="B",
                          help="most perturbed images per forward pass (bounds memory; default 16 on the CPU, "
                               "64 on CUDA)")
    faithful.add_argument("--steps", type=int, default=50, help="steps of the deletion / insertion curves "
                                                                "(default 50)")
    faithful.add_argument("--deletion-baseline", choices=("zeros", "blur"), default="zeros",
                          help="what deleted pixels become (default zeros, in the model's input space)")
    faithful.add_argument("--insertion-baseline", choices=("zeros", "blur"), default="blur",
                          help="what insertion starts from (default blur)")
    faithful.add_argument("--road-percents", default="10,20,30,40,50,60,70,80,90", metavar="LIST",
                          help="percentages of pixels ROAD removes (default 10,...,90)")
    faithful.add_argument("--road-noise", type=float, default=0.01,
                          help="standard deviation of ROAD's imputation noise (default 0.01)")


def _add_run(parser: argparse.ArgumentParser) -> None:
    run = parser.add_argument_group("run")
    run.add_argument("--input-size", type=int, default=None, metavar="S",
                     help="side of the model input in pixels (default: the image size recorded in --checkpoint's "
                          "training recipe, else the resolution of --model's weights when attribmap knows it, "
                          "e.g. 240 for efficientnet_lite1, else 224; the evaluation frame stays 224); the size "
                          "used is printed")
    run.add_argument("--batch-size", type=int, default=32, metavar="B", help="images per batch and process "
                                                                             "(default 32)")
    run.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    run.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    run.add_argument("--out", required=True, metavar="OUT", help="report directory (checked before any work)")
    run.add_argument("--check-images", action="store_true",
                     help="first decode every image and mask of the split once (as `attribmap check`), list every "
                          "problem as FILE:LINE: MESSAGE and exit 2 when there is one, before loading any model")
    run.add_argument("--resume", action="store_true", help="continue an interrupted run from its last "
                                                           "saved batch")
    run.add_argument("--save-every", type=int, default=10, metavar="K",
                     help="save the resume state every K batches (default 10)")
    run.add_argument("--grid-images", type=int, default=4, metavar="N",
                     help="images in the qualitative figure (default 4; 0 = none)")
    run.add_argument("--no-figures", action="store_true", help="write results.json / results.md only")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace):
    """The :class:`~attribmap.bench.BenchConfig` described by parsed arguments."""
    from attribmap.bench import BenchConfig, parse_methods
    from attribmap.bench.config import parse_faithfulness, parse_metric_options
    from attribmap.evaluate.registry import parse_metric_names

    if args.weights is not None and args.model is None:
        raise ValueError("--weights goes with --model NAME (a checkpoint carries its own weights)")
    return BenchConfig(
        data=args.data, split=args.split, model=args.model, weights=args.weights, checkpoint=args.checkpoint,
        layer=args.layer, methods=parse_methods(args.methods), extractors=tuple(args.extractor), i2c=args.i2c,
        weightmap=args.weightmap,
        protocol=args.protocol, delta=args.delta, tau=args.tau, input_size=args.input_size,
        batch_size=args.batch_size, device=args.device, metadata=args.metadata, seed=args.seed,
        faithfulness=parse_faithfulness(args.faithfulness), faithfulness_batch_size=args.faithfulness_batch_size,
        steps=args.steps, deletion_baseline=args.deletion_baseline, insertion_baseline=args.insertion_baseline,
        road_percents=_percents(args.road_percents), road_noise=args.road_noise, per_class=args.per_class,
        metrics=None if args.metrics is None else parse_metric_names(args.metrics),
        metric_settings=parse_metric_options(args.metric_option),
    ).validated()


def input_size_line(results) -> str:
    """``"input size: 64 px (recorded in the checkpoint's training recipe)"``.

    Parameters
    ----------
    results : dict
        What :func:`attribmap.bench.run_bench` returned (its ``config`` entry is read).
    """
    from attribmap.models.input_size import INPUT_SIZE_SOURCES

    config = results["config"]
    source = config.get("input_size_from")
    return f"input size: {config['input_size']} px ({INPUT_SIZE_SOURCES.get(source, source)})"


def _percents(text: str):
    try:
        return tuple(int(item) for item in text.split(",") if item.strip())
    except ValueError as exc:
        raise ValueError(f"--road-percents must be integers separated by commas, e.g. 10,50,90; got {text!r}") from exc


def run_bench(args: argparse.Namespace) -> int:
    """Run the benchmark of the parsed ``args``; prints the results table and the report path (rank 0)."""
    from attribmap.bench import run_benchmark
    from attribmap.bench.report import results_table

    from attribmap.fileio import check_output_dir

    config = config_from_args(args)
    if args.grid_images < 0:
        raise ValueError(f"--grid-images must be >= 0; got {args.grid_images}")
    check_output_dir(args.out, "--out")
    main_process = int(os.environ.get("RANK", "0")) == 0
    log = (lambda line: print(line, file=sys.stderr, flush=True)) if main_process else None
    if args.check_images:
        from attribmap.commands.check import check_split, summary

        count, problems = check_split(config.data, config.split, config.metadata,
                                      progress=main_process and not args.no_progress and sys.stderr.isatty())
        if main_process:
            for line in problems:
                print(line, file=sys.stderr)
            print(summary(config.data, config.split, count, problems), file=sys.stderr)
        if problems:
            return 2
    try:
        results = run_benchmark(config, args.out, resume=args.resume,
                                progress=False if args.no_progress else None, save_every=args.save_every,
                                grid_images=args.grid_images, write_figures=not args.no_figures, log=log)
    except KeyboardInterrupt:
        if main_process:
            print(f"attribmap bench: interrupted; the batches saved in {args.out} (every {args.save_every}) are "
                  "kept: run the same command with --resume to continue", file=sys.stderr)
        raise
    if main_process:
        from attribmap.bench.suite_report import section_lines

        print(results_table(results))
        print(input_size_line(results))
        for line in section_lines(results):
            print(line)
        print(f"report: {os.path.join(os.path.abspath(args.out), 'results.md')}")
    return 0
