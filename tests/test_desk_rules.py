"""Issue 14, part 6: the sales rules as stored, versioned, permission-checked configuration.

On every backend: who may change the rules, what a change records, stale versions, decisions that
keep the rules they were made under, the port's append-only history, desks that load the rules on
open, and the precedence of rules given in code.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import attrs
import pytest

from salesflow.domain.approvals import Step, Workflow
from salesflow.domain.catalog import Catalog, Category, Product
from salesflow.domain.contracts import ContractState
from salesflow.domain.discounts import DiscountPolicy
from salesflow.domain.money import Money
from salesflow.domain.opportunities import Opportunity
from salesflow.domain.quotes import Quote, QuoteState
from salesflow.domain.rules import Rules, diff_rules
from salesflow.domain.stages import StagePlan
from salesflow.errors import (
    ConcurrencyError,
    InvalidTypeError,
    NotAuthorizedError,
    ValidationError,
)
from salesflow.testing.cast import ANN, DAN, FIN, LEO, MIA, PAT, ROOT, WES
from salesflow.testing.storage import ManualClock

DAY = date(2026, 11, 2)
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def cny(amount: str) -> Money:
    return Money.of(amount, "CNY")


CATALOG = Catalog(
    categories=[Category(id="services", name="Services")],
    products=[
        Product(
            sku="SRV",
            name="Service",
            category="services",
            list_price=cny("1000.00"),
            floor_price=cny("500.00"),
        )
    ],
)

TIGHT = DiscountPolicy.from_dict(
    {
        "ladder": [
            {"role": "sales_rep", "max_line_discount": 5},
            {"role": "sales_manager", "max_line_discount": 10},
            {"role": "sales_director", "max_line_discount": 25},
        ]
    }
)
"""Version 2 of the tests' rules: a rep 5 %, a manager 10 % (the defaults: 10 % and 20 %)."""


def deal(id: str, owner: str, team: str) -> Opportunity:
    return Opportunity(
        id=id,
        owner=owner,
        team=team,
        amount=cny("25000"),
        stage="quotation",
        industry="retail",
        expected_close=date(2026, 11, 20),
    )


def quote(id: str, discount: int) -> Quote:
    draft = Quote(id=id, owner="ann", currency="CNY", quoted_on=DAY, opportunity_id="O-E")
    return draft.add_line(CATALOG, "SRV", 10, discount=discount)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def desk(open_desk: Any, clock: ManualClock) -> Any:
    """A desk with the catalog and one opportunity per team (east: ann's, west: wes's)."""
    desk = open_desk(clock=clock)
    desk.update_catalog(ROOT, CATALOG)
    desk.add_opportunity(ANN, deal("O-E", "ann", "east"))
    desk.add_opportunity(WES, deal("O-W", "wes", "west"))
    return desk


def snapshot(desk: Any) -> dict[str, Any]:
    """Everything a rules command could have changed."""
    return {
        "history": desk.rules_history(),
        "rules": desk.rules(),
        "quotes": desk.quotes(),
        "contracts": desk.contracts(),
        "approvals": desk.approvals(),
        "events": len(desk.events()),
        "in force": (desk.plan, desk.discount_policy, desk.contract_workflow),
    }


# -- who may change them -----------------------------------------------------------------------------


def test_a_desk_without_stored_rules_runs_on_the_defaults_at_version_0(desk: Any) -> None:
    rules = desk.rules(actor=ANN)
    assert rules == Rules.default()
    assert rules.version == 0
    assert desk.rules_history(actor=ANN) == []
    assert (desk.plan, desk.discount_policy, desk.contract_workflow) == (
        rules.plan,
        rules.discount_policy,
        rules.contract_workflow,
    )
    assert desk.code_rules == frozenset()


@pytest.mark.parametrize("actor", [ANN, MIA, FIN, LEO, PAT], ids=lambda a: a.id)
def test_a_change_by_anyone_but_a_director_or_admin_is_refused_and_changes_nothing(
    desk: Any, actor: Any
) -> None:
    before = snapshot(desk)
    with pytest.raises(NotAuthorizedError) as refused:
        desk.change_rules(actor, desk.plan.with_threshold(50), version=0)
    assert refused.value.action == "rules.change"
    assert snapshot(desk) == before
    assert desk.plan.threshold == Decimal(70)


