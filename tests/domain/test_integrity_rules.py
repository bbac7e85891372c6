"""The domain rules of issue 11, under random inputs: segregation of duties, delegations that can
be revoked (and are never backdated or overlapping), and billing time that only moves forward."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesflow.domain.actors import Actor
from salesflow.domain.approvals import (
    ApprovalRequest,
    Delegation,
    DelegationState,
    Workflow,
    overlapping,
)
from salesflow.domain.billing import ContractBilling
from salesflow.domain.catalog import Catalog, Product
from salesflow.domain.contracts import Contract
from salesflow.domain.money import Money
from salesflow.domain.quotes import Quote
from salesflow.errors import NotAuthorizedError, TransitionNotAllowedError, ValidationError
from salesflow.storage import codec

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY0 = T0.date()
PEOPLE = ("ann", "bob", "cai", "dan")
LEGAL_HOLDERS = {name: Actor(name, roles={"legal"}) for name in PEOPLE}
DEPUTY = Actor("dep-wu", roles={"sales_rep"})
H = "sha256:one"

minutes = st.integers(0, 7 * 24 * 60)


def pending(
    *,
    submitter: str = "ann",
    owner: str | None = "bob",
    relaxed: bool = False,
) -> ApprovalRequest:
    workflow = attrs.evolve(Workflow.one_step("legal"), allow_self_approval=relaxed)
    request = ApprovalRequest(
        id="apr-1", subject_id="c-1", subject_kind="contract", workflow=workflow
    )
    actor = LEGAL_HOLDERS.get(submitter, Actor(submitter))
    return request.submit(actor, at=T0, content_hash=H, owner=owner).request


# -- segregation of duties ---------------------------------------------------------------------------


@given(
    submitter=st.sampled_from(PEOPLE),
    owner=st.sampled_from((None, *PEOPLE)),
    actor=st.sampled_from(PEOPLE),
    relaxed=st.booleans(),
    rejecting=st.booleans(),
)
def test_neither_owner_nor_submitter_decides_unless_the_workflow_allows_it(
    submitter: str, owner: str | None, actor: str, relaxed: bool, rejecting: bool
) -> None:
    request = pending(submitter=submitter, owner=owner, relaxed=relaxed)
    decider = LEGAL_HOLDERS[actor]
    related = tuple(
        name for name, who in (("owner", owner), ("submitter", submitter)) if who == actor
    )

    def decide() -> ApprovalRequest:
        if rejecting:
            return request.reject(
                decider, role="legal", at=T0 + timedelta(hours=1), version=1, reason="no"
            ).request
        return request.approve(
            decider, role="legal", at=T0 + timedelta(hours=1), version=1, content_hash=H
        ).request

    if related and not relaxed:
        with pytest.raises(NotAuthorizedError) as refused:
            decide()
        assert refused.value.actor == actor
        return
    decided = decide()
    assert decided.audit[-1].self_approval == (related if relaxed else ())
    assert decided.replayed() == decided
    assert ApprovalRequest.from_dict(json.loads(json.dumps(decided.to_dict()))) == decided
    assert codec.loads(codec.dumps(decided), ApprovalRequest) == decided


@given(owner=st.sampled_from(PEOPLE), delegator=st.sampled_from(PEOPLE))
def test_a_delegate_never_acts_for_the_owner(owner: str, delegator: str) -> None:
    request = pending(submitter="dan" if owner != "dan" else "cai", owner=owner)
    grant = Delegation.grant(
        LEGAL_HOLDERS[delegator], delegate=DEPUTY, role="legal", valid_from=DAY0, valid_until=DAY0
    )

    def decide() -> ApprovalRequest:
        return request.approve(
            DEPUTY, role="legal", at=T0, version=1, content_hash=H, delegations=[grant]
        ).request

    if delegator in (owner, request.submitter):
        with pytest.raises(NotAuthorizedError, match=r"who (owns|submitted) it"):
            decide()
    else:
        assert decide().audit[-1].on_behalf_of == delegator


def test_a_trail_that_hides_a_self_approval_does_not_replay() -> None:
    relaxed = pending(submitter="ann", owner="bob", relaxed=True)
    decided = relaxed.approve(
        LEGAL_HOLDERS["bob"], role="legal", at=T0, version=1, content_hash=H
    ).request
    hidden = attrs.evolve(decided.audit[-1], self_approval=())
    with pytest.raises(ValidationError, match=r"audit\[1\]"):
        ApprovalRequest.replayed(attrs.evolve(decided, audit=(decided.audit[0], hidden)))
    # The owner recorded with the submission is what the replay judges by.
    strict = pending(submitter="ann", owner="bob")
    forged = attrs.evolve(strict.audit[0], owner=None)
    assert strict.replayed() == strict
    assert attrs.evolve(strict, audit=(forged,)).replayed().owner is None


def test_a_document_stored_before_owners_were_recorded_still_reads_and_replays() -> None:
    request = pending(owner=None)
    data = json.loads(codec.dumps(request))
    del data["owner"]
    for entry in data["audit"]:
        del entry["owner"], entry["self_approval"]
    data["workflow"].pop("allow_self_approval")
    old = codec.loads(json.dumps(data), ApprovalRequest)
    assert old == request
    assert old.replayed() == old


# -- delegations -------------------------------------------------------------------------------------


@st.composite
def grants(draw: st.DrawFn) -> list[Delegation]:
    """Grants of "legal" to the deputy by random holders, some revoked at random times."""
    made = []
    for i in range(draw(st.integers(0, 5))):
        start = DAY0 + timedelta(days=draw(st.integers(0, 6)))
        grant = Delegation.grant(
            LEGAL_HOLDERS[draw(st.sampled_from(PEOPLE[1:]))],
            delegate=DEPUTY,
            role="legal",
            valid_from=start,
            valid_until=start + timedelta(days=draw(st.integers(0, 3))),
            at=T0 + timedelta(minutes=i),
        )
        if draw(st.booleans()):
            grant = grant.revoke(
                "root", at=T0 + timedelta(minutes=i + draw(minutes)), reason="lost the role"
            )
        made.append(grant)
    return made


@given(given_grants=grants(), offset=minutes)
def test_a_decision_counts_only_under_a_grant_valid_and_unrevoked_at_that_time(
    given_grants: list[Delegation], offset: int
) -> None:
    request = pending(submitter="ann", owner=None)
    when = T0 + timedelta(minutes=offset)
    valid = [
        g
        for g in given_grants
        if g.valid_from <= when.date() <= g.valid_until
        and (g.revoked_at is None or when < g.revoked_at)
    ]
    assert [g for g in given_grants if g.covers("dep-wu", "legal", when)] == valid
    assert all(g.state(when) is DelegationState.ACTIVE for g in valid)
    try:
        decided = request.approve(
            DEPUTY, role="legal", at=when, version=1, content_hash=H, delegations=given_grants
        ).request
    except NotAuthorizedError:
        assert not valid
        return
    assert valid
    assert decided.audit[-1].on_behalf_of == valid[0].delegator
    # Listing by day: a grant revoked that day no longer counts for the day.
    on_day = request.approvable_roles(DEPUTY, on=when.date(), delegations=given_grants)
    assert on_day == (
        ("legal",)
        if any(
            g.valid_from <= when.date() <= g.valid_until
            and (g.revoked_at is None or when.date() < g.revoked_at.date())
            for g in given_grants
        )
        else ()
    )


@given(
    first=st.tuples(st.integers(0, 9), st.integers(0, 4)),
    second=st.tuples(st.integers(0, 9), st.integers(0, 4)),
    same_delegator=st.booleans(),
    revoked=st.booleans(),
)
def test_grants_overlap_when_unrevoked_and_sharing_a_day_of_one_role_and_delegator(
    first: tuple[int, int], second: tuple[int, int], same_delegator: bool, revoked: bool
) -> None:
    def make(delegator: str, span: tuple[int, int], to: str) -> Delegation:
        start = DAY0 + timedelta(days=span[0])
        return Delegation.grant(
            LEGAL_HOLDERS[delegator],
            delegate=to,
            role="legal",
            valid_from=start,
            valid_until=start + timedelta(days=span[1]),
            at=T0,
        )

    a = make("ann", first, "dep-wu")
    b = make("ann" if same_delegator else "bob", second, "dep-li")
    if revoked:
        a = a.revoke("ann", at=T0)
    days_a = set(range(first[0], first[0] + first[1] + 1))
    days_b = set(range(second[0], second[0] + second[1] + 1))
    expected = same_delegator and not revoked and bool(days_a & days_b)
    assert a.overlaps(b) is expected
    assert b.overlaps(a) is expected
    assert (overlapping(b, [a]) == a) is expected


@given(start=st.integers(-5, 5))
def test_a_grant_is_never_backdated(start: int) -> None:
    valid_from = DAY0 + timedelta(days=start)

    def grant() -> Delegation:
        return Delegation.grant(
            LEGAL_HOLDERS["ann"],
            delegate=DEPUTY,
            role="legal",
            valid_from=valid_from,
            valid_until=valid_from + timedelta(days=9),
            at=T0,
        )

    if start < 0:
        with pytest.raises(ValidationError, match="backdated") as refused:
            grant()
        assert refused.value.field == "valid_from"
    else:
        assert grant().granted_at == T0


def test_a_revocation_is_kept_round_trips_and_happens_once() -> None:
    grant = Delegation.grant(
        LEGAL_HOLDERS["ann"],
        delegate=DEPUTY,
        role="legal",
        valid_from=DAY0,
        valid_until=DAY0,
        at=T0,
    )
    with pytest.raises(ValidationError, match="after the grant"):
        grant.revoke("ann", at=T0 - timedelta(seconds=1))
    revoked = grant.revoke("ann", at=T0 + timedelta(hours=1), reason="back early")
    assert revoked.id == grant.id
    assert revoked.state(T0) is DelegationState.ACTIVE
    assert revoked.state(T0 + timedelta(hours=1)) is DelegationState.REVOKED
    assert Delegation.from_dict(json.loads(json.dumps(revoked.to_dict()))) == revoked
    assert codec.loads(codec.dumps(revoked), Delegation) == revoked
    with pytest.raises(TransitionNotAllowedError):
        revoked.revoke("root", at=T0 + timedelta(hours=2))
    with pytest.raises(ValidationError):
        Delegation(**{**grant.to_dict(), "revoked_by": "ann"})  # a revoker without a time


# -- billing time ------------------------------------------------------------------------------------

SIGNED = date(2026, 4, 1)
CATALOG = Catalog(products=[Product(sku="SVC", name="Service", list_price=Money.of("10", "CNY"))])


def opened() -> ContractBilling:
    quote = (
        Quote(id="Q-1", owner="ann", currency="CNY", quoted_on=date(2026, 3, 1))
        .add_line(CATALOG, "SVC", 2)
        .add_line(CATALOG, "SVC", 3)
        .submit_for_approval()
        .approve()
    )
    contract = Contract.from_quote(quote, id="C-1", team="east").submit().make_formal(SIGNED)
    return ContractBilling.open(contract)


def progress(
    billing: ContractBilling, percent: int, when: datetime, *, correcting: bool
) -> ContractBilling:
    if correcting:
        return billing.correct_progress(
            "L1", percent, reason="re-measured", by="pm", at=when
        ).billing
    return billing.record_progress("L1", percent, at=when).billing


@given(steps=st.lists(st.tuples(st.integers(-3 * 24, 10 * 24), st.booleans()), max_size=8))
def test_progress_is_never_before_signing_and_never_back_in_time(
    steps: list[tuple[int, bool]],
) -> None:
    billing = opened()
    signing = datetime(2026, 4, 1, tzinfo=UTC)
    percent = 0
    for hours, correcting in steps:
        when = signing + timedelta(hours=hours)
        percent = min(percent + 5, 100)
        last = billing.last_progress_at
        if when.date() < SIGNED or (last is not None and when < last):
            with pytest.raises(ValidationError) as refused:
                progress(billing, percent, when, correcting=correcting)
            assert refused.value.field == "at"
            continue
        billing = progress(billing, percent, when, correcting=correcting)
        assert billing.last_progress_at == when
