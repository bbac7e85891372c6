"""Contracts (R11-R13): from an approved quote to a formal contract that nobody can change.

A :class:`Contract` is a frozen value made from a quote with :meth:`Contract.from_quote`. The contract
keeps its own copy of the quote (R11): the quote is what the project later executes, line by line
(see :mod:`salesflow.domain.billing`), and later edits of the opportunity's quote never reach it.

Rules (pinned by tests):

* **Amount.** :attr:`Contract.amount` is exactly :attr:`Quote.total
  <salesflow.domain.quotes.Quote.total>`: the sum of every quote line's net plus its share of the tax
  (``sum(line.net + line.tax)``), i.e. what the customer pays, **tax included**. Nothing is rounded
  here: the quote already rounded each line to the currency's minor unit (see
  :mod:`salesflow.domain.quotes`), so the contract amount is an exact sum of whole minor units. The
  amount before tax is :attr:`Contract.net_amount`, the tax :attr:`Contract.tax`. A contract whose
  amount is not its quote's total, or beyond the bounds of an amount
  (:data:`~salesflow.domain.numbers.MAX_AMOUNT`), is refused at construction.
* **Quote.** Only an ``approved`` or ``accepted`` quote with at least one line makes a contract; a
  quote within the rep's own authority is ``approved`` by
  :func:`~salesflow.domain.discounts.route_quote`. A revision must be the same quote (same id and
  currency), approved or accepted again: a contract never carries an unapproved discount.
* **States.** ``draft`` -> ``in_review`` (:meth:`~Contract.submit`) -> ``formal``
  (:meth:`~Contract.make_formal`, signing date recorded). From review a contract goes back to draft
  on a rejection (:meth:`~Contract.return_to_draft`, the reason is kept until the next submission)
  or when the rep withdraws it (:meth:`~Contract.withdraw`). A formal contract ends ``terminated``
  (:meth:`~Contract.terminate`, with a reason) or ``expired`` (:meth:`~Contract.expire`); neither
  touches its amount or lines. Any other move raises
  :class:`~salesflow.errors.TransitionNotAllowedError`.
* **Locking.** Content (quote, amount, terms, owner, team, account, opportunity) changes only in
  draft, through :meth:`~Contract.revise`, which bumps :attr:`~Contract.version`. In review the
  contract is locked and from formal on it is frozen: every attempted revision raises
  :class:`~salesflow.errors.ContractLockedError` (an amendment is a new, separately approved
  contract). State changes keep the version.
* **Approval.** The approval engine (:mod:`salesflow.domain.approvals`) is wired to contracts by the
  service layer: :meth:`~Contract.submit` when a review starts, :meth:`~Contract.make_formal` when it
  completes, :meth:`~Contract.return_to_draft` on a rejection. :meth:`Contract.content_hash`
  fingerprints what the approvers approve, so a change after submission is detected.

Every method returns a new contract; a refused one raises and changes nothing. ``attrs.evolve``
bypasses the lifecycle (as for every attrs class): use the named methods.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any, Final

import attrs

from salesflow.domain.checks import (
    MAX_TERMS_LENGTH,
    MAX_TEXT_LENGTH,
    as_enum,
    as_optional_date,
    check_count,
    check_id,
    check_instance,
    check_optional_id,
    check_optional_name,
    check_optional_text,
    check_positive,
    check_string,
)
from salesflow.domain.dates import to_date
from salesflow.domain.money import Money, check_currency
from salesflow.domain.numbers import check_bounds
from salesflow.domain.quotes import Quote, QuoteLine, QuoteState
from salesflow.errors import (
    ContractLockedError,
    CurrencyMismatchError,
    InvalidTypeError,
    TransitionNotAllowedError,
    ValidationError,
)

__all__ = [
    "CONTRACTABLE_QUOTE_STATES",
    "SIGNED_STATES",
    "Contract",
    "ContractState",
]


class ContractState(enum.StrEnum):
    """Where a contract stands in its lifecycle."""

    DRAFT = "draft"
    """The rep's temporary contract (临时合同): the quote may be revised."""
    IN_REVIEW = "in_review"
    """Submitted for approval: locked."""
    FORMAL = "formal"
    """Approved by every role and signed (正式合同): frozen forever."""
    TERMINATED = "terminated"
    """A formal contract ended early, with a reason."""
    EXPIRED = "expired"
    """A formal contract that ran its course."""
    CANCELLED = "cancelled"
    """A draft given up before signing, with a reason; its quote is free again."""


