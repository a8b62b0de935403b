"""Exception types shared across attribmap.

Every error raised for bad user input derives from :class:`AttribmapError`, itself a
:class:`ValueError`, so callers can catch one type and the command line can turn it into a
one-line message with exit status 2.
"""
from __future__ import annotations

__all__ = ["AttribmapError", "LayerError", "TargetError", "MethodError", "InputError", "ImageReadError"]


class AttribmapError(ValueError):
    """Base class for errors caused by invalid arguments or data given to attribmap."""


class LayerError(AttribmapError):
    """A layer name or module cannot be used (unknown name, output not 4-D, ...)."""


class TargetError(AttribmapError):
    """A target class is out of range or has the wrong shape."""


class MethodError(AttribmapError):
    """An unknown extractor name, or an extractor that cannot run on this model."""


class InputError(AttribmapError):
    """Images of an unsupported type, shape or dtype."""


class ImageReadError(InputError):
    """An image file exists but cannot be decoded (empty, not an image, truncated or corrupt)."""
