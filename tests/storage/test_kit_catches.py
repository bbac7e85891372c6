"""The conformance kit catches the broken backends it once let through (issue 12).

Each backend below is the in-memory reference with one realistic fault: amounts kept as floats and
read back through ``str()``, no locking between check and write, nothing kept across a reopen, and
times read back in +08:00. Each passed the kit before; the kit's relevant case must now fail for it
(run directly, with the backend in place of the fixtures). The reference itself passes the same
cases (tests/storage/test_backends.py), so it is the fault that fails them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs
import pytest

from salesflow.adapters.storage_memory import MemoryStorage
from salesflow.domain.events import Event
from salesflow.domain.money import Money
from salesflow.domain.opportunities import Opportunity
from salesflow.errors import ConcurrencyError
from salesflow.ports import Storage
from salesflow.testing.storage import ManualClock, StorageContract

KIT = StorageContract()
BEIJING = timezone(timedelta(hours=8))


class _Proxy:
    """Everything of the wrapped object, except what a subclass overrides."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Wrapper:
    """A storage that hands out the inner storage's units of work through ``wrap``."""

    def __init__(self, inner: Any, wrap: Callable[[Any], Any]) -> None:
        self.inner = inner
        self.url = inner.url
        self._wrap = wrap

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self.inner.transaction() as uow:
            yield self._wrap(uow)

    def close(self) -> None:
        self.inner.close()


class _UnitOfWork(_Proxy):
    def __init__(self, inner: Any, **repositories: Any) -> None:
        super().__init__(inner)
        for name, repository in repositories.items():
            setattr(self, name, repository)


# -- 1. amounts kept as floats, read back through str() ------------------------------------------------


def _through_float(o: Opportunity) -> Opportunity:
    amount = Decimal(str(float(o.amount.amount)))
    return attrs.evolve(o, amount=Money(amount, o.amount.currency))


class _FloatOpportunities(_Proxy):
    def get(self, id: str) -> Opportunity:
        return _through_float(self._inner.get(id))

    def find(self, id: str) -> Opportunity | None:
        found = self._inner.find(id)
        return None if found is None else _through_float(found)

    def query(self, **filters: Any) -> Iterator[Opportunity]:
        return (_through_float(o) for o in self._inner.query(**filters))


def float_amounts(clock: ManualClock) -> Storage:
    return _Wrapper(  # type: ignore[return-value]
        MemoryStorage(clock=clock),
        lambda uow: _UnitOfWork(uow, opportunities=_FloatOpportunities(uow.opportunities)),
    )


def test_amounts_a_double_cannot_hold_are_caught() -> None:
    storage = float_amounts(ManualClock())
    # The case that used to be the only one passes: its largest amount fits in a double.
    KIT.test_money_is_stored_exactly(storage, "12345678901234.56", "CNY")
    with pytest.raises(AssertionError):
        KIT.test_amounts_at_the_documented_bounds_read_back_exactly(
            float_amounts(ManualClock()), "123456789012345.6789012345"
        )


# -- 2. no locking: the version is checked at save() and the write happens at commit, unguarded ----------


class _Unlocked:
    """One of several storage objects on the same data (``shared``): reads go straight to it, a
    save checks the version it sees, and the writes are made at commit without checking again
    and without any lock held in between."""

    def __init__(self, shared: MemoryStorage) -> None:
        self.shared = shared
        self.url = "unlocked://"

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        pending: list[Opportunity] = []
        yield _UnitOfWork(self.shared, opportunities=_UnlockedOpportunities(self.shared, pending))
        with self.shared.transaction() as uow:
            for changed in pending:
                current = uow.opportunities.get(changed.id)
                uow.opportunities.save(attrs.evolve(changed, version=current.version))

    def close(self) -> None:
        """Nothing to release."""


class _UnlockedOpportunities:
    def __init__(self, shared: MemoryStorage, pending: list[Opportunity]) -> None:
        self._shared = shared
        self._pending = pending

    def add(self, opportunity: Opportunity) -> Opportunity:
        with self._shared.transaction() as uow:
            added: Opportunity = uow.opportunities.add(opportunity)
        return added

    def get(self, id: str) -> Opportunity:
        with self._shared.transaction() as uow:
            found: Opportunity = uow.opportunities.get(id)
        return found

    def save(self, opportunity: Opportunity) -> Opportunity:
        stored = self.get(opportunity.id)
        if stored.version != opportunity.version:
            raise ConcurrencyError(
                "opportunity", opportunity.id, opportunity.version, stored.version
            )
        self._pending.append(opportunity)
        return attrs.evolve(opportunity, version=opportunity.version + 1)


