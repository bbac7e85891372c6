"""The plugin contract: every hook salesflow calls, and the descriptors registration hooks return.

A plugin is any object or module with functions named after these hooks and decorated with
:data:`hookimpl`; it is registered through the ``salesflow`` entry-point group of its distribution
(or passed to :func:`salesflow.open` as ``plugins=[...]``). salesflow always calls hooks with keyword
arguments, so an implementation may accept only the arguments it needs.

Compatibility promise: a hook argument is never renamed or removed, only added.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import attrs
import pluggy

from salesflow.domain.actors import Actor
from salesflow.domain.events import Event
from salesflow.domain.taxes import TaxRate
from salesflow.errors import ValidationError

__all__ = [
    "PROJECT",
    "CallSourceType",
    "StorageBackend",
    "hookimpl",
    "hookspec",
    "salesflow_authorize",
    "salesflow_get_exchange_rate",
    "salesflow_get_tax_rates",
    "salesflow_handle_event",
    "salesflow_register_call_sources",
    "salesflow_register_storage_backends",
]

PROJECT = "salesflow"
"""The pluggy project name, and the entry-point group plugins register in."""

hookspec = pluggy.HookspecMarker(PROJECT)
"""Marks a hook specification (salesflow's own use)."""

hookimpl = pluggy.HookimplMarker(PROJECT)
"""Marks a hook implementation in a plugin: ``@salesflow.hookimpl``."""


def _check_name(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(attribute.name, value, "a non-empty string")


def _to_schemes(value: object) -> tuple[str, ...]:
    schemes = (value,) if isinstance(value, str) else tuple(value)  # type: ignore[arg-type]
    if not schemes or not all(isinstance(s, str) and s for s in schemes):
        raise ValidationError("schemes", value, "one or more URL schemes such as 'sqlite'")
    return tuple(s.lower() for s in schemes)


def _check_callable(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not callable(value):
        raise ValidationError(attribute.name, value, "a callable")


@attrs.frozen(kw_only=True)
class StorageBackend:
    """A storage backend a plugin offers: ``factory(url, **options)`` returns a
    :class:`~salesflow.ports.Storage` for URLs whose scheme is one of ``schemes``.

    A scheme matches the part of the URL before ``://``, and for SQLAlchemy-style URLs also the
    part before ``+`` (``postgresql+psycopg://`` matches ``postgresql``).
    """

    name: str = attrs.field(validator=_check_name)
    schemes: tuple[str, ...] = attrs.field(converter=_to_schemes)
    factory: Callable[..., Any] = attrs.field(validator=_check_callable)
    description: str = ""


@attrs.frozen(kw_only=True)
class CallSourceType:
    """A kind of telephony source a plugin offers: ``factory(**options)`` returns a call source
    (an object with ``name`` and ``fetch(since, until)``; see :mod:`salesflow.ports`)."""

    name: str = attrs.field(validator=_check_name)
    factory: Callable[..., Any] = attrs.field(validator=_check_callable)
    description: str = ""


@hookspec
def salesflow_register_storage_backends() -> list[StorageBackend]:  # type: ignore[empty-body]
    """Return the storage backends this plugin offers.

    Called when a storage is opened by URL. Every plugin's list is collected; two backends that
    claim the same scheme are an error (:class:`~salesflow.errors.PluginError`).
    """


@hookspec
def salesflow_register_call_sources() -> list[CallSourceType]:  # type: ignore[empty-body]
    """Return the telephony call sources this plugin offers (``asterisk-csv``, ``twilio-json``...).

    Every plugin's list is collected; names must be unique across plugins.
    """


@hookspec
def salesflow_handle_event(event: Event, storage_url: str) -> None:
    """Receive every domain event after the change it records has been committed.

    Every implementation is called, in turn, for every event. An implementation that raises does not
    undo the change and does not stop the others: the error is logged and returned to the caller in
    :attr:`salesflow.desk.CommandResult.handler_errors`.

    Args:
        event: the stored event, with its sequence number.
        storage_url: the URL of the storage the change was committed to (passwords masked).
    """


@hookspec(firstresult=True)
def salesflow_authorize(actor: Actor, action: str, subject: Any, role: str | None) -> bool | None:
    """Decide whether ``actor`` may perform ``action`` on ``subject`` (single answer: firstresult).

    Return ``True`` to allow, ``False`` to refuse, or ``None`` to leave the decision to the next
    implementation. salesflow's builtin policy (:class:`salesflow.adapters.authorization.TeamScope`)
    answers last (``trylast``): team-bound roles (``sales_rep``, ``sales_manager``) act within
    their teams, a rep on what they own, organisation-wide roles as their role allows, an
    ``admin`` on everything. An embedding CRM replaces it by answering first.

    The desk asks for a change on the record as it is and again as it would be after the change,
    and for every record a read with ``actor=`` returns (``<kind>.read``).

    Args:
        actor: who acts.
        action: what they do, as ``"<kind>.<verb>"``: ``opportunity.create``,
            ``opportunity.update``, ``opportunity.move``, ``opportunity.read``, ``quote.approve``,
            ``contract.read``, ``delegation.grant``, ...
        subject: the record acted on (the new record when creating): it has ``owner`` and, where
            known, ``team`` attributes.
        role: the role the actor decides in, for ``<kind>.approve`` and ``<kind>.reject``;
            ``None`` for every other action.
    """


@hookspec(firstresult=True)
def salesflow_get_exchange_rate(source: str, target: str, on: date) -> Decimal | None:
    """Return how many units of ``target`` one unit of ``source`` buys on ``on``, as a ``Decimal``
    (single answer: firstresult), or ``None`` when this plugin has no rate."""


@hookspec
def salesflow_get_tax_rates(
    sku: str, category_path: tuple[str, ...], region: str, on: date
) -> list[TaxRate] | None:
    """Return the tax rates customers in ``region`` pay on product ``sku`` (in the categories
    ``category_path``, nearest first) on ``on``, beside the catalog's own rates, or ``None`` when
    this plugin has none. Every plugin's answer counts (a state rate and a city rate may come from
    two plugins); the desk adds them to a quote line whose quote names a ``region``."""
