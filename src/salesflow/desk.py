"""SalesDesk: the application service that wires storage, plugins and the domain together.

:func:`open` builds one from a storage URL; :class:`SalesDesk` also takes a storage you built (for
instance on your own SQLAlchemy engine). Its commands are grouped by aggregate in
:mod:`salesflow.commands`; the rules they share (authorization, one unit of work, events after
commit) are in :mod:`salesflow.commands.core`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import tzinfo
from typing import TYPE_CHECKING, Any, cast

import pluggy

from salesflow.commands.agenda import AgendaCommands
from salesflow.commands.analytics import AnalyticsCommands
from salesflow.commands.approvals import ApprovalCommands
from salesflow.commands.calls import CallCommands, CallImport
from salesflow.commands.contracts import ContractCommands
from salesflow.commands.core import Clock, CommandResult, DeskCore, HandlerError
from salesflow.commands.forecasts import ForecastCommands
from salesflow.commands.opportunities import OpportunityCommands
from salesflow.commands.quotes import QuoteCommands
from salesflow.commands.rules import RuleCommands
from salesflow.domain.approvals import Workflow
from salesflow.domain.discounts import DiscountPolicy
from salesflow.domain.phones import PhoneSettings
from salesflow.domain.stages import StagePlan
from salesflow.domain.tasks import FollowUpMode
from salesflow.errors import PluginError, ValidationError
from salesflow.plugins.manager import find_storage_backend, get_plugin_manager
from salesflow.ports import Storage

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine
    from sqlalchemy.orm import Session, scoped_session

__all__ = ["CallImport", "CommandResult", "HandlerError", "SalesDesk", "open", "open_storage"]


def open_storage(
    url: str | Engine | Connection | Session | scoped_session[Any],
    *,
    plugin_manager: pluggy.PluginManager | None = None,
    clock: Clock | None = None,
    **options: Any,
) -> Storage:
    """Open the storage for ``url`` with the backend registered for its scheme.

    ``memory://``, ``sqlite:///path.db``, ``postgresql://user@host/db`` and ``mysql://user@host/db``
    are builtin; plugins add more. An unknown scheme raises
    :class:`~salesflow.errors.BackendNotFoundError` listing the registered ones.

    ``url`` may also be your application's SQLAlchemy ``Engine``, ``Connection`` or ORM
    ``Session`` (or ``scoped_session``): the SQL storage then shares your database. On a
    connection in a transaction, and on a session (whose current transaction each command joins,
    through ``session.connection()``), every command is a savepoint in *your* transaction, which
    salesflow never begins, commits, rolls back or reconfigures; its events wait for your commit.
    See :class:`~salesflow.adapters.sql.storage.SqlStorage`.
    """
    if not isinstance(url, str):
        from salesflow.adapters.sql.storage import SqlStorage, is_sql_target

        if not is_sql_target(url):
            raise ValidationError(
                "url",
                url,
                "a storage URL such as 'sqlite:///salesflow.db', or an SQLAlchemy Engine, "
                "Connection or Session",
            )
        return cast(Storage, SqlStorage(url, clock=clock, **options))
    manager = plugin_manager or get_plugin_manager()
    backend = find_storage_backend(manager, url)
    storage = backend.factory(url, clock=clock, **options)
    if not isinstance(storage, Storage):
        raise PluginError(f"storage backend {backend.name!r} returned {storage!r}, not a Storage")
    return storage


def open(
    url: str | Engine | Connection | Session | scoped_session[Any] = "sqlite:///salesflow.db",
    *,
    plugins: Iterable[object] | None = None,
    clock: Clock | None = None,
    plan: StagePlan | None = None,
    phones: PhoneSettings | None = None,
    timezone: tzinfo | None = None,
    discount_policy: DiscountPolicy | None = None,
    contract_workflow: Workflow | None = None,
    currency: str = "CNY",
    call_follow_up: FollowUpMode = "completed",
    load_entrypoints: bool = True,
    **storage_options: Any,
) -> SalesDesk:
    """Open a :class:`SalesDesk` on the storage at ``url`` (a SQLite file by default).

    Args:
        url: the storage URL, or your SQLAlchemy ``Engine``, ``Connection`` or ORM ``Session``
            (see :func:`open_storage`: on a session or a connection in a transaction, commands
            join your transaction).
        plugins: extra plugin objects to register (after the builtin and entry-point ones).
        clock: what "now" is (an aware datetime); the UTC wall clock by default.
        plan: the stage plan (the stored rules' when omitted, see :mod:`salesflow.commands.rules`;
            the default plan when none are stored). Given, it wins over the stored one; so do
            ``discount_policy`` and ``contract_workflow``.
        phones: how phone numbers are read (default region, the company's own numbers).
        timezone: the zone that decides which day a call belongs to.
        discount_policy: who may give which discount (the stored rules' when omitted; with none
            stored a rep 10 %, a manager 20 %, a director 25 %).
        contract_workflow: who reviews contracts (the stored rules' when omitted; with none stored
            sales manager -> project manager -> finance and legal).
        currency: the reporting currency of empty reports.
        call_follow_up: what an answered call to a known contact with no open task leaves in the
            rep's follow-up work: ``"completed"`` (a done task, the default), ``"open"`` (a task
            for the next step) or ``"off"`` (nothing).
        load_entrypoints: load the plugins of the ``salesflow`` entry-point group.
        storage_options: passed to the backend (``table_prefix=`` for SQL, ...).
    """
    manager = get_plugin_manager(load_entrypoints=load_entrypoints, plugins=plugins or ())
    storage = open_storage(url, plugin_manager=manager, clock=clock, **storage_options)
    return SalesDesk(
        storage,
        plugin_manager=manager,
        clock=clock,
        plan=plan,
        phones=phones,
        timezone=timezone,
        discount_policy=discount_policy,
        contract_workflow=contract_workflow,
        currency=currency,
        call_follow_up=call_follow_up,
    )


class SalesDesk(
    OpportunityCommands,
    QuoteCommands,
    ContractCommands,
    AgendaCommands,
    ApprovalCommands,
    CallCommands,
    AnalyticsCommands,
    ForecastCommands,
    RuleCommands,
    DeskCore,
):
    """The application service over one storage. Use :func:`salesflow.open` to build one, or pass
    your own storage (e.g. ``SqlStorage(your_engine)``) to share your application's database.

    Commands take the acting :class:`~salesflow.domain.actors.Actor` and return a
    :class:`CommandResult`; reads return domain values and results.
    """
