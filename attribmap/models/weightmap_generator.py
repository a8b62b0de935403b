"""Weight-map generator g of Shaharabany & Wolf: ResNet encoder + five-block U-Net decoder.

``M = g(I)`` is a per-pixel weight in (0, 1) with the same height and width as ``I``.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attribmap.errors import InputError
from attribmap.models.backbones import RESNET_DEPTHS, resnet_body
from attribmap.models.base import init_fresh

__all__ = ["WeightMapGenerator", "DECODER_CHANNELS"]

#: Output channels of the five decoder blocks (coarse to fine); the last block ends in 1.
DECODER_CHANNELS = (256, 128, 64, 32, 16)


class UpBlock(nn.Module):
    """Upsample x2 (nearest), concatenate the skip map, two 3x3 convs.

    Both convs are followed by BatchNorm + ReLU, except in the ``last`` block whose second
    conv outputs one channel with no BatchNorm/ReLU (the generator applies the sigmoid).
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int,
                 last: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels + skip_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        if last:
            self.conv2 = nn.Conv2d(out_channels, 1, 3, padding=1)
            self.bn2 = None
        else:
            self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
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
    """U-Net weight-map generator with a torchvision ResNet encoder.

    Parameters
    ----------
    encoder : {"resnet18", "resnet34", "resnet50"}
        Encoder architecture (standard strides: the deepest map is at H/32).
    weights : None, str or torchvision weights enum
        Passed to the torchvision ResNet constructor (e.g. ``"DEFAULT"``); the decoder is
        always initialised fresh.

    Notes
    -----
    Skip connections: stem output (H/2), ``layer1`` (H/4), ``layer2`` (H/8), ``layer3``
    (H/16); the fifth decoder block (H/2 -> H) has no skip. Input height and width must be
    multiples of 32.
    """

    def __init__(self, encoder: str = "resnet18", weights: Any = None) -> None:
        super().__init__()
        depths = {f"resnet{d}": d for d in RESNET_DEPTHS}
        if encoder not in depths:
            raise ValueError(f"encoder must be one of {sorted(depths)}, got {encoder!r}")
        body, _ = resnet_body(depths[encoder], weights=weights, layer4_stride=2)
        for name, module in body.items():
            self.add_module(name, module)
        expansion = 4 if depths[encoder] == 50 else 1
        skips = (256 * expansion, 128 * expansion, 64 * expansion, 64)
        c = 512 * expansion
        blocks = []
        for i, out in enumerate(DECODER_CHANNELS):
            skip = skips[i] if i < len(skips) else 0
            blocks.append(UpBlock(c, skip, out, last=i == len(DECODER_CHANNELS) - 1))
            c = out
        self.decoder = init_fresh(nn.ModuleList(blocks))
        # start from an almost uniform map M ~ 0.5 (small output conv), not a saturated one
        nn.init.normal_(self.decoder[-1].conv2.weight, 0.0, 1e-3)
        self.encoder_name = encoder
        self.arch = f"weightmap_{encoder}"
        self.num_classes = 0
        self.arch_kwargs: dict[str, Any] = {}

    def forward(self, x: Tensor) -> Tensor:
        """Images (N,3,H,W), H and W multiples of 32 -> weight maps M (N,1,H,W) in (0,1)."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise InputError(f"WeightMapGenerator expects images (N,3,H,W), got shape "
                             f"{tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % 32 or w % 32:
            raise InputError(f"WeightMapGenerator needs height and width that are multiples "
                             f"of 32 (the encoder downsamples 5 times), got {h}x{w}")
        stem = self.relu(self.bn1(self.conv1(x)))               # H/2
        f1 = self.layer1(self.maxpool(stem))                    # H/4
        f2 = self.layer2(f1)                                    # H/8
        f3 = self.layer3(f2)                                    # H/16
        d = self.layer4(f3)                                     # H/32
        for block, skip in zip(self.decoder, (f3, f2, f1, stem, None)):
            d = block(d, skip)
        return torch.sigmoid(d)