def test_reading_the_rules_needs_a_role(desk: Any) -> None:
    from salesflow import Actor

    with pytest.raises(NotAuthorizedError):
        desk.rules(actor=Actor("guest"))
    with pytest.raises(NotAuthorizedError):
        desk.rules_history(actor=Actor("guest"))


def test_a_change_by_a_director_is_stored_in_force_and_audited_with_its_diff(
    desk: Any, clock: ManualClock
) -> None:
    clock.advance(hours=2)
    plan = desk.plan.with_threshold(50).with_lost_reasons(["price", "competitor", "merger"])
    result = desk.change_rules(DAN, plan, version=0, comment="merge season")
    changed = result.value
    assert changed.version == 1
    assert changed.changed_by == "dan"
    assert changed.effective_at == START.replace(hour=11)
    assert changed.comment == "merge season"
    assert changed.plan == plan
    assert desk.plan == plan
    assert desk.rules() == changed
    assert desk.rules_history() == [changed]
    (event,) = desk.events(subject_kind="rules")
    assert event == result.events[0]
    assert (event.name, event.actor, event.at) == ("rules_changed", "dan", changed.effective_at)
    assert event.data["version"] == 1
    assert event.data["previous"] == 0
    assert event.data["comment"] == "merge season"
    assert event.data["changes"] == [
        "plan.threshold: 70 -> 50",
        "plan.lost_reasons: removed 'no_budget'",
        "plan.lost_reasons: removed 'no_decision'",
        "plan.lost_reasons: removed 'timing'",
        "plan.lost_reasons: removed 'product_fit'",
        "plan.lost_reasons: removed 'other'",
        "plan.lost_reasons: added 'merger'",
    ]
    assert event.data["changes"] == list(diff_rules(Rules.default(), changed))


def test_an_admin_changes_whole_rules_and_each_part_in_turn(desk: Any) -> None:
    workflow = Workflow(
        "contract",
        (Step("sales_manager_review", ("sales_manager",)), Step("legal", ("legal",), sla_days=3)),
    )
    v1 = desk.change_rules(ROOT, attrs.evolve(desk.rules(), team_roles={"sales_rep"}), version=0)
    v2 = desk.change_rules(ROOT, TIGHT, version=1)
    v3 = desk.change_rules(ROOT, workflow, version=2)
    assert [r.version for r in desk.rules_history()] == [1, 2, 3]
    assert v1.value.team_roles == {"sales_rep"}
    assert v2.value.discount_policy == TIGHT
    assert v2.value.team_roles == {"sales_rep"}
    assert v3.value.contract_workflow == workflow
    assert desk.contract_workflow == workflow
    assert v3.events[0].data["changes"] == [
        "contract_workflow.steps: removed {name = 'project_manager_review', roles = "
        "['project_manager']}",
        "contract_workflow.steps: removed {name = 'finance_legal_review', roles = "
        "['finance', 'legal']}",
        "contract_workflow.steps: added {name = 'legal', roles = ['legal'], sla_days = 3}",
    ]


def test_a_change_to_the_same_rules_stores_nothing(desk: Any) -> None:
    desk.change_rules(DAN, TIGHT, version=0)
    before = snapshot(desk)
    result = desk.change_rules(DAN, TIGHT, version=1)
    assert result.value.version == 1
    assert result.events == ()
    assert snapshot(desk) == before


def test_a_stale_version_is_refused_and_changes_nothing(desk: Any) -> None:
    read = desk.rules()
    desk.change_rules(DAN, TIGHT, version=read.version)
    before = snapshot(desk)
    with pytest.raises(ConcurrencyError) as refused:
        desk.change_rules(ROOT, read.plan.with_threshold(30), version=read.version)
    assert "version 0" in str(refused.value)
    assert "version 1" in str(refused.value)
    assert snapshot(desk) == before


@pytest.mark.parametrize(
    ("change", "version", "error"),
    [
        ("threshold = 50", 0, InvalidTypeError),
        (None, 0, InvalidTypeError),
        (TIGHT, "0", InvalidTypeError),
        (TIGHT, True, InvalidTypeError),
    ],
)
def test_bad_changes_are_refused_and_change_nothing(
    desk: Any, change: Any, version: Any, error: type[Exception]
) -> None:
    before = snapshot(desk)
    with pytest.raises(error):
        desk.change_rules(DAN, change, version=version)
    assert snapshot(desk) == before


