"""Issue 12, item 5: a plugin author can write a storage backend from the docs alone.

Every public method and attribute of the port's protocols (:mod:`salesflow.ports`) and of the base
class (:class:`salesflow.storage.BaseStorage`, with its primitives) must be in the rendered docs'
source: documented by autodoc (its module is rendered with members, and the member has a docstring
or an attribute docstring) or named in the Markdown pages.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from sphinx.pycode import ModuleAnalyzer

from salesflow import ports
from salesflow.storage import KINDS, BaseStorage

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PROTOCOLS = (
    ports.Storage,
    ports.UnitOfWork,
    ports.OpportunityRepository,
    ports.DocumentRepository,
    ports.EventLog,
    ports.CallSource,
    ports.RateSource,
)
_DIRECTIVE = re.compile(r"^\.\. (automodule|autoclass|autodata):: (\S+)\n((?:   :.*\n)*)", re.M)


def _pages() -> str:
    return "\n".join(path.read_text("utf-8") for path in sorted(DOCS.rglob("*.md")))


def _directives() -> list[tuple[str, str, dict[str, str]]]:
    """Every autodoc directive in the docs: (directive, target, options)."""
    found = []
    for match in _DIRECTIVE.finditer(_pages()):
        options = {}
        for line in match.group(3).splitlines():
            name, _, value = line.strip()[1:].partition(":")
            options[name] = value.strip()
        found.append((match.group(1), match.group(2), options))
    return found


def _names(value: str) -> set[str]:
    return {name.strip() for name in value.split(",") if name.strip()}


def _rendered_from(cls: type) -> list[dict[str, str]]:
    """The options of every automodule that renders ``cls`` with its members: of its own module,
    or of a module that exports it in ``__all__`` (``salesflow.ports`` re-exports two)."""
    found = []
    for directive, target, options in _directives():
        if directive != "automodule" or "no-members" in options:
            continue
        module = importlib.import_module(target)
        exported = cls.__name__ in getattr(module, "__all__", ())
        if not (module.__name__ == cls.__module__ or exported):
            continue
        if (
            "members" in options
            and options["members"]
            and cls.__name__ not in _names(options["members"])
        ):
            continue
        if cls.__name__ in _names(options.get("exclude-members", "")):
            continue
        found.append(options)
    return found


def _attribute_docs(cls: type) -> dict[str, list[str]]:
    docs: dict[str, list[str]] = {}
    for klass in cls.__mro__:
        if klass.__module__.startswith("salesflow"):
            analyzer = ModuleAnalyzer.for_module(klass.__module__)
            for (owner, name), lines in analyzer.find_attr_docs().items():
                if owner == klass.__name__ and any(line.strip() for line in lines):
                    docs.setdefault(name, lines)
    return docs


def _public_members(cls: type) -> list[str]:
    names: list[str] = []
    for klass in cls.__mro__:
        if not klass.__module__.startswith("salesflow"):
            continue
        candidates = [*vars(klass), *getattr(klass, "__annotations__", {})]
        names += [n for n in candidates if not n.startswith("_") and n not in names]
    return names


def _documented(cls: type, name: str, rendered: list[dict[str, str]], text: str) -> bool:
    mentioned = f"`{name}`" in text or f"`{cls.__name__}.{name}" in text
    if mentioned:
        return True
    if not rendered:
        return False
    if name.startswith("_") and not any(
        name in _names(options.get("private-members", "")) for options in rendered
    ):
        return False
    member: Any = inspect.getattr_static(cls, name, None)
    if isinstance(member, property | staticmethod | classmethod) or inspect.isfunction(member):
        function = member.fget if isinstance(member, property) else member
        return bool(inspect.getdoc(function))
    return name in _attribute_docs(cls)


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda cls: cls.__name__)
def test_every_member_of_the_ports_protocols_is_documented(protocol: type) -> None:
    text = _pages()
    rendered = _rendered_from(protocol)
    assert rendered or f"`{protocol.__name__}`" in text, f"{protocol.__name__} is not in the docs"
    members = _public_members(protocol)
    assert members, protocol
    missing = [name for name in members if not _documented(protocol, name, rendered, text)]
    assert not missing, f"{protocol.__name__} members missing from the docs: {missing}"


def test_the_base_class_and_its_primitives_are_documented() -> None:
    text = _pages()
    rendered = _rendered_from(BaseStorage)
    assert rendered, "salesflow.storage.base is not rendered with its members"
    hooks = {"_begin", "_commit", "_rollback", "_encode", "_decode", "_last_event_at"}
    primitives = set(BaseStorage.__abstractmethods__)
    assert len(primitives) == 7, primitives
    members = [*_public_members(BaseStorage), *sorted(primitives | hooks)]
    missing = [name for name in members if not _documented(BaseStorage, name, rendered, text)]
    assert not missing, f"BaseStorage members missing from the docs: {missing}"
    for name in primitives:  # and the guide lists every primitive by name
        assert f"`{name}(" in text, f"the storage guide does not list the primitive {name}"


def test_the_guide_lists_every_repository_kind_and_error() -> None:
    guide = (DOCS / "guide" / "storage.md").read_text("utf-8")
    repositories = [name for name in ports.UnitOfWork.__annotations__ if not name.startswith("_")]
    assert len(repositories) == len(KINDS) + 2
    assert {kind.attribute for kind in KINDS} | {"opportunities", "events"} == set(repositories)
    for name in repositories:
        assert f"`{name}`" in guide, f"the storage guide does not list uow.{name}"
    for error in (
        "NotFoundError",
        "ConcurrencyError",
        "ValidationError",
        "InvalidTypeError",
        "ContractLockedError",
        "StorageError",
    ):
        assert f"errors.{error}" in guide, f"the error contract does not name {error}"
    for member in ("Storage.url", "Storage.capabilities", "Storage.destroy()", "forecast_pushdown"):
        assert member in guide
