"""Class maps of an I2C-trained classifier (Zhang, Wei, Yang, ECCV 2020).

An I2C model's head is fully convolutional: a 1 x 1 conv gives class maps A (N, K, h, w) and
the logits are their spatial mean. The localization map of class c is A_c; the model
declares the layer as ``model.class_map_layer``.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from attribmap.errors import MethodError
from attribmap.tap import Capture

__all__ = ["i2c_class_map", "class_map_layer"]


def class_map_layer(model: nn.Module) -> Optional[str]:
    """The model's declared class-map layer (``model.class_map_layer``), if any."""
    name = getattr(model, "class_map_layer", None)
    return name if isinstance(name, str) and name else None


def i2c_class_map(capture: Capture, layer: str) -> torch.Tensor:
    """A_c: the class map of the target read from the tapped class-map layer; (N, h, w).

    Parameters
    ----------
    capture : Capture
        The recorded forward pass of an I2C model: class maps A (N, K, h, w) of ``layer``,
        logits (N, K) and targets, one row per image and target class.
    layer : str
        Name of the tapped class-map layer (``model.class_map_layer``).

    Returns
    -------
    torch.Tensor
        (N, h, w) class map of each row's target (signed: no ReLU).

    Raises
    ------
    MethodError
        ``layer`` does not have K channels, one per class.

    References
    ----------
    Zhang, Wei, Yang, "Inter-Image Communication for Weakly Supervised Localization",
    ECCV 2020.
    """
    maps = capture.activations(layer)
    k = capture.logits.shape[1]
    if maps.shape[1] != k:
        raise MethodError(f"i2c needs the class-map layer (K = {k} channels, one map per class); "
                          f"layer {layer!r} has {maps.shape[1]} channels. Tap model.class_map_layer "
                          "of an I2C model")
    index = capture.targets.view(-1, 1, 1, 1).expand(-1, 1, *maps.shape[2:])
    return maps.gather(1, index)[:, 0]