def test_a_comment_longer_than_a_line_is_refused(desk: Any) -> None:
    before = snapshot(desk)
    with pytest.raises(ValidationError) as refused:
        desk.change_rules(DAN, TIGHT, version=0, comment="x" * 501)
    assert refused.value.field == "comment"
    assert snapshot(desk) == before


# -- decisions keep the rules they were made under ----------------------------------------------------


def test_a_quote_approved_under_old_rules_stays_approved_when_new_ones_tighten_them(
    desk: Any,
) -> None:
    desk.change_rules(DAN, desk.plan.with_threshold(60), version=0)  # version 1: the default policy
    desk.create_quote(ANN, quote("Q-8", 8))
    approved = desk.submit_quote(ANN, "Q-8").value
    assert (approved.state, approved.rules_version) == (QuoteState.APPROVED, 1)
    (event,) = desk.events(subject_id="Q-8", name="quote_approved")
    assert event.data["rules_version"] == 1

    desk.change_rules(DAN, TIGHT, version=1)  # version 2: a rep may give 5 % only
    kept = desk.quote("Q-8")
    assert (kept.state, kept.rules_version) == (QuoteState.APPROVED, 1)
    desk.accept_quote(ANN, "Q-8")
    assert desk.quote("Q-8").state is QuoteState.ACCEPTED

    # The same discount submitted now is judged by version 2: it waits for a manager.
    desk.create_quote(ANN, quote("Q-9", 8))
    pending = desk.submit_quote(ANN, "Q-9").value
    assert (pending.state, pending.rules_version) == (QuoteState.PENDING_APPROVAL, 2)
    assert desk.approval("quote:Q-9").workflow == Workflow.one_step("sales_manager")


def test_a_pending_quote_keeps_the_route_it_got(desk: Any) -> None:
    desk.create_quote(ANN, quote("Q-15", 15))
    pending = desk.submit_quote(ANN, "Q-15").value
    assert (pending.state, pending.rules_version) == (QuoteState.PENDING_APPROVAL, 0)
    desk.change_rules(DAN, TIGHT, version=0)  # a manager may now give 10 % only
    request = desk.approval("quote:Q-15")
    assert request.workflow == Workflow.one_step("sales_manager")
    desk.approve(MIA, request.id, role="sales_manager", version=request.version)
    approved = desk.quote("Q-15")
    assert (approved.state, approved.rules_version) == (QuoteState.APPROVED, 0)


def test_an_edited_quote_forgets_the_rules_that_judged_it_and_is_judged_again(desk: Any) -> None:
    desk.create_quote(ANN, quote("Q-5", 5))
    desk.submit_quote(ANN, "Q-5")
    desk.change_rules(DAN, TIGHT, version=0)
    edited = desk.quote("Q-5").set_discount("L1", 6)
    assert edited.rules_version is None
    desk.update_quote(ANN, edited)
    resubmitted = desk.submit_quote(ANN, "Q-5").value
    assert (resubmitted.state, resubmitted.rules_version) == (QuoteState.PENDING_APPROVAL, 1)


def test_a_quote_forged_with_a_rules_version_is_refused(desk: Any) -> None:
    before = snapshot(desk)
    with pytest.raises(ValidationError) as refused:
        desk.create_quote(ANN, attrs.evolve(quote("Q-1", 0), rules_version=3))
    assert refused.value.field == "rules_version"
    assert snapshot(desk) == before


def test_a_contract_records_the_rules_its_workflow_came_from_and_keeps_its_route(
    desk: Any,
) -> None:
    desk.create_quote(ANN, quote("Q-1", 0))
    desk.submit_quote(ANN, "Q-1")
    desk.create_contract(ANN, "Q-1", id="C-1")
    submitted = desk.submit_contract(ANN, "C-1")
    assert submitted.value.rules_version == 0
    contract_event = next(e for e in submitted.events if e.name == "contract_submitted")
    assert contract_event.data["rules_version"] == 0

    # Legal alone now reviews contracts; the one in review keeps its four-role chain.
    desk.change_rules(ROOT, Workflow.one_step("legal", name="contract"), version=0)
    for actor, role in (
        (MIA, "sales_manager"),
        (PAT, "project_manager"),
        (FIN, "finance"),
        (LEO, "legal"),
    ):
        request = desk.approval("contract:C-1")
        assert request.workflow == Workflow.contract_default()
        desk.approve(actor, request.id, role=role, version=request.version)
    formal = desk.contract("C-1")
    assert (formal.state, formal.rules_version) == (ContractState.FORMAL, 0)


