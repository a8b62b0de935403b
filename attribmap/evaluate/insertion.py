"""The insertion metric (Petsiuk et al., 2018): higher AUC = the map finds what the model uses."""
from __future__ import annotations

from attribmap.evaluate.causal import CausalCurve

__all__ = ["Insertion"]


class Insertion(CausalCurve):
    """Insertion AUC: put the most relevant pixels back first into the baseline (higher is better).

    The image starts as the ``baseline`` (``"blur"``: a blurred copy, by default; or
    ``"zeros"``); see :mod:`attribmap.evaluate.causal` for the definition.

    Parameters and reference as :class:`~attribmap.evaluate.Deletion` (the default
    baseline here is ``"blur"``).
    """

    name = "insertion"
    deleting = False
    default_baseline = "blur"