SIGNED_STATES: Final = frozenset(
    {ContractState.FORMAL, ContractState.TERMINATED, ContractState.EXPIRED}
)
"""The states of a signed contract: it has a signing date and counts as signed (R15)."""

CONTRACTABLE_QUOTE_STATES: Final = (QuoteState.APPROVED, QuoteState.ACCEPTED)
"""The quote states a contract may be made from (and revised with)."""


class _Keep(enum.Enum):
    KEEP = "keep"


_KEEP: Final = _Keep.KEEP


# -- converters and validators ----------------------------------------------------------------------


def _check_terms(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise InvalidTypeError(
            attribute.name, value, "the contract's text as a string (may be empty)"
        )
    check_string(value, attribute.name, MAX_TERMS_LENGTH)


def _check_amount(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Money):
        raise InvalidTypeError("amount", value, "Money (the quote's total)")
    check_bounds(value.amount, "amount", what="a contract amount", value=value)


def _reason(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, value, "a non-empty reason")
    return check_string(value, field, MAX_TEXT_LENGTH)


def _dec(value: Decimal) -> str:
    """Canonical text of a number for hashing: ``10``, ``10.00`` and ``1E+1`` read alike."""
    return format(value.normalize(), "f") if value else "0"


def _check_contractable(quote: object, action: str) -> Quote:
    if not isinstance(quote, Quote):
        raise InvalidTypeError("quote", quote, "a Quote")
    if quote.state not in CONTRACTABLE_QUOTE_STATES:
        why = (
            f"it already backs contract {quote.contract_id!r}: one quote, one contract"
            if quote.state is QuoteState.CONTRACTED
            else "only an approved or accepted quote goes into a contract; route it through "
            "the discount policy first"
        )
        raise TransitionNotAllowedError(action, quote.state.value, f"quote {quote.id!r}", why)
    if not quote.lines:
        raise ValidationError("quote", quote.id, "a quote with at least one line")
    return quote


# -- the contract -------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Contract:
    """A contract (合同): its own copy of the quote, its amount, its parties and its lifecycle.

    Make one with :meth:`from_quote`; build one directly only to read back what storage wrote
    (``amount`` and ``currency`` then default to the quote's and must agree with it).

    Fields: ``id``, ``owner`` (the rep), ``quote``, ``amount`` (the quote's total, tax included),
    ``currency``, optional ``team``, ``account`` (the customer), ``opportunity_id`` and ``terms``
    (the contract's text: scope, deliverables, wording the reviewers read), then the lifecycle:
    ``state``, ``rejection_reason`` (the last rejection's, while in draft), ``signed_on`` (set
    when formal), ``ended_on`` and ``end_reason`` (when terminated or expired) and ``version``
    (bumped by every revision in draft).
    """

    id: str = attrs.field(validator=check_id)
    owner: str = attrs.field(validator=check_id)
    quote: Quote = attrs.field(validator=check_instance, metadata={"type": Quote})
    currency: str = attrs.field(
        default=attrs.Factory(lambda self: self.quote.currency, takes_self=True),
        validator=check_currency,
    )
    amount: Money = attrs.field(
        default=attrs.Factory(lambda self: self.quote.total, takes_self=True),
        validator=_check_amount,
    )
    team: str | None = attrs.field(default=None, validator=check_optional_id)
    account: str | None = attrs.field(default=None, validator=check_optional_name)
    opportunity_id: str | None = attrs.field(default=None, validator=check_optional_id)
    terms: str = attrs.field(default="", validator=_check_terms)
    state: ContractState = attrs.field(
        default=ContractState.DRAFT, converter=as_enum, metadata={"enum": ContractState}
    )
    rejection_reason: str | None = attrs.field(default=None, validator=check_optional_text)
    signed_on: date | None = attrs.field(default=None, converter=as_optional_date)
    ended_on: date | None = attrs.field(default=None, converter=as_optional_date)
    end_reason: str | None = attrs.field(default=None, validator=check_optional_text)
    version: int = attrs.field(default=1, validator=check_positive)
    rules_version: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(check_count)
    )
    """The version of the desk's sales rules whose contract workflow reviews (or reviewed) this
    contract, set when it is submitted (``None`` before, or when the desk's workflow was passed in
    code)."""

    def __attrs_post_init__(self) -> None:
        try:
            self._check()
        except ValidationError as exc:
            raise exc.located(f"contract {self.id!r}") from None

    def _check(self) -> None:
        quote = self.quote
        if quote.state not in CONTRACTABLE_QUOTE_STATES:
            raise ValidationError("quote.state", quote.state.value, "an approved or accepted quote")
        if not quote.lines:
            raise ValidationError("quote", quote.id, "a quote with at least one line")
        if self.currency != quote.currency:
            raise CurrencyMismatchError(self.currency, quote.currency, operation="mix")
        if self.amount.currency != self.currency:
            raise CurrencyMismatchError(self.currency, self.amount.currency, operation="mix")
        if self.amount != quote.total:
            raise ValidationError(
                "amount", self.amount, f"the quote's total {quote.total} (its lines, tax included)"
            )
        if (
            self.opportunity_id is not None
            and quote.opportunity_id is not None
            and self.opportunity_id != quote.opportunity_id
        ):
            raise ValidationError(
                "opportunity_id", self.opportunity_id, f"the quote's {quote.opportunity_id!r}"
            )
        state = self.state
        if self.rejection_reason is not None and state is not ContractState.DRAFT:
            raise ValidationError("rejection_reason", self.rejection_reason, "None outside draft")
        signed = state in SIGNED_STATES
        if signed != (self.signed_on is not None):
            raise ValidationError(
                "signed_on", self.signed_on, "a signing date exactly when the contract is signed"
            )
        ended = state in (ContractState.TERMINATED, ContractState.EXPIRED, ContractState.CANCELLED)
        if ended != (self.ended_on is not None):
            raise ValidationError(
                "ended_on", self.ended_on, "an end date exactly when ended or cancelled"
            )
        explained = state in (ContractState.TERMINATED, ContractState.CANCELLED)
        if explained != (self.end_reason is not None):
            raise ValidationError(
                "end_reason",
                self.end_reason,
                "a reason exactly when the contract is terminated or cancelled",
            )
        if (
            self.ended_on is not None
            and self.signed_on is not None
            and self.ended_on < self.signed_on
        ):
            raise ValidationError(
                "ended_on", self.ended_on, f"on or after the signing date {self.signed_on}"
            )

    # -- construction -------------------------------------------------------------------------------

    @classmethod
    def from_quote(
        cls,
        quote: Quote,
        *,
        id: str,
        owner: str | None = None,
        team: str | None = None,
        account: str | None = None,
        opportunity_id: str | None = None,
        terms: str = "",
    ) -> Contract:
        """A draft contract holding ``quote`` (approved or accepted), version 1.

        ``owner`` defaults to the quote's owner and ``opportunity_id`` to the quote's (a different
        one is refused). The amount is the quote's total, tax included.

        Raises:
            TransitionNotAllowedError: the quote is not approved or accepted.
            ValidationError: a bad field, or a quote without lines.
        """
        quote = _check_contractable(quote, "make a contract from")
        return cls(
            id=id,
            owner=quote.owner if owner is None else owner,
            quote=quote,
            team=team,
            account=account,
            opportunity_id=quote.opportunity_id if opportunity_id is None else opportunity_id,
            terms=terms,
        )

    # -- reading ------------------------------------------------------------------------------------

    @property
    def lines(self) -> tuple[QuoteLine, ...]:
        """The quote's priced lines: the content list the project executes (R11)."""
        return self.quote.lines

    def line(self, line_id: str) -> QuoteLine:
        """The quote line ``line_id`` (``"L1"``, ``"L3.2"``); NotFoundError otherwise."""
        return self.quote.line(line_id)

    @property
    def net_amount(self) -> Money:
        """The amount before tax: the sum of the line nets."""
        return self.quote.net_total

    @property
    def tax(self) -> Money:
        """The tax included in :attr:`amount`."""
        return self.quote.tax

    @property
    def is_signed(self) -> bool:
        """Whether the contract was signed (formal, terminated or expired)."""
        return self.state in SIGNED_STATES

    @property
    def is_locked(self) -> bool:
        """Whether its content can no longer change (anything but draft)."""
        return self.state is not ContractState.DRAFT

    def content_hash(self) -> str:
        """A SHA-256 hex digest of what the approvers approve: the contract id, the quote's
        :meth:`~salesflow.domain.quotes.Quote.content_hash`, the amount and currency, the parties
        (owner and account), the opportunity and the terms.

        State, version, dates and team are left out: they are not content. Numbers hash by value
        (``10`` and ``10.00`` alike). Equal content gives equal hashes in every process.
        """
        payload = {
            "id": self.id,
            "quote_id": self.quote.id,
            "quote": self.quote.content_hash(),
            "amount": _dec(self.amount.amount),
            "currency": self.currency,
            "owner": self.owner,
            "account": self.account,
            "opportunity_id": self.opportunity_id,
            "terms": self.terms,
        }
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    # -- revising (draft only) ------------------------------------------------------------------------

    def _refuse_if_locked(self, change: str) -> None:
        if self.state is ContractState.DRAFT:
            return
        raise ContractLockedError(self.id, self.state.value, change)

    def revise(
        self,
        quote: Quote | None = None,
        *,
        terms: str | _Keep = _KEEP,
        owner: str | _Keep = _KEEP,
        team: str | _Keep | None = _KEEP,
        account: str | _Keep | None = _KEEP,
        opportunity_id: str | _Keep | None = _KEEP,
    ) -> Contract:
        """A new version with a revised quote (the amount follows) and/or other content.

        Only a draft may be revised; the version goes up by one when anything changes (a revision
        that changes nothing returns this contract). A revised quote must be the same quote (id
        and currency) and approved or accepted. The rejection reason stays visible until the next
        submission.

        Raises:
            ContractLockedError: the contract is in review (locked) or signed (frozen), whatever
                the change.
            TransitionNotAllowedError: the revised quote is not approved or accepted.
            ValidationError: a bad value (another quote, an empty owner...).
        """
        given = {
            "terms": terms,
            "owner": owner,
            "team": team,
            "account": account,
            "opportunity_id": opportunity_id,
        }
        changes: dict[str, Any] = {k: v for k, v in given.items() if v is not _KEEP}
        attempted = (["quote", "amount"] if quote is not None else []) + list(changes)
        names = attempted or ["content"]
        shown = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        self._refuse_if_locked(f"change its {shown}")
        if quote is not None:
            quote = _check_contractable(quote, "revise a contract with")
            if quote.id != self.quote.id:
                raise ValidationError(
                    "quote", quote.id, f"the contract's own quote {self.quote.id!r}"
                )
            if quote.currency != self.currency:
                raise CurrencyMismatchError(self.currency, quote.currency, operation="revise with")
            changes["quote"] = quote
            changes["amount"] = quote.total
            if "opportunity_id" not in changes and quote.opportunity_id is not None:
                changes["opportunity_id"] = quote.opportunity_id
        if all(getattr(self, name) == value for name, value in changes.items()):
            return self
        return attrs.evolve(self, **changes, version=self.version + 1)

    # -- lifecycle ----------------------------------------------------------------------------------

    def _move(
        self, action: str, allowed: ContractState, to: ContractState, **changes: Any
    ) -> Contract:
        if self.state is not allowed:
            raise TransitionNotAllowedError(
                action,
                self.state.value,
                f"contract {self.id!r}",
                f"only a contract in {allowed.value} can become {to.value}",
            )
        return attrs.evolve(self, state=to, **changes)

    def submit(self) -> Contract:
        """This contract in review (from draft): locked until approved, rejected or withdrawn."""
        return self._move(
            "submit", ContractState.DRAFT, ContractState.IN_REVIEW, rejection_reason=None
        )

    def return_to_draft(self, reason: str) -> Contract:
        """This contract back in draft after a rejection; ``reason`` is kept for the rep."""
        return self._move(
            "reject",
            ContractState.IN_REVIEW,
            ContractState.DRAFT,
            rejection_reason=_reason(reason, "reason"),
        )

    def withdraw(self) -> Contract:
        """This contract back in draft, taken back by the rep during review."""
        return self._move("withdraw", ContractState.IN_REVIEW, ContractState.DRAFT)

    def make_formal(self, signed_on: date | str) -> Contract:
        """This contract formal (from review, when the last approval completes), signed on
        ``signed_on``. From now on it is frozen."""
        day = to_date(signed_on, "signed_on")
        return self._move(
            "make formal", ContractState.IN_REVIEW, ContractState.FORMAL, signed_on=day
        )

    def _end(self, action: str, to: ContractState, on: date | str, reason: str | None) -> Contract:
        day = to_date(on, "on")
        signed = self.signed_on
        if self.state is ContractState.FORMAL and signed is not None and day < signed:
            raise ValidationError("on", on, f"on or after the signing date {self.signed_on}")
        return self._move(action, ContractState.FORMAL, to, ended_on=day, end_reason=reason)

    def cancel(self, on: date | str, reason: str) -> Contract:
        """This draft cancelled on ``on`` for ``reason`` (a contract in review is withdrawn to draft
        first; a signed one is terminated instead)."""
        return self._move(
            "cancel",
            ContractState.DRAFT,
            ContractState.CANCELLED,
            ended_on=to_date(on, "on"),
            end_reason=_reason(reason, "reason"),
            rejection_reason=None,
        )

    def terminate(self, on: date | str, reason: str) -> Contract:
        """This formal contract terminated on ``on`` (on or after signing) for ``reason``; its
        amount and lines stay as signed."""
        return self._end("terminate", ContractState.TERMINATED, on, _reason(reason, "reason"))

    def expire(self, on: date | str) -> Contract:
        """This formal contract expired on ``on`` (on or after signing); its amount and lines stay
        as signed."""
        return self._end("expire", ContractState.EXPIRED, on, None)

    # -- plain dicts ----------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """This contract as plain dicts and lists (JSON-friendly) that :meth:`from_dict` reads
        back; the amount is written as text and checked against the quote on reading."""
        return {
            "id": self.id,
            "owner": self.owner,
            "quote": self.quote.to_dict(),
            "currency": self.currency,
            "amount": str(self.amount.amount),
            "team": self.team,
            "account": self.account,
            "opportunity_id": self.opportunity_id,
            "terms": self.terms,
            "state": self.state.value,
            "rejection_reason": self.rejection_reason,
            "signed_on": None if self.signed_on is None else self.signed_on.isoformat(),
            "ended_on": None if self.ended_on is None else self.ended_on.isoformat(),
            "end_reason": self.end_reason,
            "version": self.version,
            "rules_version": self.rules_version,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Contract:
        """Build a contract from the dict :meth:`to_dict` writes."""
        if not isinstance(data, Mapping):
            raise InvalidTypeError("contract", data, "a dict")
        fields = {a.name for a in attrs.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise ValidationError("contract", sorted(unknown), f"only the keys {sorted(fields)}")
        missing = {"id", "owner", "quote"} - set(data)
        if missing:
            raise ValidationError("contract", sorted(missing), "id, owner and quote")
        values = dict(data)
        values["quote"] = Quote.from_dict(values["quote"])
        currency = values.get("currency", values["quote"].currency)
        values["currency"] = currency
        if "amount" in values:
            values["amount"] = Money.of(values["amount"], currency)
        return cls(**values)

    def __str__(self) -> str:
        return f"contract {self.id!r} ({self.state.value}, {self.amount})"
