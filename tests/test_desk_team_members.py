"""Team members in the rules: a sales manager sees and works on their reps' calls, tasks and
contacts.

Contacts, follow-up tasks and calls carry no team of their own; the rules' ``team_members`` put
each one in its owner's teams. On every backend: before any members are named a manager reads only
their own; once they are, the manager's call statistics are exactly the pure ``call_stats()`` of
their members' calls; another team's manager reads and changes none of them; moving a rep moves
their records; a desk opened later loads the same members; a ``TeamScope`` given in code wins.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import salesflow
from salesflow import Actor
from salesflow.adapters.telephony import CallListSource
from salesflow.analytics.calls import call_stats
from salesflow.domain.calls import CallRecord, Direction, Disposition
from salesflow.domain.catalog import Catalog, Product
from salesflow.domain.contacts import Contact
from salesflow.domain.money import Money
from salesflow.domain.opportunities import Opportunity
from salesflow.domain.phones import PhoneSettings
from salesflow.domain.quotes import Quote
from salesflow.domain.rules import Rules
from salesflow.errors import NotAuthorizedError
from salesflow.testing.cast import ANN, BOB, DAN, MIA, ROOT, WES, WIL
from salesflow.testing.storage import ManualClock

ZONE = ZoneInfo("Asia/Shanghai")
PHONES = PhoneSettings(default_region="CN")
START = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
CLOCK = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
TEAMS = {"east": ["ann", "bob"], "west": ["wes"]}
CNY_100 = Money.of("100.00", "CNY")
# Each rep's contact and the number the PBX logs for it.
NUMBERS = {"ann": "13800138000", "bob": "13911112222", "wes": "13700001111", "mia": "13612345678"}


def pbx(calls: list[CallRecord]) -> CallListSource:
    """The test PBX's calls as a source."""
    return CallListSource(calls, name="pbx")


def call(n: int, owner: str, *, answered: bool = True, inbound: bool = False) -> CallRecord:
    """Call ``n`` between ``owner`` and their own contact."""
    number = NUMBERS[owner]
    return CallRecord(
        source="pbx",
        external_id=str(n),
        direction=Direction.INBOUND if inbound else Direction.OUTBOUND,
        from_number=number if inbound else "1001",
        to_number="1001" if inbound else number,
        started_at=START + timedelta(minutes=n),
        disposition=Disposition.ANSWERED if answered else Disposition.NO_ANSWER,
        talk_seconds=60 + n if answered else 0,
        ring_seconds=5,
        owner=owner,
    )


def staffed(desk: Any) -> Any:
    """A desk with a contact per rep (and one of the manager's own) and their calls imported."""
    for owner, number in NUMBERS.items():
        rep = Actor(owner, roles={"sales_rep"})
        desk.add_contact(rep, Contact(id=f"c-{owner}", owner=owner, phones=(number,)))
    raw = [
        call(1, "ann"),
        call(2, "ann", answered=False, inbound=True),  # a missed call: an open follow-up
        call(3, "bob"),
        call(4, "bob", answered=False, inbound=True),
        call(5, "wes"),
        call(6, "wes", answered=False, inbound=True),
        call(7, "mia"),
    ]
    desk.import_calls(DAN, pbx(raw))
    return desk


@pytest.fixture
def desk(open_desk: Any) -> Any:
    return staffed(open_desk(phones=PHONES, timezone=ZONE, clock=ManualClock(CLOCK)))


def name_teams(desk: Any, members: dict[str, list[str]]) -> Rules:
    current = desk.rules()
    changed = attrs.evolve(current, team_members=members)
    result: Rules = desk.change_rules(DAN, changed, version=current.version).value
    return result


def owners(records: list[Any]) -> set[str]:
    return {r.owner for r in records}


def team_stats(desk: Any, people: set[str]) -> list[dict[str, Any]]:
    """The pure calculator over the stored calls of ``people``."""
    return call_stats([c for c in desk.calls() if c.owner in people], tz=ZONE).to_records()


def test_without_members_a_manager_reads_only_their_own_calls(desk: Any) -> None:
    assert owners(desk.calls(actor=MIA)) == {"mia"}
    assert desk.agenda(MIA).items == ()
    assert desk.call_stats(actor=MIA).to_records() == team_stats(desk, {"mia"})
    assert owners(desk.contacts(actor=MIA)) == {"mia"}
    assert desk.tasks(actor=MIA, status="open") == []


