"""The deletion metric (Petsiuk et al., 2018): lower AUC = the map finds what the model uses."""
from __future__ import annotations

from attribmap.evaluate.causal import CausalCurve

__all__ = ["Deletion"]


class Deletion(CausalCurve):
    """Deletion AUC: remove the most relevant pixels first, in ``steps`` steps (lower is better).

    Removed pixels become the ``baseline`` (``"zeros"`` in the model's input space by
    default, or ``"blur"``); see :mod:`attribmap.evaluate.causal` for the definition.

    Parameters
    ----------
    steps : int
        Number of steps (50).
    baseline : {"zeros", "blur"}
    blur_sigma, blur_kernel : float, int
        Blur of the ``"blur"`` baseline.

    References
    ----------
    Petsiuk, Das, Saenko, "RISE: Randomized Input Sampling for Explanation of Black-box
    Models", BMVC 2018.

    Examples
    --------
    >>> from attribmap.evaluate import Evaluator, ModelInputs
    >>> evaluator = Evaluator(["deletion", "insertion"])                           # doctest: +SKIP
    >>> evaluator.update(maps, inputs=ModelInputs(model, images, labels))          # doctest: +SKIP
    >>> evaluator.compute()["deletion"]["Deletion"]                                # doctest: +SKIP
    """

    name = "deletion"
    deleting = True
    default_baseline = "zeros"
