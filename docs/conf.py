"""Sphinx configuration for attribmap (built with ``make docs``: -W, warnings are errors)."""
import os
import sys

sys.path.insert(0, os.path.abspath(".."))

from attribmap._version import __version__  # noqa: E402

project = "attribmap"
author = "attribmap developers"
release = __version__
version = __version__
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax", "sphinx.ext.viewcode"]
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}
exclude_patterns = ["_build", "INTERFACES.md"]
html_theme = "furo"  # maintained, readable on small screens, dark mode
html_static_path = []
nitpicky = False
# No suppress_warnings: an API page whose module fails to import must fail the -W build,
# not build empty and green.