def test_a_manager_reads_their_members_calls_tasks_and_contacts(desk: Any) -> None:
    name_teams(desk, TEAMS)
    assert owners(desk.calls(actor=MIA)) == {"ann", "bob", "mia"}
    assert owners(desk.calls(actor=WIL)) == {"wes"}
    assert owners(desk.calls(actor=ANN)) == {"ann"}  # a rep still reads their own only
    assert owners(desk.calls(actor=DAN)) == {"ann", "bob", "wes", "mia"}
    assert owners(desk.contacts(actor=MIA)) == {"ann", "bob", "mia"}
    assert owners(desk.tasks(actor=MIA, status="open")) == {"ann", "bob"}
    assert owners(desk.tasks(actor=WIL, status="open")) == {"wes"}
    # R7 for a manager: exactly the pure statistics of their team's calls.
    stats = desk.call_stats(actor=MIA)
    assert stats.to_records() == team_stats(desk, {"ann", "bob", "mia"})
    assert stats.team.calls == 5
    assert desk.call_stats(actor=WIL).to_records() == team_stats(desk, {"wes"})
    # The manager's day lists the reps' overdue follow-ups, and no other team's.
    overdue = [(i.kind.value, i.owner) for i in desk.agenda(MIA).items]
    assert sorted(overdue) == [("task_overdue", "ann"), ("task_overdue", "bob")]
    assert [(i.kind.value, i.owner) for i in desk.agenda(WIL).items] == [("task_overdue", "wes")]


def test_a_members_follow_up_is_on_their_teams_agenda_whatever_team_their_deals_are_in(
    desk: Any,
) -> None:
    # bob is in east, and also sells a deal of the west team.
    west_deal = Opportunity(id="O-W", owner="bob", team="west", amount=CNY_100, stage="quotation")
    desk.add_opportunity(DAN, west_deal)
    name_teams(desk, TEAMS)
    for manager in (MIA, WIL):
        on_agenda = {i.record_id for i in desk.agenda(manager).items if i.record_kind == "task"}
        readable = {t.id for t in desk.tasks(actor=manager, status="open")}
        assert on_agenda == readable  # the agenda and the reads agree on whose they are
    assert "followup:pbx:4" in {i.record_id for i in desk.agenda(MIA).items}


def test_a_manager_works_on_their_members_tasks_and_no_one_elses(desk: Any) -> None:
    name_teams(desk, TEAMS)
    (bobs,) = desk.tasks(owner="bob", status="open")
    (wess,) = desk.tasks(owner="wes", status="open")
    assert desk.complete_task(MIA, bobs.id, note="called back").value.status.value == "done"
    before = (desk.tasks(), len(desk.events()))
    with pytest.raises(NotAuthorizedError) as refused:
        desk.complete_task(MIA, wess.id)
    assert "wes" in str(refused.value)
    assert (desk.tasks(), len(desk.events())) == before


def test_a_manager_cannot_hand_a_members_record_out_of_the_team(desk: Any) -> None:
    name_teams(desk, TEAMS)
    (bobs,) = desk.contacts(owner="bob")
    before = (desk.contacts(), desk.calls(), len(desk.events()))
    with pytest.raises(NotAuthorizedError) as refused:
        desk.update_contact(MIA, attrs.evolve(bobs, owner="wes"))
    assert "after the change" in str(refused.value)
    with pytest.raises(NotAuthorizedError):  # nor take one in from another team
        desk.update_contact(MIA, attrs.evolve(desk.contacts(owner="wes")[0], owner="ann"))
    assert (desk.contacts(), desk.calls(), len(desk.events())) == before
    handed = desk.update_contact(MIA, attrs.evolve(bobs, owner="ann")).value
    assert (handed.owner, handed.version) == ("ann", bobs.version + 1)


def test_a_quote_without_a_deal_is_decided_by_its_owners_team_once_members_are_named(
    desk: Any,
) -> None:
    catalog = Catalog(products=[Product(sku="SRV", name="Service", list_price=CNY_100)])
    desk.update_catalog(ROOT, catalog)

    def pending(id: str) -> Any:
        draft = Quote(id=id, owner="ann", currency="CNY", quoted_on=CLOCK.date())
        desk.create_quote(ANN, draft.add_line(catalog, "SRV", 10, discount=15))  # beyond 10 %
        desk.submit_quote(ANN, id)
        return desk.approval(f"quote:{id}")

    # No team of its own and no members named: any sales manager decides, as before.
    first = pending("Q-1")
    desk.approve(WIL, first.id, role="sales_manager", version=first.version)
    assert desk.quote("Q-1").state.value == "approved"
    name_teams(desk, TEAMS)
    second = pending("Q-2")
    before = (desk.approvals(), desk.quotes(), len(desk.events()))
    with pytest.raises(NotAuthorizedError):
        desk.approve(WIL, second.id, role="sales_manager", version=second.version)
    assert (desk.approvals(), desk.quotes(), len(desk.events())) == before
    assert [r.id for r in desk.waiting_for(MIA)] == [second.id]
    desk.approve(MIA, second.id, role="sales_manager", version=second.version)
    assert desk.quote("Q-2").state.value == "approved"


