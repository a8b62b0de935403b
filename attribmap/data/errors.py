"""The error raised for malformed dataset files."""
from __future__ import annotations

import os
from typing import Optional, Union

from attribmap.errors import AttribmapError

__all__ = ["MetadataError", "line_error"]


class MetadataError(AttribmapError):
    """A dataset's metadata is malformed or refers to files that do not exist.

    Raised when a dataset is opened, never halfway through an evaluation. The message names
    the file (and line number, where there is one) and the offending value. It is a
    :class:`ValueError` through :class:`attribmap.errors.AttribmapError`.
    """


def line_error(path: Union[str, os.PathLike], line_number: Optional[int], message: str) -> MetadataError:
    """Build a :class:`MetadataError` that points at ``path:line_number``.

    Parameters
    ----------
    path
        The metadata file.
    line_number
        1-based line number, or ``None`` when the problem is not tied to one line.
    message
        What is wrong and what was expected.
    """
    where = f"{os.fspath(path)}:{line_number}" if line_number is not None else os.fspath(path)
    return MetadataError(f"{where}: {message}")
