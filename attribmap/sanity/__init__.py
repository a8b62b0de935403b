"""Sanity checks of saliency maps (Adebayo et al., NeurIPS 2018): model-parameter randomization.

>>> from attribmap.sanity import model_randomization
>>> result = model_randomization(model, images, ["gradcam", "captum:GuidedBackprop"])  # doctest: +SKIP
>>> print(result.table("spearman_abs"))                                                 # doctest: +SKIP

See :mod:`attribmap.sanity.randomization` (the tests), :mod:`attribmap.sanity.blocks` (which
blocks, how they are re-initialised), :mod:`attribmap.sanity.similarity` (the measures) and
:mod:`attribmap.sanity.figure` (the paper's figure).
"""
from __future__ import annotations

from attribmap.sanity.blocks import randomization_blocks, reinitialise
from attribmap.sanity.figure import sanity_figure
from attribmap.sanity.randomization import MEASURES, SanityResult, model_randomization
from attribmap.sanity.similarity import compare, hog_similarity, is_constant, spearman, ssim

__all__ = ["model_randomization", "SanityResult", "MEASURES", "randomization_blocks", "reinitialise",
           "sanity_figure", "compare", "spearman", "ssim", "hog_similarity", "is_constant"]
