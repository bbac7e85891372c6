"""The sales rules as a value: validation, TOML in and out, the diff, and the port's rules for them."""

from __future__ import annotations

import tomllib
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salesflow.domain.approvals import Step, Workflow
from salesflow.domain.discounts import DiscountPolicy
from salesflow.domain.rules import DEFAULT_TEAM_ROLES, RULE_PARTS, Rules, diff_rules
from salesflow.domain.stages import Stage, StagePlan
from salesflow.domain.toml_text import dumps as _dumps_toml
from salesflow.errors import InvalidTypeError, ValidationError
from salesflow.storage import codec
from salesflow.storage.invariants import check_rules_add, check_rules_delete, check_rules_save
from salesflow.testing.quote_strategies import policies
from salesflow.testing.strategies import aware_datetimes, percents, stage_plans

AT = datetime(2026, 11, 26, 9, 30, tzinfo=timezone(timedelta(hours=8)))

# Names with what a TOML writer must escape: quotes, backslashes, '#', '=', brackets, CJK, DEL.
_ALPHABET = st.sampled_from(list("abcXYZ 019_-\"'\\#=[]{}.,:报价单\x7fé"))
names = st.text(_ALPHABET, min_size=1, max_size=12).map(str.strip).filter(bool)
roles = st.text(st.sampled_from(list("abcdefxyz_")), min_size=1, max_size=8)


@st.composite
def workflows(draw: st.DrawFn) -> Workflow:
    step_names = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    pool = draw(st.lists(roles, min_size=len(step_names) * 2, unique=True))
    steps = []
    for i, name in enumerate(step_names):
        count = draw(st.integers(1, 2))
        sla = draw(st.none() | st.integers(0, 366))
        steps.append(Step(name, tuple(pool[2 * i : 2 * i + count]), sla_days=sla))
    return Workflow(draw(names), steps, allow_self_approval=draw(st.booleans()))


@st.composite
def named_plans(draw: st.DrawFn) -> StagePlan:
    """Stage plans with awkward names and fractional probabilities."""
    plan = draw(stage_plans())
    stages = [
        attrs.evolve(
            stage,
            name=draw(names),
            probability=draw(percents(2)) if stage.is_open else stage.probability,
        )
        for stage in plan.stages
    ]
    return StagePlan(stages, draw(percents(2)), lost_reasons=plan.lost_reasons)


@st.composite
def any_rules(draw: st.DrawFn) -> Rules:
    version = draw(st.integers(0, 10_000))
    stamp: dict[str, Any] = {}
    if version:
        stamp = {
            "changed_by": draw(roles),
            "effective_at": draw(aware_datetimes()),
            "comment": draw(st.none() | names),
        }
    return Rules(
        version=version,
        plan=draw(named_plans()),
        discount_policy=draw(policies(categories=draw(st.booleans()))),
        contract_workflow=draw(workflows()),
        team_roles=draw(st.frozensets(roles, max_size=4)),
        team_members=draw(st.dictionaries(names, st.lists(roles, max_size=4), max_size=3)),
        **stamp,
    )


# -- the value -------------------------------------------------------------------------------------


def test_the_defaults_are_version_0_with_the_default_parts() -> None:
    rules = Rules.default()
    assert rules.version == 0
    assert rules.plan == StagePlan.default()
    assert rules.contract_workflow == Workflow.contract_default()
    assert rules.discount_policy.roles == ("sales_rep", "sales_manager", "sales_director")
    assert rules.team_roles == DEFAULT_TEAM_ROLES == {"sales_rep", "sales_manager"}
    assert rules.team_members == {}
    assert (rules.changed_by, rules.effective_at, rules.comment) == (None, None, None)
    assert list(rules.parts()) == list(RULE_PARTS)


