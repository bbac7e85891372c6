"""Execution progress, billing plan, invoices, credit notes and payments of one signed contract
(R14, R16).

A formal contract is frozen, but its execution and its money keep moving. They live in a separate
aggregate, :class:`ContractBilling`, whose id is the contract's id (:attr:`~ContractBilling.contract_id`);
:meth:`ContractBilling.open` makes one from a signed contract and copies what it needs (owner,
currency, amount, signing date and the quote lines), so the contract itself never changes.

Rules (pinned by tests):

* **Progress** is kept per quote line (``"L1"``, ``"L3.2"``) as a percentage 0..100 and, for any
  line, a delivered quantity from 0 to the line's quantity (a whole number for *countable* lines,
  those sold in whole units). :meth:`~ContractBilling.record_progress` never lets either go down;
  :meth:`~ContractBilling.correct_progress` may move them either way, with a reason, and appends
  a :class:`ProgressCorrection` to :attr:`~ContractBilling.corrections`, which only grows.
* **Overall progress** is the line percentages weighted by the line amounts (net plus tax, the same
  basis as the contract amount), rounded half up to :data:`PROGRESS_PLACES` decimals: the only
  rounding point of progress. A contract whose lines are all free weighs its lines equally.
* **Billing plan.** :meth:`~ContractBilling.attach_plan` takes :class:`MilestoneSpec` values, each
  with a share (percent of the contract amount) or a fixed amount, a due date and optionally a
  :class:`Trigger`. :func:`allocate_milestones` turns them into :class:`Milestone` amounts: fixed
  amounts are kept, and the rest of the contract amount is split over the shares in whole minor
  units with :meth:`Money.allocate <salesflow.domain.money.Money.allocate>` (largest remainder), so
  the milestones add up to the contract amount exactly. A plan is refused unless it adds up exactly:
  shares alone must total 100; with fixed amounts, the shares must cover exactly what the fixed
  amounts leave. A plan may be replaced until one of its milestones is invoiced.
* **Triggers.** A trigger names quote lines (a bundle line such as ``"L3"`` names all its
  components) and a threshold (100 by default). When a progress update (or a plan attached late)
  brings every named line to the threshold, the milestone records when it was reached and the
  method returns a :class:`MilestoneReached` event naming the rep. A milestone is reached once;
  a later correction downwards does not take that back.
* **Money.** Invoices (for a milestone, or a free amount), credit notes (against an invoice) and
  payments (against an invoice, partial ones allowed) are in the contract's currency and in whole
  minor units. Always, and enforced on every action and at construction: invoiced net of credit
  notes <= contract amount; for each invoice, credited + paid <= invoiced; for each milestone, its
  invoices net of credit notes <= its amount; credit notes and payments are dated on or after their
  invoice, invoices on or after signing. A violation raises
  :class:`~salesflow.errors.ValidationError` (:class:`~salesflow.errors.CurrencyMismatchError` for
  another currency) and changes nothing.
* **Time.** Nothing happens to a contract before it was signed: progress and its corrections, the
  attachment of a plan (when its milestones are reached) and milestone due dates, invoices, credit
  notes and payments are dated on or after :attr:`~ContractBilling.signed_on` (a time counts on its
  date in its own offset). Progress never goes back in time: a progress update, correction or plan
  attachment dated before the billing's latest progress time
  (:attr:`~ContractBilling.last_progress_at`) is refused. Each refusal is a
  :class:`~salesflow.errors.ValidationError` naming the field, the value and the signing date (or
  the latest progress time), and changes nothing. These are checked by the actions, not when a
  stored billing is read back, so a billing written before the rule existed stays readable.

Every action returns a new billing with :attr:`~ContractBilling.version` one higher. Progress and
plan actions return a :class:`BillingResult` (the billing and the events it produced); invoice,
credit note and payment actions return the billing. Event times are timezone-aware; business dates
are dates; nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final, NamedTuple

import attrs

from salesflow.domain.checks import (
    MAX_ID_LENGTH,
    as_date,
    as_datetime,
    as_optional_datetime,
    as_optional_percent,
    as_percent,
    as_quantity,
    as_quantity_or_zero,
    as_tuple,
    check_id,
    check_instance,
    check_name,
    check_optional_name,
    check_positive,
    check_string,
    check_text,
)
from salesflow.domain.contracts import Contract
from salesflow.domain.dates import to_aware_datetime, to_date
from salesflow.domain.events import Event
from salesflow.domain.money import Money, check_currency
from salesflow.domain.numbers import (
    EXACT,
    HUNDRED,
    ZERO,
    exact_sum,
    to_amount,
    to_decimal,
    to_percent,
)
from salesflow.errors import (
    CurrencyMismatchError,
    InvalidTypeError,
    NotFoundError,
    TransitionNotAllowedError,
    ValidationError,
)

__all__ = [
    "MILESTONE_REACHED",
    "PROGRESS_PLACES",
    "BillingLine",
    "BillingResult",
    "ContractBilling",
    "CreditNote",
    "Invoice",
    "Milestone",
    "MilestoneReached",
    "MilestoneSpec",
    "Payment",
    "ProgressCorrection",
    "Trigger",
    "allocate_milestones",
]

PROGRESS_PLACES: Final = 2
"""Decimal places of :attr:`ContractBilling.progress` (rounded half up)."""

MILESTONE_REACHED: Final = "milestone_reached"
"""The name of the :class:`~salesflow.domain.events.Event` a :class:`MilestoneReached` becomes."""

# -- converters and validators ----------------------------------------------------------------------


def _check_money(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Money):
        raise InvalidTypeError(attribute.name, value, "Money")
    if value.amount < 0 or not value.is_rounded():
        raise ValidationError(
            attribute.name,
            value,
            f"an amount of zero or more in whole minor units of {value.currency}",
        )


def _check_positive_money(
    _instance: object, attribute: attrs.Attribute[Any], value: object
) -> None:
    _check_money(_instance, attribute, value)
    if isinstance(value, Money) and not value.amount:
        raise ValidationError(attribute.name, value, "an amount greater than zero")


def _check_optional_money(
    _instance: object, attribute: attrs.Attribute[Any], value: object
) -> None:
    if value is not None:
        _check_money(_instance, attribute, value)


def _to_trigger_lines(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Iterable):
        raise InvalidTypeError("lines", value, "a sequence of quote line ids")
    lines = tuple(value)
    if not lines:
        raise ValidationError("lines", lines, "at least one quote line id")
    for line in lines:
        if not isinstance(line, str) or not line.strip():
            raise ValidationError("lines", lines, "quote line ids as non-empty strings")
        check_string(line, "lines", MAX_ID_LENGTH)
    if len(set(lines)) != len(lines):
        raise ValidationError("lines", lines, "each line named once")
    return lines


_optional_trigger = attrs.validators.optional(check_instance)


def _to_threshold(value: object) -> Decimal:
    number = to_percent(value, "percent")
    if not number:
        raise ValidationError("percent", value, "a threshold above 0 and at most 100")
    return number


def _half_up(value: Fraction, places: int) -> Decimal:
    """``value`` (zero or more) rounded half up to ``places`` decimals, exactly."""
    scale = 10**places
    units = (2 * value.numerator * scale + value.denominator) // (2 * value.denominator)
    return Decimal(units).scaleb(-places)


# -- progress ----------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class BillingLine:
    """Execution of one quote line: its weight, how far it is done and how much was delivered."""

    line_id: str = attrs.field(validator=check_id)
    """The quote line (``"L1"``, ``"L3.2"``)."""
    item_id: str = attrs.field(validator=check_id)
    """The quote item it comes from (``"L3"`` for the components of bundle line L3)."""
    sku: str = attrs.field(validator=check_id)
    """The product sold."""
    amount: Money = attrs.field(validator=_check_money)
    """The line's net plus tax: its weight in the overall progress."""
    quantity: Decimal = attrs.field(converter=as_quantity)
    """Units sold on the line."""
    percent: Decimal = attrs.field(default=ZERO, converter=as_percent)
    """Percent complete, 0..100."""
    delivered: Decimal = attrs.field(default=ZERO, converter=as_quantity_or_zero)
    """Units delivered, 0..quantity (whole for a countable line)."""
    updated_at: datetime | None = attrs.field(default=None, converter=as_optional_datetime)
    """When progress or delivery last changed (``None``: never)."""

    def __attrs_post_init__(self) -> None:
        if self.delivered > self.quantity:
            raise ValidationError(
                "delivered", self.delivered, f"at most the line's quantity {self.quantity}"
            )
        if self.countable and self.delivered != self.delivered.to_integral_value():
            raise ValidationError(
                "delivered", self.delivered, f"whole units (line {self.line_id!r} is countable)"
            )

    @property
    def countable(self) -> bool:
        """Whether the line is sold in whole units, so that deliveries are counted in whole units."""
        return self.quantity == self.quantity.to_integral_value()


