"""The kinds of aggregate storage keeps, and the fields each can be queried by.

Opportunities have a repository of their own (they are many, and the forecast sums them in SQL);
:data:`OPPORTUNITIES` describes them for backends that store them like documents. Every other
aggregate (quotes, catalog entries, approval requests, contracts and their billing, contacts,
follow-up tasks, calls, best-call library entries) is a *document kind* in :data:`KINDS`: one
document per aggregate (:mod:`salesflow.storage.codec` turns it into JSON, amounts as exact text),
found by its key, plus the indexed fields declared here, which become columns in SQL and the only
fields ``query()``, ``count()`` and ``ids()`` filter and order by. A kind's unique keys are index
names whose values no two stored aggregates share (a second one is refused with
:class:`~salesflow.errors.ConcurrencyError`), and its rules (:attr:`DocumentKind.add_rule`,
:attr:`DocumentKind.save_rule`) are the port's invariants for that aggregate
(:mod:`salesflow.storage.invariants`).

Storage concurrency for documents uses a hidden *revision* per document, separate from any
``version`` the domain object keeps for itself: a unit of work remembers the revision of every
document it read, and ``save()`` writes only if the stored document still has it (see
:mod:`salesflow.ports`).

=================  ====================  ==========================================  ==============
attribute          key                   indexed fields                              unique
=================  ====================  ==========================================  ==============
``categories``     ``id``                ``parent``
``products``       ``sku``               ``category``
``bundles``        ``sku``               ``category``
``quotes``         ``id``                ``owner``, ``opportunity_id``, ``state``
``approvals``      ``id``                ``subject_kind``, ``subject_id``,
                                         ``state``, ``submitter``
``contracts``      ``id``                ``owner``, ``team``, ``state``,
                                         ``signed_on`` (date), ``account``,
                                         ``opportunity_id``
``billings``       ``contract_id``       ``owner``, ``signed_on`` (date)
``delegations``    ``id``                ``delegate``, ``delegator``, ``role``,
                                         ``valid_until`` (date)
``contacts``       ``id``                ``owner``, ``account``
``tasks``          ``id``                ``owner``, ``contact_id``, ``status``,
                                         ``due`` (date)
``calls``          ``id``                ``owner``, ``source``, ``external_id``,     ``source`` +
                                         ``contact_id``, ``started_at`` (datetime)   ``external_id``
``library``        ``call_id``           ``industry``, ``region``, ``owner``
``rules``          ``version`` (text)    ``version`` (int), ``changed_by``
``alerts``         ``key``               ``on`` (date), ``name``, ``owner``
=================  ====================  ==========================================  ==============

Since schema version 5: ``contact_numbers`` (key ``id``, ``"<number>#<fingerprint>"``; indexed by
``contact_id`` and ``number``, E.164), the contacts' numbers normalised once when stored;
``category_overrides`` (key ``opportunity_id``; indexed by ``owner`` and ``team``), the forecast
category set for one deal with its audit trail; ``forecast_snapshots`` (key the ISO date; indexed by
``as_of``, a date), a day's forecast lines.

Rules: a contract (:func:`~salesflow.storage.invariants.check_contract_save`) and an approval
request (:func:`~salesflow.storage.invariants.check_approval_add`,
:func:`~salesflow.storage.invariants.check_approval_save`); opportunities' history
(:func:`~salesflow.storage.invariants.check_history`); the versions of the sales rules, which are
never changed or deleted (:func:`~salesflow.storage.invariants.check_rules_save`); a category
override's audit trail, which only grows, and a forecast snapshot, never changed or deleted
(:mod:`salesflow.domain.forecasts`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Literal

import attrs

from salesflow.storage.invariants import (
    check_approval_add,
    check_approval_delete,
    check_approval_save,
    check_contract_add,
    check_contract_delete,
    check_contract_save,
    check_history,
    check_rules_add,
    check_rules_delete,
    check_rules_save,
)

__all__ = ["KINDS", "OPPORTUNITIES", "DocumentKind", "Index", "IndexType", "kind_of"]

IndexType = Literal["text", "int", "date", "datetime"]
"""The type of an indexed value (the SQL column type): text, int, date or aware datetime."""


@attrs.frozen(kw_only=True)
class Index:
    """A field of a document kind that can be filtered on (a column in SQL)."""

    name: str
    """The field's name, as ``query()`` takes it (``owner``)."""
    type: IndexType = "text"
    """The type of its values."""
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
    """The singular name used in errors (``"quote"``) and the ``kind`` of their
    :class:`~salesflow.errors.NotFoundError` and :class:`~salesflow.errors.ConcurrencyError`."""
    attribute: str
    """The unit of work attribute and SQL table suffix (``"quotes"``)."""
    type_path: str
    """``module:Class`` of the aggregate, imported on first use."""
    key: Callable[[Any], str]
    """The aggregate's id: what ``get()`` and ``find()`` take."""
    indexes: tuple[Index, ...] = ()
    """The fields ``query()`` filters and orders by."""
    unique: tuple[tuple[str, ...], ...] = ()
    """Index names that must be unique together (an idempotency key)."""
    since: int = 2
    """The schema version that introduced the kind's table."""
    add_rule: Callable[[Any], None] | None = None
    """The port's rule for a new aggregate of this kind, if any: called with it before it is
    stored; raises to refuse (:mod:`salesflow.storage.invariants`)."""
    save_rule: Callable[[Any, Any], None] | None = None
    """The port's rule for a change, if any: called with the stored aggregate and the one being
    saved, after the revision check and before writing; raises to refuse."""
    delete_rule: Callable[[Any], None] | None = None
    """The port's rule for a deletion, if any: called with the stored aggregate after the revision
    check and before deleting; raises to refuse."""

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


