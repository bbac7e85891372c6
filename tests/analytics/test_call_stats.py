"""Call statistics (R7): only calls to known contacts count, the uncounted are shown, totals add up."""

from __future__ import annotations

from collections import namedtuple
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesflow.analytics.calls import CallGroupStats, CallStats, call_stats
from salesflow.domain.calls import CallRecord, Disposition, unique_calls
from salesflow.domain.contacts import Contact
from salesflow.domain.periods import Period
from salesflow.domain.phones import PhoneDirectory
from salesflow.errors import InvalidTypeError, ValidationError
from salesflow.testing.strategies import aware_datetimes

OWNERS = ("ann", "bob", "cai", None)
FIELDS = (
    "calls",
    "answered",
    "talk_seconds",
    "ring_seconds",
    "uncounted",
    "uncounted_talk_seconds",
)


@st.composite
def one_call(draw: st.DrawFn) -> CallRecord:
    disposition = draw(st.sampled_from(tuple(Disposition)))
    answered = disposition is Disposition.ANSWERED
    return CallRecord(
        source=draw(st.sampled_from(("asterisk-csv", "twilio-json"))),
        external_id=str(draw(st.integers(0, 30))),
        direction=draw(st.sampled_from(("inbound", "outbound"))),
        from_number="1001",
        to_number="+8613800138000",
        started_at=draw(aware_datetimes()),
        disposition=disposition,
        owner=draw(st.sampled_from(OWNERS)),
        ring_seconds=draw(st.integers(0, 60)),
        talk_seconds=draw(st.integers(0, 3600)) if answered else 0,
        contact_id=draw(st.sampled_from(("c-1", "c-2", None))),
    )


calls_lists = st.lists(one_call(), max_size=40)


def _figures(stats: CallGroupStats) -> tuple[int, ...]:
    return tuple(getattr(stats, f) for f in FIELDS)


def _sum(groups: dict[Any, CallGroupStats]) -> tuple[int, ...]:
    return tuple(sum(getattr(g, f) for g in groups.values()) for f in FIELDS)


@given(calls_lists)
def test_counted_plus_uncounted_is_every_call(calls: list[CallRecord]) -> None:
    stats = call_stats(calls)
    assert stats.calls + stats.uncounted == len(calls) == stats.total_calls
    assert stats.calls == sum(1 for c in calls if c.contact_id is not None)
    assert stats.uncounted_reasons == ({"unlinked": stats.uncounted} if stats.uncounted else {})


@given(calls_lists, st.sampled_from(("month", "quarter", "year")))
def test_groups_add_up_to_the_team_and_periods_to_the_groups(
    calls: list[CallRecord], kind: str
) -> None:
    stats = call_stats(calls, period=kind)  # type: ignore[arg-type]
    assert _sum(stats.groups) == _figures(stats.team)
    assert stats.team.talk_seconds == sum(c.talk_seconds for c in calls if c.contact_id)
    assert stats.team.uncounted_talk_seconds == sum(
        c.talk_seconds for c in calls if not c.contact_id
    )
    per_group: dict[Any, list[int]] = {}
    for groups in stats.by_period().values():
        for group, figures in groups.items():
            cell = per_group.setdefault(group, [0] * len(FIELDS))
            for i, value in enumerate(_figures(figures)):
                cell[i] += value
    assert {g: tuple(v) for g, v in per_group.items()} == {
        g: _figures(s) for g, s in stats.groups.items()
    }
    assert call_stats(calls).groups == stats.groups


@given(calls_lists)
def test_importing_the_same_calls_twice_changes_nothing(calls: list[CallRecord]) -> None:
    once = list(unique_calls(calls))
    twice = list(unique_calls(calls + calls))
    assert twice == once
    assert call_stats(twice).to_records() == call_stats(once).to_records()


@given(calls_lists, st.integers(2020, 2030), st.integers(1, 12))
def test_a_period_keeps_its_calls_and_counts_the_rest(
    calls: list[CallRecord], year: int, month: int
) -> None:
    period = Period.month(year, month)
    stats = call_stats(calls, period=period)
    assert stats.calls + stats.uncounted + stats.outside_period == len(calls)
    inside = [c for c in calls if period.contains(c.started_at.date())]
    assert stats.calls + stats.uncounted == len(inside)


@given(calls_lists, st.sampled_from(("owner", ("source", "owner"), ())))
def test_any_grouping_adds_up(calls: list[CallRecord], by: Any) -> None:
    stats = call_stats(calls, by=by)
    assert _sum(stats.groups) == _figures(stats.team)
    records = stats.to_records()
    assert sum(r["calls"] + r["uncounted"] for r in records) == len(calls)


def _call(i: int, **changes: Any) -> CallRecord:
    fields: dict[str, Any] = {
        "source": "s",
        "external_id": str(i),
        "direction": "outbound",
        "from_number": "1001",
        "to_number": "+8613800138000",
        "started_at": datetime(2026, 11, 3, 9, tzinfo=UTC) + timedelta(hours=i),
        "disposition": "answered",
        "owner": "ann",
        "ring_seconds": 5,
        "talk_seconds": 100,
    }
    fields.update(changes)
    return CallRecord(**fields)


@pytest.fixture
def directory() -> PhoneDirectory:
    return PhoneDirectory.build(
        [
            Contact(id="c-li", owner="ann", phones=("138 0013 8000",)),
            Contact(id="c-wu", phones=("139 0013 9000",)),
        ],
        default_region="CN",
        company_numbers=("010 6000 0000",),
    )


