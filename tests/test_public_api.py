"""The public surface: every exported name resolves, is documented, and importing stays lazy."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

import salesflow
from salesflow import errors


def test_every_exported_name_resolves_and_has_a_docstring() -> None:
    for name in salesflow.__all__:
        value = getattr(salesflow, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"salesflow.{name} has no docstring"


def test_all_is_complete() -> None:
    names = [n for n in salesflow.__all__ if n not in ("__version__", "errors")]
    assert len(names) == len(set(names))
    assert set(names) == set(salesflow._EXPORTS)
    assert set(dir(salesflow)) >= set(salesflow.__all__)


def test_unknown_attributes_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        salesflow.NoSuchThing  # noqa: B018


def test_errors_share_one_root_and_builtin_bases() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.SalesflowError), name
        assert cls.__doc__, name
    assert issubclass(errors.ValidationError, ValueError)
    assert issubclass(errors.InvalidTypeError, TypeError)
    assert issubclass(errors.NotFoundError, LookupError)
    assert issubclass(errors.NotAuthorizedError, PermissionError)
    assert issubclass(errors.CurrencyMismatchError, errors.ValidationError)


def test_import_salesflow_loads_nothing_heavy() -> None:
    code = (
        "import sys, salesflow; "
        "heavy = [m for m in ('attrs', 'babel', 'pandas', 'sqlalchemy', 'pluggy', 'dateutil',"
        " 'phonenumbers', 'click') if m in sys.modules]; print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_version() -> None:
    assert salesflow.__version__.count(".") >= 2


def test_every_exported_class_and_function_is_defined_where_the_table_says() -> None:
    # salesflow.desk is the facade of the desk's commands: it re-exports what they define.
    for name, module in salesflow._EXPORTS.items():
        value = getattr(salesflow, name)
        assert getattr(importlib.import_module(module), name) is value
        if (inspect.isclass(value) or inspect.isfunction(value)) and module != "salesflow.desk":
            assert value.__module__ == module, f"salesflow.{name} is defined in {value.__module__}"


def test_the_domain_imports_no_outer_layer() -> None:
    # The domain is pure: analytics, adapters, storage, plugins, the desk and the CLI build on it,
    # never the other way round (the table renderer both use lives below them, in salesflow.tables).
    code = (
        "import pkgutil, importlib, sys, salesflow.domain as d\n"
        "for m in pkgutil.iter_modules(d.__path__):\n"
        "    importlib.import_module(f'salesflow.domain.{m.name}')\n"
        "outer = ('analytics', 'adapters', 'storage', 'plugins', 'commands', 'desk', 'cli', 'report')\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[:2] in"
        " [['salesflow', o] for o in outer])))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
