"""One meaning of text: every text field refuses NUL and lone surrogates, and has a length limit.

The limits are the SQL column sizes (``salesflow.domain.checks``), so that every backend stores
exactly what the domain accepts: at the limit a value is accepted, one character beyond it refused,
with a ``ValidationError`` naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesflow.domain.actors import Actor
from salesflow.domain.approvals import (
    ApprovalEvent,
    ApprovalRequest,
    AuditEntry,
    Decision,
    Delegation,
    Step,
    Workflow,
)
from salesflow.domain.billing import (
    BillingLine,
    CreditNote,
    Invoice,
    MilestoneSpec,
    Payment,
    ProgressCorrection,
    Trigger,
)
from salesflow.domain.calls import CallRecord
from salesflow.domain.catalog import Bundle, BundleComponent, Catalog, Category, Product
from salesflow.domain.checks import (
    MAX_CODE_LENGTH,
    MAX_EVENT_DATA_BYTES,
    MAX_ID_LENGTH,
    MAX_NAME_LENGTH,
    MAX_TERMS_LENGTH,
    MAX_TEXT_LENGTH,
    check_string,
    optional_text,
    require_text,
)
from salesflow.domain.contacts import Contact
from salesflow.domain.contracts import Contract
from salesflow.domain.discounts import CategoryLimit, RoleLimits
from salesflow.domain.events import Event
from salesflow.domain.library import LibraryAuditRecord, LibraryEntry
from salesflow.domain.money import Money
from salesflow.domain.opportunities import NOTE_MAX, Opportunity, StageChange
from salesflow.domain.phones import PhoneSettings
from salesflow.domain.quotes import Quote
from salesflow.domain.stages import REASON_MAX, Stage, StagePlan
from salesflow.domain.tasks import FollowUpTask
from salesflow.errors import ValidationError

DAY = date(2026, 3, 2)
AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CNY = Money.of("100.00", "CNY")

CATALOG = Catalog(products=[Product(sku="P", name="Product", list_price=CNY)])
APPROVED = (
    Quote(id="Q-1", owner="ann", currency="CNY", quoted_on=DAY)
    .add_line(CATALOG, "P", 1)
    .submit_for_approval()
    .approve()
)
CONTRACT = Contract.from_quote(APPROVED, id="C-1")
ENTRY = LibraryEntry(call_id="c:1", recording="r.wav", curated_by="mia", curated_at=AT)
WORKFLOW = Workflow("w", [Step("review", ["finance"])])


def build(cls: Callable[..., Any], **defaults: Any) -> Callable[..., Any]:
    """A builder of ``cls`` from valid ``defaults``, with one field changed."""

    def make(**changes: Any) -> Any:
        fields = {**defaults, **changes}
        return cls(**{name: value for name, value in fields.items() if value is not attrs.NOTHING})

    return make


def evolve(value: Any) -> Callable[..., Any]:
    def make(**changes: Any) -> Any:
        return attrs.evolve(value, **changes)

    return make


opportunity = build(Opportunity, id="o-1", owner="ann", amount=CNY, stage="quotation")
contact = build(Contact, id="ct-1")
quote = build(Quote, id="Q-1", owner="ann", currency="CNY", quoted_on=DAY)
rejected_quote = build(
    Quote, id="Q-1", owner="ann", currency="CNY", quoted_on=DAY, state="rejected"
)
contracted_quote = build(
    Quote, id="Q-1", owner="ann", currency="CNY", quoted_on=DAY, state="contracted"
)
contract = evolve(CONTRACT)
cancelled_contract = evolve(CONTRACT.cancel(DAY, "the customer changed their mind"))
call = build(
    CallRecord,
    id="pbx:1",
    source="pbx",
    external_id="1",
    direction="inbound",
    from_number="1001",
    to_number="1002",
    started_at=AT,
    disposition="answered",
)
task = build(FollowUpTask, id="t-1", owner="ann", contact_id="ct-1", due=DAY)
entry = evolve(ENTRY)
audit_record = build(LibraryAuditRecord, action="unfeatured", entry=ENTRY, actor="mia", at=AT)
actor = build(Actor, id="ann")
stage = build(Stage, key="quotation", name="Quotation", probability=70)
change = build(StageChange, at=AT, from_stage="lost", to_stage="lost")
lost_change = build(StageChange, at=AT, from_stage="quotation", to_stage="lost", reason="price")
event = build(Event, name="thing_done", subject_kind="thing", subject_id="t-1", at=AT)
category = build(Category, id="cat", name="Category")
product = build(Product, sku="P", name="Product", list_price=CNY)
bundle = build(Bundle, sku="B", name="Bundle", price=CNY, components=[BundleComponent("P", 1)])
component = build(BundleComponent, sku="P", quantity=1)
category_limit = build(CategoryLimit, category="cat", max_line_discount=5)
role_limits = build(RoleLimits, role="manager", max_line_discount=5, max_average_discount=5)
step = build(Step, name="review", roles=["finance"])
workflow = build(Workflow, name="w", steps=[Step("review", ["finance"])])
delegation = build(
    Delegation,
    delegator="ann",
    delegate="bob",
    role="finance",
    valid_from=DAY,
    valid_until=DAY,
    revoked_at=AT,
    revoked_by="ann",
    revocation_reason="left",
)
decision = build(Decision, step="review", role="finance", actor="fin", at=AT)
audit_entry = build(
    AuditEntry,
    seq=1,
    at=AT,
    actor="ann",
    action="submit",
    state_before="draft",
    state_after="pending",
    version=1,
    cycle=1,
)
approval_event = build(
    ApprovalEvent,
    name="approval_submitted",
    request_id="r-1",
    subject_id="C-1",
    subject_kind="contract",
    at=AT,
    actor="ann",
    version=1,
    cycle=1,
)
request = build(
    ApprovalRequest, id="r-1", subject_id="C-1", subject_kind="contract", workflow=WORKFLOW
)
billing_line = build(BillingLine, line_id="L1", item_id="L1", sku="P", amount=CNY, quantity=1)
correction = build(
    ProgressCorrection,
    line_id="L1",
    percent_before=50,
    percent_after=40,
    delivered_before=0,
    delivered_after=0,
    reason="typo",
    by="ann",
    at=AT,
)
trigger = build(Trigger, lines=["L1"])
milestone_spec = build(MilestoneSpec, name="deposit", due_on=DAY, share=100)
invoice = build(Invoice, id="i-1", amount=CNY, issued_on=DAY, due_on=DAY)
credit_note = build(CreditNote, id="cn-1", invoice_id="i-1", amount=CNY, issued_on=DAY, reason="r")
payment = build(Payment, id="p-1", invoice_id="i-1", amount=CNY, received_on=DAY)
phone_settings = build(PhoneSettings, default_region="CN")

ID, CODE, NAME, TEXT = MAX_ID_LENGTH, MAX_CODE_LENGTH, MAX_NAME_LENGTH, MAX_TEXT_LENGTH

# (builder, field, limit, how the field takes the text): "one" is the text itself, "list" a list
# holding it (the error then names the field or an item of it).
FIELDS: list[tuple[str, Callable[..., Any], str, int, str]] = [
    ("Opportunity", opportunity, "id", ID, "one"),
    ("Opportunity", opportunity, "owner", ID, "one"),
    ("Opportunity", opportunity, "stage", ID, "one"),
    ("Opportunity", opportunity, "name", NAME, "one"),
    ("Opportunity", opportunity, "account", NAME, "one"),
    ("Opportunity", opportunity, "team", ID, "one"),
    ("Opportunity", opportunity, "industry", ID, "one"),
    ("Opportunity", opportunity, "region", ID, "one"),
    ("StageChange", change, "from_stage", ID, "one"),
    ("StageChange", change, "to_stage", ID, "one"),
    ("StageChange", lost_change, "reason", REASON_MAX, "one"),
    ("StageChange", lost_change, "note", NOTE_MAX, "one"),
    ("Stage", stage, "key", ID, "one"),
    ("Stage", stage, "name", NAME, "one"),
    ("Actor", actor, "id", ID, "one"),
    ("Actor", actor, "roles", ID, "list"),
    ("Actor", actor, "teams", ID, "list"),
    ("Event", event, "name", ID, "one"),
    ("Event", event, "subject_kind", CODE, "one"),
    ("Event", event, "subject_id", ID, "one"),
    ("Event", event, "actor", ID, "one"),
    ("Contact", contact, "id", ID, "one"),
    ("Contact", contact, "name", NAME, "one"),
    ("Contact", contact, "account", NAME, "one"),
    ("Contact", contact, "owner", ID, "one"),
    ("Contact", contact, "industry", ID, "one"),
    ("Contact", contact, "region", ID, "one"),
    ("Contact", contact, "phones", NAME, "list"),
    ("CallRecord", call, "source", ID, "one"),
    ("CallRecord", call, "external_id", ID, "one"),
    ("CallRecord", call, "id", ID, "one"),
    ("CallRecord", call, "from_number", NAME, "one"),
    ("CallRecord", call, "to_number", NAME, "one"),
    ("CallRecord", call, "owner", ID, "one"),
    ("CallRecord", call, "recording", TEXT, "one"),
    ("CallRecord", call, "contact_id", ID, "one"),
    ("CallRecord", call, "task_id", ID, "one"),
    ("CallRecord", call, "opportunity_id", ID, "one"),
    ("FollowUpTask", task, "id", ID, "one"),
    ("FollowUpTask", task, "owner", ID, "one"),
    ("FollowUpTask", task, "contact_id", ID, "one"),
    ("FollowUpTask", task, "opportunity_id", ID, "one"),
    ("FollowUpTask", task, "subject", TEXT, "one"),
    ("FollowUpTask", task, "note", TEXT, "one"),
    ("FollowUpTask", task, "call_id", ID, "one"),
    ("LibraryEntry", entry, "call_id", ID, "one"),
    ("LibraryEntry", entry, "recording", TEXT, "one"),
    ("LibraryEntry", entry, "curated_by", ID, "one"),
    ("LibraryEntry", entry, "industry", ID, "one"),
    ("LibraryEntry", entry, "region", ID, "one"),
    ("LibraryEntry", entry, "tags", NAME, "list"),
    ("LibraryEntry", entry, "note", TEXT, "one"),
    ("LibraryEntry", entry, "owner", ID, "one"),
    ("LibraryAuditRecord", audit_record, "actor", ID, "one"),
    ("LibraryAuditRecord", audit_record, "reason", TEXT, "one"),
    ("Category", category, "id", ID, "one"),
    ("Category", category, "name", NAME, "one"),
    ("Category", category, "parent", ID, "one"),
    ("Product", product, "sku", ID, "one"),
    ("Product", product, "name", NAME, "one"),
    ("Product", product, "category", ID, "one"),
    ("Bundle", bundle, "sku", ID, "one"),
    ("Bundle", bundle, "name", NAME, "one"),
    ("Bundle", bundle, "category", ID, "one"),
    ("BundleComponent", component, "sku", ID, "one"),
    ("Quote", quote, "id", ID, "one"),
    ("Quote", quote, "owner", ID, "one"),
    ("Quote", quote, "opportunity_id", ID, "one"),
    ("Quote", rejected_quote, "rejection_reason", TEXT, "one"),
    ("Quote", quote, "team", ID, "one"),
    ("Quote", contracted_quote, "contract_id", ID, "one"),
    ("CategoryLimit", category_limit, "category", ID, "one"),
    ("RoleLimits", role_limits, "role", ID, "one"),
    ("Contract", contract, "id", ID, "one"),
    ("Contract", contract, "owner", ID, "one"),
    ("Contract", contract, "team", ID, "one"),
    ("Contract", contract, "account", NAME, "one"),
    ("Contract", contract, "opportunity_id", ID, "one"),
    ("Contract", contract, "terms", MAX_TERMS_LENGTH, "one"),
    ("Contract", contract, "rejection_reason", TEXT, "one"),
    ("Contract", cancelled_contract, "end_reason", TEXT, "one"),
    ("Step", step, "name", NAME, "one"),
    ("Step", step, "roles", ID, "list"),
    ("Workflow", workflow, "name", NAME, "one"),
    ("Delegation", delegation, "delegator", ID, "one"),
    ("Delegation", delegation, "delegate", ID, "one"),
    ("Delegation", delegation, "role", ID, "one"),
    ("Delegation", delegation, "revoked_by", ID, "one"),
    ("Delegation", delegation, "revocation_reason", TEXT, "one"),
    ("Decision", decision, "step", NAME, "one"),
    ("Decision", decision, "role", ID, "one"),
    ("Decision", decision, "actor", ID, "one"),
    ("Decision", decision, "on_behalf_of", ID, "one"),
    ("Decision", decision, "comment", TEXT, "one"),
    ("AuditEntry", audit_entry, "actor", ID, "one"),
    ("AuditEntry", audit_entry, "role", ID, "one"),
    ("AuditEntry", audit_entry, "on_behalf_of", ID, "one"),
    ("AuditEntry", audit_entry, "step", NAME, "one"),
    ("AuditEntry", audit_entry, "comment", TEXT, "one"),
    ("AuditEntry", audit_entry, "content_hash", ID, "one"),
    ("AuditEntry", audit_entry, "owner", ID, "one"),
    ("ApprovalEvent", approval_event, "request_id", ID, "one"),
    ("ApprovalEvent", approval_event, "subject_id", ID, "one"),
    ("ApprovalEvent", approval_event, "subject_kind", CODE, "one"),
    ("ApprovalEvent", approval_event, "actor", ID, "one"),
    ("ApprovalEvent", approval_event, "step", NAME, "one"),
    ("ApprovalEvent", approval_event, "roles", ID, "list"),
    ("ApprovalEvent", approval_event, "comment", TEXT, "one"),
    ("ApprovalRequest", request, "id", ID, "one"),
    ("ApprovalRequest", request, "subject_id", ID, "one"),
    ("ApprovalRequest", request, "subject_kind", CODE, "one"),
    ("ApprovalRequest", request, "submitter", ID, "one"),
    ("ApprovalRequest", request, "content_hash", ID, "one"),
    ("ApprovalRequest", request, "owner", ID, "one"),
    ("BillingLine", billing_line, "line_id", ID, "one"),
    ("BillingLine", billing_line, "item_id", ID, "one"),
    ("BillingLine", billing_line, "sku", ID, "one"),
    ("ProgressCorrection", correction, "line_id", ID, "one"),
    ("ProgressCorrection", correction, "reason", TEXT, "one"),
    ("ProgressCorrection", correction, "by", ID, "one"),
    ("Trigger", trigger, "lines", ID, "list"),
    ("MilestoneSpec", milestone_spec, "name", NAME, "one"),
    ("Invoice", invoice, "id", ID, "one"),
    ("Invoice", invoice, "milestone", NAME, "one"),
    ("CreditNote", credit_note, "id", ID, "one"),
    ("CreditNote", credit_note, "invoice_id", ID, "one"),
    ("CreditNote", credit_note, "reason", TEXT, "one"),
    ("Payment", payment, "id", ID, "one"),
    ("Payment", payment, "invoice_id", ID, "one"),
    ("PhoneSettings", phone_settings, "company_numbers", NAME, "list"),
]
CASES = [pytest.param(b, f, limit, how, id=f"{cls}.{f}") for cls, b, f, limit, how in FIELDS]
LIMIT_CASES = [
    case
    for case in CASES
    # a phone number must parse; a delegation's parties make its id, which has a limit of its own
    if case.id
    not in {
        "PhoneSettings.company_numbers",
        "Delegation.delegator",
        "Delegation.delegate",
        "Delegation.role",
    }
]

UNSTORABLE = st.sampled_from(["\x00"]) | st.integers(0xD800, 0xDFFF).map(chr)
"""A NUL character or a lone surrogate."""


def with_text(how: str, text: str) -> Any:
    return [text] if how == "list" else text


def assert_names(error: ValidationError, field: str) -> None:
    assert error.field == field or error.field.startswith(f"{field}["), (error.field, field)


@pytest.mark.parametrize(("make", "field", "limit", "how"), CASES)
@given(before=st.text(max_size=8), bad=UNSTORABLE, after=st.text(max_size=8))
def test_nul_and_lone_surrogates_are_refused_by_every_text_field(
    make: Callable[..., Any], field: str, limit: int, how: str, before: str, bad: str, after: str
) -> None:
    text = before + bad + after
    with pytest.raises(ValidationError) as caught:
        make(**{field: with_text(how, text)})
    assert_names(caught.value, field)


@pytest.mark.parametrize(("make", "field", "limit", "how"), LIMIT_CASES)
def test_text_at_the_limit_is_accepted_and_one_beyond_refused(
    make: Callable[..., Any], field: str, limit: int, how: str
) -> None:
    # Two-character Han and four-byte characters count one each, as the SQL columns count them.
    longest = ("甲𝄞" * limit)[:limit]
    value = make(**{field: with_text(how, longest)})
    stored = getattr(value, field)
    if how == "list":
        assert longest in {item.casefold() for item in stored} | set(stored)
    else:
        assert stored == longest
    with pytest.raises(ValidationError) as caught:
        make(**{field: with_text(how, longest + "x")})
    assert_names(caught.value, field)


def test_a_long_value_is_shown_cut_in_the_error() -> None:
    with pytest.raises(ValidationError) as caught:
        opportunity(name="n" * 300)
    assert caught.value.value == "n" * 40 + "..."
    assert "at most 255 characters (not 300)" in str(caught.value)


@given(text=st.text(alphabet=st.characters(blacklist_characters="\x00")))
def test_text_without_nul_or_surrogates_within_the_limit_is_kept_as_given(text: str) -> None:
    assert check_string(text, "note", MAX_TEXT_LENGTH) == text
    assert optional_text(text, "name") == (text if text.strip() else None)
    if text.strip():
        assert require_text(text, "id", MAX_TEXT_LENGTH) == text


@pytest.mark.parametrize("bad", ["\x00", chr(0xD800), chr(0xDFFF)])
def test_event_data_text_follows_the_rules(bad: str) -> None:
    with pytest.raises(ValidationError) as caught:
        event(data={"comment": f"a{bad}b"})
    assert caught.value.field == "data.comment"
    with pytest.raises(ValidationError) as caught:
        event(data={f"k{bad}": 1})
    assert caught.value.field == "data key"
    with pytest.raises(ValidationError) as caught:
        event(data={"roles": ["ok", bad]})
    assert caught.value.field == "data.roles[1]"


def test_event_data_fits_mariadbs_text_column() -> None:
    # 8,192 characters of four UTF-8 bytes each, twice, is more than MariaDB's TEXT holds
    long = "𝄞" * MAX_TEXT_LENGTH
    assert event(data={"comment": long}).data == {"comment": long}
    with pytest.raises(ValidationError) as caught:
        event(data={"comment": long, "reason": long})
    assert caught.value.field == "data"
    assert f"at most {MAX_EVENT_DATA_BYTES:,} bytes" in str(caught.value)


_JSON_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | _JSON_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_JSON_TEXT, inner, max_size=4),
    max_leaves=20,
)


@given(data=st.dictionaries(_JSON_TEXT, _JSON, max_size=5))
def test_event_data_is_measured_whenever_it_might_not_fit(data: dict[str, Any]) -> None:
    # Event data is written out to be measured only when a bound of its JSON size passes the
    # limit: the bound must never be below the size written.
    from salesflow.domain.events import _check_json

    written = json.dumps(data, sort_keys=True, ensure_ascii=False).encode("utf-8")
    assert _check_json(data, "data") >= len(written)


def test_a_numbered_event_is_the_same_event_with_its_own_data() -> None:
    made = event(data={"request": "quote:Q-1", "roles": ["sales_manager"]})
    stored = made.numbered(7)
    assert stored == attrs.evolve(made, seq=7)
    assert stored.data is not made.data
    assert made.seq is None


def test_ids_made_from_other_ids_must_fit_an_id_column() -> None:
    # A call's default id is "<source>:<external_id>"
    assert len(call(id=attrs.NOTHING, source="s" * 63, external_id="e" * 64).id) == MAX_ID_LENGTH
    with pytest.raises(ValidationError) as caught:
        call(id=attrs.NOTHING, source="s" * 64, external_id="e" * 64)
    assert caught.value.field == "id"
    # A delegation's id is "<delegator>/<role>/<delegate>/<valid_from>[@<granted_at>]"
    with pytest.raises(ValidationError) as caught:
        delegation(delegator="a" * 60, delegate="b" * 60)
    assert caught.value.field == "id"


def test_a_stage_plan_refuses_unstorable_lost_reasons() -> None:
    plan = StagePlan.default()
    with pytest.raises(ValidationError) as caught:
        plan.with_lost_reasons(["price", "a\x00b"])
    assert caught.value.field == "lost_reasons[1]"
    with pytest.raises(ValidationError):
        plan.with_lost_reasons(["x" * (REASON_MAX + 1)])


def test_money_refuses_an_unstorable_currency() -> None:
    with pytest.raises(ValidationError) as caught:
        Money.of("1", "CN\x00")
    assert caught.value.field == "currency"
