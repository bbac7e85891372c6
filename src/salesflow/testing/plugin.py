"""salesflow's pytest plugin: readable failures from the conformance kits.

pytest rewrites ``assert`` statements (so that a failure shows the values that differ) only in test
modules and in modules it is told about *before* they are imported; an installed package such as
``salesflow.testing`` is neither, so without this plugin a failing kit case is a bare
``AssertionError``. The plugin tells pytest to rewrite every module of :mod:`salesflow.testing`
(the storage kit, the state machines, the strategies).

It is registered through the ``pytest11`` entry point, so installing salesflow enables it in every
pytest run; name it explicitly with ``pytest -p salesflow.testing.plugin`` (for instance when
entry-point plugins are disabled by ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``), or in your root
``conftest.py`` with ``pytest_plugins = ["salesflow.testing.plugin"]`` before anything imports the
kit. Loading it twice is harmless: pytest registers a plugin module once.

It adds no fixtures, options or hooks of its own.
"""

from __future__ import annotations

import pkgutil

import pytest

import salesflow.testing as _package

__all__ = ["KIT_MODULES"]

KIT_MODULES = tuple(
    f"{_package.__name__}.{module.name}"
    for module in pkgutil.iter_modules(_package.__path__)
    if module.name != "plugin"
)
"""The modules whose assertions pytest rewrites: every module of :mod:`salesflow.testing`. (Each is
named, rather than the package: importing this plugin imports the package first, and pytest warns
about a name that is imported already, which ``-W error`` would turn into a failure.)"""

pytest.register_assert_rewrite(*KIT_MODULES)
