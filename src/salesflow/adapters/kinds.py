"""The aggregates storage keeps as documents, and the fields each can be queried by.

Opportunities have a repository of their own (they are many, and the forecast sums them in SQL).
Every other aggregate (quotes, catalog entries, approval requests, contracts and their billing,
contacts, follow-up tasks, calls, best-call library entries) is stored as one document per aggregate
(its attrs fields as JSON, amounts as exact text) plus the indexed fields declared here, which
become columns in SQL and filters of ``query()``.

Storage concurrency for documents uses a hidden *revision* per row, separate from any ``version``
the domain object keeps for itself: a unit of work remembers the revision of every document it read,
and ``save()`` writes only if the row still has it (see :mod:`salesflow.ports`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Literal

import attrs

__all__ = ["KINDS", "DocumentKind", "Index", "kind_of"]

IndexType = Literal["text", "int", "date", "datetime"]


@attrs.frozen(kw_only=True)
class Index:
    """A field of a document kind that can be filtered on (a column in SQL)."""

    name: str
    type: IndexType = "text"
    read: Callable[[Any], Any] | None = None
    """How to read it from the aggregate (``getattr(item, name)`` when ``None``)."""

    def value(self, item: Any) -> Any:
        """The indexed value of ``item`` (text for enums)."""
        value = self.read(item) if self.read is not None else getattr(item, self.name)
        if value is None or isinstance(value, str | int | date | datetime):
            return value
        return str(value)


@attrs.frozen(kw_only=True)
class DocumentKind:
    """One kind of stored aggregate."""

    name: str
    """The singular name used in errors (``"quote"``)."""
    attribute: str
    """The unit of work attribute and SQL table suffix (``"quotes"``)."""
    type_path: str
    """``module:Class`` of the aggregate, imported on first use."""
    key: Callable[[Any], str]
    """The aggregate's id."""
    indexes: tuple[Index, ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()
    """Index names that must be unique together (an idempotency key)."""
    since: int = 2
    """The schema version that introduced the kind's table."""

    def load_type(self) -> type:
        """The aggregate class."""
        module, name = self.type_path.split(":")
        cls: type = getattr(importlib.import_module(module), name)
        return cls

    def index(self, name: str) -> Index:
        """The index called ``name``."""
        for index in self.indexes:
            if index.name == name:
                return index
        raise KeyError(name)


def _id(item: Any) -> str:
    return str(item.id)


KINDS: tuple[DocumentKind, ...] = (
    DocumentKind(
        name="category",
        attribute="categories",
        type_path="salesflow.domain.catalog:Category",
        key=_id,
        indexes=(Index(name="parent"),),
    ),
    DocumentKind(
        name="product",
        attribute="products",
        type_path="salesflow.domain.catalog:Product",
        key=lambda item: str(item.sku),
        indexes=(Index(name="category"),),
    ),
    DocumentKind(
        name="bundle",
        attribute="bundles",
        type_path="salesflow.domain.catalog:Bundle",
        key=lambda item: str(item.sku),
        indexes=(Index(name="category"),),
    ),
    DocumentKind(
        name="quote",
        attribute="quotes",
        type_path="salesflow.domain.quotes:Quote",
        key=_id,
        indexes=(Index(name="owner"), Index(name="opportunity_id"), Index(name="state")),
    ),
    DocumentKind(
        name="approval request",
        attribute="approvals",
        type_path="salesflow.domain.approvals:ApprovalRequest",
        key=_id,
        indexes=(
            Index(name="subject_kind"),
            Index(name="subject_id"),
            Index(name="state"),
            Index(name="submitter"),
        ),
    ),
    DocumentKind(
        name="contract",
        attribute="contracts",
        type_path="salesflow.domain.contracts:Contract",
        key=_id,
        indexes=(
            Index(name="owner"),
            Index(name="team"),
            Index(name="state"),
            Index(name="signed_on", type="date"),
            Index(name="account"),
            Index(name="opportunity_id"),
        ),
    ),
    DocumentKind(
        name="billing",
        attribute="billings",
        type_path="salesflow.domain.billing:ContractBilling",
        key=lambda item: str(item.contract_id),
        indexes=(Index(name="owner"), Index(name="signed_on", type="date")),
    ),
    DocumentKind(
        name="delegation",
        attribute="delegations",
        type_path="salesflow.domain.approvals:Delegation",
        # "<delegator>/<role>/<delegate>/<valid_from>[@<granted_at>]": the old key for grants
        # stored without a grant time.
        key=lambda item: str(item.id),
        indexes=(
            Index(name="delegate"),
            Index(name="delegator"),
            Index(name="role"),
            Index(name="valid_until", type="date"),
        ),
    ),
    DocumentKind(
        name="contact",
        attribute="contacts",
        type_path="salesflow.domain.calls:Contact",
        key=_id,
        indexes=(Index(name="owner"), Index(name="account")),
    ),
    DocumentKind(
        name="follow-up task",
        attribute="tasks",
        type_path="salesflow.domain.calls:FollowUpTask",
        key=_id,
        indexes=(
            Index(name="owner"),
            Index(name="contact_id"),
            Index(name="status"),
            Index(name="due", type="date"),
        ),
    ),
    DocumentKind(
        name="call",
        attribute="calls",
        type_path="salesflow.domain.calls:CallRecord",
        key=_id,
        indexes=(
            Index(name="owner"),
            Index(name="source"),
            Index(name="external_id"),
            Index(name="contact_id"),
            Index(name="started_at", type="datetime"),
        ),
        unique=(("source", "external_id"),),
    ),
    DocumentKind(
        name="library entry",
        attribute="library",
        type_path="salesflow.domain.calls:LibraryEntry",
        key=lambda item: str(item.call_id),
        indexes=(Index(name="industry"), Index(name="region"), Index(name="owner")),
    ),
)
"""Every document kind, in the order their tables are created."""


def kind_of(attribute: str) -> DocumentKind:
    """The kind whose unit-of-work attribute is ``attribute``."""
    for kind in KINDS:
        if kind.attribute == attribute:
            return kind
    raise AttributeError(attribute)
