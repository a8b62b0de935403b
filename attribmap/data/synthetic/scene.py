"""Render one synthetic WSOL scene: textured clutter, distractors and 1-2 objects of one class.

An object is a striped elliptical *body* shared by every class plus a small *part* whose
shape and colour name the class. The ground truth (mask, box) covers body and part, while
only the part is discriminative: the core difficulty of weakly-supervised localization.
Distractors are part-less bodies and loose parts of other classes lying apart from any body,
so neither "a body" nor "a coloured mark" alone decides the class.
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np
from PIL import Image

from attribmap.errors import AttribmapError

__all__ = ["SceneConfig", "Scene", "render_scene", "part_style", "MAX_CLASSES", "PART_SHAPES"]

PART_SHAPES = ("disc", "square", "triangle", "plus", "diamond", "ring", "bar", "cross")
_PART_HUES = (0.0, 0.61, 0.15, 0.33, 0.83, 0.5, 0.07, 0.72)  # red, blue, yellow, green, magenta, cyan, orange, violet
MAX_CLASSES = len(PART_SHAPES) * len(_PART_HUES)


@dataclass(frozen=True)
class SceneConfig:
    """How scenes vary. Lengths are fractions of the image's shorter side.

    Attributes
    ----------
    size
        Nominal image side S in pixels; width and height are drawn from
        ``[size * (1 - size_jitter), size * (1 + size_jitter)]``.
    size_jitter
        Relative spread of image width and height (0 = every image S x S).
    body_length
        Range of the body's major semi-axis.
    body_aspect
        Range of major / minor semi-axis.
    part_scale
        Part radius as a fraction of the body's major semi-axis.
    two_object_prob
        Probability of a second object of the same class.
    distractor_bodies
        Inclusive range of the number of part-less bodies.
    loose_part_prob
        Probability of a loose part of another class lying apart from every body.
    clutter_shapes
        Inclusive range of the number of plain clutter shapes.
    """

    size: int = 96
    size_jitter: float = 0.2
    body_length: Tuple[float, float] = (0.17, 0.32)
    body_aspect: Tuple[float, float] = (1.4, 2.4)
    part_scale: float = 0.4
    two_object_prob: float = 0.2
    distractor_bodies: Tuple[int, int] = (0, 2)
    loose_part_prob: float = 0.15
    clutter_shapes: Tuple[int, int] = (3, 7)


@dataclass
class Scene:
    """A rendered scene.

    Attributes
    ----------
    image
        uint8 ``(H, W, 3)`` RGB.
    instance_masks
        One bool ``(H, W)`` mask per object (body and part).
    boxes
        int ``(k, 4)`` inclusive ``x0, y0, x1, y1`` of each instance mask.
    ignore
        bool ``(H, W)``: the one-pixel ring around the objects (the border, where a
        pixel-exact boundary is debatable), disjoint from the masks.
    """

    image: np.ndarray
    instance_masks: List[np.ndarray]
    boxes: np.ndarray
    ignore: np.ndarray


def part_style(label: int) -> Tuple[str, Tuple[float, float, float]]:
    """Shape name and RGB colour in [0, 1] of class ``label``'s part (unique per class)."""
    if not 0 <= label < MAX_CLASSES:
        raise ValueError(f"class label must be in [0, {MAX_CLASSES}), got {label}")
    shape_index = label % len(PART_SHAPES)
    hue_index = (shape_index + label // len(PART_SHAPES)) % len(_PART_HUES)
    return PART_SHAPES[shape_index], colorsys.hsv_to_rgb(_PART_HUES[hue_index], 0.95, 0.95)


def _hsv(rng: np.random.Generator, hue=(0.0, 1.0), sat=(0.0, 1.0), val=(0.0, 1.0)) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(rng.uniform(*hue) % 1.0, rng.uniform(*sat), rng.uniform(*val)))


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Float ``(H, W, 3)`` in [0, 1]: a dull base colour, smooth blotches and grain."""
    base = _hsv(rng, sat=(0.05, 0.3), val=(0.35, 0.7))
    coarse = rng.uniform(-1, 1, size=(rng.integers(3, 7), rng.integers(3, 7), 3)).astype(np.float32)
    smooth = np.asarray(Image.fromarray(((coarse + 1) * 127.5).astype(np.uint8)).resize((width, height), Image.BICUBIC),
                        dtype=np.float32) / 127.5 - 1
    grain = rng.normal(0, 0.04, size=(height, width, 1))
    return np.clip(base + 0.12 * smooth + grain, 0, 1)


def ellipse_mask(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, a: float, b: float, angle: float) -> Tuple[np.ndarray, np.ndarray]:
    """Mask of a rotated ellipse and each pixel's coordinate along its major axis."""
    cos, sin = np.cos(angle), np.sin(angle)
    u = (xx - cx) * cos + (yy - cy) * sin
    v = -(xx - cx) * sin + (yy - cy) * cos
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0, u