def test_numbers_resolve_through_the_directory_and_the_reasons_are_kept(
    directory: PhoneDirectory,
) -> None:
    calls = [
        _call(0),  # +86 138... -> c-li
        _call(1, to_number="139-0013-9000", talk_seconds=201),  # national format -> c-wu
        _call(2, to_number="+86 139 9999 9999", talk_seconds=50),  # unknown number
        _call(3, to_number="8001", disposition="busy", talk_seconds=0),  # internal extension
        _call(4, to_number="010 6000 0000", talk_seconds=30),  # the company's own number
        _call(5, contact_id="c-gone"),  # a contact the directory does not know
        _call(
            6,
            direction="inbound",
            from_number="13800138000",
            to_number="8001",
            disposition="no_answer",
            talk_seconds=0,
        ),
        _call(7, owner="bob", contact_id="c-wu", disposition="failed", talk_seconds=0),
    ]
    stats = call_stats(calls, directory=directory)
    assert stats.uncounted_reasons == {
        "unknown_number": 1,
        "unparseable_number": 1,
        "company_number": 1,
        "unknown_contact": 1,
    }
    ann = stats.group("ann")
    assert (ann.calls, ann.answered, ann.talk_seconds, ann.ring_seconds) == (3, 2, 301, 15)
    assert (ann.uncounted, ann.uncounted_talk_seconds) == (4, 180)
    assert ann.average_talk_seconds == Decimal("150.5")
    assert ann.answer_rate == Decimal("66.7")
    bob = stats.group("bob")
    assert (bob.calls, bob.answered, bob.average_talk_seconds, bob.answer_rate) == (
        1,
        0,
        None,
        Decimal("0.0"),
    )
    assert stats.group("nobody") == CallGroupStats()
    assert stats.group("nobody").answer_rate is None
    # Without a directory only the linked calls count.
    assert call_stats(calls).calls == 2


def test_the_average_is_rounded_half_up_to_a_tenth() -> None:
    calls = [_call(i, contact_id="c", talk_seconds=t) for i, t in enumerate((10, 10, 11))]
    assert call_stats(calls).team.average_talk_seconds == Decimal("10.3")
    calls = [_call(i, contact_id="c", talk_seconds=t) for i, t in enumerate((10, 11, 11, 11))]
    assert call_stats(calls).team.average_talk_seconds == Decimal("10.8")  # 10.75 -> 10.8


def test_periods_follow_the_requested_zone() -> None:
    late = _call(
        0, contact_id="c", started_at=datetime(2026, 11, 30, 20, tzinfo=UTC)
    )  # Dec 1 in Beijing
    assert [p.label for p in call_stats([late], period="month").periods] == ["2026-11"]
    beijing = timezone(timedelta(hours=8))
    assert [p.label for p in call_stats([late], period="month", tz=beijing).periods] == ["2026-12"]
    quarters = call_stats([late], period="quarter", tz=beijing, fiscal_year_start=4)
    assert [p.label for p in quarters.periods] == ["FY2027-Q3"]


def test_tables_show_the_team_and_the_uncounted(directory: PhoneDirectory) -> None:
    calls = [_call(0), _call(1, owner=None, to_number="+86 139 9999 9999", talk_seconds=20)]
    stats = call_stats(calls, directory=directory, period="month")
    assert isinstance(stats, CallStats)
    records = stats.to_records()
    assert records[0]["period"] == "2026-11" and records[0]["owner"] == "ann"
    shown = stats.display_records()
    assert [r["owner"] for r in shown] == ["ann", "(none)"]
    (team,) = stats.display_totals()
    assert team["owner"] == "(all)"
    assert team["calls"] == 1 and team["uncounted"] == 1
    assert [r["owner"] for r in stats.total_records()] == ["(all)"]
    assert "(all)" not in {r["owner"] for r in records}
    text = str(stats)
    assert "1 counted, 1 uncounted (unknown number 1)" in text
    assert "(all)" in text
    assert "<table" in stats._repr_html_()


def test_protocol_alike_rows_are_accepted() -> None:
    Row = namedtuple("Row", "owner contact_id disposition talk_seconds ring_seconds started_at")
    rows = [
        Row("ann", "c", "answered", 60, 3, datetime(2026, 1, 1, tzinfo=UTC)),
        Row("ann", None, "answered", 30, 3, datetime(2026, 1, 1, tzinfo=UTC)),
    ]
    stats = call_stats(iter(rows))
    assert (stats.calls, stats.uncounted, stats.team.talk_seconds) == (1, 1, 60)


def test_bad_arguments_and_rows_are_refused() -> None:
    with pytest.raises(ValidationError, match="by"):
        call_stats([], by="owner name")
    with pytest.raises(ValidationError, match="period"):
        call_stats([], period="week")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="fiscal_year_start"):
        call_stats([], fiscal_year_start=13)
    with pytest.raises(InvalidTypeError, match="directory"):
        call_stats([], directory={})  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="tz"):
        call_stats([], tz="Asia/Shanghai")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="period"):
        call_stats([]).by_period()
    Row = namedtuple("Row", "owner contact_id disposition talk_seconds ring_seconds started_at")
    naive = Row("ann", "c", "answered", 1, 0, datetime(2026, 1, 1))
    with pytest.raises(ValidationError, match="started_at"):
        call_stats([naive], period="month")
    with pytest.raises(ValidationError, match="talk_seconds"):
        call_stats([Row("ann", "c", "answered", -1, 0, datetime(2026, 1, 1, tzinfo=UTC))])
    with pytest.raises(InvalidTypeError):
        call_stats([object()])


def test_empty_input_gives_an_empty_table() -> None:
    stats = call_stats([])
    assert stats.team == CallGroupStats()
    assert stats.to_records() == []
    assert stats.total_calls == 0
    assert "0 counted, 0 uncounted" in str(stats)
