"""The documentation build fails loudly: no warning class suppressed that would hide an API
page whose module does not import."""
from __future__ import annotations

import runpy
from pathlib import Path

CONF = Path(__file__).resolve().parents[1] / "docs" / "conf.py"


def test_no_autodoc_import_failure_is_suppressed():
    settings = runpy.run_path(str(CONF))
    assert not any(w.startswith("autodoc") for w in settings.get("suppress_warnings", []))
    assert settings["html_theme"] == "furo"


def test_the_gallery_figures_are_drawn_at_build_start(tmp_path):
    from PIL import Image

    settings = runpy.run_path(str(CONF))
    assert "setup" in settings  # connects the gallery script to builder-inited
    gallery = runpy.run_path(str(CONF.parent / "make_gallery.py"))
    paths = gallery["build"](tmp_path)
    assert [p.name for p in paths] == list(gallery["FIGURES"])
    for path in paths:
        with Image.open(path) as image:
            assert image.size[0] > 200 and image.size[1] > 200
    text = (CONF.parent / "gallery.rst").read_text()
    assert all(f"_generated/gallery/{name}" in text for name in gallery["FIGURES"])
