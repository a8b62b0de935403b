"""``attribmap sanity IMAGE... --model M --methods a,b --out DIR``: model-parameter randomization tests."""
from __future__ import annotations

import argparse
import json
from typing import List, Optional

__all__ = ["register", "run_sanity", "load_images"]


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add the ``sanity`` sub-command to ``subparsers``."""
    parser = subparsers.add_parser(
        "sanity", help="model-parameter randomization tests of the methods (Adebayo et al. 2018)",
        description="Re-initialise the model block by block from the logits down (cascading) and each block "
                    "alone (independent), and compare each method's maps with the trained model's: Spearman "
                    "rank correlation of signed and absolute values, SSIM, HOG-feature correlation. Writes "
                    "DIR/sanity.json, DIR/sanity.md (the tables) and DIR/sanity.png (the maps per stage). The "
                    "model given is never modified.")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files or bundled photo names")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="model name (torchvision, or attribmap's, e.g. efficientnet_lite0)")
    src.add_argument("--checkpoint", help="checkpoint written by `attribmap train`")
    parser.add_argument("--weights", default=None, help="state_dict path or DEFAULT (pretrained)")
    parser.add_argument("--methods", default="gradcam,captum:GuidedBackprop",
                        help="comma-separated method specs (default gradcam,captum:GuidedBackprop)")
    parser.add_argument("--layer", default=None, help="layer of the post-hoc methods (default: automatic)")
    parser.add_argument("--blocks", default=None,
                        help="comma-separated dotted block names, input to logits (default: the model's "
                             "sanity_blocks, else its top-level children; see attribmap.sanity.blocks)")
    parser.add_argument("--stages", default=None,
                        help="comma-separated blocks at which the maps are compared (default: every block); "
                             "the cascade still randomizes every block above them. For the costly methods "
                             "(scorecam, iscam, sscam)")
    parser.add_argument("--target", type=int, default=None, help="class explained (default: each image's top-1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the re-initialisations (default 0)")
    parser.add_argument("--size", type=int, default=None,
                        help="input side (default: the model's input_size, e.g. 240 for efficientnet_lite1, else 224)")
    parser.add_argument("--no-independent", action="store_true", help="skip the independent randomization")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--no-progress", action="store_true", help="no line per finished stage on stderr")
    parser.add_argument("--cache", default=None, metavar="DIR",
                        help="keep each stage's raw maps in DIR (one file per test, stage and method); a run with "
                             "the same model, images and settings reads them instead of recomputing: an "
                             "interrupted run goes on, a run with more stages or methods computes only the new ones")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.set_defaults(func=run_sanity)


def load_images(items: List[str]) -> list:
    """PIL images of ``items``: file paths or bundled photo names (``attribmap.data.photos``)."""
    from attribmap.commands.explain import read_image

    return [read_image(item) for item in items]


def run_sanity(args: argparse.Namespace) -> int:
    """Run the tests of the parsed ``args``; prints the tables, writes the files."""
    from attribmap.fileio import atomic_write_text, check_output_dir
    from attribmap.methods import split_specs
    from attribmap.models.loading import load_classifier
    from attribmap.sanity import model_randomization, sanity_figure

    out = check_output_dir(args.out, "--out")
    if args.cache is not None:
        check_output_dir(args.cache, "--cache")
    methods = split_specs(args.methods)
    if not methods:
        raise ValueError("--methods names no method")
    images = load_images(args.images)
    model = load_classifier(args.model, args.weights, args.checkpoint).to(args.device)
    batch = _batch(model, images, args.size)
    blocks = [b.strip() for b in args.blocks.split(",") if b.strip()] if args.blocks else None
    stages = [b.strip() for b in args.stages.split(",") if b.strip()] if args.stages is not None else None
    result = model_randomization(model, batch, methods, target=args.target, blocks=blocks,
                                 independent=not args.no_independent, seed=args.seed, layer=args.layer,
                                 stages=stages, progress=None if args.no_progress else _say, cache=args.cache)
    data = result.as_dict()
    data["images"] = list(args.images)
    data["model"] = args.model or args.checkpoint
    atomic_write_text(out / "sanity.json", json.dumps(data, indent=1) + "\n")
    tables = []
    for measure in ("spearman_abs", "spearman", "ssim", "hog"):
        tables.append(result.table(measure))
    if result.independent:
        tables.append("independent randomization (one block at a time):\n" + result.table("spearman_abs", True))
    text = "\n\n".join(tables)
    atomic_write_text(out / "sanity.md", "```\n" + text + "\n```\n")
    sanity_figure(result, out / "sanity.png", **_display_norm(model))
    print(text)
    constant = "; ".join(f"{m}: {max(e['n_constant'])} of {e['n_images']}" for m, e in result.methods.items()
                         if max(e["n_constant"]))
    print("[n] = constant maps at that stage, left out of the rank and HOG means"
          + (f" (most per stage: {constant})" if constant else ""))
    if result.skipped:
        print(f"not re-initialised (no reset_parameters): {', '.join(result.skipped)}")
    print(f"wrote {out / 'sanity.json'}, {out / 'sanity.md'} and {out / 'sanity.png'} "
          f"({len(result.stages)} cascading stages, {result.seconds:.1f} s)")
    return 0


def _say(line: str) -> None:
    import sys

    print(f"sanity: {line}", file=sys.stderr, flush=True)


def _batch(model, images, size: Optional[int]):
    """The images as the model's input: its own preprocessing when it declares one, else the default."""
    import torch

    from attribmap.inputs import model_input_size, to_batch

    declared = getattr(model, "attribmap_transform", None)
    if declared is None:
        return to_batch(images, size=size if size is not None else model_input_size(model))
    return torch.stack([declared(image) for image in images])


def _display_norm(model) -> dict:
    mean, std = getattr(model, "input_mean", None), getattr(model, "input_std", None)
    return {"mean": mean, "std": std} if mean is not None and std is not None else {}