def _forecast_rule(name: str) -> Callable[..., None]:
    # The forecast documents' rules live beside them in the domain, imported on first use.
    def rule(*args: Any) -> None:
        getattr(importlib.import_module("salesflow.domain.forecasts"), name)(*args)

    return rule


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
        add_rule=check_approval_add,
        save_rule=check_approval_save,
        delete_rule=check_approval_delete,
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
        add_rule=check_contract_add,
        save_rule=check_contract_save,
        delete_rule=check_contract_delete,
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
        type_path="salesflow.domain.contacts:Contact",
        key=_id,
        indexes=(Index(name="owner"), Index(name="account")),
    ),
    DocumentKind(
        name="follow-up task",
        attribute="tasks",
        type_path="salesflow.domain.tasks:FollowUpTask",
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
        name="contact number",
        attribute="contact_numbers",
        type_path="salesflow.domain.contacts:ContactNumber",
        key=_id,
        indexes=(Index(name="contact_id"), Index(name="number")),
        since=5,
    ),
    DocumentKind(
        name="library entry",
        attribute="library",
        type_path="salesflow.domain.library:LibraryEntry",
        key=lambda item: str(item.call_id),
        indexes=(Index(name="industry"), Index(name="region"), Index(name="owner")),
    ),
    DocumentKind(
        name="rules",
        attribute="rules",
        type_path="salesflow.domain.rules:Rules",
        key=lambda item: str(item.version),
        indexes=(Index(name="version", type="int"), Index(name="changed_by")),
        add_rule=check_rules_add,
        save_rule=check_rules_save,
        delete_rule=check_rules_delete,
        since=5,
    ),
    DocumentKind(
        name="alert",
        attribute="alerts",
        type_path="salesflow.domain.alerts:Alert",
        key=lambda item: str(item.key),
        indexes=(Index(name="on", type="date"), Index(name="name"), Index(name="owner")),
        since=5,
    ),
    DocumentKind(
        name="category override",
        attribute="category_overrides",
        type_path="salesflow.domain.forecasts:CategoryOverride",
        key=lambda item: str(item.opportunity_id),
        indexes=(Index(name="owner"), Index(name="team")),
        save_rule=_forecast_rule("check_override_save"),
        since=5,
    ),
    DocumentKind(
        name="forecast snapshot",
        attribute="forecast_snapshots",
        type_path="salesflow.domain.forecasts:ForecastSnapshot",
        key=lambda item: item.as_of.isoformat(),
        indexes=(Index(name="as_of", type="date"),),
        save_rule=_forecast_rule("check_snapshot_save"),
        delete_rule=_forecast_rule("check_snapshot_delete"),
        since=5,
    ),
)
"""Every document kind, in the order their tables are created."""

OPPORTUNITIES = DocumentKind(
    name="opportunity",
    attribute="opportunities",
    type_path="salesflow.domain.opportunities:Opportunity",
    key=_id,
    indexes=(
        Index(name="owner"),
        Index(name="team"),
        Index(name="stage"),
        Index(name="expected_close", type="date"),
    ),
    save_rule=check_history,
    since=1,
)
"""Opportunities described as a kind, for backends that store them as documents
(:class:`~salesflow.storage.BaseStorage` does): the key is the id, the revision is the
opportunity's own ``version``, and the history only grows. Not in :data:`KINDS`: the SQL backend
keeps them in a table of their own."""


def kind_of(attribute: str) -> DocumentKind:
    """The kind whose unit-of-work attribute is ``attribute``."""
    for kind in KINDS:
        if kind.attribute == attribute:
            return kind
    raise AttributeError(attribute)
