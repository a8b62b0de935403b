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
