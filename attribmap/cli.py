"""The ``attribmap`` command line: ``attribmap <command> ...``.

Sub-commands live in :mod:`attribmap.commands` (one module each, discovered at start-up).
Errors caused by bad arguments or data (:class:`~attribmap.errors.AttribmapError`, any
``ValueError``, missing files) are printed as one line ``attribmap: error: ...`` and
exit with status 2, like argparse's own usage errors.

The installed ``attribmap`` command and ``python -m attribmap`` start through :func:`entry`,
which first makes the process keep freed memory for reuse
(:func:`attribmap.allocator.keep_freed_memory`; ``ATTRIBMAP_KEEP_FREED_MEMORY=0`` turns it
off); :func:`main` itself leaves the allocator alone, so calling it from Python changes nothing
process-wide.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Optional, Sequence

from attribmap._version import __version__

__all__ = ["main", "entry", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every discovered sub-command."""
    parser = argparse.ArgumentParser(
        prog="attribmap",
        description="Localization maps from CNN classifiers, scored with one WSOL protocol.",
    )
    parser.add_argument("--version", action="version", version=f"attribmap {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    import attribmap.commands as commands_pkg

    for info in sorted(pkgutil.iter_modules(commands_pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"attribmap.commands.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``); returns the exit status (also the ``sys.exit`` code)."""
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, LookupError, NotADirectoryError, IsADirectoryError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"attribmap: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("attribmap: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """The installed ``attribmap`` command: keep freed memory for reuse, run :func:`main`, exit with its status."""
    from attribmap.allocator import keep_freed_memory

    keep_freed_memory()
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry()
