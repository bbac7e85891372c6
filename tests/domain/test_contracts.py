"""Contracts: made from approved quotes, amount = the quote lines, draft -> review -> formal, frozen."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from salesflow.domain.catalog import Bundle, BundleComponent, Catalog, Product
from salesflow.domain.contracts import SIGNED_STATES, Contract, ContractState
from salesflow.domain.money import Money
from salesflow.domain.quotes import Quote, QuoteState
from salesflow.errors import (
    ContractLockedError,
    CurrencyMismatchError,
    InvalidTypeError,
    NotFoundError,
    TransitionNotAllowedError,
    ValidationError,
)
from salesflow.storage.codec import dumps, loads
from salesflow.testing.quote_strategies import quotes

DAY = date(2026, 3, 2)
SIGNED = date(2026, 4, 1)


def cny(amount: str) -> Money:
    return Money.of(amount, "CNY")


CATALOG = Catalog(
    products=[
        Product(sku="POWDER", name="Milk powder campaign", list_price=cny("120000.00")),
        Product(sku="POSTER", name="Poster", list_price=cny("19.99")),
        Product(sku="HOUR", name="Consulting hour", list_price=cny("300.00")),
        Product(sku="USD", name="Dollar item", list_price=Money.of("1.00", "USD")),
    ],
    bundles=[
        Bundle(
            sku="KIT",
            name="Store kit",
            price=cny("999.00"),
            components=[BundleComponent("POSTER", 10), BundleComponent("HOUR", 2)],
        )
    ],
)


def draft_quote(**changes: Any) -> Quote:
    quote = Quote(
        id="Q-7", owner="ann", currency="CNY", quoted_on=DAY, opportunity_id="op-7"
    ).add_lines(
        CATALOG,
        [
            {"sku": "POWDER", "quantity": 1, "discount": "3"},
            {"sku": "POSTER", "quantity": 250},
            {"sku": "KIT", "quantity": 3},
        ],
    )
    quote = quote.set_tax_rate(6)
    return attrs.evolve(quote, **changes) if changes else quote


def approved(quote: Quote | None = None) -> Quote:
    return (draft_quote() if quote is None else quote).submit_for_approval().approve()


def contract(**kwargs: Any) -> Contract:
    return Contract.from_quote(approved(), id="C-1", account="acme", **kwargs)


def formal() -> Contract:
    return contract().submit().make_formal(SIGNED)


# -- creation and amount ---------------------------------------------------------------------------


def test_a_contract_is_made_from_an_approved_quote_as_a_draft_holding_a_copy_of_it() -> None:
    quote = approved()
    made = Contract.from_quote(quote, id="C-1", team="east", account="acme")
    assert made.state is ContractState.DRAFT
    assert made.version == 1
    assert made.owner == "ann"  # the quote's owner unless named
    assert made.opportunity_id == "op-7"
    assert made.quote == quote
    assert made.currency == "CNY"
    assert made.signed_on is None
    assert made.rejection_reason is None
    assert [line.id for line in made.lines] == ["L1", "L2", "L3.1", "L3.2"]
    assert made.line("L3.2").sku == "HOUR"
    assert Contract.from_quote(quote, id="C-2", owner="bob").owner == "bob"


def test_an_accepted_quote_makes_a_contract_too() -> None:
    assert Contract.from_quote(approved().accept(), id="C-1").state is ContractState.DRAFT


@pytest.mark.parametrize(
    "quote",
    [
        draft_quote(),
        draft_quote().submit_for_approval(),
        draft_quote().submit_for_approval().reject("too cheap"),
    ],
    ids=["draft", "pending", "rejected"],
)
def test_only_an_approved_or_accepted_quote_makes_a_contract(quote: Quote) -> None:
    with pytest.raises(TransitionNotAllowedError) as info:
        Contract.from_quote(quote, id="C-1")
    assert info.value.state == quote.state.value
    assert info.value.subject == "quote 'Q-7'"


def test_a_quote_without_lines_or_something_else_is_refused() -> None:
    empty = attrs.evolve(
        Quote(id="Q-0", owner="ann", currency="CNY", quoted_on=DAY), state=QuoteState.APPROVED
    )
    with pytest.raises(ValidationError, match="at least one line"):
        Contract.from_quote(empty, id="C-1")
    with pytest.raises(InvalidTypeError):
        Contract.from_quote({"id": "Q-7"}, id="C-1")  # type: ignore[arg-type]


def test_the_amount_is_exactly_the_sum_of_the_quote_lines_tax_included() -> None:
    made = contract()
    quote = made.quote
    by_hand = sum((line.net.amount + line.tax.amount for line in made.lines), Decimal(0))
    assert made.amount == Money(by_hand, "CNY")
    assert made.amount == quote.total
    assert made.net_amount == quote.net_total
    assert made.tax == quote.tax
    assert made.amount == made.net_amount + made.tax
    # 116400 + 4997.50 + 3 x 999 = 124394.50 net, 6 % tax 7463.67 -> 131858.17
    assert made.net_amount == cny("124394.50")
    assert made.amount == cny("131858.17")


@given(quotes(currency=None))
def test_the_amount_is_the_sum_of_the_lines_for_any_quote(quote: Quote) -> None:
    made = Contract.from_quote(quote.submit_for_approval().approve(), id="C-1")
    lines = sum((line.net.amount + line.tax.amount for line in made.lines), Decimal(0))
    assert made.amount.amount == lines
    assert made.amount.currency == quote.currency
    assert made.amount.is_rounded()


def test_the_constructor_refuses_an_amount_that_is_not_the_quotes_total() -> None:
    quote = approved()
    with pytest.raises(ValidationError, match="quote's total") as info:
        Contract(id="C-1", owner="ann", quote=quote, amount=quote.total + cny("0.01"))
    assert info.value.field == "amount"
    with pytest.raises(CurrencyMismatchError):
        Contract(id="C-1", owner="ann", quote=quote, currency="USD")
    with pytest.raises(ValidationError, match="approved or accepted"):
        Contract(id="C-1", owner="ann", quote=draft_quote())
    with pytest.raises(ValidationError, match="opportunity_id"):
        Contract.from_quote(quote, id="C-1", opportunity_id="op-other")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": ""}, "id"),
        ({"owner": " "}, "owner"),
        ({"team": ""}, "team"),
        ({"terms": 7}, "terms"),
        ({"version": 0}, "version"),
        ({"state": "signed"}, "state"),
        ({"signed_on": SIGNED}, "signed_on"),  # a draft has no signing date
        ({"rejection_reason": "no"}, None),  # fine in draft
        ({"state": "formal"}, "signed_on"),  # formal needs one
        ({"state": "in_review", "rejection_reason": "no"}, "rejection_reason"),
        ({"state": "formal", "signed_on": SIGNED, "ended_on": SIGNED}, "ended_on"),
        ({"state": "terminated", "signed_on": SIGNED, "ended_on": SIGNED}, "end_reason"),
        (
            {"state": "expired", "signed_on": SIGNED, "ended_on": date(2026, 3, 1)},
            "ended_on",
        ),
    ],
)
def test_the_constructor_checks_every_field_and_the_state_rules(
    changes: dict[str, Any], field: str | None
) -> None:
    values: dict[str, Any] = {"id": "C-1", "owner": "ann", "quote": approved(), **changes}
    if field is None:
        Contract(**values)
        return
    with pytest.raises(ValidationError) as info:
        Contract(**values)
    assert info.value.field == field


# -- revising in draft ----------------------------------------------------------------------------


def test_a_draft_is_revised_with_a_new_version_of_its_quote_and_the_amount_follows() -> None:
    made = contract()
    bigger = approved(made.quote.set_quantity("L2", 500))
    revised = made.revise(bigger)
    assert revised.version == 2
    assert revised.quote == bigger
    assert revised.amount == bigger.total
    assert revised.amount - made.amount == cny("5297.35")  # 250 posters at 19.99, 6 % tax
    assert made.version == 1  # the original is untouched
    assert revised.revise(bigger) is revised  # nothing changed, no new version


def test_other_content_is_revised_in_draft_too() -> None:
    made = contract(terms="Message: replaces breast milk for babies under one")
    revised = made.revise(terms="Message: nutrition for babies whose mothers lack milk")
    assert revised.version == 2
    assert revised.terms.endswith("lack milk")
    moved = revised.revise(owner="bob", team="east", account="acme-cn")
    assert (moved.owner, moved.team, moved.account, moved.version) == ("bob", "east", "acme-cn", 3)
    assert moved.revise(team=None).team is None
    assert moved.revise(owner="bob") is moved
    with pytest.raises(ValidationError):
        made.revise(owner="")


def test_a_revision_must_be_the_same_approved_quote() -> None:
    made = contract()
    with pytest.raises(TransitionNotAllowedError):
        made.revise(made.quote.set_quantity("L2", 500))  # back in draft: not approved
    other = approved(draft_quote(id="Q-8"))
    with pytest.raises(ValidationError, match="own quote"):
        made.revise(other)


def test_a_revision_keeps_the_rejection_reason_until_the_next_submission() -> None:
    rejected = contract().submit().return_to_draft("the message is misleading")
    revised = rejected.revise(terms="new message")
    assert revised.rejection_reason == "the message is misleading"
    assert revised.submit().rejection_reason is None


def test_in_review_the_contract_is_locked() -> None:
    reviewing = contract().submit()
    with pytest.raises(ContractLockedError) as info:
        reviewing.revise(approved(reviewing.quote.set_quantity("L2", 500)))
    assert (info.value.contract, info.value.state) == ("C-1", "in_review")
    assert info.value.change == "change its quote and amount"
    assert "withdraw or reject" in str(info.value)
    with pytest.raises(ContractLockedError):
        reviewing.revise(terms="anything")


@pytest.mark.parametrize(
    "attempt",
    [
        lambda c: c.revise(approved(c.quote.set_quantity("L2", 500))),
        lambda c: c.revise(c.quote),  # even a revision that would change nothing
        lambda c: c.revise(owner="bob"),
        lambda c: c.revise(team="west"),
        lambda c: c.revise(account="other"),
        lambda c: c.revise(terms="x"),
        lambda c: c.revise(opportunity_id="op-9"),
        lambda c: c.revise(),
    ],
    ids=["quote", "same-quote", "owner", "team", "account", "terms", "opportunity", "nothing"],
)
@pytest.mark.parametrize("ended", ["formal", "terminated", "expired"])
def test_a_signed_contract_is_frozen_whatever_the_change(attempt: Any, ended: str) -> None:
    signed = formal()
    if ended == "terminated":
        signed = signed.terminate(date(2026, 9, 1), "customer insolvent")
    elif ended == "expired":
        signed = signed.expire(date(2027, 4, 1))
    with pytest.raises(ContractLockedError) as info:
        attempt(signed)
    assert info.value.state == ended
    assert info.value.contract == "C-1"
    assert "frozen" in str(info.value)


# -- the lifecycle --------------------------------------------------------------------------------


def test_the_seed_story_rejected_revised_resubmitted_and_formal() -> None:
    draft = contract(terms="Promotion message: replaces breast milk for babies under one")
    reviewing = draft.submit()
    assert reviewing.state is ContractState.IN_REVIEW
    hash_submitted = reviewing.content_hash()
    back = reviewing.return_to_draft("misleading claim: the project cannot be delivered as worded")
    assert back.state is ContractState.DRAFT
    assert back.rejection_reason.startswith("misleading claim")
    fixed = back.revise(terms="Promotion message: nutrition for babies whose mothers lack milk")
    assert fixed.content_hash() != hash_submitted
    resubmitted = fixed.submit()
    assert resubmitted.rejection_reason is None
    signed = resubmitted.make_formal(SIGNED)
    assert signed.state is ContractState.FORMAL
    assert signed.signed_on == SIGNED
    assert signed.is_signed and signed.is_locked
    assert signed.version == 2
    with pytest.raises(ContractLockedError, match="frozen"):
        signed.revise(approved(signed.quote.set_quantity("L1", 2)))


def test_withdrawing_returns_to_draft_without_a_reason() -> None:
    back = contract().submit().withdraw()
    assert back.state is ContractState.DRAFT
    assert back.rejection_reason is None


def test_state_changes_keep_the_version_and_the_content() -> None:
    made = contract()
    for moved in (made.submit(), made.submit().make_formal(SIGNED), made.submit().withdraw()):
        assert moved.version == made.version
        assert moved.amount == made.amount
        assert moved.content_hash() == made.content_hash()


def test_terminating_or_expiring_records_the_end_and_keeps_amount_and_lines() -> None:
    signed = formal()
    ended = signed.terminate("2026-09-01", "customer insolvent")
    assert ended.state is ContractState.TERMINATED
    assert (ended.ended_on, ended.end_reason) == (date(2026, 9, 1), "customer insolvent")
    assert (ended.amount, ended.lines, ended.signed_on) == (
        signed.amount,
        signed.lines,
        signed.signed_on,
    )
    expired = signed.expire(date(2027, 4, 1))
    assert expired.state is ContractState.EXPIRED
    assert expired.ended_on == date(2027, 4, 1)
    assert expired.end_reason is None
    assert expired.amount == signed.amount
    assert {ContractState.FORMAL, ContractState.TERMINATED, ContractState.EXPIRED} == SIGNED_STATES


def test_an_end_before_signing_or_without_a_reason_is_refused() -> None:
    signed = formal()
    with pytest.raises(ValidationError, match="signing date"):
        signed.expire(date(2026, 3, 31))
    with pytest.raises(ValidationError, match="reason"):
        signed.terminate(date(2026, 9, 1), " ")
    with pytest.raises(ValidationError, match="reason"):
        contract().submit().return_to_draft("")
    with pytest.raises(InvalidTypeError):
        contract().submit().make_formal(1)  # type: ignore[arg-type]


_ACTIONS = {
    "submit": lambda c: c.submit(),
    "reject": lambda c: c.return_to_draft("no"),
    "withdraw": lambda c: c.withdraw(),
    "make formal": lambda c: c.make_formal(SIGNED),
    "terminate": lambda c: c.terminate(date(2026, 9, 1), "why"),
    "expire": lambda c: c.expire(date(2026, 9, 1)),
}
_ALLOWED = {
    "draft": {"submit"},
    "in_review": {"reject", "withdraw", "make formal"},
    "formal": {"terminate", "expire"},
    "terminated": set(),
    "expired": set(),
}


def _in_state(state: str) -> Contract:
    made = contract()
    if state == "draft":
        return made
    made = made.submit()
    if state == "in_review":
        return made
    made = made.make_formal(SIGNED)
    if state == "formal":
        return made
    return made.terminate(date(2026, 9, 1), "x") if state == "terminated" else made.expire(SIGNED)


@pytest.mark.parametrize("state", list(_ALLOWED))
@pytest.mark.parametrize("action", list(_ACTIONS))
def test_every_transition_outside_the_lifecycle_is_refused(state: str, action: str) -> None:
    subject = _in_state(state)
    before = subject.to_dict()
    if action in _ALLOWED[state]:
        _ACTIONS[action](subject)
        return
    with pytest.raises(TransitionNotAllowedError) as info:
        _ACTIONS[action](subject)
    assert info.value.state == state
    assert info.value.subject == "contract 'C-1'"
    assert subject.to_dict() == before


# -- content hash and round trips -----------------------------------------------------------------


def test_the_content_hash_covers_what_approvers_approve_and_nothing_else() -> None:
    made = contract()
    same = Contract.from_quote(approved(), id="C-1", account="acme")
    assert made.content_hash() == same.content_hash()
    assert len(made.content_hash()) == 64
    assert made.content_hash() == made.revise(team="east").content_hash()  # not a party
    changed = [
        made.revise(approved(made.quote.set_quantity("L2", 251))),
        made.revise(owner="bob"),
        made.revise(account="other"),
        made.revise(terms="x"),
        Contract.from_quote(approved(), id="C-2", account="acme"),
    ]
    hashes = {c.content_hash() for c in changed}
    assert len(hashes) == len(changed)
    assert made.content_hash() not in hashes


def test_dicts_and_the_storage_codec_read_back_every_state() -> None:
    for state in _ALLOWED:
        subject = _in_state(state).revise(team="east") if state == "draft" else _in_state(state)
        assert Contract.from_dict(subject.to_dict()) == subject
        assert loads(dumps(subject), Contract) == subject
    with pytest.raises(ValidationError, match="only the keys"):
        Contract.from_dict({**contract().to_dict(), "colour": "red"})
    with pytest.raises(ValidationError):
        Contract.from_dict({"id": "C-1"})
    tampered = {**formal().to_dict(), "amount": "1.00"}
    with pytest.raises(ValidationError, match="quote's total"):
        Contract.from_dict(tampered)


def test_a_missing_line_is_not_found() -> None:
    with pytest.raises(NotFoundError):
        contract().line("L9")


# -- random action sequences ------------------------------------------------------------------------

QUANTITIES = (1, 2, 5)


def _variant(quantity: int) -> Quote:
    return approved(draft_quote().set_quantity("L1", quantity))


VARIANTS = {q: _variant(q) for q in QUANTITIES}


class ContractMachine(RuleBasedStateMachine):
    """Random lifecycle actions on one contract; a model says what must hold after each."""

    def __init__(self) -> None:
        super().__init__()
        self.contract = Contract.from_quote(VARIANTS[1], id="C-1", owner="ann")
        self.model_state = "draft"
        self.model_version = 1
        self.signed: tuple[Money, Any, str] | None = None
        self.model_reason: str | None = None

    def _refused(self, action: Any, error: type[Exception]) -> None:
        before = self.contract
        with pytest.raises(error):
            action()
        assert self.contract is before

    @rule(quantity=st.sampled_from(QUANTITIES))
    def revise(self, quantity: int) -> None:
        quote = VARIANTS[quantity]
        if self.model_state != "draft":
            self._refused(lambda: self.contract.revise(quote), ContractLockedError)
            return
        changed = quote != self.contract.quote
        self.contract = self.contract.revise(quote)
        self.model_version += changed

    @rule(terms=st.sampled_from(["", "a", "b"]))
    def revise_terms(self, terms: str) -> None:
        if self.model_state != "draft":
            self._refused(lambda: self.contract.revise(terms=terms), ContractLockedError)
            return
        changed = terms != self.contract.terms
        self.contract = self.contract.revise(terms=terms)
        self.model_version += changed

    def _move(self, action: str, allowed: str, to: str, call: Any) -> bool:
        if self.model_state != allowed:
            self._refused(call, TransitionNotAllowedError)
            return False
        self.contract = call()
        self.model_state = to
        if to == "formal":
            self.signed = (self.contract.amount, self.contract.lines, self.contract.content_hash())
        return True

    @rule()
    def submit(self) -> None:
        if self._move("submit", "draft", "in_review", self.contract.submit):
            self.model_reason = None

    @rule(reason=st.sampled_from(["too risky", "wrong message"]))
    def reject(self, reason: str) -> None:
        if self._move(
            "reject", "in_review", "draft", lambda: self.contract.return_to_draft(reason)
        ):
            self.model_reason = reason

    @rule()
    def withdraw(self) -> None:
        self._move("withdraw", "in_review", "draft", self.contract.withdraw)

    @rule()
    def make_formal(self) -> None:
        self._move("make formal", "in_review", "formal", lambda: self.contract.make_formal(SIGNED))

    @rule()
    def terminate(self) -> None:
        self._move(
            "terminate",
            "formal",
            "terminated",
            lambda: self.contract.terminate(date(2026, 5, 1), "cancelled"),
        )

    @rule()
    def expire(self) -> None:
        self._move("expire", "formal", "expired", lambda: self.contract.expire(date(2027, 5, 1)))

    @precondition(lambda self: self.signed is not None)
    @rule()
    def storage_round_trip(self) -> None:
        self.contract = loads(dumps(self.contract), Contract)

    @invariant()
    def matches_the_model(self) -> None:
        assert self.contract.state.value == self.model_state
        assert self.contract.version == self.model_version
        assert self.contract.rejection_reason == self.model_reason
        assert self.contract.is_signed == (self.model_state in {"formal", "terminated", "expired"})

    @invariant()
    def amount_is_always_the_sum_of_the_lines(self) -> None:
        lines = sum((line.net.amount + line.tax.amount for line in self.contract.lines), Decimal(0))
        assert self.contract.amount.amount == lines

    @invariant()
    def a_signed_contract_never_changes_amount_or_lines(self) -> None:
        if self.signed is not None:
            amount, lines, content = self.signed
            assert self.contract.amount == amount
            assert self.contract.lines == lines
            assert self.contract.content_hash() == content
            assert self.contract.signed_on == SIGNED


TestContractMachine = ContractMachine.TestCase