def test_moving_a_rep_moves_their_records_and_a_later_desk_sees_the_same(
    desk: Any, open_desk: Any
) -> None:
    name_teams(desk, TEAMS)
    moved = name_teams(desk, {"east": ["ann"], "west": ["bob", "wes"]})
    assert moved.version == 2
    event = desk.events(subject_kind="rules")[-1]
    assert event.data["changes"] == [
        "team_members.east: removed 'bob'",
        "team_members.west: added 'bob'",
    ]
    assert owners(desk.calls(actor=MIA)) == {"ann", "mia"}
    assert owners(desk.calls(actor=WIL)) == {"bob", "wes"}
    later = open_desk(phones=PHONES, timezone=ZONE)
    assert owners(later.calls(actor=WIL)) == {"bob", "wes"}
    assert later.call_stats(actor=WIL).to_records() == team_stats(later, {"bob", "wes"})
    # Naming nobody again puts every team-less record back with its owner alone.
    name_teams(desk, {})
    assert owners(desk.calls(actor=WIL)) == set()


def test_a_team_scope_given_in_code_keeps_its_own_members(desk: Any, open_desk: Any) -> None:
    from salesflow.adapters.authorization import TeamScope

    name_teams(desk, TEAMS)
    embedded = open_desk(phones=PHONES, timezone=ZONE, plugins=[TeamScope()])
    assert {"team_roles", "team_members"} <= embedded.code_rules
    assert owners(embedded.calls(actor=MIA)) == {"mia"}
    own = open_desk(
        phones=PHONES, timezone=ZONE, plugins=[TeamScope(team_members={"east": ["wes"]})]
    )
    assert owners(own.calls(actor=MIA)) == {"wes", "mia"}


def test_only_the_rules_roles_name_team_members(desk: Any) -> None:
    before = (desk.rules(), len(desk.events()))
    for actor in (MIA, ANN, BOB, WES):
        with pytest.raises(NotAuthorizedError):
            desk.change_rules(actor, Rules(team_members={"east": ["wes"]}), version=0)
    assert (desk.rules(), len(desk.events())) == before
    assert owners(desk.calls(actor=MIA)) == {"mia"}


REPS = ("ann", "bob", "wes", "mia")


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    members=st.dictionaries(
        st.sampled_from(("east", "west", "north")),
        st.lists(st.sampled_from(REPS), max_size=4),
        max_size=3,
    ),
    teams=st.frozensets(st.sampled_from(("east", "west", "north")), max_size=2),
    made=st.lists(st.sampled_from(REPS), max_size=8),
)
def test_a_managers_statistics_are_exactly_their_members_calls(
    members: dict[str, list[str]], teams: frozenset[str], made: list[str]
) -> None:
    # The in-memory backend, the reference model: whatever the members and the manager's teams,
    # the manager reads the calls of their own and of their teams' members, and nothing else.
    desk = salesflow.open(
        "memory://", phones=PHONES, timezone=ZONE, clock=ManualClock(CLOCK), load_entrypoints=False
    )
    for owner, number in NUMBERS.items():
        rep = Actor(owner, roles={"sales_rep"})
        desk.add_contact(rep, Contact(id=f"c-{owner}", owner=owner, phones=(number,)))
    desk.import_calls(DAN, pbx([call(n, owner) for n, owner in enumerate(made)]))
    if members:
        name_teams(desk, members)
    manager = Actor("kim", roles={"sales_manager"}, teams=teams)
    people = {"kim"} | {p for team in teams for p in members.get(team, ())}
    assert owners(desk.calls(actor=manager)) == {o for o in made if o in people}
    assert desk.call_stats(actor=manager).to_records() == team_stats(desk, people)
    assert desk.call_stats(actor=DAN).to_records() == team_stats(desk, set(REPS))