def test_a_backend_without_locking_is_caught() -> None:
    shared = MemoryStorage(clock=ManualClock())
    storage = _Unlocked(shared)
    # The sequential case passes: a stale version is refused when nobody else is saving.
    with storage.transaction() as uow:
        read = uow.opportunities.add(
            Opportunity(id="op-1", owner="ann", amount=Money.of(1, "CNY"), stage="quotation")
        )
    with storage.transaction() as uow:
        uow.opportunities.save(read.evolve(owner="bob"))
    with pytest.raises(ConcurrencyError), storage.transaction() as uow:
        uow.opportunities.save(read.evolve(owner="cai"))
    # Two storages saving at once both "win": the kit's concurrency case sees it.
    with pytest.raises(AssertionError, match="saved"):
        KIT.test_of_two_saves_from_the_same_read_exactly_one_wins(
            _Unlocked(MemoryStorage(clock=ManualClock())),  # type: ignore[arg-type]
            lambda storage: _Unlocked(storage.shared),  # type: ignore[attr-defined]
        )


# -- 3. nothing kept across close and reopen ---------------------------------------------------------------


def test_a_backend_that_keeps_nothing_across_a_reopen_is_caught() -> None:
    clock = ManualClock()
    # It claims to persist (its test class gives a reopen), but a reopened storage is empty.
    with pytest.raises(AssertionError):
        KIT.test_everything_is_still_there_after_closing_and_reopening(
            MemoryStorage(clock=clock), lambda storage: MemoryStorage(clock=clock), clock
        )


def test_the_durability_case_is_skipped_with_a_reason_for_a_backend_that_keeps_nothing() -> None:
    clock = ManualClock()
    with pytest.raises(pytest.skip.Exception, match="keeps nothing"):
        KIT.test_everything_is_still_there_after_closing_and_reopening(
            MemoryStorage(clock=clock), None, clock
        )


# -- 4. times read back in +08:00 ----------------------------------------------------------------------------


def _in_beijing(o: Opportunity) -> Opportunity:
    history = tuple(attrs.evolve(c, at=c.at.astimezone(BEIJING)) for c in o.history)
    return attrs.evolve(o, history=history)


class _BeijingOpportunities(_Proxy):
    def get(self, id: str) -> Opportunity:
        return _in_beijing(self._inner.get(id))

    def query(self, **filters: Any) -> Iterator[Opportunity]:
        return (_in_beijing(o) for o in self._inner.query(**filters))


class _BeijingEvents(_Proxy):
    def query(self, **filters: Any) -> Iterator[Event]:
        return (attrs.evolve(e, at=e.at.astimezone(BEIJING)) for e in self._inner.query(**filters))


def test_times_read_back_in_another_zone_are_caught() -> None:
    storage = _Wrapper(
        MemoryStorage(clock=ManualClock()),
        lambda uow: _UnitOfWork(
            uow,
            opportunities=_BeijingOpportunities(uow.opportunities),
            events=_BeijingEvents(uow.events),
        ),
    )
    # The same instants, so the old equality checks pass ...
    with storage.transaction() as uow:
        uow.opportunities.add(
            Opportunity(id="op-9", owner="ann", amount=Money.of(1, "CNY"), stage="needs_analysis")
        )
    at = datetime(2026, 11, 27, 1, 30, tzinfo=UTC)
    with storage.transaction() as uow:
        uow.opportunities.save(uow.opportunities.get("op-9").move_to("quotation", at))
    with storage.transaction() as uow:
        assert uow.opportunities.get("op-9").history[0].at == at
    # ... but not the new one, which wants UTC back for a time given in UTC.
    with pytest.raises(AssertionError):
        KIT.test_aware_times_read_back_as_the_same_instant_and_utc_ones_in_utc(
            _Wrapper(storage.inner.__class__(clock=ManualClock()), storage._wrap)  # type: ignore[arg-type]
        )
