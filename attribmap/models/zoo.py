"""Builders for every named architecture (see :func:`attribmap.models.build_model`).

Each builder takes ``(num_classes, weights, **kwargs)`` and returns a module carrying
``arch``, ``num_classes``, ``cam_layer`` and ``arch_kwargs`` (the kwargs that rebuild it).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

from torch import nn

from attribmap.models.backbones import (
    LITE0_INTERMEDIATE,
    efficientnet_lite0_body,
    inception_v3_body,
    resnet_body,
    vgg16_body,
)
from attribmap.models.base import GapLinearClassifier, I2CClassifier, conv_relu_head
from attribmap.models.efficientnet_lite import efficientnet_lite0, efficientnet_lite1, efficientnet_lite2
from attribmap.models.weightmap_generator import WeightMapGenerator

__all__ = ["BUILDERS", "NO_CLASSIFIER", "LEGACY_KWARGS", "NARROW_WIDTH", "IMAGENET_ARCHS"]

#: Base width of the ``*_narrow`` ResNet-18 archs (torchvision's is 64).
NARROW_WIDTH = 32


def _with_head(body: "OrderedDict[str, nn.Module]", channels: int, width: int, depth: int
               ) -> "OrderedDict[str, nn.Module]":
    body["head"] = conv_relu_head(channels, width, depth)
    return body


def vgg16_gap(num_classes: int, weights: Any = None) -> nn.Module:
    """VGG16 conv layers (no pool5) -> conv 3x3 1024 + ReLU (``head``) -> GAP -> Linear."""
    body, c = vgg16_body(weights)
    return GapLinearClassifier(_with_head(body, c, 1024, 1), 1024, num_classes, arch="vgg16_gap")


def inception_v3_spg(num_classes: int, weights: Any = None,
                     large_feature_map: bool = False) -> nn.Module:
    """InceptionV3 to Mixed_6e (Mixed_6a stride 1) -> 2 x (conv 3x3 1024 + ReLU) -> GAP -> fc."""
    body, c = inception_v3_body(weights, large_feature_map=large_feature_map)
    return GapLinearClassifier(_with_head(body, c, 1024, 2), 1024, num_classes,
                               arch="inception_v3_spg",
                               arch_kwargs={"large_feature_map": bool(large_feature_map)})


def resnet50_wsol(num_classes: int, weights: Any = None) -> nn.Module:
    """ResNet50 with ``layer4`` at stride 1 -> GAP -> Linear (CAM layer ``layer4``)."""
    body, c = resnet_body(50, weights, layer4_stride=1)
    return GapLinearClassifier(body, c, num_classes, arch="resnet50_wsol")


def resnet18_small(num_classes: int, weights: Any = None) -> nn.Module:
    """CPU-sized ResNet18 (``layer4`` stride 1, 512 channels) -> GAP -> Linear.

    Meant for tests and the demo at 64-128 px (a 64 px input gives a 4x4 CAM, 128 px 8x8).
    """
    body, c = resnet_body(18, weights, layer4_stride=1)
    return GapLinearClassifier(body, c, num_classes, arch="resnet18_small")


def resnet18_narrow(num_classes: int, weights: Any = None, width: int = NARROW_WIDTH) -> nn.Module:
    """ResNet18 of base width ``width`` (32: stages 32..256 channels), ``layer4`` stride 1 -> GAP -> fc.

    The default CPU backbone of the synthetic suite: at 128 px its CAM layer is 8x8, and a
    training step costs about a fifth of ``resnet18_small``'s (docs/training.rst). Random
    initialisation only (no pretrained weights exist for this width).
    """
    body, c = resnet_body(18, weights, layer4_stride=1, width=int(width))
    return GapLinearClassifier(body, c, num_classes, arch="resnet18_narrow",
                               arch_kwargs={"width": int(width)})


def _i2c(arch: str, body_and_channels: tuple, num_classes: int, head_channels: int,
         dropout: float, extra: dict[str, Any] | None = None) -> nn.Module:
    body, c = body_and_channels
    kwargs = {"head_channels": int(head_channels), "dropout": float(dropout), **(extra or {})}
    return I2CClassifier(body, c, num_classes, arch=arch, head_channels=head_channels,
                         dropout=float(dropout), arch_kwargs=kwargs)


def vgg16_i2c(num_classes: int, weights: Any = None, head_channels: int = 1024,
              dropout: float = 0.0) -> nn.Module:
    """VGG16 conv layers (feature layer ``features``) + I2C head."""
    return _i2c("vgg16_i2c", vgg16_body(weights), num_classes, head_channels, dropout)


def inception_v3_i2c(num_classes: int, weights: Any = None, head_channels: int = 1024,
                     large_feature_map: bool = False, dropout: float = 0.0) -> nn.Module:
    """InceptionV3 to Mixed_6e (feature layer ``Mixed_6e``) + I2C head."""
    return _i2c("inception_v3_i2c", inception_v3_body(weights, large_feature_map), num_classes,
                head_channels, dropout, {"large_feature_map": bool(large_feature_map)})


def resnet50_i2c(num_classes: int, weights: Any = None, head_channels: int = 1024,
                 dropout: float = 0.0) -> nn.Module:
    """ResNet50, ``layer4`` stride 1 (feature layer ``layer4``) + I2C head."""
    return _i2c("resnet50_i2c", resnet_body(50, weights, 1), num_classes, head_channels, dropout)


def resnet18_small_i2c(num_classes: int, weights: Any = None, head_channels: int = 256,
                       dropout: float = 0.0) -> nn.Module:
    """CPU-sized ResNet18 (``layer4`` stride 1) + I2C head of width 256 by default."""
    return _i2c("resnet18_small_i2c", resnet_body(18, weights, 1), num_classes, head_channels,
                dropout)


def resnet18_narrow_i2c(num_classes: int, weights: Any = None, head_channels: int = 256,
                        dropout: float = 0.0, width: int = NARROW_WIDTH) -> nn.Module:
    """:func:`resnet18_narrow`'s body (feature layer ``layer4``, ``8 * width`` channels) + I2C head.

    Its body has the same parameter names and shapes as ``resnet18_narrow`` of the same
    width, so a GAP classifier initialises it (``init=``; the head starts fresh).
    """
    return _i2c("resnet18_narrow_i2c", resnet_body(18, weights, 1, width=int(width)), num_classes,
                head_channels, dropout, {"width": int(width)})


def siamese_resnet18(num_classes: int = 0, weights: Any = None,
                     embedding_dim: int = 200) -> nn.Module:
    """Embedding net for weight-map method II: ResNet18 -> GAP (512) -> Linear(512, 200).

    ``forward`` returns embeddings (N, embedding_dim). ``num_classes`` is not used by the
    network (kept as an attribute only); ``model.embedding_dim`` holds the output size.
    """
    if int(embedding_dim) < 1:
        raise ValueError(f"embedding_dim must be a positive int, got {embedding_dim!r}")
    body, c = resnet_body(18, weights, layer4_stride=2)
    model = GapLinearClassifier(body, c, int(embedding_dim), arch="siamese_resnet18",
                                arch_kwargs={"embedding_dim": int(embedding_dim)})
    model.num_classes = int(num_classes)
    model.embedding_dim = int(embedding_dim)
    return model


def siamese_resnet18_narrow(num_classes: int = 0, weights: Any = None, embedding_dim: int = 200,
                            width: int = NARROW_WIDTH) -> nn.Module:
    """:func:`siamese_resnet18` on the narrow ResNet-18 body (base ``width``, ``8 * width``
    channels -> Linear to ``embedding_dim``); same parameter names as ``resnet18_narrow``'s
    body, so a narrow classifier initialises it (``init=``)."""
    if int(embedding_dim) < 1:
        raise ValueError(f"embedding_dim must be a positive int, got {embedding_dim!r}")
    body, c = resnet_body(18, weights, layer4_stride=2, width=int(width))
    model = GapLinearClassifier(body, c, int(embedding_dim), arch="siamese_resnet18_narrow",
                                arch_kwargs={"embedding_dim": int(embedding_dim), "width": int(width)})
    model.num_classes = int(num_classes)
    model.embedding_dim = int(embedding_dim)
    return model


def efficientnet_lite0_wsol(num_classes: int, weights: Any = None) -> nn.Module:
    """EfficientNet-Lite0 with ``_blocks.11`` at stride 1 -> GAP -> ``fc`` (CAM layer ``_head_act``).

    The CAM / Grad-CAM / DGL classifier on the ImageNet backbone: the body of
    :func:`attribmap.models.backbones.efficientnet_lite0_body` (output stride 16: an 8x8 CAM
    at 128 px, 14x14 at 224 px; 1280 channels) and a fresh ``fc``. ``weights="DEFAULT"``
    loads the ImageNet weights into every body layer. ``model.block_names`` lists the
    blocks (``_blocks.0`` .. ``_blocks.15``) and ``model.intermediate_layer`` names
    ``_blocks.10``, the last block before the re-strided stage (112 channels, stride 16), the
    counterpart of ``layer3`` for DGL at an intermediate layer.
    """
    body, c = efficientnet_lite0_body(weights, last_stride=1)
    return _lite0_names(GapLinearClassifier(body, c, num_classes, arch="efficientnet_lite0_wsol"))


def _lite0_names(model: nn.Module) -> nn.Module:
    model.block_names = tuple(f"_blocks.{i}" for i in range(len(model._blocks)))
    model.intermediate_layer = LITE0_INTERMEDIATE
    return model


def efficientnet_lite0_i2c(num_classes: int, weights: Any = None, head_channels: int = 256,
                           dropout: float = 0.0) -> nn.Module:
    """:func:`efficientnet_lite0_wsol`'s body (feature layer ``_head_act``, 1280 channels) + I2C head.

    The head is 256 wide by default (as the CPU-sized ResNet I2C archs): two 3x3 convolutions
    on the 1280-channel map already cost more than the backbone at 1024.
    """
    return _lite0_names(_i2c("efficientnet_lite0_i2c", efficientnet_lite0_body(weights, last_stride=1),
                             num_classes, head_channels, dropout))


def siamese_efficientnet_lite0(num_classes: int = 0, weights: Any = None,
                               embedding_dim: int = 200) -> nn.Module:
    """Embedding net for weight-map method II on EfficientNet-Lite0: standard strides (output
    stride 32) -> GAP (1280) -> Linear(1280, ``embedding_dim``), as :func:`siamese_resnet18`.

    ``forward`` returns embeddings (N, embedding_dim); ``num_classes`` is kept as an attribute
    only. ``weights="DEFAULT"`` loads the ImageNet weights into the body; ``fc`` is fresh.
    """
    if int(embedding_dim) < 1:
        raise ValueError(f"embedding_dim must be a positive int, got {embedding_dim!r}")
    body, c = efficientnet_lite0_body(weights, last_stride=2)
    model = GapLinearClassifier(body, c, int(embedding_dim), arch="siamese_efficientnet_lite0",
                                arch_kwargs={"embedding_dim": int(embedding_dim)})
    model.num_classes = int(num_classes)
    model.embedding_dim = int(embedding_dim)
    return model


def _weightmap(encoder: str) -> Callable[..., nn.Module]:
    narrow = encoder.endswith("_narrow")

    def build(num_classes: int = 0, weights: Any = None, padding: str = "reflect") -> nn.Module:
        return WeightMapGenerator(encoder=encoder, weights=weights, padding=padding)

    def build_narrow(num_classes: int = 0, weights: Any = None, padding: str = "reflect",
                     width: int = NARROW_WIDTH) -> nn.Module:
        return WeightMapGenerator(encoder=encoder, weights=weights, padding=padding, width=width)

    chosen = build_narrow if narrow else build
    chosen.__name__ = f"weightmap_{encoder}"
    chosen.__doc__ = (f"Weight-map generator with a {encoder} encoder (``num_classes`` unused; "
                      "``padding`` of the decoder convolutions).")
    return chosen


BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "vgg16_gap": vgg16_gap,
    "inception_v3_spg": inception_v3_spg,
    "resnet50_wsol": resnet50_wsol,
    "vgg16_i2c": vgg16_i2c,
    "inception_v3_i2c": inception_v3_i2c,
    "resnet50_i2c": resnet50_i2c,
    "resnet18_small": resnet18_small,
    "resnet18_small_i2c": resnet18_small_i2c,
    "resnet18_narrow": resnet18_narrow,
    "resnet18_narrow_i2c": resnet18_narrow_i2c,
    "siamese_resnet18": siamese_resnet18,
    "siamese_resnet18_narrow": siamese_resnet18_narrow,
    "weightmap_resnet18": _weightmap("resnet18"),
    "weightmap_resnet34": _weightmap("resnet34"),
    "weightmap_resnet50": _weightmap("resnet50"),
    "weightmap_resnet18_narrow": _weightmap("resnet18_narrow"),
    "efficientnet_lite0": efficientnet_lite0,
    "efficientnet_lite1": efficientnet_lite1,
    "efficientnet_lite2": efficientnet_lite2,
    "efficientnet_lite0_wsol": efficientnet_lite0_wsol,
    "efficientnet_lite0_i2c": efficientnet_lite0_i2c,
    "siamese_efficientnet_lite0": siamese_efficientnet_lite0,
    "weightmap_efficientnet_lite0": _weightmap("efficientnet_lite0"),
}

#: Complete ImageNet classifiers (1000 classes, pretrained weights from an installed package):
#: ``attribmap explain --model NAME --weights DEFAULT`` builds them with :func:`build_model`.
IMAGENET_ARCHS = frozenset({"efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"})

#: Architectures whose ``num_classes`` is not a classifier size (0 is accepted).
NO_CLASSIFIER = frozenset({"siamese_resnet18", "siamese_resnet18_narrow", "siamese_efficientnet_lite0",
                           "weightmap_resnet18", "weightmap_resnet34", "weightmap_resnet50",
                           "weightmap_resnet18_narrow", "weightmap_efficientnet_lite0"})

#: Builder options that checkpoints written before the option existed were trained with:
#: a generator checkpoint that records no ``padding`` had zero-padded decoder convolutions.
LEGACY_KWARGS: dict[str, dict[str, Any]] = {
    f"weightmap_{e}": {"padding": "zeros"} for e in ("resnet18", "resnet34", "resnet50")}
