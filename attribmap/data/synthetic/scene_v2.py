"""Render one scene of suite version 2: objects made of a weakly and a strongly telling region.

Every object is a textured elliptical **body** plus one to three **parts** on its outline.
The parts' shape and saturated colour name the class (strong evidence, as in version 1);
the body's hue and texture kind are drawn from class-dependent distributions that overlap
between classes (weak evidence, :mod:`attribmap.data.synthetic.body_style`). The ground truth
covers the whole object, so a map of the parts alone localizes badly while a classifier can
be right from the parts alone: the situation the seed WSOL papers address. Part-less
distractor bodies (styled like a random class) and plain class-free clutter fill the
background.
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from attribmap.data.synthetic.body_style import BodyStyle, draw_body_style, paint_texture
from attribmap.data.synthetic.object_geometry import (
    ObjectGeometry,
    box_scale,
    draw_geometry,
    grow,
    place,
    rasterize,
)
from attribmap.data.synthetic.scene import (
    Painter,
    Scene,
    SceneConfig,
    check_label,
    draw_image_size,
    part_style,
    ring_mask,
    tight_boxes,
    to_uint8,
)

__all__ = ["SceneConfigV2", "SceneV2", "render_scene_v2"]


@dataclass(frozen=True)
class SceneConfigV2:
    """How scenes of suite version 2 vary.

    Attributes
    ----------
    size
        Nominal image side S in pixels; width and height are drawn independently from
        ``[S * (1 - size_jitter), S * (1 + size_jitter)]``.
    size_jitter
        Relative spread of image width and height.
    object_scale
        Range of an object's box scale ``sqrt(box_w * box_h / (W * H))``; drawn uniformly.
    pair_scale
        The range used instead when the image holds two objects.
    two_object_prob
        Probability of a second object of the same class.
    body_aspect
        Range of the body's major / minor semi-axis.
    parts_per_object
        Inclusive range of the number of parts of an object (``(0, 0)`` gives part-less
        objects: only for measuring the body's evidence).
    part_scale
        Range of a part's radius as a fraction of ``sqrt(a * b)`` of its body.
    hue_spread
        Spread of the body hue around its class centre, in units of the centres' spacing.
    texture_bias
        Probability that a body wears its class's texture kind.
    distractor_bodies
        Inclusive range of the number of part-less distractor bodies.
    distractor_scale
        Range of a distractor's box scale.
    clutter_shapes
        Inclusive range of the number of plain clutter shapes.
    """

    size: int = 128
    size_jitter: float = 0.2
    object_scale: Tuple[float, float] = (0.15, 0.6)
    pair_scale: Tuple[float, float] = (0.15, 0.4)
    two_object_prob: float = 0.15
    body_aspect: Tuple[float, float] = (1.2, 2.2)
    parts_per_object: Tuple[int, int] = (1, 3)
    part_scale: Tuple[float, float] = (0.25, 0.35)
    hue_spread: float = 1.5
    texture_bias: float = 0.3
    distractor_bodies: Tuple[int, int] = (0, 2)
    distractor_scale: Tuple[float, float] = (0.15, 0.4)
    clutter_shapes: Tuple[int, int] = (3, 8)


@dataclass
class SceneV2(Scene):
    """A rendered scene of suite version 2 (the fields of :class:`Scene`, plus):

    Attributes
    ----------
    part_masks
        Per object, bool ``(H, W)``: the union of its parts.
    body_masks
        Per object, bool ``(H, W)``: its body minus its parts; ``part_masks[j]`` and
        ``body_masks[j]`` partition ``instance_masks[j]``.
    scales
        Per object, its box scale ``sqrt(box_w * box_h / (W * H))``.
    part_counts
        Per object, the number of parts drawn (they may touch and merge in the mask).
    """

    part_masks: List[np.ndarray]
    body_masks: List[np.ndarray]
    scales: List[float]
    part_counts: List[int]


class _Canvas(Painter):
    """Version 1's canvas (background, clutter, fills); bodies and parts are drawn here."""

    def __init__(self, rng: np.random.Generator, height: int, width: int) -> None:
        super().__init__(rng, SceneConfig(), height, width)  # the v1 config is used by none of its methods here

    def paint_body(self, geometry: ObjectGeometry, style: BodyStyle, ellipse: np.ndarray,
                   along: np.ndarray, across: np.ndarray) -> None:
        light = np.array(colorsys.hsv_to_rgb(style.hue, style.saturation, style.value))
        tone = paint_texture(style, along, across, geometry.a, geometry.b)
        self.fill(ellipse & tone, light)
        self.fill(ellipse & ~tone, light * style.dark)

    def paint_parts(self, parts: np.ndarray, label: int) -> None:
        self.fill(parts, np.array(part_style(label)[1]), grain=0.02)


def _fit(rng: np.random.Generator, canvas: _Canvas, config: SceneConfigV2, scale_range: Tuple[float, float],
         shape: Optional[str], occupied: np.ndarray, tries: int = 30, fallback: bool = False
         ) -> Optional[Tuple[ObjectGeometry, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]]:
    """Draw, scale and place one object (or distractor body) clear of ``occupied`` (+3 px).

    The target scale is drawn from ``scale_range``; after rasterizing, the aim is corrected by
    the measured box scale until that lies in the range (up to four corrections). With
    ``fallback``, when no try reaches the range (tiny images, where parts keep a 2.5 px
    radius), the first placed object clear of ``occupied`` is returned instead of ``None``.
    """
    spare = None
    for _ in range(tries):
        geometry = draw_geometry(rng, config.body_aspect, config.parts_per_object, config.part_scale, shape)
        target = aim = rng.uniform(*scale_range)
        for _correction in range(4):
            placed = place(rng, geometry, aim, canvas.height, canvas.width)
            if placed is None:
                break
            ellipse, parts, along, across = rasterize(placed, canvas.yy, canvas.xx)
            whole = ellipse | parts
            scale = box_scale(whole)
            clear = not (grow(whole, 3) & occupied).any()
            if scale_range[0] <= scale <= scale_range[1]:
                if clear:
                    return placed, ellipse, parts, along, across, scale
                break
            if clear and spare is None:
                spare = (placed, ellipse, parts, along, across, scale)
            aim *= target / scale
    return spare if fallback else None


def render_scene_v2(rng: np.random.Generator, label: int, num_classes: int,
                    config: SceneConfigV2 = SceneConfigV2()) -> SceneV2:
    """A version-2 scene whose one or two objects belong to class ``label``.

    Parameters
    ----------
    rng
        The scene's only source of randomness (the same state draws the same scene).
    label
        The objects' class, in ``[0, num_classes)``: their parts' shape and colour and the
        centre of their bodies' hue.
    num_classes
        K, which spaces the body-hue centres ``1 / K`` apart (1 to
        :data:`~attribmap.data.synthetic.MAX_CLASSES`).
    config
        Sizes, counts and evidence strengths (:class:`SceneConfigV2`).

    Returns
    -------
    SceneV2
        Image, per-object whole / parts / body masks, boxes, box scales and the ignore ring.

    Example
    -------
    >>> import numpy as np
    >>> scene = render_scene_v2(np.random.default_rng(0), 3, 8, SceneConfigV2(size=64))
    >>> bool((scene.part_masks[0] | scene.body_masks[0] == scene.instance_masks[0]).all())
    True
    """
    check_label(label, num_classes)
    height, width = draw_image_size(rng, config.size, config.size_jitter)
    canvas = _Canvas(rng, height, width)
    for _ in range(rng.integers(config.clutter_shapes[0], config.clutter_shapes[1] + 1)):
        canvas.clutter()
    shape = part_style(label)[0] if config.parts_per_object[1] > 0 else None
    count = 2 if rng.uniform() < config.two_object_prob else 1
    occupied = np.zeros((height, width), dtype=bool)
    objects = []
    for number in range(count):
        scale_range = config.pair_scale if count == 2 else config.object_scale
        fitted = _fit(rng, canvas, config, scale_range, shape, occupied, tries=100 if number == 0 else 30,
                      fallback=number == 0)
        if fitted is None:
            if number == 0:
                raise RuntimeError(f"no object fits an image of {width}x{height}")
            continue
        occupied |= fitted[1] | fitted[2]
        objects.append((fitted, draw_body_style(rng, label, num_classes, config.hue_spread, config.texture_bias)))
    for _ in range(rng.integers(config.distractor_bodies[0], config.distractor_bodies[1] + 1)):
        fitted = _fit(rng, canvas, config, config.distractor_scale, None, occupied, tries=5)
        if fitted is not None:
            geometry, ellipse, _, along, across, _ = fitted
            style = draw_body_style(rng, int(rng.integers(num_classes)), num_classes, config.hue_spread,
                                    config.texture_bias)
            canvas.paint_body(geometry, style, ellipse, along, across)
            occupied |= ellipse
    instance_masks, part_masks, body_masks, scales, part_counts = [], [], [], [], []
    for (geometry, ellipse, parts, along, across, scale), style in objects:
        canvas.paint_body(geometry, style, ellipse, along, across)
        canvas.paint_parts(parts, label)
        instance_masks.append(ellipse | parts)
        part_masks.append(parts)
        body_masks.append(ellipse & ~parts)
        scales.append(scale)
        part_counts.append(len(geometry.part_angles))
    return SceneV2(image=to_uint8(canvas.canvas), instance_masks=instance_masks, boxes=tight_boxes(instance_masks),
                   ignore=ring_mask(np.any(instance_masks, axis=0)),
                   part_masks=part_masks, body_masks=body_masks, scales=scales,
                   part_counts=part_counts)
