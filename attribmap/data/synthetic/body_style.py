"""The weak class evidence of suite version 2: how an object's body looks.

A body's hue is drawn around a hue centre of its class with a spread wider than the spacing
of the centres, and its texture kind is the class's own kind with probability ``texture_bias``
(else any of the four kinds). Both statistics overlap between classes, so a body tells its
class only somewhat better than chance; :func:`body_bayes_accuracy` measures how much (the
best accuracy any classifier can reach from one body's hue and texture kind). Saturation,
brightness, texture period and phase carry no class information.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

__all__ = ["BodyStyle", "TEXTURES", "body_hue_centre", "draw_body_style", "body_style_likelihood",
           "body_bayes_accuracy", "paint_texture"]

TEXTURES = ("stripes", "spots", "checks", "rings")
_HUE_OFFSET = 0.1  # class 0's body hue centre (so that it differs from its part's red)


@dataclass(frozen=True)
class BodyStyle:
    """How one body is painted.

    Attributes
    ----------
    hue, saturation, value
        HSV colour of the light tone, in [0, 1].
    dark
        The dark tone is ``dark`` x the light tone's RGB.
    texture
        Index into :data:`TEXTURES`.
    period
        Texture period as a fraction of the body's minor semi-axis (plus 2 px when painted).
    phase
        Offsets of the texture along and across the body, in periods.
    """

    hue: float
    saturation: float
    value: float
    dark: float
    texture: int
    period: float
    phase: Tuple[float, float]


def body_hue_centre(label: int, classes: int) -> float:
    """Hue around which the bodies of class ``label`` are drawn: evenly spaced, ``1 / classes`` apart."""
    return (label / classes + _HUE_OFFSET) % 1.0


def draw_body_style(rng: np.random.Generator, label: int, classes: int, hue_spread: float,
                    texture_bias: float) -> BodyStyle:
    """Draw a body's look for class ``label``.

    Parameters
    ----------
    rng
        Random stream (six draws in a fixed order).
    label, classes
        The class and the number of classes K.
    hue_spread
        Standard deviation of the hue around the class centre, in units of the centres'
        spacing ``1 / K`` (the hue wraps around).
    texture_bias
        Probability that the texture is the class's own kind ``label % 4``; otherwise the kind
        is uniform over the four.
    """
    hue = (body_hue_centre(label, classes) + rng.normal(0.0, hue_spread / classes)) % 1.0
    own = rng.uniform() < texture_bias
    texture = label % len(TEXTURES) if own else int(rng.integers(len(TEXTURES)))
    return BodyStyle(hue=float(hue), saturation=float(rng.uniform(0.35, 0.65)), value=float(rng.uniform(0.5, 0.85)),
                     dark=float(rng.uniform(0.55, 0.75)), texture=texture, period=float(rng.uniform(0.3, 0.5)),
                     phase=(float(rng.uniform()), float(rng.uniform())))


def body_style_likelihood(hue: np.ndarray, texture: np.ndarray, classes: int, hue_spread: float,
                          texture_bias: float) -> np.ndarray:
    """Likelihood of each class given bodies' hue and texture kind (up to a common factor).

    Parameters
    ----------
    hue : ndarray (n,)
        Hues in [0, 1).
    texture : ndarray (n,) of int
        Texture kinds.
    classes, hue_spread, texture_bias
        As in :func:`draw_body_style`.

    Returns
    -------
    ndarray, float64, shape (n, classes): wrapped-normal hue density x texture probability.
    """
    hue = np.asarray(hue, dtype=np.float64)[:, None]
    texture = np.asarray(texture)[:, None]
    labels = np.arange(classes)[None, :]
    centres = (labels / classes + _HUE_OFFSET) % 1.0
    sigma = hue_spread / classes
    offset = hue - centres
    density = sum(np.exp(-0.5 * ((offset + wrap) / sigma) ** 2) for wrap in range(-3, 4))
    kinds = len(TEXTURES)
    texture_probability = np.where(texture == labels % kinds, texture_bias, 0.0) + (1.0 - texture_bias) / kinds
    return density * texture_probability


def body_bayes_accuracy(classes: int, hue_spread: float, texture_bias: float, samples: int = 20000,
                        seed: int = 0) -> float:
    """Best accuracy (in [0, 1]) of naming a body's class from its hue and texture kind.

    Monte Carlo over ``samples`` bodies drawn with :func:`draw_body_style` (classes in turn),
    each classified by the maximum of :func:`body_style_likelihood` (the Bayes rule under equal
    class priors). Chance is ``1 / classes``.

    Parameters
    ----------
    classes : int
        Number of classes.
    hue_spread, texture_bias : float
        The body style's parameters (as in :class:`~attribmap.data.synthetic.SceneConfigV2`).
    samples : int
        Bodies drawn.
    seed : int
        Seed of the draws.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(samples) % classes
    styles = [draw_body_style(rng, int(label), classes, hue_spread, texture_bias) for label in labels]
    likelihood = body_style_likelihood(np.array([s.hue for s in styles]), np.array([s.texture for s in styles]),
                                       classes, hue_spread, texture_bias)
    return float(np.mean(likelihood.argmax(axis=1) == labels))


def paint_texture(style: BodyStyle, along: np.ndarray, across: np.ndarray, a: float, b: float) -> np.ndarray:
    """Bool map of the light tone for pixels with body coordinates ``along`` / ``across`` (pixels).

    ``a`` and ``b`` are the body's semi-axes in pixels; the period is ``style.period * b + 2``
    (``style`` a :class:`BodyStyle`).
    """
    period = style.period * b + 2.0
    u = along / period + style.phase[0]
    v = across / period + style.phase[1]
    kind = TEXTURES[style.texture]
    if kind == "stripes":
        return np.floor(u) % 2 == 0
    if kind == "spots":
        return (u % 1.0 - 0.5) ** 2 + (v % 1.0 - 0.5) ** 2 > 0.3 ** 2
    if kind == "checks":
        return (np.floor(u) + np.floor(v)) % 2 == 0
    radius = np.sqrt((along / a) ** 2 + (across / b) ** 2) * a / period + style.phase[0]
    return np.floor(radius) % 2 == 0