def part_mask(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, radius: float, shape: str) -> np.ndarray:
    """Mask of an upright part (never rotated, so square / diamond and plus / cross differ)."""
    u, v = (xx - cx) / radius, (yy - cy) / radius
    if shape == "disc":
        return u * u + v * v <= 1.0
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.85
    if shape == "triangle":
        return (v <= 0.8) & (v >= -1.0 + 1.8 * np.abs(u))
    if shape == "plus":
        return ((np.abs(u) <= 0.38) & (np.abs(v) <= 1.0)) | ((np.abs(v) <= 0.38) & (np.abs(u) <= 1.0))
    if shape == "diamond":
        return np.abs(u) + np.abs(v) <= 1.15
    if shape == "ring":
        rho = u * u + v * v
        return (rho <= 1.0) & (rho >= 0.3)
    if shape == "bar":
        return (np.abs(u) <= 1.1) & (np.abs(v) <= 0.42)
    if shape == "cross":
        return (np.abs(u - v) <= 0.5) & (np.abs(u + v) <= 1.5) | (np.abs(u + v) <= 0.5) & (np.abs(u - v) <= 1.5)
    raise ValueError(f"unknown part shape {shape!r}; expected one of {PART_SHAPES}")


class Painter:
    """Draws onto one float canvas and remembers where the objects are."""

    def __init__(self, rng: np.random.Generator, config: SceneConfig, height: int, width: int) -> None:
        self.rng, self.config = rng, config
        self.height, self.width = height, width
        self.short = min(height, width)
        self.yy, self.xx = np.mgrid[0:height, 0:width].astype(np.float32)
        self.canvas = _background(rng, height, width)

    def fill(self, mask: np.ndarray, colour: np.ndarray, grain: float = 0.03) -> None:
        noise = self.rng.normal(0, grain, size=(int(mask.sum()), 1)) if grain else 0.0
        self.canvas[mask] = np.clip(colour + noise, 0, 1)

    def clutter(self) -> None:
        """One plain shape: an ellipse, rectangle or thick line in a dull colour."""
        rng, s = self.rng, self.short
        colour = _hsv(rng, sat=(0.0, 0.45), val=(0.2, 0.9))
        cy, cx = rng.uniform(0, self.height), rng.uniform(0, self.width)
        kind = rng.integers(3)
        if kind == 0:
            mask, _ = ellipse_mask(self.yy, self.xx, cy, cx, rng.uniform(0.03, 0.15) * s, rng.uniform(0.03, 0.15) * s,
                               rng.uniform(0, np.pi))
        elif kind == 1:
            half_h, half_w = rng.uniform(0.03, 0.14, size=2) * s
            mask = (np.abs(self.yy - cy) <= half_h) & (np.abs(self.xx - cx) <= half_w)
        else:
            mask, _ = ellipse_mask(self.yy, self.xx, cy, cx, rng.uniform(0.15, 0.4) * s, rng.uniform(0.012, 0.025) * s,
                               rng.uniform(0, np.pi))
        self.fill(mask, colour)

    def body_geometry(self, scale: float = 1.0) -> Tuple[float, float, float, float, float]:
        """Random (cy, cx, a, b, angle) of a body (``scale`` x the usual length) that fits."""
        rng, cfg = self.rng, self.config
        a = rng.uniform(*cfg.body_length) * self.short * scale
        b = a / rng.uniform(*cfg.body_aspect)
        margin = a * 1.05 + cfg.part_scale * a
        cy = rng.uniform(min(margin, self.height / 2), max(self.height - margin, self.height / 2))
        cx = rng.uniform(min(margin, self.width / 2), max(self.width - margin, self.width / 2))
        return cy, cx, a, b, rng.uniform(0, np.pi)

    def body(self, geometry: Tuple[float, float, float, float, float]) -> np.ndarray:
        """Paint a striped body; returns its mask."""
        rng = self.rng
        cy, cx, a, b, angle = geometry
        mask, along = ellipse_mask(self.yy, self.xx, cy, cx, a, b, angle)
        colour = _hsv(rng, sat=(0.25, 0.5), val=(0.5, 0.85))
        period = rng.uniform(0.25, 0.45) * b + 2.0
        stripes = (np.floor(along / period) % 2 == 0)
        self.fill(mask & stripes, colour)
        self.fill(mask & ~stripes, colour * 0.7)
        return mask

    def part(self, cy: float, cx: float, radius: float, label: int) -> np.ndarray:
        """Paint class ``label``'s part centred at (cy, cx); returns its mask."""
        shape, colour = part_style(label)
        mask = part_mask(self.yy, self.xx, cy, cx, max(radius, 2.5), shape)
        self.fill(mask, np.array(colour), grain=0.02)
        return mask

    def free_spot(self, radius: float, taken: np.ndarray, tries: int = 30) -> Tuple[float, float] | None:
        """A centre whose disc of ``radius`` (+2 px) avoids ``taken``; None if none is found."""
        for _ in range(tries):
            cy = self.rng.uniform(radius, self.height - radius)
            cx = self.rng.uniform(radius, self.width - radius)
            disc = (self.yy - cy) ** 2 + (self.xx - cx) ** 2 <= (radius + 2) ** 2
            if not (disc & taken).any():
                return cy, cx
        return None


