"""Atomic file writes: a reader sees either the previous file or the complete new one.

Every file attribmap writes (checkpoints, benchmark progress, reports, figures, the
synthetic suite) goes through :func:`atomic_open`: the data is written to a temporary file
in the destination folder, flushed to disk, then renamed over the destination with
``os.replace``; on any error the temporary file is removed and the destination is untouched.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator, Union

from attribmap.errors import OutputError

__all__ = ["atomic_open", "atomic_write_bytes", "atomic_write_text", "check_output_dir", "check_output_file"]

PathLike = Union[str, "os.PathLike[str]"]


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file that replaces ``path`` when the ``with`` block succeeds.

    Parameters
    ----------
    path : str or path-like
        Destination; its folder is created when missing.
    mode : {"wb", "w"}
        Binary or text (UTF-8) mode.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open mode must be 'wb' or 'w'; got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(handle, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_open(path, "wb") as stream:
        stream.write(data)
    return Path(path)


def atomic_write_text(path: PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def check_output_dir(path: PathLike, what: str = "output directory") -> Path:
    """Check, before any work, that ``path`` can be (or is) a writable directory.

    Nothing is created. Returns ``Path(path)``.

    Raises
    ------
    OutputError
        ``path`` is an existing file, one of its parents is a file, or the nearest
        existing folder is not writable; the message names the path and ``what``.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what} {str(path)!r} is an existing file; expected a directory (new or existing)")
    _check_creatable(path, what)
    return path


def check_output_file(path: PathLike, what: str = "output file") -> Path:
    """Check, before any work, that the file ``path`` can be written (its folder may be missing).

    Nothing is created. Returns ``Path(path)``.

    Parameters
    ----------
    path : str or path-like
        The file to be written.
    what : str
        Its name in the message (``"--out"``).

    Raises
    ------
    OutputError
        ``path`` is a directory, one of its parents is a file, or the file / nearest
        existing folder is not writable.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{what} {str(path)!r} is a directory; expected a file path")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"{what} {str(path)!r} exists and is not writable")
    _check_creatable(path.parent, what, target=path)
    return path


def _check_creatable(folder: Path, what: str, target: Union[Path, None] = None) -> None:
    """The nearest existing ancestor of ``folder`` (itself included) is a writable directory."""
    shown = str(target if target is not None else folder)
    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{what} {shown!r} cannot be written: {str(existing)!r} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {shown!r} cannot be written: no write permission in {str(existing)!r}")
