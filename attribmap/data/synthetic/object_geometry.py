"""Where the objects of suite version 2 lie: a body ellipse with one to three parts on its outline.

An object's *scale* is ``sqrt(box_w * box_h / (W * H))``: the square root of its tight box's
area (inclusive pixels) as a fraction of the image's area. It is invariant under the squash
resize to the evaluation frame, so it is also the object's size in the frame.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List, Optional, Tuple

import numpy as np

from attribmap.data.synthetic.scene import ellipse_mask, part_mask

__all__ = ["ObjectGeometry", "draw_geometry", "rasterize", "place", "box_scale", "grow"]

# Half-extent of each part shape in units of its radius (see scene.part_mask).
_PART_EXTENT = {"disc": 1.0, "square": 0.85, "triangle": 1.0, "plus": 1.0, "diamond": 1.15, "ring": 1.0,
                "bar": 1.1, "cross": 1.0}
MIN_PART_RADIUS = 2.5


@dataclass(frozen=True)
class ObjectGeometry:
    """A body ellipse and its parts, in pixels.

    Attributes
    ----------
    a, b
        Major and minor semi-axes of the body.
    angle
        Rotation of the major axis (radians).
    part_angles
        Parametric angle of each part's anchor on the body outline.
    part_scale
        Part radius as a fraction of ``sqrt(a * b)`` (at least :data:`MIN_PART_RADIUS` px).
    protrusion
        How far each part's centre lies outside the outline, in part radii.
    shape
        The parts' shape (one of ``scene.PART_SHAPES``); ``None`` for a part-less body.
    cy, cx
        The centre (pixels).
    """

    a: float
    b: float
    angle: float
    part_angles: Tuple[float, ...]
    part_scale: float
    protrusion: Tuple[float, ...]
    shape: Optional[str]
    cy: float = 0.0
    cx: float = 0.0

    @property
    def part_radius(self) -> float:
        """Radius of each part in pixels: ``part_scale * sqrt(a * b)``, at least :data:`MIN_PART_RADIUS`."""
        return max(self.part_scale * float(np.sqrt(self.a * self.b)), MIN_PART_RADIUS)

    def scaled(self, factor: float) -> "ObjectGeometry":
        """The same object with every length times ``factor`` (centre kept)."""
        return replace(self, a=self.a * factor, b=self.b * factor)

    def part_centres(self) -> List[Tuple[float, float]]:
        """(dy, dx) of each part's centre relative to the body centre."""
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        radius = self.part_radius
        centres = []
        for phi, out in zip(self.part_angles, self.protrusion):
            u, v = self.a * np.cos(phi), self.b * np.sin(phi)
            normal_u, normal_v = np.cos(phi) / self.a, np.sin(phi) / self.b
            length = np.hypot(normal_u, normal_v)
            u, v = u + out * radius * normal_u / length, v + out * radius * normal_v / length
            centres.append((u * sin + v * cos, u * cos - v * sin))
        return centres

    def extent(self) -> Tuple[float, float, float, float]:
        """Bounds (dy0, dy1, dx0, dx1) of the object relative to its centre (an over-estimate)."""
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        half_y = float(np.hypot(self.a * sin, self.b * cos))
        half_x = float(np.hypot(self.a * cos, self.b * sin))
        dy0, dy1, dx0, dx1 = -half_y, half_y, -half_x, half_x
        if self.shape is not None:
            reach = _PART_EXTENT[self.shape] * self.part_radius
            for dy, dx in self.part_centres():
                dy0, dy1 = min(dy0, dy - reach), max(dy1, dy + reach)
                dx0, dx1 = min(dx0, dx - reach), max(dx1, dx + reach)
        return dy0, dy1, dx0, dx1