@attrs.frozen(kw_only=True)
class ProgressCorrection:
    """An audited correction of a line's progress or delivery (the only way either goes down)."""

    line_id: str = attrs.field(validator=check_id)
    """The corrected line."""
    percent_before: Decimal = attrs.field(converter=as_percent)
    """Percent complete before the correction."""
    percent_after: Decimal = attrs.field(converter=as_percent)
    """Percent complete after it."""
    delivered_before: Decimal = attrs.field(converter=as_quantity_or_zero)
    """Delivered units before the correction."""
    delivered_after: Decimal = attrs.field(converter=as_quantity_or_zero)
    """Delivered units after it."""
    reason: str = attrs.field(validator=check_text)
    """Why, in words."""
    by: str = attrs.field(validator=check_id)
    """Who corrected it (an actor id)."""
    at: datetime = attrs.field(converter=as_datetime)
    """When."""


# -- the billing plan ----------------------------------------------------------------------------------


@attrs.frozen
class Trigger:
    """What makes a milestone due before its date: every named line at ``percent`` or more.

    ``lines`` names quote lines (``"L3.1"``) or bundle lines (``"L3"``: all their components);
    ``percent`` defaults to 100 ("when line 3 is done").
    """

    lines: tuple[str, ...] = attrs.field(converter=_to_trigger_lines)
    percent: Decimal = attrs.field(default=HUNDRED, converter=_to_threshold)


@attrs.frozen(kw_only=True)
class MilestoneSpec:
    """A milestone as planned: a name, a due date, exactly one of ``share`` (percent of the
    contract amount) or ``amount`` (:class:`~salesflow.domain.money.Money`), and maybe a
    :class:`Trigger`. :func:`allocate_milestones` turns specs into :class:`Milestone` values."""

    name: str = attrs.field(validator=check_name)
    due_on: date = attrs.field(converter=as_date)
    share: Decimal | None = attrs.field(default=None, converter=as_optional_percent)
    amount: Money | None = attrs.field(default=None, validator=_check_optional_money)
    trigger: Trigger | None = attrs.field(
        default=None, validator=_optional_trigger, metadata={"type": Trigger}
    )

    def __attrs_post_init__(self) -> None:
        if (self.share is None) == (self.amount is None):
            raise ValidationError(
                "share",
                (self.share, self.amount),
                "exactly one of share (percent) or amount",
                where=f"milestone {self.name!r}",
            )