def test_a_change_is_the_next_version_stamped_with_who_and_when() -> None:
    tighter = Rules.default().with_part(StagePlan.default().with_threshold(50))
    changed = Rules.default().changed(tighter, by="dan", at=AT, comment="lower bar")
    assert (changed.version, changed.changed_by, changed.effective_at) == (1, "dan", AT)
    assert changed.plan.threshold == 50
    again = changed.changed(changed.with_part(Workflow.one_step("legal")), by="root", at=AT)
    assert again.version == 2
    assert again.plan == changed.plan
    assert again.contract_workflow == Workflow.one_step("legal")
    assert again.comment is None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"version": 0, "changed_by": "dan", "effective_at": AT}, "version"),
        ({"version": 2}, "changed_by"),
        ({"version": 2, "changed_by": "dan"}, "changed_by"),
        ({"version": -1}, "version"),
        ({"version": True}, "version"),
        ({"version": 1, "changed_by": "dan", "effective_at": datetime(2026, 1, 1)}, "effective_at"),
        ({"team_roles": [" sales_rep"]}, "team_roles"),
        ({"team_members": {" east": ["ann"]}}, "team_members"),
        ({"team_members": {"east": ["ann", ""]}}, "team_members.east"),
        ({"team_members": {"east": ["ann "]}}, "team_members.east"),
        ({"team_members": {"east": ["a\x00nn"]}}, "team_members.east"),
        ({"team_members": {"east": ["x" * 129]}}, "team_members.east"),
        ({"plan": {"threshold": 70}}, "plan"),
        ({"discount_policy": StagePlan.default()}, "discount_policy"),
        ({"contract_workflow": "contract"}, "contract_workflow"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Rules(**fields)
    assert refused.value.field == field


@pytest.mark.parametrize(
    ("members", "field"),
    [
        (["east", "ann"], "team_members"),
        ({1: ["ann"]}, "team_members"),
        ({"east": "ann"}, "team_members.east"),
        ({"east": {"ann": 1}}, "team_members.east"),
        ({"east": ["ann", 7]}, "team_members.east"),
    ],
)
def test_team_members_of_the_wrong_shape_are_refused_naming_the_team(
    members: object, field: str
) -> None:
    with pytest.raises(InvalidTypeError) as refused:
        Rules(team_members=members)
    assert refused.value.field == field


def test_team_members_are_kept_sorted_and_once_whatever_order_they_come_in() -> None:
    rules = Rules(team_members={"west": ("wes",), "east": ["bob", "ann", "bob"]})
    assert rules.team_members == {"east": ("ann", "bob"), "west": ("wes",)}
    assert list(rules.team_members) == ["east", "west"]
    assert rules == Rules(team_members={"east": {"ann", "bob"}, "west": ["wes"]})
    assert hash(rules) == hash(Rules(team_members={"east": ["ann", "bob"], "west": ["wes"]}))
    assert tomllib.loads(rules.to_toml())["team_members"] == {
        "east": ["ann", "bob"],
        "west": ["wes"],
    }


def test_rules_stored_before_team_members_existed_load_with_none() -> None:
    import json

    stored = json.loads(codec.dumps(Rules.default().changed(Rules(), by="dan", at=AT)))
    del stored["team_members"]
    loaded = codec.loads(json.dumps(stored), Rules)
    assert (loaded.version, loaded.team_members) == (1, {})


def test_a_part_of_another_type_is_refused() -> None:
    with pytest.raises(InvalidTypeError):
        Rules.default().with_part({"threshold": 50})  # type: ignore[arg-type]


# -- TOML ------------------------------------------------------------------------------------------


def test_the_defaults_round_trip_through_toml_and_read_as_a_person_would_write_them() -> None:
    text = Rules.default().to_toml()
    assert Rules.from_toml(text) == Rules.default()
    data = tomllib.loads(text)
    assert data["plan"]["stages"][3] == {
        "key": "quotation",
        "name": "Quotation",
        "probability": "70",
        "outcome": "open",
    }
    assert data["contract_workflow"]["steps"][2]["roles"] == ["finance", "legal"]
    assert data["team_roles"] == ["sales_manager", "sales_rep"]


@settings(max_examples=150, deadline=None)
@given(any_rules())
def test_any_valid_rules_round_trip_through_toml_dicts_and_storage(rules: Rules) -> None:
    text = rules.to_toml()
    assert Rules.from_toml(text) == rules
    assert Rules.from_dict(rules.to_dict()) == rules
    assert codec.loads(codec.dumps(rules), Rules) == rules


def test_a_file_with_one_part_takes_the_others_from_the_base() -> None:
    base = Rules.default().changed(
        Rules(team_roles={"sales_rep"}), by="dan", at=AT, comment="reps only"
    )
    text = """
    [discount_policy]
    [[discount_policy.ladder]]
    role = "sales_rep"
    max_line_discount = 7.5
    [[discount_policy.ladder]]
    role = "sales_manager"
    max_line_discount = 15
    """
    rules = Rules.from_toml(text, base=base)
    assert rules.discount_policy.limits("sales_rep").max_line_discount == Decimal("7.5")
    assert rules.plan == base.plan
    assert rules.team_roles == {"sales_rep"}
    assert rules.version == base.version
    assert Rules.from_toml("", base=base) == base
    # A whole file brings its own version and stamp (version 0: none).
    assert Rules.from_toml(Rules.default().to_toml(), base=base) == Rules.default()
    assert Rules.from_toml("") == Rules.default()


@pytest.mark.parametrize(
    ("text", "field", "where"),
    [
        ("plan = [", "rules", "TOML"),
        ("colour = 'red'", "rules", "colour"),
        ("team_roles = 'sales_rep'", "team_roles", "team_roles"),
        ("team_roles = [1]", "team_roles[0]", "team_roles"),
        ("team_members = ['ann']", "team_members", "team_members"),
        ("[team_members]\neast = ['ann', 2]", "team_members.east", "team_members"),
        ("[plan]\nthreshold = 70\nstages = []", "stages", "plan"),
        ("[discount_policy]\nladder = []", "ladder", "discount_policy"),
        (
            "[contract_workflow]\nname = 'c'\nsteps = [{name = 'a', roles = []}]",
            "roles",
            "steps[0]",
        ),
    ],
)
def test_bad_toml_is_refused_naming_the_place(text: str, field: str, where: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Rules.from_toml(text)
    assert refused.value.field == field
    assert where in str(refused.value)


def test_from_toml_takes_text_only() -> None:
    with pytest.raises(InvalidTypeError):
        Rules.from_toml(b"version = 1")  # type: ignore[arg-type]


def test_the_writer_escapes_what_toml_needs_and_leaves_out_none() -> None:
    data = {
        "a b": 'quote " backslash \\ tab \t del \x7f bell \x07 报价',
        "amount": Decimal("12.50"),
        "flag": True,
        "missing": None,
        "when": AT,
        "list": [1, 2],
        "inline": [[1, "x"], {"k": "v", "gone": None}],
        "table": {"nested": {"deep": 1}, "rows": [{"x": 1}, {"x": 2, "sub": {"y": 3}}]},
    }
    parsed = tomllib.loads(_dumps_toml(data))
    assert parsed == {
        "a b": data["a b"],
        "amount": "12.50",
        "flag": True,
        "when": AT,
        "list": [1, 2],
        "inline": [[1, "x"], {"k": "v"}],
        "table": {"nested": {"deep": 1}, "rows": [{"x": 1}, {"x": 2, "sub": {"y": 3}}]},
    }


@pytest.mark.parametrize("value", [0.5, object(), datetime(2026, 1, 1)])
def test_the_writer_refuses_values_toml_would_change(value: object) -> None:
    with pytest.raises((InvalidTypeError, ValidationError)):
        _dumps_toml({"x": value})


# -- the diff ----------------------------------------------------------------------------------------


def test_the_diff_names_each_change_readably() -> None:
    old = Rules.default()
    stages = list(old.plan.stages)
    stages[3] = attrs.evolve(stages[3], probability=60)
    stages.insert(2, Stage(key="demo", name="Demo", probability=40))
    stages[0], stages[1] = stages[1], stages[0]
    plan = StagePlan(stages, 60, lost_reasons=[*old.plan.lost_reasons, "merger"])
    policy = DiscountPolicy.from_dict(
        {
            "ladder": [
                {"role": "sales_rep", "max_line_discount": 8},
                {"role": "sales_manager", "max_line_discount": 20},
                {"role": "vp_sales", "max_line_discount": 30},
            ]
        }
    )
    new = Rules(
        plan=plan,
        discount_policy=policy,
        contract_workflow=Workflow.one_step("legal", name="contract"),
        team_roles={"sales_rep", "key_account"},
        team_members={"east": ["ann", "carl"]},
    )
    assert diff_rules(attrs.evolve(old, team_members={"east": ["ann", "bob"]}), new) == (
        "plan.threshold: 70 -> 60",
        "plan.stages: added {key = 'demo', name = 'Demo', probability = 40, outcome = 'open'}",
        "plan.stages['quotation'].probability: 70 -> 60",
        "plan.stages: order ['initial_contact', 'needs_analysis', 'intent_confirmed', 'quotation', "
        "'won', 'lost'] -> ['needs_analysis', 'initial_contact', 'intent_confirmed', 'quotation', "
        "'won', 'lost']",
        "plan.lost_reasons: added 'merger'",
        "discount_policy.ladder: removed {role = 'sales_director', max_line_discount = 25, "
        "max_average_discount = 25}",
        "discount_policy.ladder['sales_rep'].max_line_discount: 10 -> 8",
        "discount_policy.ladder['sales_rep'].max_average_discount: 10 -> 8",
        "discount_policy.ladder: added {role = 'vp_sales', max_line_discount = 30, "
        "max_average_discount = 30}",
        "contract_workflow.steps: removed {name = 'sales_manager_review', roles = "
        "['sales_manager']}",
        "contract_workflow.steps: removed {name = 'project_manager_review', roles = "
        "['project_manager']}",
        "contract_workflow.steps: removed {name = 'finance_legal_review', roles = "
        "['finance', 'legal']}",
        "contract_workflow.steps: added {name = 'legal_review', roles = ['legal']}",
        "team_roles: removed 'sales_manager'",
        "team_roles: added 'key_account'",
        "team_members.east: removed 'bob'",
        "team_members.east: added 'carl'",
    )
    assert diff_rules(old, new)[-1] == "team_members.east: added ['ann', 'carl']"


def test_the_diff_ignores_the_stamp() -> None:
    old = Rules.default()
    assert diff_rules(old, old.changed(old, by="dan", at=AT, comment="same")) == ()


@settings(max_examples=80, deadline=None)
@given(any_rules(), any_rules())
def test_the_diff_is_empty_exactly_when_the_parts_are_equal(a: Rules, b: Rules) -> None:
    assert diff_rules(a, a) == ()
    assert (diff_rules(a, b) == ()) == a.same_parts(b)
    assert (diff_rules(a, b) == ()) == (diff_rules(b, a) == ())


@settings(max_examples=80, deadline=None)
@given(any_rules(), st.sampled_from(RULE_PARTS))
def test_changing_one_part_shows_only_that_part_in_the_diff(rules: Rules, part: str) -> None:
    replacement = Rules.default().parts()[part]
    changed = attrs.evolve(rules, **{part: replacement})
    lines = diff_rules(rules, changed)
    assert all(line.startswith(part) for line in lines)
    assert bool(lines) == (getattr(rules, part) != replacement)


# -- the port's rules -----------------------------------------------------------------------------------


def test_the_port_adds_stamped_versions_only_and_never_changes_or_deletes_one() -> None:
    stored = Rules.default().changed(Rules.default(), by="dan", at=AT)
    check_rules_add(stored)
    check_rules_save(stored, stored)
    with pytest.raises(ValidationError) as refused:
        check_rules_add(Rules.default())
    assert refused.value.field == "version"
    with pytest.raises(ValidationError):
        check_rules_save(stored, attrs.evolve(stored, comment="rewritten"))
    with pytest.raises(ValidationError):
        check_rules_save(stored, attrs.evolve(stored, team_roles={"sales_rep"}))
    with pytest.raises(ValidationError) as refused:
        check_rules_delete(stored)
    assert "never deleted" in str(refused.value)
