"""``attribmap explain IMAGE --model NAME --method M --layer L -o OUT.png``."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("explain", help="write localization maps of one image as a PNG figure",
                              description="Compute maps of IMAGE with one or more methods and write an "
                                          "overlay figure (one column per method).")
    p.add_argument("image", help="image file (any format PIL reads)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="torchvision model name (resnet50, vgg16, inception_v3, ...)")
    src.add_argument("--checkpoint", help="checkpoint written by `attribmap train`")
    p.add_argument("--weights", default=None,
                   help="path to a local state_dict (loaded with weights_only=True) or DEFAULT for "
                        "torchvision's pretrained weights; random initialisation when omitted")
    p.add_argument("--method", default="gradcam",
                   help="method name, or several separated by commas, each NAME[@LAYER][:KEY=VALUE...] "
                        "(see `attribmap methods`), e.g. gradcam,dgl@layer3:alpha=5")
    p.add_argument("--layer", default=None, help="dotted layer name (default: automatic choice)")
    p.add_argument("--target", type=int, default=None, help="class index (default: top-1 prediction)")
    p.add_argument("--size", type=int, default=224, help="side of the resized input (default 224)")
    p.add_argument("--alpha", type=float, default=0.5, help="overlay opacity in [0, 1]")
    p.add_argument("-o", "--out", required=True, help="output PNG path")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import attribmap
    from attribmap.inputs import load_image, to_batch
    from attribmap.models.loading import load_classifier
    from attribmap.viz import method_grid

    if args.size < 32:
        raise ValueError(f"--size must be at least 32; got {args.size}")
    if not 0.0 <= args.alpha <= 1.0:
        raise ValueError(f"--alpha must lie in [0, 1]; got {args.alpha}")
    if not args.out.lower().endswith(".png"):
        raise ValueError(f"-o/--out must name a .png file; got {args.out!r}")
    from attribmap.methods import ExtractorSpec, split_specs

    methods = split_specs(args.method)
    if not methods:
        raise ValueError("--method names no method")
    for text in methods:
        attribmap.get_method(ExtractorSpec.parse(text).name)  # unknown names fail before any work
    image = load_image(args.image)
    model = load_classifier(args.model, args.weights, args.checkpoint)
    batch = to_batch(image, size=args.size)
    maps, logits = attribmap.Explainer(model, layer=args.layer).explain_many(
        batch, methods, target=args.target, return_logits=True)
    method_grid(batch, maps, path=args.out, alpha=args.alpha)
    top = int(logits[0].argmax()) if logits is not None else None
    print(f"wrote {args.out} (methods: {', '.join(methods)}; top-1 class {top}; "
          f"target {args.target if args.target is not None else top})")
    return 0