@attrs.frozen(kw_only=True)
class Milestone:
    """A milestone of the plan, with its exact amount; ``reached_at`` is set when its trigger was
    met."""

    name: str = attrs.field(validator=check_name)
    """Unique within the plan; invoices name it."""
    due_on: date = attrs.field(converter=as_date)
    """When it should be invoiced at the latest."""
    amount: Money = attrs.field(validator=_check_money)
    """Its part of the contract amount, whole minor units."""
    share: Decimal | None = attrs.field(default=None, converter=as_optional_percent)
    """The share it was planned with (``None`` for a fixed amount)."""
    trigger: Trigger | None = attrs.field(
        default=None, validator=_optional_trigger, metadata={"type": Trigger}
    )
    """The progress that makes it due early, if any."""
    reached_at: datetime | None = attrs.field(default=None, converter=as_optional_datetime)
    """When the trigger was met (``None``: not yet, or no trigger)."""

    def is_due(self, as_of: date) -> bool:
        """Whether it is due on ``as_of``: its date has come or its trigger was met by then (in the
        trigger time's own time zone)."""
        return self.due_on <= as_of or (
            self.reached_at is not None and self.reached_at.date() <= as_of
        )


def allocate_milestones(amount: Money, specs: Iterable[MilestoneSpec]) -> tuple[Milestone, ...]:
    """The milestones of ``specs`` with exact amounts that add up to ``amount``.

    Fixed amounts are kept; the rest of ``amount`` is split over the shares with
    :meth:`Money.allocate <salesflow.domain.money.Money.allocate>` (whole minor units, largest
    remainder, the earliest milestone winning a tie).

    Raises:
        ValidationError: no milestones, a duplicate name, or a plan that does not add up: shares
            alone must total exactly 100; with fixed amounts, ``sum(fixed) + sum(shares)% x
            amount`` must equal ``amount`` exactly.
        CurrencyMismatchError: a fixed amount in another currency.
    """
    if not isinstance(amount, Money):
        raise InvalidTypeError("amount", amount, "Money")
    if amount.amount < 0 or not amount.is_rounded():
        raise ValidationError(
            "amount", amount, f"an amount of zero or more in whole minor units of {amount.currency}"
        )
    if isinstance(specs, MilestoneSpec) or not isinstance(specs, Iterable):
        raise InvalidTypeError("milestones", specs, "a sequence of MilestoneSpec")
    plan = tuple(specs)
    if not plan:
        raise ValidationError("milestones", plan, "at least one milestone")
    names: set[str] = set()
    for i, spec in enumerate(plan):
        if not isinstance(spec, MilestoneSpec):
            raise InvalidTypeError(f"milestones[{i}]", spec, "a MilestoneSpec")
        if spec.name in names:
            raise ValidationError(f"milestones[{i}].name", spec.name, "a name used once")
        names.add(spec.name)
        if spec.amount is not None and spec.amount.currency != amount.currency:
            raise CurrencyMismatchError(
                amount.currency, spec.amount.currency, operation="plan milestones with"
            )
    fixed = exact_sum(s.amount.amount for s in plan if s.amount is not None)
    shares = [s.share for s in plan if s.share is not None]
    share_total = exact_sum(shares)
    rest = EXACT.subtract(amount.amount, fixed)
    if rest < 0:
        raise ValidationError(
            "milestones",
            Money._trusted(fixed, amount.currency),
            f"fixed amounts of at most the contract amount {amount}",
        )
    if not shares:
        if rest:
            raise ValidationError(
                "milestones",
                Money._trusted(fixed, amount.currency),
                f"amounts adding up to the contract amount {amount}",
            )
    elif len(shares) == len(plan) and share_total != HUNDRED:
        raise ValidationError("milestones", share_total, "shares adding up to exactly 100")
    # Summed and compared in the current context on purpose (28 digits by default): shares such
    # as 66.66666666666666666666666667 that write a fraction as closely as a Decimal can pass.
    elif sum(shares, ZERO) * amount.amount != rest * HUNDRED:
        needed = (
            f"{_half_up(Fraction(rest) * 100 / Fraction(amount.amount), 4)}%"
            if amount.amount
            else "0%"
        )
        raise ValidationError(
            "milestones",
            share_total,
            f"shares covering exactly what the fixed amounts leave, {Money._trusted(rest, amount.currency)} "
            f"of {amount} (about {needed})",
        )
    parts: list[Money] = []
    if shares and rest:
        parts = list(Money._trusted(rest, amount.currency).allocate(shares))
    elif shares:
        parts = [Money.zero(amount.currency)] * len(shares)
    allocated = iter(parts)
    return tuple(
        Milestone(
            name=spec.name,
            due_on=spec.due_on,
            amount=spec.amount if spec.amount is not None else next(allocated),
            share=spec.share,
            trigger=spec.trigger,
        )
        for spec in plan
    )


# -- money documents ---------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Invoice:
    """An invoice: for a milestone (``milestone`` names it) or a free amount (``None``)."""

    id: str = attrs.field(validator=check_id)
    amount: Money = attrs.field(validator=_check_positive_money)
    issued_on: date = attrs.field(converter=as_date)
    due_on: date = attrs.field(converter=as_date)
    milestone: str | None = attrs.field(default=None, validator=check_optional_name)

    def __attrs_post_init__(self) -> None:
        if self.due_on < self.issued_on:
            raise ValidationError(
                "due_on", self.due_on, f"on or after the issue date {self.issued_on}"
            )