def draw_geometry(rng: np.random.Generator, aspect: Tuple[float, float], parts: Tuple[int, int],
                  part_scale: Tuple[float, float], shape: Optional[str]) -> ObjectGeometry:
    """A random object shape with major semi-axis 1 (scale it with :meth:`ObjectGeometry.scaled`).

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    aspect, parts, part_scale : tuple
        Ranges (low, high) of the minor / major axis ratio, the number of parts and the part
        scale.
    shape : str, optional
        The parts' shape; None for a part-less body.
    """
    b = 1.0 / rng.uniform(*aspect)
    angle = rng.uniform(0, np.pi)
    count = int(rng.integers(parts[0], parts[1] + 1)) if shape is not None else 0
    first = rng.uniform(0, 2 * np.pi)
    spacing = 2 * np.pi / max(count, 1)
    angles = tuple(float(first + i * spacing + rng.uniform(-0.25, 0.25) * spacing) for i in range(count))
    protrusion = tuple(float(rng.uniform(0.1, 0.5)) for _ in range(count))
    return ObjectGeometry(a=1.0, b=b, angle=angle, part_angles=angles, part_scale=float(rng.uniform(*part_scale)),
                          protrusion=protrusion, shape=shape)


def rasterize(geometry: ObjectGeometry, yy: np.ndarray, xx: np.ndarray
              ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Masks of the body ellipse and of the parts, and the body coordinates of every pixel.

    Parameters
    ----------
    geometry : ObjectGeometry
        The placed object.
    yy, xx : ndarray (H, W)
        Pixel row and column coordinates (``numpy.mgrid``).

    Returns
    -------
    (ellipse, parts, along, across)
        bool ``(H, W)`` body ellipse (parts not removed), bool ``(H, W)`` union of the parts,
        float ``(H, W)`` coordinates along the major axis and across it (pixels).
    """
    g = geometry
    ellipse, along = ellipse_mask(yy, xx, g.cy, g.cx, g.a, g.b, g.angle)
    across = -(xx - g.cx) * np.sin(g.angle) + (yy - g.cy) * np.cos(g.angle)
    parts = np.zeros_like(ellipse)
    if g.shape is not None:
        for dy, dx in g.part_centres():
            parts |= part_mask(yy, xx, g.cy + dy, g.cx + dx, g.part_radius, g.shape)
    return ellipse, parts, along, across


def box_scale(mask: np.ndarray) -> float:
    """``sqrt(box_w * box_h / (W * H))`` of the tight inclusive box of a non-empty ``mask`` (H, W)."""
    ys, xs = np.nonzero(mask)
    height, width = mask.shape
    return float(np.sqrt((xs.max() - xs.min() + 1) * (ys.max() - ys.min() + 1) / (height * width)))


def place(rng: np.random.Generator, geometry: ObjectGeometry, target: float, height: int, width: int,
          ) -> Optional[ObjectGeometry]:
    """Scale ``geometry`` to box scale ~``target`` and put it at a uniform position where it fits.

    The object's estimated box must lie inside the ``height`` x ``width`` image with a
    1-pixel margin; the centre is uniform over all such positions (drawn from ``rng``; no bias
    to the middle beyond what fitting imposes). Returns ``None`` when the object cannot fit at
    that scale.
    """
    reference = geometry.scaled(1000.0 / geometry.a)  # large enough that no part radius is clamped
    dy0, dy1, dx0, dx1 = reference.extent()
    scaled = reference.scaled(target * np.sqrt(height * width / ((dy1 - dy0) * (dx1 - dx0))))
    dy0, dy1, dx0, dx1 = scaled.extent()
    low_y, high_y = 1 - dy0, height - 2 - dy1
    low_x, high_x = 1 - dx0, width - 2 - dx1
    if low_y > high_y or low_x > high_x:
        return None
    return replace(scaled, cy=float(rng.uniform(low_y, high_y)), cx=float(rng.uniform(low_x, high_x)))


def grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    """``mask`` dilated by a square of half-side ``pixels`` (Chebyshev distance <= pixels)."""
    out = mask.copy()
    for _ in range(pixels):
        step = out.copy()
        step[1:] |= out[:-1]
        step[:-1] |= out[1:]
        column = step.copy()
        column[:, 1:] |= step[:, :-1]
        column[:, :-1] |= step[:, 1:]
        out = column
    return out
