"""WSOL backbones, I2C classifiers and the weight-map generator, built by name.

>>> from attribmap.models import build_model
>>> model = build_model("resnet18_small", num_classes=3)
>>> model.cam_layer
'layer4'
"""
from __future__ import annotations

from attribmap.models.base import GapLinearClassifier, I2CClassifier
from attribmap.models.blank import blank_entropy, blank_images
from attribmap.models.registry import arch_config, available_archs, build_model, check_arch
from attribmap.models.weightmap_generator import WeightMapGenerator

__all__ = ["build_model", "available_archs", "arch_config", "check_arch", "WeightMapGenerator",
           "GapLinearClassifier", "I2CClassifier", "blank_entropy", "blank_images"]
