"""The discount policy: limits per role, the lowest sufficient approver, floors, and routing."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from salesflow.domain.actors import Actor
from salesflow.domain.catalog import Bundle, BundleComponent, Catalog, Category, PriceTier, Product
from salesflow.domain.discounts import (
    DiscountPolicy,
    ReasonKind,
    RouteDecision,
    route_quote,
)
from salesflow.domain.money import Money
from salesflow.domain.quotes import Quote, QuoteState
from salesflow.errors import (
    ForbiddenDiscountError,
    InvalidTypeError,
    TransitionNotAllowedError,
    ValidationError,
)
from salesflow.testing.quote_strategies import catalogs, policies, quotes
from salesflow.testing.strategies import percents

DAY = date(2026, 11, 26)
REP = Actor("ann", roles={"sales_rep"})
MANAGER = Actor("bo", roles={"sales_manager"})
DIRECTOR = Actor("cy", roles={"sales_director", "sales_rep"})
NOBODY = Actor("dee", roles={"finance"})
ROLES = ("sales_rep", "sales_manager", "sales_director")


def cny(amount: str) -> Money:
    return Money.of(amount, "CNY")


POLICY = DiscountPolicy.from_dict(
    {
        "ladder": [
            {"role": "sales_rep", "max_line_discount": 10},
            {
                "role": "sales_manager",
                "max_line_discount": 20,
                "max_average_discount": 15,
                "categories": {
                    "hw": {"max_line_discount": 15},
                    "laptops": {"max_line_discount": 18},
                },
            },
            {"role": "sales_director", "max_line_discount": 25},
        ]
    }
)

CATALOG = Catalog(
    categories=[
        Category(id="hw", name="Hardware"),
        Category(id="laptops", name="Laptops", parent="hw"),
        Category(id="svc", name="Services"),
    ],
    products=[
        Product(
            sku="LAPTOP",
            name="Laptop",
            category="laptops",
            list_price=cny("6000.00"),
            floor_price=cny("4800.00"),
            tiers=(PriceTier(50, cny("5400.00")),),
        ),
        Product(sku="DOCK", name="Dock", category="hw", list_price=cny("1000.00")),
        Product(sku="SETUP", name="Setup", category="svc", list_price=cny("1000.00")),
        Product(
            sku="CHIP", name="Chip", category="hw", list_price=cny("100.00"), floor_price=cny("90")
        ),
    ],
    bundles=[
        Bundle(
            sku="KIT",
            name="Kit",
            price=cny("1600.00"),
            components=[BundleComponent("DOCK", 1), BundleComponent("SETUP", 1)],
        ),
        Bundle(
            sku="CHIPS",
            name="Chips",
            price=cny("950.00"),
            components=[BundleComponent("CHIP", 10)],
        ),
    ],
)


def quote_of(*lines: tuple[str, int, str], document: str = "0") -> Quote:
    quote = Quote(id="Q-1", owner="ann", currency="CNY", quoted_on=DAY)
    quote = quote.add_lines(
        CATALOG, [{"sku": s, "quantity": q, "discount": d} for s, q, d in lines]
    )
    return quote.set_document_discount(document)


# -- loading ---------------------------------------------------------------------------------------


def test_policies_load_from_and_dump_to_plain_dicts() -> None:
    assert POLICY.roles == ROLES
    assert POLICY.limits("sales_rep").max_average_discount == 10  # defaults to the line limit
    assert DiscountPolicy.from_dict(POLICY.to_dict()) == POLICY
    assert json.loads(json.dumps(POLICY.to_dict()))["ladder"][1]["categories"]["hw"] == {
        "max_line_discount": "15"
    }
    with pytest.raises(ValidationError):
        POLICY.limits("ceo")


@given(policies(categories=True))
def test_any_policy_round_trips_through_json(policy: DiscountPolicy) -> None:
    assert DiscountPolicy.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"ladder": []}, "ladder"),
        ({"ladder": [{"role": "a"}]}, "max_line_discount"),
        ({"ladder": [{"role": "a", "max_line_discount": 10.5}]}, "float"),
        ({"ladder": [{"role": "a", "max_line_discount": 110}]}, "0 to 100"),
        ({"ladder": [{"role": "a", "max_line_discount": 10, "colour": 1}]}, "colour"),
        (
            {
                "ladder": [
                    {"role": "a", "max_line_discount": 10},
                    {"role": "a", "max_line_discount": 20},
                ]
            },
            "each role once",
        ),
        (
            {
                "ladder": [
                    {"role": "a", "max_line_discount": 20},
                    {"role": "b", "max_line_discount": 10},
                ]
            },
            "at least 20",
        ),
        (
            {
                "ladder": [
                    {
                        "role": "a",
                        "max_line_discount": 10,
                        "categories": {"x": {"max_line_discount": 9}},
                    },
                    {
                        "role": "b",
                        "max_line_discount": 20,
                        "categories": {"x": {"max_line_discount": 5}},
                    },
                ]
            },
            "category 'x'",
        ),
        ({"ladder": [{"role": "a", "max_line_discount": 1, "categories": {"x": {}}}]}, "x"),
        ({"ladder": [{"role": "a", "max_line_discount": 1}], "measure_from": "cost"}, "catalog"),
        ({"rungs": []}, "ladder"),
    ],
)
def test_bad_policies_are_refused_with_the_reason(data: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        DiscountPolicy.from_dict(data)


# -- evaluating -------------------------------------------------------------------------------------


def test_a_discount_at_the_rep_limit_is_within_the_reps_authority() -> None:
    verdict = POLICY.evaluate(quote_of(("SETUP", 3, "10")), REP)
    assert verdict.within_authority
    assert verdict.required_role == "sales_rep"
    assert not verdict.forbidden
    assert verdict.reasons == ()
    assert verdict.average_discount == 10
    assert verdict.actor_role == "sales_rep"


def test_beyond_the_reps_limit_the_lowest_sufficient_role_is_required() -> None:
    quote = quote_of(("SETUP", 3, "12"))
    verdict = POLICY.evaluate(quote, REP)
    assert not verdict.within_authority
    assert verdict.required_role == "sales_manager"
    line, average = verdict.reasons
    assert (line.kind, line.role, line.line, line.limit, line.actual, line.excess) == (
        ReasonKind.LINE_DISCOUNT,
        "sales_rep",
        "L1",
        10,
        12,
        2,
    )
    assert (average.kind, average.actual, average.excess) == (ReasonKind.AVERAGE_DISCOUNT, 12, 2)
    assert "line L1 discount 12.00% exceeds the sales_rep limit of 10.00% by 2.00" in line.message
    assert POLICY.evaluate(quote, MANAGER).within_authority
    assert POLICY.evaluate(quote, DIRECTOR).within_authority
    assert POLICY.evaluate(quote, DIRECTOR).actor_role == "sales_director"


def test_the_average_is_measured_after_the_document_discount() -> None:
    # Every line at 0 %, 12 % off the document: the rep's line limit holds, the average does not.
    verdict = POLICY.evaluate(quote_of(("SETUP", 3, "0"), document="12"), REP)
    assert verdict.average_discount == 12
    assert verdict.required_role == "sales_manager"
    assert [r.kind for r in verdict.reasons] == [ReasonKind.AVERAGE_DISCOUNT]
    # 10 % on the line and 5 % on the document: 100 - 90 x 0.95 = 14.5 % on average.
    assert POLICY.evaluate(
        quote_of(("SETUP", 3, "10"), document="5"), REP
    ).average_discount == Decimal("14.5")
    # The manager's average limit is 15: 16 % off the document needs the director.
    assert POLICY.evaluate(quote_of(("SETUP", 3, "0"), document="16"), MANAGER).required_role == (
        "sales_director"
    )


def test_a_unit_price_below_the_catalog_counts_as_discount() -> None:
    quote = Quote(id="Q", owner="ann", currency="CNY", quoted_on=DAY).add_line(
        CATALOG, "SETUP", 1, unit_price="850.00"
    )
    verdict = POLICY.evaluate(quote, REP)
    assert verdict.max_line_discount == 15
    assert verdict.required_role == "sales_manager"
    dearer = quote.set_unit_price("L1", "1100.00")
    assert POLICY.evaluate(dearer, REP).within_authority  # a mark-up is no discount


def test_tiers_and_bundles_are_catalog_prices_unless_measured_from_list() -> None:
    by_list = DiscountPolicy.from_dict({**POLICY.to_dict(), "measure_from": "list"})
    tiered = quote_of(("LAPTOP", 50, "1"))  # tier 5400 is 10 % below list, then 1 % off
    assert POLICY.evaluate(tiered, REP).within_authority
    assert by_list.evaluate(tiered, REP).max_line_discount == Decimal("10.9")
    assert by_list.evaluate(tiered, REP).required_role == "sales_manager"
    kit = quote_of(("KIT", 1, "0"))  # 1600 for 2000 of list price: 20 % saved
    assert POLICY.evaluate(kit, REP).within_authority
    assert by_list.evaluate(kit, REP).average_discount == 20
    assert by_list.evaluate(kit, REP).required_role == "sales_director"


def test_category_limits_apply_to_the_nearest_category_on_the_path() -> None:
    # Manager: 20 % in general, 15 % in hw, 18 % in laptops (a subcategory of hw). A large line
    # at 0 % keeps the average low, so that only the line limits decide.
    pad = ("SETUP", 20, "0")
    assert POLICY.evaluate(quote_of(("SETUP", 1, "17"), pad), REP).required_role == "sales_manager"
    assert POLICY.evaluate(quote_of(("DOCK", 1, "17"), pad), REP).required_role == "sales_director"
    verdict = POLICY.evaluate(quote_of(("LAPTOP", 1, "17"), pad), REP)
    assert verdict.required_role == "sales_manager"
    hw = POLICY.evaluate(quote_of(("DOCK", 1, "16"), pad), MANAGER)
    (reason, *_rest) = hw.reasons
    assert (reason.category, reason.limit) == ("hw", 15)


def test_category_average_limits_cover_the_lines_of_that_category() -> None:
    policy = DiscountPolicy.from_dict(
        {
            "ladder": [
                {
                    "role": "sales_rep",
                    "max_line_discount": 10,
                    "categories": {"hw": {"max_average_discount": 5}},
                },
                {"role": "sales_manager", "max_line_discount": 20},
            ]
        }
    )
    # Services at 10 % and docks at 8 %: the hardware average (8 %) is above 5 %.
    verdict = policy.evaluate(quote_of(("SETUP", 1, "10"), ("DOCK", 1, "8")), REP)
    assert verdict.required_role == "sales_manager"
    (reason,) = verdict.reasons
    assert (reason.kind, reason.category, reason.actual) == (
        ReasonKind.CATEGORY_AVERAGE_DISCOUNT,
        "hw",
        8,
    )
    assert policy.evaluate(quote_of(("SETUP", 1, "10"), ("DOCK", 1, "4")), REP).within_authority


def test_floors_always_hold_and_nobody_may_approve_below_them() -> None:
    # 21 % off 6000 is 4740, below the 4800 floor, though the director may give 25 %.
    verdict = POLICY.evaluate(quote_of(("LAPTOP", 1, "21")), DIRECTOR)
    assert verdict.forbidden
    assert verdict.required_role is None
    assert not verdict.within_authority
    (reason,) = verdict.reasons
    assert (reason.kind, reason.line, reason.limit, reason.actual, reason.excess, reason.unit) == (
        ReasonKind.BELOW_FLOOR,
        "L1",
        Decimal("4800.00"),
        Decimal("4740.00"),
        Decimal("60.00"),
        "CNY",
    )
    # The floor holds on the net after the document discount too: 4860 - 2 % = 4762.80.
    assert POLICY.evaluate(quote_of(("LAPTOP", 1, "19"), document="2"), DIRECTOR).forbidden
    assert not POLICY.evaluate(quote_of(("LAPTOP", 1, "19")), DIRECTOR).forbidden
    # A bundle is held to its components' floors as a whole: 950 - 6 % = 893 < 10 x 90.
    bundle = POLICY.evaluate(quote_of(("CHIPS", 1, "6")), DIRECTOR)
    assert bundle.forbidden
    assert bundle.reasons[0].line == "L1"
    assert not POLICY.evaluate(quote_of(("CHIPS", 1, "5")), DIRECTOR).forbidden


def test_beyond_the_top_role_is_forbidden_with_the_top_roles_reasons() -> None:
    verdict = POLICY.evaluate(quote_of(("SETUP", 1, "30")), REP)
    assert verdict.forbidden and verdict.required_role is None
    roles = {r.role for r in verdict.reasons}
    assert roles == {"sales_rep", "sales_director"}


def test_an_actor_without_a_role_of_the_policy_has_no_authority() -> None:
    verdict = POLICY.evaluate(quote_of(("SETUP", 1, "0")), NOBODY)
    assert not verdict.within_authority
    assert verdict.required_role == "sales_rep"
    assert [r.kind for r in verdict.reasons] == [ReasonKind.NO_ROLE]
    assert verdict.actor_role is None
    assert "no role" in verdict.reasons[0].message


def test_evaluate_checks_its_arguments() -> None:
    with pytest.raises(InvalidTypeError):
        POLICY.evaluate("Q-1", REP)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError):
        POLICY.evaluate(quote_of(("SETUP", 1, "0")), "ann")  # type: ignore[arg-type]


def test_verdicts_serialise_for_the_audit_trail() -> None:
    verdict = POLICY.evaluate(quote_of(("SETUP", 3, "12")), REP)
    data = json.loads(json.dumps(verdict.to_dict()))
    assert data["required_role"] == "sales_manager"
    assert data["reasons"][0]["line"] == "L1"
    assert Decimal(data["reasons"][0]["excess"]) == 2


# -- routing ---------------------------------------------------------------------------------------------


def test_within_authority_a_quote_is_approved_at_once() -> None:
    quote = quote_of(("SETUP", 3, "5"))
    routing = route_quote(quote, REP, POLICY)
    assert routing.decision is RouteDecision.APPROVED
    assert not routing.needs_approval
    assert routing.required_role is None
    assert routing.quote.state is QuoteState.APPROVED
    assert routing.quote.version == quote.version
    assert routing.content_hash == quote.content_hash()
    assert routing.verdict.within_authority
    assert routing.quote.accept().state is QuoteState.ACCEPTED


def test_beyond_authority_a_quote_waits_for_the_required_role() -> None:
    routing = route_quote(quote_of(("SETUP", 3, "22")), REP, POLICY)
    assert routing.decision is RouteDecision.NEEDS_APPROVAL
    assert routing.required_role == "sales_director"
    assert routing.quote.state is QuoteState.PENDING_APPROVAL
    with pytest.raises(TransitionNotAllowedError):
        routing.quote.accept()
    approved = routing.quote.approve()
    assert approved.content_hash() == routing.content_hash
    # Any change to an approved quote voids the approval and changes the hash.
    changed = approved.set_quantity("L1", 4)
    assert changed.state is QuoteState.DRAFT
    assert changed.content_hash() != routing.content_hash
    with pytest.raises(TransitionNotAllowedError):
        changed.accept()


def test_a_forbidden_quote_cannot_be_submitted() -> None:
    quote = quote_of(("LAPTOP", 1, "21"))
    with pytest.raises(ForbiddenDiscountError) as info:
        route_quote(quote, DIRECTOR, POLICY)
    assert isinstance(info.value, ValidationError)
    assert info.value.reasons[0].kind is ReasonKind.BELOW_FLOOR
    assert info.value.verdict.forbidden
    assert "below its floor of 4800.00 CNY" in str(info.value)
    assert quote.state is QuoteState.DRAFT


def test_only_drafts_and_rejected_quotes_with_lines_are_routed() -> None:
    routing = route_quote(quote_of(("SETUP", 3, "22")), REP, POLICY)
    with pytest.raises(TransitionNotAllowedError) as info:
        route_quote(routing.quote, REP, POLICY)
    assert info.value.state == "pending_approval"
    rejected = routing.quote.reject("too deep")
    assert route_quote(rejected, DIRECTOR, POLICY).quote.state is QuoteState.APPROVED
    with pytest.raises(ValidationError):
        route_quote(Quote(id="Q", owner="ann", currency="CNY", quoted_on=DAY), REP, POLICY)
    with pytest.raises(InvalidTypeError):
        route_quote(rejected, REP, POLICY.to_dict())  # type: ignore[arg-type]


# -- properties -----------------------------------------------------------------------------------------


def _rep_policy(rep: Decimal) -> DiscountPolicy:
    return DiscountPolicy.from_dict(
        {
            "ladder": [
                {"role": "sales_rep", "max_line_discount": rep},
                {"role": "sales_manager", "max_line_discount": 100},
            ]
        }
    )


@given(st.data(), percents(2), catalogs(currency=None, floors=False))
def test_within_the_reps_limit_never_needs_approval(
    data: st.DataObject, rep: Decimal, source: Catalog
) -> None:
    quote = data.draw(quotes(source, max_discount=rep, overrides=False, document_discount=False))
    verdict = _rep_policy(rep).evaluate(quote, REP)
    assert verdict.within_authority
    assert verdict.required_role == "sales_rep"
    assert route_quote(quote, REP, _rep_policy(rep)).decision is RouteDecision.APPROVED


@given(st.data(), percents(2), catalogs(currency=None, floors=False))
def test_above_the_reps_limit_always_needs_approval(
    data: st.DataObject, rep: Decimal, source: Catalog
) -> None:
    assume(rep < 100)
    quote = data.draw(quotes(source, max_discount=rep, overrides=False, document_discount=False))
    item = data.draw(st.sampled_from(quote.items))
    assume(all(line.catalog_amount for line in quote.lines if line.item_id == item.id))
    above = data.draw(percents(2).filter(lambda d: d > rep))
    verdict = _rep_policy(rep).evaluate(quote.set_discount(item.id, above), REP)
    assert not verdict.within_authority
    assert verdict.required_role == "sales_manager"
    routing = route_quote(quote.set_discount(item.id, above), REP, _rep_policy(rep))
    assert routing.required_role == "sales_manager"


@given(quotes(currency=None, max_lines=6), policies(categories=True))
def test_the_required_role_is_the_lowest_sufficient_one(
    quote: Quote, policy: DiscountPolicy
) -> None:
    verdict = policy.evaluate(quote, Actor("x", roles={"nobody"}))
    held = [policy.evaluate(quote, Actor("x", roles={role})) for role in policy.roles]
    if verdict.forbidden:
        assert verdict.required_role is None
        assert not any(v.within_authority for v in held)
        return
    assert verdict.required_role is not None
    lowest = policy.roles.index(verdict.required_role)
    assert [v.within_authority for v in held] == [i >= lowest for i in range(len(held))]
    for below in held[:lowest]:
        assert below.reasons, "a role below the required one must be told why"


@given(quotes(currency=None, max_lines=6, document_discount=False), percents(2), policies())
def test_a_document_discount_raises_the_average(
    quote: Quote, document: Decimal, policy: DiscountPolicy
) -> None:
    actor = Actor("x", roles={"sales_rep"})
    before = policy.evaluate(quote, actor).average_discount
    after = policy.evaluate(quote.set_document_discount(document), actor).average_discount
    assert after >= before
    if document and any(line.discounted for line in quote.lines):
        assume(
            any(
                line.catalog_amount if policy.measure_from == "catalog" else line.list_amount
                for line in quote.lines
            )
        )
        assert after > before