# -- the port keeps the history ------------------------------------------------------------------------


def test_the_history_only_grows_at_the_port(desk: Any, clock: ManualClock) -> None:
    desk.change_rules(DAN, TIGHT, version=0)
    desk.change_rules(DAN, desk.plan.with_threshold(40), version=1)
    before = snapshot(desk)
    first = desk.rules_history()[0]
    forged = attrs.evolve(first, discount_policy=Rules.default().discount_policy)
    with pytest.raises(ValidationError) as refused, desk.storage.transaction() as uow:
        uow.rules.get("1")
        uow.rules.save(forged)
    assert refused.value.field == "version"
    with pytest.raises(ValidationError), desk.storage.transaction() as uow:
        uow.rules.get("2")
        uow.rules.delete("2")
    with pytest.raises(ConcurrencyError), desk.storage.transaction() as uow:
        uow.rules.add(forged)  # version 1 again
    with pytest.raises(ValidationError), desk.storage.transaction() as uow:
        uow.rules.add(Rules.default())  # version 0 is never stored
    assert snapshot(desk) == before


# -- loading them ----------------------------------------------------------------------------------------


def test_a_desk_reopened_on_the_same_storage_loads_the_latest_rules(
    desk: Any, open_desk: Any
) -> None:
    desk.change_rules(DAN, TIGHT, version=0)
    desk.change_rules(ROOT, attrs.evolve(desk.rules(), team_roles={"sales_rep"}), version=1)
    again = open_desk()
    assert again.rules() == desk.rules()
    assert again.rules().version == 2
    assert again.discount_policy == TIGHT
    # The stored team roles are in force: a sales manager is organisation-wide now.
    assert [o.id for o in again.opportunities(actor=MIA)] == ["O-E", "O-W"]


def test_a_desk_opened_before_a_change_decides_under_the_new_rules(
    desk: Any, open_desk: Any
) -> None:
    other = open_desk()
    desk.change_rules(DAN, TIGHT, version=0)
    other.create_quote(ANN, quote("Q-8", 8))
    judged = other.submit_quote(ANN, "Q-8").value
    assert (judged.state, judged.rules_version) == (QuoteState.PENDING_APPROVAL, 1)
    assert other.discount_policy == TIGHT


def test_team_roles_from_the_rules_decide_scope(desk: Any) -> None:
    assert [o.id for o in desk.opportunities(actor=MIA)] == ["O-E"]
    desk.change_rules(DAN, attrs.evolve(desk.rules(), team_roles={"sales_rep"}), version=0)
    assert [o.id for o in desk.opportunities(actor=MIA)] == ["O-E", "O-W"]
    both = attrs.evolve(desk.rules(), team_roles={"sales_rep", "sales_manager"})
    desk.change_rules(DAN, both, version=1)
    assert [o.id for o in desk.opportunities(actor=MIA)] == ["O-E"]


def test_rules_given_in_code_win_and_their_decisions_name_no_version(
    desk: Any, open_desk: Any
) -> None:
    desk.change_rules(DAN, TIGHT, version=0)
    desk.change_rules(DAN, desk.plan.with_threshold(40), version=1)
    own = StagePlan.default()
    embedded = open_desk(plan=own, discount_policy=Rules.default().discount_policy)
    assert embedded.code_rules == {"plan", "discount_policy"}
    assert embedded.plan == own
    assert embedded.discount_policy == Rules.default().discount_policy
    assert embedded.contract_workflow == desk.contract_workflow  # not given: the stored one
    embedded.create_quote(ANN, quote("Q-8", 8))
    judged = embedded.submit_quote(ANN, "Q-8").value
    assert (judged.state, judged.rules_version) == (QuoteState.APPROVED, None)
    # A change through the embedded desk is stored, and stays out of force for what it was given.
    embedded.change_rules(DAN, own.with_threshold(20), version=2)
    assert embedded.plan == own
    assert embedded.rules().plan.threshold == 20


def test_a_team_scope_given_as_a_plugin_wins_over_the_stored_team_roles(
    desk: Any, open_desk: Any
) -> None:
    from salesflow.adapters.authorization import TeamScope

    desk.change_rules(DAN, attrs.evolve(desk.rules(), team_roles={"sales_rep"}), version=0)
    embedded = open_desk(plugins=[TeamScope()])
    assert "team_roles" in embedded.code_rules
    assert [o.id for o in embedded.opportunities(actor=MIA)] == ["O-E"]