def ring_mask(mask: np.ndarray) -> np.ndarray:
    """Pixels 8-adjacent to ``mask`` but outside it."""
    padded = np.pad(mask, 1)
    grown = np.zeros_like(mask)
    h, w = mask.shape
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            grown |= padded[dy:dy + h, dx:dx + w]
    return grown & ~mask


def check_label(label: int, num_classes: int) -> None:
    """Refuse a class count outside [1, MAX_CLASSES] or a label outside [0, num_classes)."""
    if not 1 <= num_classes <= MAX_CLASSES:
        raise AttribmapError(f"num_classes must be in [1, {MAX_CLASSES}], got {num_classes}")
    if not 0 <= label < num_classes:
        raise AttribmapError(f"class label must be in [0, {num_classes}), got {label}")


def draw_image_size(rng: np.random.Generator, size: int, jitter: float) -> Tuple[int, int]:
    """(height, width), each ``round(size * U(1 - jitter, 1 + jitter))`` (two draws)."""
    height, width = (int(round(size * rng.uniform(1 - jitter, 1 + jitter))) for _ in range(2))
    return height, width


def tight_boxes(masks: List[np.ndarray]) -> np.ndarray:
    """int64 ``(k, 4)``: the inclusive ``x0, y0, x1, y1`` box of each non-empty mask."""
    return np.array([[xs.min(), ys.min(), xs.max(), ys.max()] for ys, xs in (np.nonzero(m) for m in masks)],
                    dtype=np.int64)


def to_uint8(canvas: np.ndarray) -> np.ndarray:
    """A float canvas in [0, 1] as rounded uint8 RGB."""
    return (canvas * 255 + 0.5).astype(np.uint8)


def render_scene(rng: np.random.Generator, label: int, num_classes: int,
                 config: SceneConfig = SceneConfig()) -> Scene:
    """Draw one scene of class ``label`` with the random stream ``rng``.

    Parameters
    ----------
    rng
        Source of randomness; the scene is a deterministic function of its state.
    label
        Class of the object(s), ``0 <= label < num_classes``.
    num_classes
        Number of classes of the suite (loose parts are drawn from the other classes);
        at most :data:`MAX_CLASSES`.
    config
        Scene variation.

    Returns
    -------
    Scene
        Image, instance masks, boxes and ignore ring.
    """
    check_label(label, num_classes)
    height, width = draw_image_size(rng, config.size, config.size_jitter)
    painter = Painter(rng, config, height, width)
    for _ in range(rng.integers(config.clutter_shapes[0], config.clutter_shapes[1] + 1)):
        painter.clutter()
    # Place the objects first (geometry only) so that distractors can keep clear of them.
    count = 2 if rng.uniform() < config.two_object_prob else 1
    objects = []
    occupied = np.zeros((height, width), dtype=bool)
    for _ in range(count):
        for _attempt in range(30):
            geometry = painter.body_geometry(0.8 if count == 2 else 1.0)
            cy, cx, a, b, angle = geometry
            end = 1.0 if rng.uniform() < 0.5 else -1.0
            part_at = (cy + end * 0.85 * a * np.sin(angle), cx + end * 0.85 * a * np.cos(angle))
            radius = config.part_scale * a
            footprint = ellipse_mask(painter.yy, painter.xx, cy, cx, a + radius + 3, b + radius + 3, angle)[0]
            if not (footprint & occupied).any():
                occupied |= footprint
                objects.append((geometry, part_at, radius))
                break
    for _ in range(rng.integers(config.distractor_bodies[0], config.distractor_bodies[1] + 1)):
        geometry = painter.body_geometry()
        cy, cx, a, b, angle = geometry
        if not (ellipse_mask(painter.yy, painter.xx, cy, cx, a + 3, b + 3, angle)[0] & occupied).any():
            occupied |= painter.body(geometry)
    if num_classes > 1 and rng.uniform() < config.loose_part_prob:
        other = int(rng.integers(num_classes - 1))
        other += other >= label
        radius = config.part_scale * rng.uniform(*config.body_length) * painter.short
        spot = painter.free_spot(radius * 1.5, occupied)
        if spot is not None:
            painter.part(spot[0], spot[1], radius, other)
    instance_masks = []
    for geometry, (py, px), radius in objects:
        body = painter.body(geometry)
        part = painter.part(py, px, radius, label)
        instance_masks.append(body | part)
    return Scene(image=to_uint8(painter.canvas), instance_masks=instance_masks, boxes=tight_boxes(instance_masks),
                 ignore=ring_mask(np.any(instance_masks, axis=0)))
