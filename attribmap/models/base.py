"""Two generic classifier shapes shared by every WSOL backbone.

* :class:`GapLinearClassifier`: ``body`` stages -> global average pooling -> ``fc`` (Linear).
  The CAM layer is the last body stage; ``logits = fc(GAP(F_cam))`` exactly.
* :class:`I2CClassifier`: ``body`` stages (the last one is the I2C *feature* layer) ->
  ``head`` (conv 3x3 -> ReLU [-> Dropout] -> conv 3x3 -> ReLU [-> Dropout]) ->
  ``classifier`` (1x1 conv giving class maps ``A`` of shape (N,K,h,w)) -> logits = spatial
  mean of ``A``.

The body stages are registered as direct children under their torchvision names
(``layer4``, ``Mixed_6e``, ``features``, ...), so ``model.named_modules()`` exposes the
familiar dotted names for ``layer=`` arguments.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["GapLinearClassifier", "I2CClassifier", "conv_relu_head", "init_fresh"]


def init_fresh(module: nn.Module) -> nn.Module:
    """Initialise the new (non-pretrained) layers of ``module`` in place and return it.

    Convolutions: Kaiming-normal (fan_out, ReLU), zero bias. Linear: normal(0, 0.01), zero
    bias. BatchNorm: weight 1, bias 0.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return module


def conv_relu_head(in_channels: int, channels: int, depth: int, dropout: float = 0.0) -> nn.Sequential:
    """``depth`` blocks of (3x3 conv, padding 1, bias) + ReLU [+ Dropout], freshly initialised.

    The first conv maps ``in_channels`` to ``channels``, the others keep ``channels``.
    Children are named ``conv1, relu1, [drop1,] conv2, relu2, [drop2,] ...``; the ReLUs are
    not in-place so a hook on any of them sees an intact tensor. ``dropout`` > 0 adds an
    ``nn.Dropout(dropout)`` after every ReLU (active in train mode only; no parameters, so
    the state dict is the same with or without it).
    """
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    c_in = in_channels
    for i in range(1, depth + 1):
        layers[f"conv{i}"] = nn.Conv2d(c_in, channels, kernel_size=3, padding=1)
        layers[f"relu{i}"] = nn.ReLU(inplace=False)
        if dropout > 0:
            layers[f"drop{i}"] = nn.Dropout(float(dropout))
        c_in = channels
    return init_fresh(nn.Sequential(layers))


class _StagedBody(nn.Module):
    """Registers named stages as direct children and runs them in order."""

    def _register_body(self, body: "OrderedDict[str, nn.Module]") -> None:
        if not body:
            raise ValueError("body must contain at least one stage")
        for name, module in body.items():
            self.add_module(name, module)
        self._body_names = tuple(body.keys())

    def forward_body(self, x: Tensor) -> Tensor:
        """Run the body stages: (N,3,H,W) -> last stage output (N,C,h,w)."""
        for name in self._body_names:
            x = getattr(self, name)(x)
        return x


class GapLinearClassifier(_StagedBody):
    """Body stages -> global average pooling -> Linear.

    Parameters
    ----------
    body : OrderedDict[str, nn.Module]
        Stages run in order; the last one outputs the CAM feature map F (N,C,h,w).
    out_channels : int
        C, the channel count of the last stage.
    num_classes : int
        Output size K of the Linear layer ``fc``.
    arch : str
        Architecture name (stored as ``model.arch``).
    arch_kwargs : dict
        Builder keyword arguments needed to rebuild this model (see ``arch_config``).

    Attributes
    ----------
    cam_layer : str
        Name of the last body stage (its output feeds GAP -> ``fc``).
    classifier_layer : str
        ``"fc"``, the Linear that maps GAP(F) to logits.
    """

    def __init__(self, body: "OrderedDict[str, nn.Module]", out_channels: int, num_classes: int,
                 *, arch: str, arch_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        self._register_body(body)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = init_fresh(nn.Linear(out_channels, num_classes))
        self.arch = arch
        self.num_classes = int(num_classes)
        self.cam_layer = self._body_names[-1]
        self.classifier_layer = "fc"
        self.arch_kwargs = dict(arch_kwargs or {})

    def forward(self, x: Tensor) -> Tensor:
        """``x`` (N,3,H,W) normalized images -> logits (N,K)."""
        return self.fc(torch.flatten(self.avgpool(self.forward_body(x)), 1))


class I2CClassifier(_StagedBody):
    """Fully convolutional I2C head on top of body stages.

    Parameters
    ----------
    body : OrderedDict[str, nn.Module]
        Backbone stages; the last one outputs the I2C feature map ``feat`` (N,C,h,w).
    feat_channels : int
        C, channel count of ``feat``.
    num_classes : int
        K, number of class maps.
    arch : str
        Architecture name.
    head_channels : int
        Width of the two 3x3 convolutions of the head (1024 in the paper).
    dropout : float
        Dropout probability after each ReLU of the head (0.5 in the authors' code; 0 = no
        dropout layers).
    arch_kwargs : dict
        Builder keyword arguments needed to rebuild this model.

    Attributes
    ----------
    feature_layer : str
        Last body stage (the map the I2C losses act on).
    cam_layer : str
        ``"head"``: its output feeds the 1x1 ``classifier`` and the spatial mean.
    class_map_layer : str
        ``"classifier"``: the 1x1 conv whose output is the class maps (N,K,h,w).
    classifier_layer : str
        ``"classifier"`` as well (the layer mapping head features to class scores).
    """

    def __init__(self, body: "OrderedDict[str, nn.Module]", feat_channels: int, num_classes: int,
                 *, arch: str, head_channels: int = 1024, dropout: float = 0.0,
                 arch_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        if int(head_channels) < 1:
            raise ValueError(f"head_channels must be a positive int, got {head_channels!r}")
        self._register_body(body)
        self.head = conv_relu_head(feat_channels, int(head_channels), depth=2, dropout=dropout)
        # The 1x1 class-map conv is a per-pixel linear classifier: initialise it like one
        # (normal(0, 0.01), zero bias). Kaiming fan-out init (std sqrt(2/K)) gave logits of
        # ~30 and exploding cross-entropy in the first I2C steps for small K.
        self.classifier = nn.Conv2d(int(head_channels), num_classes, kernel_size=1)
        nn.init.normal_(self.classifier.weight, 0.0, 0.01)
        nn.init.zeros_(self.classifier.bias)
        self.arch = arch
        self.num_classes = int(num_classes)
        self.feature_layer = self._body_names[-1]
        self.cam_layer = "head"
        self.class_map_layer = "classifier"
        self.classifier_layer = "classifier"
        self.arch_kwargs = dict(arch_kwargs or {})

    def forward_features(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Run the whole network on ``x`` (N,3,H,W) and return its intermediate maps.

        Returns
        -------
        logits : Tensor (N,K)
            Spatial mean of ``class_maps``.
        feat : Tensor (N,C,h,w)
            Output of ``feature_layer``.
        class_maps : Tensor (N,K,h,w)
            Output of ``class_map_layer`` (same h,w as ``feat``).
        """
        feat = self.forward_body(x)
        class_maps = self.classifier(self.head(feat))
        logits = class_maps.mean(dim=(2, 3))
        return logits, feat, class_maps

    def forward(self, x: Tensor) -> Tensor:
        """``x`` (N,3,H,W) normalized images -> logits (N,K)."""
        return self.forward_features(x)[0]
