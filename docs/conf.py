"""Sphinx configuration for the salesflow documentation (built with -W: warnings are errors)."""

from __future__ import annotations

import salesflow

project = "salesflow"
author = "salesflow maintainers"
copyright = "2026, salesflow maintainers"
release = salesflow.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx_click",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
exclude_patterns = ["_build"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# Type hints name classes from other projects (pandas, SQLAlchemy) that are not linked here.
nitpicky = False
suppress_warnings = ["myst.header"]

html_theme = "alabaster"
html_title = f"salesflow {release}"
