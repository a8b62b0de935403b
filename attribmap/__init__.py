"""attribmap: localization maps from CNN classifiers, scored with one WSOL protocol."""
from attribmap._version import __version__

__all__ = ["__version__"]