def test_reload_rules_puts_another_desks_change_in_force(desk: Any, open_desk: Any) -> None:
    other = open_desk()
    other.change_rules(DAN, other.plan.with_threshold(40), version=0)
    assert desk.plan.threshold == 70  # reports use the rules loaded at open...
    assert desk.reload_rules().version == 1  # ...until they are loaded again
    assert desk.plan.threshold == 40


def test_who_may_change_the_rules_is_configurable(desk: Any, open_desk: Any) -> None:
    from salesflow.adapters.authorization import TeamScope

    managed = open_desk(plugins=[TeamScope(rules_roles={"sales_manager"})])
    before = snapshot(managed)
    with pytest.raises(NotAuthorizedError):
        managed.change_rules(DAN, TIGHT, version=0)
    assert snapshot(managed) == before
    assert managed.change_rules(MIA, TIGHT, version=0).value.changed_by == "mia"
    assert managed.change_rules(ROOT, Rules.default(), version=1).value.version == 2


# -- the guide and the example file ----------------------------------------------------------------------


def test_the_guide_runs() -> None:
    import re
    from pathlib import Path

    guide = Path(__file__).resolve().parent.parent / "docs" / "guide" / "rules.md"
    blocks = re.findall(r"^```python\n(.*?)^```$", guide.read_text("utf-8"), re.M | re.S)
    assert len(blocks) == 4
    namespace: dict[str, Any] = {}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"rules.md (python block {number})", "exec"), namespace)
    assert namespace["desk"].rules().version == 4


def test_the_example_file_is_the_built_in_defaults() -> None:
    from pathlib import Path

    example = Path(__file__).resolve().parent.parent / "examples" / "rules.toml"
    assert example.read_text("utf-8") == Rules.default().to_toml()


# -- the command line ------------------------------------------------------------------------------------


def test_the_command_line_exports_and_imports_the_rules(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from salesflow.cli import cli

    users = tmp_path / "users.toml"
    users.write_text(
        '[users.dan]\nroles = ["sales_director"]\n[users.ann]\nroles = ["sales_rep"]\n'
        'teams = ["east"]\n',
        encoding="utf-8",
    )
    base = ["--db", f"sqlite:///{tmp_path / 'rules.db'}", "--users", str(users)]
    runner = CliRunner()
    exported = runner.invoke(cli, [*base, "rules", "export"])
    assert exported.exit_code == 0, exported.output
    assert Rules.from_toml(exported.output) == Rules.default()

    change = tmp_path / "change.toml"
    change.write_text(Rules(plan=StagePlan.default().with_threshold(50)).to_toml(), "utf-8")
    refused = runner.invoke(cli, [*base, "rules", "import", str(change), "--as", "ann"])
    assert refused.exit_code == 1
    assert "NotAuthorizedError" in refused.output
    done = runner.invoke(
        cli, [*base, "rules", "import", str(change), "--as", "dan", "--comment", "lower"]
    )
    assert done.exit_code == 0, done.output
    assert done.output.splitlines() == [
        "stored the rules as version 1:",
        "  plan.threshold: 70 -> 50",
    ]
    again = runner.invoke(cli, [*base, "rules", "import", str(change), "--as", "dan"])
    assert "nothing changed" in again.output
    target = tmp_path / "now.toml"
    assert runner.invoke(cli, [*base, "rules", "export", str(target)]).exit_code == 0
    stored = Rules.from_toml(target.read_text("utf-8"))
    assert (stored.version, stored.changed_by, stored.comment) == (1, "dan", "lower")
    assert stored.plan.threshold == 50
    # A file of the team members alone changes them and keeps every other part.
    teams = tmp_path / "teams.toml"
    teams.write_text('[team_members]\neast = ["ann", "bob"]\nwest = ["wes"]\n', "utf-8")
    named = runner.invoke(cli, [*base, "rules", "import", str(teams), "--as", "dan"])
    assert named.output.splitlines() == [
        "stored the rules as version 2:",
        "  team_members.east: added ['ann', 'bob']",
        "  team_members.west: added ['wes']",
    ]
    assert runner.invoke(cli, [*base, "rules", "export", str(target)]).exit_code == 0
    stored = Rules.from_toml(target.read_text("utf-8"))
    assert stored.team_members == {"east": ("ann", "bob"), "west": ("wes",)}
    assert stored.plan.threshold == 50
