"""The synthetic WSOL suite: seeded scenes where a small part decides the class.

See :func:`generate_suite` (also ``attribmap synth OUT_DIR``) and :func:`render_scene`.
"""
from __future__ import annotations

from attribmap.data.synthetic.scene import MAX_CLASSES, PART_SHAPES, Scene, SceneConfig, part_style, render_scene
from attribmap.data.synthetic.writer import GENERATOR_VERSION, SPLITS, generate_suite

__all__ = ["generate_suite", "render_scene", "SceneConfig", "Scene", "part_style", "MAX_CLASSES",
           "PART_SHAPES", "GENERATOR_VERSION", "SPLITS"]
