"""The synthetic WSOL suite: seeded scenes whose class shows most clearly in small parts.

Version 2 (the default): every object is a body carrying weak class evidence plus one to
three parts carrying strong evidence; per-object parts / body masks and a ``pretrain`` split
come with it, and :mod:`~attribmap.data.synthetic.reference` scores ground-truth reference
rows (whole object, parts only, body only, centre prior, object pooled to the CAM grid) with
the WSOL protocol. Version 1 (``version=1``) is the first suite, reproduced byte for byte.

See :func:`generate_suite` (also ``attribmap synth OUT_DIR``), :func:`render_scene_v2` and
:func:`render_scene`.
"""
from __future__ import annotations

from attribmap.data.synthetic.body_style import TEXTURES, body_bayes_accuracy
from attribmap.data.synthetic.scene import MAX_CLASSES, PART_SHAPES, Scene, SceneConfig, part_style, render_scene
from attribmap.data.synthetic.scene_v2 import SceneConfigV2, SceneV2, render_scene_v2
from attribmap.data.synthetic.reference import (
    CENTRE_SIGMA,
    REFERENCE_ROWS,
    load_reference_ground_truth,
    reference_maps,
    score_reference_rows,
)
from attribmap.data.synthetic.suite_check import VALIDITY_MARGIN, SuiteCheck, check_suite, format_reference_table
from attribmap.data.synthetic.writer import (
    GENERATOR_VERSION,
    GENERATOR_VERSIONS,
    SPLITS,
    SPLITS_V2,
    SUITE_DEFAULTS,
    generate_suite,
)

__all__ = ["generate_suite", "render_scene", "render_scene_v2", "SceneConfig", "SceneConfigV2", "Scene", "SceneV2",
           "part_style", "body_bayes_accuracy", "MAX_CLASSES", "PART_SHAPES", "TEXTURES", "GENERATOR_VERSION",
           "GENERATOR_VERSIONS", "SPLITS", "SPLITS_V2", "SUITE_DEFAULTS", "reference_maps", "score_reference_rows",
           "load_reference_ground_truth", "check_suite", "SuiteCheck", "format_reference_table", "REFERENCE_ROWS",
           "CENTRE_SIGMA", "VALIDITY_MARGIN"]