@attrs.frozen(kw_only=True)
class CreditNote:
    """A credit note: takes ``amount`` off invoice ``invoice_id`` (a correction, a discount)."""

    id: str = attrs.field(validator=check_id)
    invoice_id: str = attrs.field(validator=check_id)
    amount: Money = attrs.field(validator=_check_positive_money)
    issued_on: date = attrs.field(converter=as_date)
    reason: str = attrs.field(validator=check_text)


@attrs.frozen(kw_only=True)
class Payment:
    """Money received against invoice ``invoice_id`` (partial payments are fine)."""

    id: str = attrs.field(validator=check_id)
    invoice_id: str = attrs.field(validator=check_id)
    amount: Money = attrs.field(validator=_check_positive_money)
    received_on: date = attrs.field(converter=as_date)


# -- events ------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class MilestoneReached:
    """A milestone's trigger was met: time for ``owner`` (the rep) to invoice and collect."""

    contract_id: str
    """The contract (and billing) id."""
    milestone: str
    """The milestone's name."""
    owner: str
    """The rep who should act."""
    at: datetime
    """When the progress that met the trigger was recorded."""
    amount: Money
    """The milestone's amount."""
    due_on: date
    """The milestone's due date."""

    def to_event(self) -> Event:
        """This event as a :class:`~salesflow.domain.events.Event` for the event log and the
        ``salesflow_handle_event`` hook (amounts as text)."""
        return Event(
            name=MILESTONE_REACHED,
            subject_kind="contract",
            subject_id=self.contract_id,
            at=self.at,
            data={
                "milestone": self.milestone,
                "owner": self.owner,
                "amount": str(self.amount.amount),
                "currency": self.amount.currency,
                "due_on": self.due_on.isoformat(),
            },
        )


class BillingResult(NamedTuple):
    """What a progress or plan action returns: the new billing and the events it produced."""

    billing: ContractBilling
    events: tuple[MilestoneReached, ...]


# -- the aggregate -------------------------------------------------------------------------------------


def _money_in(value: object, field: str, currency: str) -> Money:
    """A positive amount in ``currency`` and whole minor units, from Money or a number."""
    if isinstance(value, Money):
        if value.currency != currency:
            raise CurrencyMismatchError(currency, value.currency, operation="record")
        money = value
    else:
        money = Money(to_amount(value, field), currency)
    if money.amount <= 0:
        raise ValidationError(field, value, "an amount greater than zero")
    if not money.is_rounded():
        raise ValidationError(field, value, f"whole minor units of {currency}")
    return money


def _unique(items: Sequence[Any], key: str, field: str) -> None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        value = getattr(item, key)
        if value in seen:
            raise ValidationError(f"{field}[{i}].{key}", value, f"a {key} used once")
        seen.add(value)


