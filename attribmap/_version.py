"""The package version (``attribmap.__version__``; setup.cfg reads it from here)."""
__version__ = "0.1.0"