@attrs.frozen(kw_only=True)
class ContractBilling:
    """The execution and collection side of one signed contract (its id is the contract's).

    Make one with :meth:`open`; build one directly only to read back what storage wrote (every
    invariant is checked again). See the module documentation for the rules.
    """

    contract_id: str = attrs.field(validator=check_id)
    """The contract's id: one billing per contract."""
    owner: str = attrs.field(validator=check_id)
    """The contract's rep, whom milestone events name."""
    currency: str = attrs.field(validator=check_currency)
    """The contract's currency: every amount is in it."""
    amount: Money = attrs.field(validator=_check_money)
    """The contract amount (tax included), which invoices never exceed."""
    signed_on: date = attrs.field(converter=as_date)
    """The signing date: nothing is invoiced before it."""
    lines: tuple[BillingLine, ...] = attrs.field(
        converter=as_tuple, metadata={"items": BillingLine}
    )
    """Progress per quote line, in quote order."""
    milestones: tuple[Milestone, ...] = attrs.field(
        default=(), converter=as_tuple, metadata={"items": Milestone}
    )
    """The billing plan (empty: none attached)."""
    invoices: tuple[Invoice, ...] = attrs.field(
        default=(), converter=as_tuple, metadata={"items": Invoice}
    )
    """Invoices, in the order issued."""
    credit_notes: tuple[CreditNote, ...] = attrs.field(
        default=(), converter=as_tuple, metadata={"items": CreditNote}
    )
    """Credit notes, in the order issued."""
    payments: tuple[Payment, ...] = attrs.field(
        default=(), converter=as_tuple, metadata={"items": Payment}
    )
    """Payments, in the order recorded."""
    corrections: tuple[ProgressCorrection, ...] = attrs.field(
        default=(), converter=as_tuple, metadata={"items": ProgressCorrection}
    )
    """The audit of progress corrections; it only grows."""
    version: int = attrs.field(default=1, validator=check_positive)
    """1 when opened, one more after every action."""

    def __attrs_post_init__(self) -> None:
        try:
            self._check()
        except ValidationError as exc:
            raise exc.located(f"billing of contract {self.contract_id!r}") from None

    def _check(self) -> None:
        code = self.currency
        for money in self._amounts():
            if money.currency != code:
                raise CurrencyMismatchError(code, money.currency, operation="mix")
        if not self.lines:
            raise ValidationError("lines", (), "at least one quote line")
        _unique(self.lines, "line_id", "lines")
        line_total = exact_sum(line.amount.amount for line in self.lines)
        if line_total != self.amount.amount:
            raise ValidationError(
                "lines",
                Money._trusted(line_total, code),
                f"lines adding up to the amount {self.amount}",
            )
        _unique(self.milestones, "name", "milestones")
        if self.milestones:
            planned = exact_sum(m.amount.amount for m in self.milestones)
            if planned != self.amount.amount:
                raise ValidationError(
                    "milestones",
                    Money._trusted(planned, code),
                    f"milestones adding up to the contract amount {self.amount}",
                )
            for m in self.milestones:
                if m.trigger is not None:
                    self._check_trigger(m.trigger, f"milestone {m.name!r}")
        _unique(self.invoices, "id", "invoices")
        _unique(self.credit_notes, "id", "credit_notes")
        _unique(self.payments, "id", "payments")
        names = {m.name for m in self.milestones}
        invoices = {}
        for inv in self.invoices:
            if inv.issued_on < self.signed_on:
                raise ValidationError(
                    "issued_on",
                    inv.issued_on,
                    f"on or after the signing date {self.signed_on}",
                    where=f"invoice {inv.id!r}",
                )
            if inv.milestone is not None and inv.milestone not in names:
                raise ValidationError(
                    "milestone",
                    inv.milestone,
                    "a milestone of the plan",
                    where=f"invoice {inv.id!r}",
                )
            invoices[inv.id] = inv
        settled: dict[str, Decimal] = dict.fromkeys(invoices, ZERO)
        credited: dict[str, Decimal] = dict.fromkeys(invoices, ZERO)
        for kind, items, when in (
            ("credit note", self.credit_notes, "issued_on"),
            ("payment", self.payments, "received_on"),
        ):
            for item in items:
                where = f"{kind} {item.id!r}"
                target = invoices.get(item.invoice_id)
                if target is None:
                    raise ValidationError(
                        "invoice_id", item.invoice_id, "an invoice of this billing", where=where
                    )
                day = getattr(item, when)
                if day < target.issued_on:
                    raise ValidationError(
                        when,
                        day,
                        f"on or after the invoice's issue date {target.issued_on}",
                        where=where,
                    )
                settled[target.id] = EXACT.add(settled[target.id], item.amount.amount)
                if kind == "credit note":
                    credited[target.id] = EXACT.add(credited[target.id], item.amount.amount)
        for inv in self.invoices:
            if settled[inv.id] > inv.amount.amount:
                raise ValidationError(
                    "invoices",
                    inv.id,
                    f"credit notes plus payments of at most the invoice's {inv.amount} "
                    f"(they are {Money._trusted(settled[inv.id], code)})",
                )
        per_milestone: dict[str, Decimal] = {}
        net_total = ZERO
        for inv in self.invoices:
            net = EXACT.subtract(inv.amount.amount, credited[inv.id])
            net_total = EXACT.add(net_total, net)
            if inv.milestone is not None:
                per_milestone[inv.milestone] = EXACT.add(
                    per_milestone.get(inv.milestone, ZERO), net
                )
        for m in self.milestones:
            if per_milestone.get(m.name, ZERO) > m.amount.amount:
                raise ValidationError(
                    "invoices",
                    Money._trusted(per_milestone[m.name], code),
                    f"invoices of milestone {m.name!r} net of credit notes at most its {m.amount}",
                )
        if net_total > self.amount.amount:
            raise ValidationError(
                "invoices",
                Money._trusted(net_total, code),
                f"invoiced net of credit notes at most the contract amount {self.amount}",
            )
        lines = {line.line_id for line in self.lines}
        for c in self.corrections:
            if c.line_id not in lines:
                raise ValidationError("corrections", c.line_id, "a line of this billing")

    def _amounts(self) -> Iterable[Money]:
        yield self.amount
        yield from (line.amount for line in self.lines)
        yield from (m.amount for m in self.milestones)
        yield from (inv.amount for inv in self.invoices)
        yield from (cn.amount for cn in self.credit_notes)
        yield from (p.amount for p in self.payments)

    def _lines_named(self, ref: str) -> list[BillingLine]:
        return [line for line in self.lines if ref in (line.line_id, line.item_id)]

    def _check_trigger(self, trigger: Trigger, where: str) -> None:
        for ref in trigger.lines:
            if not self._lines_named(ref):
                raise ValidationError(
                    "trigger.lines",
                    ref,
                    "quote lines of the contract (or bundle lines)",
                    where=where,
                )

    # -- opening ----------------------------------------------------------------------------------

    @classmethod
    def open(cls, contract: Contract) -> ContractBilling:
        """The billing of signed ``contract``: no progress, no plan, nothing invoiced.

        Raises:
            TransitionNotAllowedError: the contract is not signed (formal, terminated or expired).
        """
        if not isinstance(contract, Contract):
            raise InvalidTypeError("contract", contract, "a Contract")
        if contract.signed_on is None:
            raise TransitionNotAllowedError(
                "open the billing of",
                contract.state.value,
                f"contract {contract.id!r}",
                "only a signed (formal) contract is executed and invoiced",
            )
        return cls(
            contract_id=contract.id,
            owner=contract.owner,
            currency=contract.currency,
            amount=contract.amount,
            signed_on=contract.signed_on,
            lines=tuple(
                BillingLine(
                    line_id=line.id,
                    item_id=line.item_id,
                    sku=line.sku,
                    amount=line.net + line.tax,
                    quantity=line.quantity,
                )
                for line in contract.lines
            ),
        )

    # -- reading ----------------------------------------------------------------------------------

    def line(self, line_id: str) -> BillingLine:
        """The progress of quote line ``line_id``; :class:`~salesflow.errors.NotFoundError`
        otherwise."""
        for line in self.lines:
            if line.line_id == line_id:
                return line
        raise NotFoundError("quote line", line_id, f"lines of contract {self.contract_id!r}")

    def milestone(self, name: str) -> Milestone:
        """The milestone ``name``; :class:`~salesflow.errors.NotFoundError` otherwise."""
        for m in self.milestones:
            if m.name == name:
                return m
        raise NotFoundError("milestone", name, f"plan of contract {self.contract_id!r}")

    def invoice(self, invoice_id: str) -> Invoice:
        """The invoice ``invoice_id``; :class:`~salesflow.errors.NotFoundError` otherwise."""
        for inv in self.invoices:
            if inv.id == invoice_id:
                return inv
        raise NotFoundError("invoice", invoice_id, f"invoices of contract {self.contract_id!r}")

    @property
    def progress(self) -> Decimal:
        """Overall percent complete: line percentages weighted by line amounts, rounded half up
        to :data:`PROGRESS_PLACES` decimals (equal weights when every line is free)."""
        weights = [line.amount.amount for line in self.lines]
        if not any(weights):
            weights = [Decimal(1)] * len(self.lines)
        done = sum(
            (
                Fraction(w) * Fraction(line.percent)
                for w, line in zip(weights, self.lines, strict=True)
            ),
            Fraction(0),
        )
        return _half_up(done / Fraction(exact_sum(weights)), PROGRESS_PLACES)

    def _money(self, amount: Decimal) -> Money:
        # Sums and differences of validated amounts: exact, not re-checked.
        return Money._trusted(amount, self.currency)

    @property
    def credited(self) -> Money:
        """The sum of the credit notes."""
        return self._money(exact_sum(c.amount.amount for c in self.credit_notes))

    @property
    def invoiced(self) -> Money:
        """Invoiced, net of credit notes."""
        gross = exact_sum(inv.amount.amount for inv in self.invoices)
        return self._money(gross) - self.credited

    @property
    def paid(self) -> Money:
        """The sum of the payments."""
        return self._money(exact_sum(p.amount.amount for p in self.payments))

    @property
    def uninvoiced(self) -> Money:
        """Contract amount - invoiced."""
        return self.amount - self.invoiced

    @property
    def unpaid(self) -> Money:
        """Invoiced - paid."""
        return self.invoiced - self.paid

    def open_amount(self, invoice_id: str) -> Money:
        """What is still to be paid on invoice ``invoice_id``: its amount - credit notes -
        payments."""
        inv = self.invoice(invoice_id)
        return self._money(EXACT.subtract(inv.amount.amount, self._taken(inv.id)))

    def milestone_invoiced(self, name: str) -> Money:
        """What milestone ``name`` was invoiced, net of credit notes on its invoices."""
        self.milestone(name)
        ids = {inv.id for inv in self.invoices if inv.milestone == name}
        gross = exact_sum(inv.amount.amount for inv in self.invoices if inv.id in ids)
        credit = exact_sum(c.amount.amount for c in self.credit_notes if c.invoice_id in ids)
        return self._money(EXACT.subtract(gross, credit))

    def due_milestones(self, as_of: date | str) -> tuple[Milestone, ...]:
        """The milestones due on ``as_of`` (by date, or by a trigger met by then) that are not
        yet fully invoiced, in plan order."""
        day = to_date(as_of, "as_of")
        return tuple(
            m
            for m in self.milestones
            if m.is_due(day) and self.milestone_invoiced(m.name) < m.amount
        )

    # -- time -------------------------------------------------------------------------------------

    @property
    def last_progress_at(self) -> datetime | None:
        """The latest progress time recorded: a line's last update, a correction, or a milestone
        reached (``None`` before any)."""
        times = [line.updated_at for line in self.lines if line.updated_at is not None]
        times += [c.at for c in self.corrections]
        times += [m.reached_at for m in self.milestones if m.reached_at is not None]
        return max(times, default=None)

    def _not_before_signing(self, field: str, given: object, day: date, what: str) -> None:
        if day < self.signed_on:
            raise ValidationError(
                field,
                given,
                f"{what} on or after the signing date {self.signed_on.isoformat()} (nothing "
                "happens to a contract before it is signed)",
                where=f"contract {self.contract_id!r}",
            )

    def _progress_time(self, at: datetime | str) -> datetime:
        """``at`` as an aware time, if it is on or after the signing date and not before the
        latest progress time."""
        when = to_aware_datetime(at, "at")
        self._not_before_signing("at", when, when.date(), "a time")
        last = self.last_progress_at
        if last is not None and when < last:
            raise ValidationError(
                "at",
                when,
                f"a time at or after the latest progress time {last.isoformat()} (progress "
                "never goes back in time)",
                where=f"contract {self.contract_id!r}",
            )
        return when

    # -- progress ---------------------------------------------------------------------------------

    def _reach(
        self, lines: tuple[BillingLine, ...], milestones: tuple[Milestone, ...], at: datetime
    ) -> tuple[tuple[Milestone, ...], tuple[MilestoneReached, ...]]:
        by_ref: dict[str, list[BillingLine]] = {}
        for line in lines:
            by_ref.setdefault(line.line_id, []).append(line)
            if line.item_id != line.line_id:
                by_ref.setdefault(line.item_id, []).append(line)
        events: list[MilestoneReached] = []
        updated: list[Milestone] = []
        for m in milestones:
            trigger = m.trigger
            if (
                trigger is not None
                and m.reached_at is None
                and all(
                    line.percent >= trigger.percent
                    for ref in trigger.lines
                    for line in by_ref.get(ref, ())
                )
            ):
                m = attrs.evolve(m, reached_at=at)
                events.append(
                    MilestoneReached(
                        contract_id=self.contract_id,
                        milestone=m.name,
                        owner=self.owner,
                        at=at,
                        amount=m.amount,
                        due_on=m.due_on,
                    )
                )
            updated.append(m)
        return tuple(updated), tuple(events)

    def _delivered(self, line: BillingLine, value: object) -> Decimal:
        number = to_decimal(value, "delivered")
        if number < 0:
            raise ValidationError("delivered", value, "a delivered quantity of zero or more")
        if number > line.quantity:
            raise ValidationError(
                "delivered", value, f"at most the line's quantity {line.quantity}"
            )
        if line.countable and number != number.to_integral_value():
            raise ValidationError(
                "delivered", value, f"whole units (line {line.line_id!r} is sold in whole units)"
            )
        return number

    def _progressed(
        self, line: BillingLine, percent: Decimal, delivered: Decimal, at: datetime, **extra: Any
    ) -> BillingResult:
        changed = attrs.evolve(line, percent=percent, delivered=delivered, updated_at=at)
        lines = tuple(changed if x.line_id == line.line_id else x for x in self.lines)
        milestones, events = self._reach(lines, self.milestones, at)
        billing = attrs.evolve(
            self, lines=lines, milestones=milestones, version=self.version + 1, **extra
        )
        return BillingResult(billing, events)

    def record_progress(
        self,
        line_id: str,
        percent: Decimal | int | str | None = None,
        *,
        at: datetime | str,
        delivered: Decimal | int | str | None = None,
    ) -> BillingResult:
        """Record that line ``line_id`` is ``percent`` done and/or has ``delivered`` units out,
        at ``at``; returns the new billing and a :class:`MilestoneReached` for every milestone
        whose trigger this meets.

        Neither figure may go down (use :meth:`correct_progress`); recording the current figures
        again changes nothing. ``at`` is on or after the signing date and not before the latest
        progress time.

        Raises:
            NotFoundError: no such line.
            ValidationError: a figure below the current one, or out of range; ``at`` before the
                signing date or the latest progress time.
        """
        when = self._progress_time(at)
        line = self.line(line_id)
        if percent is None and delivered is None:
            raise ValidationError("percent", None, "a percent, a delivered quantity or both")
        new_percent = line.percent if percent is None else to_percent(percent, "percent")
        new_delivered = line.delivered if delivered is None else self._delivered(line, delivered)
        if new_percent < line.percent:
            raise ValidationError(
                "percent",
                percent,
                f"at least the current {line.percent} (progress never goes down; "
                "correct_progress() records a correction with its reason)",
                where=f"line {line_id!r}",
            )
        if new_delivered < line.delivered:
            raise ValidationError(
                "delivered",
                delivered,
                f"at least the current {line.delivered} (use correct_progress() with a reason)",
                where=f"line {line_id!r}",
            )
        if new_percent == line.percent and new_delivered == line.delivered:
            return BillingResult(self, ())
        return self._progressed(line, new_percent, new_delivered, when)

    def correct_progress(
        self,
        line_id: str,
        percent: Decimal | int | str | None = None,
        *,
        reason: str,
        by: str,
        at: datetime | str,
        delivered: Decimal | int | str | None = None,
    ) -> BillingResult:
        """Correct line ``line_id``'s percent and/or delivered quantity, up or down, for
        ``reason``, by actor ``by`` at ``at``; the correction is appended to
        :attr:`corrections`. A correction upwards may meet a trigger (the events say so); one
        downwards never un-reaches a milestone. A correction that changes nothing is not
        recorded.

        Raises:
            NotFoundError: no such line.
            ValidationError: a figure out of range, an empty reason or actor; ``at`` before the
                signing date or the latest progress time.
        """
        when = self._progress_time(at)
        line = self.line(line_id)
        if percent is None and delivered is None:
            raise ValidationError("percent", None, "a percent, a delivered quantity or both")
        new_percent = line.percent if percent is None else to_percent(percent, "percent")
        new_delivered = line.delivered if delivered is None else self._delivered(line, delivered)
        correction = ProgressCorrection(
            line_id=line.line_id,
            percent_before=line.percent,
            percent_after=new_percent,
            delivered_before=line.delivered,
            delivered_after=new_delivered,
            reason=reason,
            by=by,
            at=when,
        )
        if new_percent == line.percent and new_delivered == line.delivered:
            return BillingResult(self, ())
        return self._progressed(
            line, new_percent, new_delivered, when, corrections=(*self.corrections, correction)
        )

    # -- the plan ---------------------------------------------------------------------------------

    def attach_plan(
        self, milestones: Iterable[MilestoneSpec], *, at: datetime | str
    ) -> BillingResult:
        """Attach (or replace) the billing plan; amounts are allocated by
        :func:`allocate_milestones`. Triggers already met by the recorded progress are reached
        at ``at`` and returned as events. The contract is not touched.

        Raises:
            ValidationError: a plan that does not add up, a trigger naming an unknown line, a
                current plan with an invoiced milestone (it can no longer be replaced), a
                milestone due before the signing date, or ``at`` before the signing date or the
                latest progress time.
        """
        when = self._progress_time(at)
        invoiced = sorted({inv.milestone for inv in self.invoices if inv.milestone is not None})
        if invoiced:
            raise ValidationError(
                "milestones",
                invoiced,
                "a plan none of whose milestones is invoiced yet (credit notes do not undo an "
                "invoice)",
                where=f"contract {self.contract_id!r}",
            )
        plan = allocate_milestones(self.amount, milestones)
        for m in plan:
            self._not_before_signing("due_on", m.due_on, m.due_on, f"milestone {m.name!r} due")
            if m.trigger is not None:
                self._check_trigger(m.trigger, f"milestone {m.name!r}")
        reached, events = self._reach(self.lines, plan, when)
        billing = attrs.evolve(self, milestones=reached, version=self.version + 1)
        return BillingResult(billing, events)

    # -- invoices, credit notes, payments ----------------------------------------------------------

    def _taken(self, invoice_id: str) -> Decimal:
        """Credit notes plus payments on ``invoice_id``."""
        credited = exact_sum(
            c.amount.amount for c in self.credit_notes if c.invoice_id == invoice_id
        )
        paid = exact_sum(p.amount.amount for p in self.payments if p.invoice_id == invoice_id)
        return EXACT.add(credited, paid)

    def _check_new_id(self, value: object, items: Sequence[Any], what: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValidationError("id", value, f"a non-empty {what} id")
        if any(item.id == value for item in items):
            raise ValidationError("id", value, f"a {what} id not used yet in this billing")
        return value

    def issue_invoice(
        self,
        id: str,
        *,
        issued_on: date | str,
        due_on: date | str,
        amount: Money | Decimal | int | str | None = None,
        milestone: str | None = None,
    ) -> ContractBilling:
        """Issue invoice ``id`` on ``issued_on``, payable by ``due_on``: for ``milestone`` (the
        amount defaults to what is left to invoice of it) or for a free ``amount``.

        Raises:
            ValidationError: a used id, dates out of order, an amount that would take the invoices
                (net of credit notes) above the contract amount or the milestone's amount.
            CurrencyMismatchError: an amount in another currency.
            NotFoundError: no such milestone.
        """
        invoice_id = self._check_new_id(id, self.invoices, "invoice")
        issued = to_date(issued_on, "issued_on")
        due = to_date(due_on, "due_on")
        self._not_before_signing("issued_on", issued_on, issued, "an invoice date")
        if due < issued:
            raise ValidationError("due_on", due_on, f"on or after the issue date {issued}")
        left = self.uninvoiced
        if milestone is not None:
            planned = self.milestone(milestone)
            left_of_milestone = planned.amount - self.milestone_invoiced(milestone)
            if not left_of_milestone:
                raise ValidationError(
                    "milestone", milestone, "a milestone with something left to invoice"
                )
            money = (
                left_of_milestone if amount is None else _money_in(amount, "amount", self.currency)
            )
            if money > left_of_milestone:
                raise ValidationError(
                    "amount",
                    money,
                    f"at most {left_of_milestone}, what is left to invoice of milestone {milestone!r}",
                )
        elif amount is None:
            raise ValidationError("amount", None, "an amount, or a milestone to invoice")
        else:
            money = _money_in(amount, "amount", self.currency)
        if money > left:
            raise ValidationError(
                "amount",
                money,
                f"at most {left}, what is left to invoice of the contract amount {self.amount}",
            )
        new = Invoice(
            id=invoice_id, amount=money, issued_on=issued, due_on=due, milestone=milestone
        )
        return attrs.evolve(self, invoices=(*self.invoices, new), version=self.version + 1)

    def issue_credit_note(
        self,
        id: str,
        invoice_id: str,
        amount: Money | Decimal | int | str,
        *,
        issued_on: date | str,
        reason: str,
    ) -> ContractBilling:
        """Credit ``amount`` on invoice ``invoice_id`` (at most what is still open on it: a
        paid part is not credited), dated ``issued_on`` on or after the invoice.

        Raises:
            ValidationError: a used id, an amount above the invoice's open amount, a date before
                the invoice, an empty reason.
            NotFoundError: no such invoice.
        """
        note_id = self._check_new_id(id, self.credit_notes, "credit note")
        issued = to_date(issued_on, "issued_on")
        inv, money = self._against_invoice(invoice_id, amount, issued, "issued_on", issued_on)
        note = CreditNote(
            id=note_id, invoice_id=inv.id, amount=money, issued_on=issued, reason=reason
        )
        return attrs.evolve(self, credit_notes=(*self.credit_notes, note), version=self.version + 1)

    def _against_invoice(
        self, invoice_id: str, amount: object, day: date, field: str, given: object
    ) -> tuple[Invoice, Money]:
        """The invoice and the amount of a credit note or payment dated ``day``: not before the
        invoice, and at most what is still open on it (a paid part is not credited again)."""
        inv = self.invoice(invoice_id)
        money = _money_in(amount, "amount", self.currency)
        if day < inv.issued_on:
            signing = f" and the signing date {self.signed_on}" if day < self.signed_on else ""
            raise ValidationError(
                field,
                given,
                f"on or after invoice {inv.id!r}'s issue date {inv.issued_on}{signing}",
            )
        self._not_before_signing(field, given, day, "a date")  # an invoice stored before the rule
        open_amount = self._money(EXACT.subtract(inv.amount.amount, self._taken(inv.id)))
        if money > open_amount:
            raise ValidationError(
                "amount", money, f"at most {open_amount}, what is still open on invoice {inv.id!r}"
            )
        return inv, money

    def record_payment(
        self,
        id: str,
        invoice_id: str,
        amount: Money | Decimal | int | str,
        *,
        received_on: date | str,
    ) -> ContractBilling:
        """Record payment ``id`` of ``amount`` against invoice ``invoice_id``, received on
        ``received_on`` (on or after the invoice); at most what is still open on the invoice.

        Raises:
            ValidationError: a used id, an amount above the invoice's open amount, a date before
                the invoice.
            CurrencyMismatchError: an amount in another currency.
            NotFoundError: no such invoice.
        """
        payment_id = self._check_new_id(id, self.payments, "payment")
        received = to_date(received_on, "received_on")
        inv, money = self._against_invoice(invoice_id, amount, received, "received_on", received_on)
        payment = Payment(id=payment_id, invoice_id=inv.id, amount=money, received_on=received)
        return attrs.evolve(self, payments=(*self.payments, payment), version=self.version + 1)
