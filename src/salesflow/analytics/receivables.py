"""Collections (R16): what every signed contract still has to invoice and to collect, and how late.

:func:`receivables` reads signed contracts and their billings (a
:class:`~salesflow.domain.contracts.Contract` and a
:class:`~salesflow.domain.billing.ContractBilling`, or any objects with the same attributes, see
:class:`ReceivableContract` and :class:`ReceivableBilling`) and returns one row per signed
contract. :func:`signed_from_contracts` turns signed contracts into the signed deals that
:func:`~salesflow.analytics.performance.attainment` measures (R15).

Rules (pinned by tests):

* **Which contracts.** Every signed contract: formal, and also terminated or expired ones (money
  still owed on an ended contract is still owed; the ``state`` column tells them apart). Drafts and
  contracts in review have no signing date and are left out. A billing whose contract is not in
  the input is ignored; a contract without a billing has nothing invoiced.
* **As of.** ``as_of`` is the day the list is drawn up: invoices and credit notes issued and
  payments received after it do not count yet, so a list drawn up for a past day is reproducible.
* **Figures.** ``invoiced`` is the invoices net of their credit notes, ``paid`` the payments,
  ``uninvoiced = amount - invoiced`` and ``unpaid = invoiced - paid``; per contract
  ``uninvoiced + unpaid == amount - paid``. All sums are exact; nothing is rounded.
* **Ageing.** An invoice with money still open (amount - credit notes - payments) is *overdue* when
  ``as_of`` is after its due date, by ``(as_of - due_on).days`` days (1 or more); an invoice due on
  ``as_of`` or later is *not due* yet. Overdue money falls into the buckets ``0-30`` (1 to 30 days),
  ``31-60``, ``61-90`` and ``90+`` (91 days and more), so ``unpaid == not_due + overdue`` and
  ``overdue`` is the sum of the four buckets.
* **Due milestones.** A milestone is listed when it is due on ``as_of`` (its due date has come, or
  its trigger was met by then) and its invoices net of credit notes are below its amount.
* **Filters.** ``not_invoiced=True`` keeps the contracts with something left to invoice,
  ``not_paid=True`` those with invoiced money not yet paid; both together keep a contract that
  matches either (the 未开票/未到款 list: everything with money still to come).
* **Order.** Rows are sorted by signing date, oldest first; ties by contract id.
* **Totals** per owner, per team (contracts without a team under ``None``) and for everyone are
  the exact sums of the listed rows, so owners add up to everyone and so do teams.
* **One currency.** Every contract, invoice, credit note and payment is in the same currency;
  another raises :class:`~salesflow.errors.CurrencyMismatchError`.
* **Objects, not a DataFrame.** Unlike the forecast, funnel, distribution and attainment, the
  list has no columnar path: each contract comes with its billing (invoices, credit notes and
  payments against invoices, milestones), which one table cannot hold, and the rows carry that
  detail back. A DataFrame for ``contracts`` or ``billings`` raises
  :class:`~salesflow.errors.InvalidTypeError` saying what to pass instead (its rows, e.g.
  ``frame.to_dict("records")`` with ``fields=``, and ``ContractBilling`` objects).

The calculator makes one pass over the contracts and keeps one compact tuple per listed contract;
the row objects are built when first read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Final, Protocol

import attrs

from salesflow.analytics.frames import is_frame
from salesflow.analytics.inputs import Fields, check_fields, mapped
from salesflow.analytics.performance import SignedDeal
from salesflow.domain.dates import to_date
from salesflow.domain.money import Money, currency_exponent
from salesflow.domain.numbers import EXACT, ZERO, exact_sum
from salesflow.errors import CurrencyMismatchError, InvalidTypeError, ValidationError
from salesflow.tables import NEGATIVE, WARNING, Table, plot_bars

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "BUCKETS",
    "CollectionFigures",
    "DueMilestone",
    "OverdueInvoice",
    "ReceivableBilling",
    "ReceivableContract",
    "ReceivableRow",
    "Receivables",
    "ReceivablesTotal",
    "ReceivablesTotals",
    "ageing_bucket",
    "receivables",
    "signed_from_contracts",
]

BUCKETS: Final = ("0-30", "31-60", "61-90", "90+")
"""The ageing buckets, by days overdue: 1-30, 31-60, 61-90, and 91 or more."""


def ageing_bucket(days_overdue: int) -> str:
    """The bucket of an invoice ``days_overdue`` days overdue (1 or more)."""
    if type(days_overdue) is not int or days_overdue < 1:
        raise ValidationError("days_overdue", days_overdue, "an int of 1 or more")
    if days_overdue <= 30:
        return BUCKETS[0]
    if days_overdue <= 60:
        return BUCKETS[1]
    if days_overdue <= 90:
        return BUCKETS[2]
    return BUCKETS[3]


# -- what the calculator reads ---------------------------------------------------------------------


class ReceivableContract(Protocol):
    """What :func:`receivables` reads from a contract (a Contract, an ORM row...).

    ``team`` and ``state`` are read when present (``None`` otherwise); a contract whose
    ``signed_on`` is ``None`` is not signed and is left out.
    """

    @property
    def id(self) -> str:
        """The contract id (the billing's ``contract_id``)."""
        ...

    @property
    def owner(self) -> str:
        """The rep."""
        ...

    @property
    def amount(self) -> Money:
        """The contract amount."""
        ...

    @property
    def signed_on(self) -> date | None:
        """The signing date, ``None`` while unsigned."""
        ...


class ReceivableBilling(Protocol):
    """What :func:`receivables` reads from a billing (see
    :class:`~salesflow.domain.billing.ContractBilling`): ``invoices`` (``id``, ``amount``,
    ``issued_on``, ``due_on``, ``milestone``), ``credit_notes`` (``invoice_id``, ``amount``,
    ``issued_on``), ``payments`` (``invoice_id``, ``amount``, ``received_on``) and ``milestones``
    (``name``, ``amount``, ``due_on``, ``reached_at``)."""

    @property
    def contract_id(self) -> str:
        """The contract's id."""
        ...

    @property
    def invoices(self) -> Iterable[Any]:
        """The invoices."""
        ...

    @property
    def credit_notes(self) -> Iterable[Any]:
        """The credit notes."""
        ...

    @property
    def payments(self) -> Iterable[Any]:
        """The payments."""
        ...

    @property
    def milestones(self) -> Iterable[Any]:
        """The billing plan."""
        ...


# -- results ----------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class OverdueInvoice:
    """An invoice with money open after its due date."""

    invoice_id: str
    """The invoice."""
    due_on: date
    """Its due date."""
    open: Money
    """What is still to be paid on it."""
    days_overdue: int
    """``(as_of - due_on).days``, 1 or more."""
    bucket: str
    """Its ageing bucket, one of :data:`BUCKETS`."""


@attrs.frozen(kw_only=True)
class DueMilestone:
    """A milestone due on ``as_of`` and not fully invoiced: the rep should invoice it."""

    name: str
    """The milestone."""
    due_on: date
    """Its due date."""
    amount: Money
    """Its amount."""
    uninvoiced: Money
    """What is left to invoice of it."""
    reached: bool
    """Whether its progress trigger was met by ``as_of`` (it may be due before its date)."""


@attrs.frozen(kw_only=True)
class CollectionFigures:
    """The money figures of a contract, or summed over contracts, on ``as_of``."""

    amount: Money
    """The contract amount (summed for totals)."""
    invoiced: Money
    """Invoiced, net of credit notes."""
    paid: Money
    """Received."""
    uninvoiced: Money
    """``amount - invoiced``."""
    unpaid: Money
    """``invoiced - paid``."""
    not_due: Money
    """Unpaid money on invoices not yet due."""
    overdue: Money
    """Unpaid money on overdue invoices (the sum of the ageing buckets)."""
    ageing: tuple[Money, Money, Money, Money]
    """Overdue money per bucket of :data:`BUCKETS`."""


@attrs.frozen(kw_only=True)
class ReceivableRow(CollectionFigures):
    """One signed contract's collections figures on ``as_of``."""

    contract_id: str
    """The contract."""
    owner: str
    """The rep."""
    team: str | None
    """The rep's team on the contract, if any."""
    state: str | None
    """``formal``, ``terminated`` or ``expired`` (``None`` when the input has no state)."""
    signed_on: date
    """The signing date (the list's order)."""
    overdue_invoices: tuple[OverdueInvoice, ...]
    """The overdue invoices, most overdue first."""
    due_milestones: tuple[DueMilestone, ...]
    """Milestones due and not fully invoiced, in plan order."""

    @property
    def max_days_overdue(self) -> int | None:
        """Days overdue of the most overdue invoice (``None`` when nothing is overdue)."""
        return self.overdue_invoices[0].days_overdue if self.overdue_invoices else None


_OWNER: Final = "owner"
_TEAM: Final = "team"
_TOTAL: Final = "total"


@attrs.frozen(kw_only=True)
class ReceivablesTotal(CollectionFigures):
    """The sums over the listed contracts of one owner, one team, or everyone."""

    kind: str
    """``"owner"``, ``"team"`` or ``"total"``."""
    name: str | None
    """The owner or team (``None``: the contracts without a team; ``"(all)"`` for everyone)."""
    count: int
    """Listed contracts."""


def _total_records(totals: Iterable[ReceivablesTotal]) -> list[dict[str, Any]]:
    return [
        {
            "kind": t.kind,
            "name": t.name,
            "count": t.count,
            "currency": t.amount.currency,
            "amount": t.amount.amount,
            "invoiced": t.invoiced.amount,
            "paid": t.paid.amount,
            "uninvoiced": t.uninvoiced.amount,
            "unpaid": t.unpaid.amount,
            "not_due": t.not_due.amount,
            **{f"overdue_{b}": m.amount for b, m in zip(BUCKETS, t.ageing, strict=True)},
            "overdue": t.overdue.amount,
        }
        for t in totals
    ]


class ReceivablesTotals(Table):
    """Totals of a :class:`Receivables` list: each owner, each team, then everyone."""

    def __init__(self, rows: tuple[ReceivablesTotal, ...], caption: str) -> None:
        self.rows = rows
        """Owners (by name), teams (by name, ``None`` last), then the ``(all)`` row."""
        self._caption = caption

    @property
    def caption(self) -> str:
        """Title of the printed table."""
        return self._caption

    def _find(self, kind: str, name: str | None) -> ReceivablesTotal:
        for row in self.rows:
            if row.kind == kind and row.name == name:
                return row
        raise ValidationError(kind, name, f"an {kind} listed in these receivables")

    def owner(self, name: str) -> ReceivablesTotal:
        """The totals of owner ``name``."""
        return self._find(_OWNER, name)

    def team(self, name: str | None) -> ReceivablesTotal:
        """The totals of team ``name`` (``None``: the contracts without a team)."""
        return self._find(_TEAM, name)

    @property
    def owners(self) -> tuple[ReceivablesTotal, ...]:
        """Every owner's totals."""
        return tuple(r for r in self.rows if r.kind == _OWNER)

    @property
    def teams(self) -> tuple[ReceivablesTotal, ...]:
        """Every team's totals."""
        return tuple(r for r in self.rows if r.kind == _TEAM)

    @property
    def everyone(self) -> ReceivablesTotal:
        """The totals over every listed contract."""
        return self.rows[-1]

    def to_records(self) -> list[dict[str, Any]]:
        """One record per owner: kind, name, count, currency, then every sum (Decimal). The
        teams' rows are :meth:`team_records`, everyone's :meth:`total_records`."""
        return _total_records(self.owners)

    def team_records(self) -> list[dict[str, Any]]:
        """One record per team (``None``: the contracts without a team), as :meth:`to_records`."""
        return _total_records(self.teams)

    def total_records(self) -> list[dict[str, Any]]:
        """Everyone's record, the sum of the owners' (and of the teams')."""
        return _total_records([self.everyone])

    def record_columns(self) -> list[str]:
        """kind, name, count, currency, then every sum."""
        return list(_TOTAL_COLUMNS)

    def display_records(self) -> list[dict[str, Any]]:
        """The owners' rows, then the teams'."""
        return _total_records([*self.owners, *self.teams])

    def _tone(self, column: str, value: Any, record: dict[str, Any]) -> str | None:
        return _tone(column, value)

    def plot(self, ax: Axes | None = None, **kw: Any) -> Axes:
        """Per owner, what is still to come: uninvoiced, not yet due, and overdue by age."""
        return _plot_owners(self.owners, ax, kw.pop("title", self.caption), kw)


_TOTAL_COLUMNS: Final = (
    "kind",
    "name",
    "count",
    "currency",
    "amount",
    "invoiced",
    "paid",
    "uninvoiced",
    "unpaid",
    "not_due",
    *(f"overdue_{b}" for b in BUCKETS),
    "overdue",
)


def _tone(column: str, value: Any) -> str | None:
    if column in ("overdue", "overdue_90+") and value:
        return NEGATIVE
    if column.startswith("overdue_") and value:
        return WARNING
    if column == "days" and value is not None and value > 90:
        return NEGATIVE
    return None


def _plot_owners(
    owners: Iterable[ReceivablesTotal], ax: Axes | None, title: str, kw: dict[str, Any]
) -> Axes:
    rows = list(owners)
    series = {
        "uninvoiced": [float(t.uninvoiced.amount) for t in rows],
        "not due": [float(t.not_due.amount) for t in rows],
        **{
            f"overdue {b}": [float(t.ageing[i].amount) for t in rows] for i, b in enumerate(BUCKETS)
        },
    }
    code = rows[0].amount.currency if rows else ""
    return plot_bars(
        ax,
        [str(t.name) for t in rows],
        series,
        stacked=True,
        horizontal=True,
        title=title,
        value_label=f"still to collect ({code})" if code else "still to collect",
        **kw,
    )


# One listed contract, as the calculator keeps it until rows are read:
# signed_on, id, owner, team, state, amount, invoiced, paid, not_due, bucket sums (4),
# overdue invoices ((id, due_on, open, days), ...), due milestones ((name, due_on, amount, left,
# reached), ...).
_Entry = tuple[Any, ...]
_DISPLAY: Final = (
    "contract",
    "owner",
    "team",
    "signed",
    "amount",
    "invoiced",
    "paid",
    "uninvoiced",
    "unpaid",
    "overdue",
    "days",
    "due milestones",
)
_SORT_KEY = itemgetter(0, 1)


class Receivables(Table):
    """The result of :func:`receivables`: rows sorted by signing date, and their totals."""

    def __init__(
        self, *, as_of: date, currency: str, entries: list[_Entry], totals: ReceivablesTotals
    ) -> None:
        self.as_of = as_of
        """The day the list is drawn up."""
        self.currency = currency
        """The currency of every amount."""
        self.totals = totals
        """Per owner, per team and for everyone (a printable :class:`ReceivablesTotals`)."""
        self._entries = entries
        self._rows: tuple[ReceivableRow, ...] | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[ReceivableRow]:
        return iter(self.rows)

    @property
    def rows(self) -> tuple[ReceivableRow, ...]:
        """One row per listed contract, oldest signing first (ties by contract id)."""
        if self._rows is None:
            self._rows = tuple(self._row(e) for e in self._entries)
        return self._rows

    def row(self, contract_id: str) -> ReceivableRow:
        """The row of contract ``contract_id``."""
        for row in self.rows:
            if row.contract_id == contract_id:
                return row
        raise ValidationError("contract_id", contract_id, "a contract listed in these receivables")

    def _row(self, e: _Entry) -> ReceivableRow:
        code = self.currency

        def money(amount: Decimal) -> Money:
            return Money._trusted(amount, code)

        (
            day,
            cid,
            owner,
            team,
            state,
            amount,
            invoiced,
            paid,
            not_due,
            b0,
            b1,
            b2,
            b3,
            late,
            due,
        ) = e
        overdue = b0 + b1 + b2 + b3
        return ReceivableRow(
            contract_id=cid,
            owner=owner,
            team=team,
            state=None if state is None else str(state),
            signed_on=day,
            amount=money(amount),
            invoiced=money(invoiced),
            paid=money(paid),
            uninvoiced=money(amount - invoiced),
            unpaid=money(invoiced - paid),
            not_due=money(not_due),
            overdue=money(overdue),
            ageing=(money(b0), money(b1), money(b2), money(b3)),
            overdue_invoices=tuple(
                OverdueInvoice(
                    invoice_id=i,
                    due_on=d,
                    open=money(o),
                    days_overdue=n,
                    bucket=ageing_bucket(n),
                )
                for i, d, o, n in sorted(late, key=lambda x: (-x[3], x[0]))
            ),
            due_milestones=tuple(
                DueMilestone(name=n, due_on=d, amount=money(a), uninvoiced=money(left), reached=r)
                for n, d, a, left, r in due
            ),
        )

    @property
    def caption(self) -> str:
        """Title of the printed table."""
        return f"Receivables as of {self.as_of.isoformat()} ({self.currency})"

    def to_records(self) -> list[dict[str, Any]]:
        """One record per row: contract_id, owner, team, state, signed_on, currency, amount,
        invoiced, paid, uninvoiced, unpaid, not_due, one ``overdue_<bucket>`` per bucket,
        overdue (Decimal), max_days_overdue, overdue_invoices and due_milestones (tuples of ids
        and names)."""
        return [
            {
                "contract_id": r.contract_id,
                "owner": r.owner,
                "team": r.team,
                "state": r.state,
                "signed_on": r.signed_on,
                "currency": self.currency,
                "amount": r.amount.amount,
                "invoiced": r.invoiced.amount,
                "paid": r.paid.amount,
                "uninvoiced": r.uninvoiced.amount,
                "unpaid": r.unpaid.amount,
                "not_due": r.not_due.amount,
                **{f"overdue_{b}": m.amount for b, m in zip(BUCKETS, r.ageing, strict=True)},
                "overdue": r.overdue.amount,
                "max_days_overdue": r.max_days_overdue,
                "overdue_invoices": tuple(i.invoice_id for i in r.overdue_invoices),
                "due_milestones": tuple(m.name for m in r.due_milestones),
            }
            for r in self.rows
        ]

    def total_records(self) -> list[dict[str, Any]]:
        """Everyone's totals (kind ``total``, name ``(all)``, count, currency, every sum): each
        sum equals that column summed over :meth:`to_records`. Per owner and per team:
        :attr:`totals`."""
        return self.totals.total_records()

    def record_columns(self) -> list[str]:
        """The columns of every contract record."""
        return list(_ROW_COLUMNS)

    def total_columns(self) -> list[str]:
        """The columns of the total record."""
        return list(_TOTAL_COLUMNS)

    def display_columns(self) -> list[str]:
        """The printed columns (named even when no contract is listed)."""
        return list(_DISPLAY)

    def display_totals(self) -> list[dict[str, Any]]:
        """Everyone's row, in the printed columns."""
        t = self.totals.everyone
        return [
            {
                "contract": f"(all: {t.count})",
                "amount": t.amount.amount,
                "invoiced": t.invoiced.amount,
                "paid": t.paid.amount,
                "uninvoiced": t.uninvoiced.amount,
                "unpaid": t.unpaid.amount,
                "overdue": t.overdue.amount,
            }
        ]

    def _tone(self, column: str, value: Any, record: dict[str, Any]) -> str | None:
        return _tone(column, value)

    def plot(self, ax: Axes | None = None, **kw: Any) -> Axes:
        """Per owner, what is still to come: uninvoiced, not yet due, and overdue by age."""
        return _plot_owners(self.totals.owners, ax, kw.pop("title", self.caption), kw)

    def display_records(self) -> list[dict[str, Any]]:
        """The printed columns: contract, owner, team, signed, amount, invoiced, paid,
        uninvoiced, unpaid, overdue, the most days overdue, and due milestones."""
        return [
            {
                "contract": r.contract_id,
                "owner": r.owner,
                "team": r.team,
                "signed": r.signed_on,
                "amount": r.amount.amount,
                "invoiced": r.invoiced.amount,
                "paid": r.paid.amount,
                "uninvoiced": r.uninvoiced.amount,
                "unpaid": r.unpaid.amount,
                "overdue": r.overdue.amount,
                "days": r.max_days_overdue,
                "due milestones": tuple(m.name for m in r.due_milestones),
            }
            for r in self.rows
        ]


_ROW_COLUMNS: Final = (
    "contract_id",
    "owner",
    "team",
    "state",
    "signed_on",
    "currency",
    "amount",
    "invoiced",
    "paid",
    "uninvoiced",
    "unpaid",
    "not_due",
    *(f"overdue_{b}" for b in BUCKETS),
    "overdue",
    "max_days_overdue",
    "overdue_invoices",
    "due_milestones",
)


# -- the calculator -----------------------------------------------------------------------------------


def _refuse_frames(contracts: object, billings: object) -> None:
    """Refuse a DataFrame for ``contracts`` or ``billings`` with an error that says what to pass.

    There is no columnar receivables list: its input is not one table but each contract with its
    billing (invoices, credit notes against invoices, payments against invoices, a milestone plan
    whose due dates and triggers decide what is due), and its rows carry that detail back
    (:class:`OverdueInvoice`, :class:`DueMilestone`). A frame of contracts alone cannot say what
    was invoiced or paid, and a few thousand contracts are no load for the object path. Without
    this check a frame would be iterated as its column names and refused for a missing ``id``.
    """
    for name, value in (("contracts", contracts), ("billings", billings)):
        if is_frame(value):
            kind = f"{type(value).__module__.partition('.')[0]} {type(value).__name__}"
            raise InvalidTypeError(
                name,
                value,
                _NOT_A_FRAME,
                message=f"invalid {name}: a {kind} ({_NOT_A_FRAME})",
            )


_NOT_A_FRAME: Final = (
    "receivables() reads each contract with its billing (invoices, credit notes, payments, "
    "milestones), which one table cannot hold: pass contracts as objects or rows, e.g. "
    "frame.to_dict('records') (pandas) or frame.to_dicts() (polars) with fields= giving "
    "'amount' as Money and 'signed_on' as a date, and billings as ContractBilling objects; "
    "see docs/guide/dataframes.md"
)


def _billings_by_contract(
    billings: Iterable[ReceivableBilling] | Mapping[str, ReceivableBilling],
) -> dict[str, ReceivableBilling]:
    if isinstance(billings, Mapping):
        billings = billings.values()
    if isinstance(billings, str) or not isinstance(billings, Iterable):
        raise InvalidTypeError("billings", billings, "an iterable of contract billings")
    found: dict[str, ReceivableBilling] = {}
    for billing in billings:
        try:
            key = billing.contract_id
        except AttributeError:
            raise InvalidTypeError(
                "billings", billing, "objects with contract_id, invoices, credit_notes, payments"
            ) from None
        if key in found:
            raise ValidationError("billings", key, "one billing per contract")
        found[key] = billing
    return found


def _mismatch(code: str, money: object, where: str) -> Exception:
    if isinstance(money, Money):
        return CurrencyMismatchError(code, money.currency, operation="list receivables with")
    return InvalidTypeError("amount", money, "Money", where=where)


def receivables(
    contracts: Iterable[ReceivableContract],
    billings: Iterable[ReceivableBilling] | Mapping[str, ReceivableBilling] = (),
    *,
    as_of: date | str,
    not_invoiced: bool = False,
    not_paid: bool = False,
    currency: str | None = None,
    fields: Fields | None = None,
) -> Receivables:
    """The collections list (R16) on ``as_of``: one row per signed contract, oldest signing first.

    Args:
        contracts: contracts (see :class:`ReceivableContract`); unsigned ones are left out.
        billings: their billings (see :class:`ReceivableBilling`), as an iterable or a mapping
            of contract id to billing; at most one per contract.
        as_of: the day the list is drawn up (later documents do not count yet).
        not_invoiced: keep only contracts with something left to invoice.
        not_paid: keep only contracts with invoiced money not yet paid (with ``not_invoiced``:
            contracts matching either).
        currency: the currency when no contract is signed (an empty list).
        fields: where each field comes from in your contract rows, e.g. ``{"owner":
            "sales_rep", "signed_on": "signing_date"}`` (see :mod:`salesflow.analytics.inputs`).

    Raises:
        ValidationError: a bad argument, a duplicate contract or billing, or a billing that breaks
            its invariants (invoiced above the amount, an invoice paid or credited beyond its
            amount, a payment or credit note for an invoice not issued by ``as_of``).
        InvalidTypeError: a DataFrame for ``contracts`` or ``billings``: there is no columnar
            receivables list (pass objects or rows, see the module's rules).
        CurrencyMismatchError: amounts in more than one currency.
    """
    _refuse_frames(contracts, billings)
    day = to_date(as_of, "as_of")
    for flag, value in (("not_invoiced", not_invoiced), ("not_paid", not_paid)):
        if type(value) is not bool:
            raise InvalidTypeError(flag, value, "True or False")
    if currency is not None:
        if not isinstance(currency, str):
            raise InvalidTypeError("currency", currency, "an ISO 4217 code or None")
        currency_exponent(currency)
    if isinstance(contracts, str) or not isinstance(contracts, Iterable):
        raise InvalidTypeError("contracts", contracts, "an iterable of contracts")
    by_contract = _billings_by_contract(billings)
    contracts = mapped(contracts, check_fields(fields))
    code = currency
    zero = ZERO if currency is None else currency_exponent(currency) * 0
    today = day.toordinal()
    keep_all = not (not_invoiced or not_paid)
    seen: set[str] = set()
    entries: list[_Entry] = []
    append = entries.append
    for contract in contracts:
        try:
            signed = contract.signed_on
            cid = contract.id
            money = contract.amount
            owner = contract.owner
        except AttributeError as exc:
            raise InvalidTypeError(
                exc.name or "contract", contract, "an object with id, owner, amount and signed_on"
            ) from None
        if signed is None:
            continue
        if cid in seen:
            raise ValidationError("contracts", cid, "each contract once")
        seen.add(cid)
        where = f"contract {cid!r}"
        if type(signed) is not date:
            raise InvalidTypeError("signed_on", signed, "a date (not a datetime)", where=where)
        if type(owner) is not str or not owner:
            raise ValidationError("owner", owner, "a non-empty string", where=where)
        if type(money) is not Money or money.currency != code:
            if code is None and type(money) is Money:
                code = money.currency
                # Sums start at zero written to the minor unit, so that they print as 0.00.
                zero = currency_exponent(code) * 0
            else:
                raise _mismatch(code or "", money, where)
        amount = money.amount
        invoiced = paid = not_due = b0 = b1 = b2 = b3 = zero
        late: list[tuple[str, date, Decimal, int]] = []
        due: list[tuple[str, date, Decimal, Decimal, bool]] = []
        billing = by_contract.get(cid)
        if billing is not None:
            # invoice id -> [open amount, due date, milestone, net of credit notes]
            open_: dict[str, list[Any]] = {}
            for inv in billing.invoices:
                if inv.issued_on > day:
                    continue
                m = inv.amount
                if type(m) is not Money or m.currency != code:
                    raise _mismatch(code or "", m, where)
                a = m.amount
                invoiced += a
                open_[inv.id] = [a, inv.due_on, inv.milestone, a]
            for note in billing.credit_notes:
                if note.issued_on > day:
                    continue
                m = note.amount
                if type(m) is not Money or m.currency != code:
                    raise _mismatch(code or "", m, where)
                entry = open_.get(note.invoice_id)
                if entry is None:
                    raise ValidationError(
                        "credit_notes", note.invoice_id, f"an invoice issued by {day}", where=where
                    )
                a = m.amount
                invoiced -= a
                entry[0] -= a
                entry[3] -= a
            for payment in billing.payments:
                if payment.received_on > day:
                    continue
                m = payment.amount
                if type(m) is not Money or m.currency != code:
                    raise _mismatch(code or "", m, where)
                entry = open_.get(payment.invoice_id)
                if entry is None:
                    raise ValidationError(
                        "payments", payment.invoice_id, f"an invoice issued by {day}", where=where
                    )
                a = m.amount
                paid += a
                entry[0] -= a
            for inv_id, (left, due_on, _milestone, _net) in open_.items():
                if not left:
                    continue
                if left < 0:
                    raise ValidationError(
                        "invoices",
                        inv_id,
                        "an invoice paid and credited at most up to its amount",
                        where=where,
                    )
                days = today - due_on.toordinal()
                if days <= 0:
                    not_due += left
                else:
                    late.append((inv_id, due_on, left, days))
                    if days <= 30:
                        b0 += left
                    elif days <= 60:
                        b1 += left
                    elif days <= 90:
                        b2 += left
                    else:
                        b3 += left
            milestones = billing.milestones
            if milestones:
                per_milestone: dict[str, Decimal] = {}
                for _left, _due_on, name, net in open_.values():
                    if name is not None:
                        per_milestone[name] = per_milestone.get(name, ZERO) + net
                for ms in milestones:
                    reached_at: datetime | None = ms.reached_at
                    reached = reached_at is not None and reached_at.date() <= day
                    if ms.due_on > day and not reached:
                        continue
                    m = ms.amount
                    if type(m) is not Money or m.currency != code:
                        raise _mismatch(code or "", m, where)
                    left_to_invoice = m.amount - per_milestone.get(ms.name, ZERO)
                    if left_to_invoice > 0:
                        due.append((ms.name, ms.due_on, m.amount, left_to_invoice, reached))
            if invoiced > amount:
                raise ValidationError(
                    "invoiced",
                    Money._trusted(invoiced, money.currency),
                    f"at most the contract amount {money}",
                    where=where,
                )
        if keep_all or (not_invoiced and invoiced < amount) or (not_paid and paid < invoiced):
            team = getattr(contract, "team", None)
            if team is not None and type(team) is not str:
                # A pandas row has NaN for a missing team: it would break the totals' order.
                raise InvalidTypeError("team", team, "a team name or None", where=where)
            append(
                (
                    signed,
                    cid,
                    owner,
                    team,
                    getattr(contract, "state", None),
                    amount,
                    invoiced,
                    paid,
                    not_due,
                    b0,
                    b1,
                    b2,
                    b3,
                    late,
                    due,
                )
            )
    if code is None:
        raise ValidationError(
            "currency", None, "receivables(currency=...) when no contract in the input is signed"
        )
    entries.sort(key=_SORT_KEY)
    totals = _totals(entries, code, day)
    return Receivables(as_of=day, currency=code, entries=entries, totals=totals)


_SUMS: Final = 8  # count, amount, invoiced, paid, not_due and the four buckets


def _totals(entries: list[_Entry], code: str, day: date) -> ReceivablesTotals:
    owners: dict[str, list[Any]] = {}
    teams: dict[str | None, list[Any]] = {}
    zero = currency_exponent(code) * 0
    everyone: list[Any] = [0, *[zero] * _SUMS]
    for e in entries:
        for table, key in ((owners, e[2]), (teams, e[3])):
            sums = table.get(key)
            if sums is None:
                sums = table[key] = [0, *[zero] * _SUMS]
            _add(sums, e)
        _add(everyone, e)

    def total(kind: str, name: str | None, sums: list[Any]) -> ReceivablesTotal:
        count, amount, invoiced, paid, not_due, b0, b1, b2, b3 = sums

        def money(value: Decimal) -> Money:
            return Money._trusted(value, code)

        return ReceivablesTotal(
            kind=kind,
            name=name,
            count=count,
            amount=money(amount),
            invoiced=money(invoiced),
            paid=money(paid),
            uninvoiced=money(EXACT.subtract(amount, invoiced)),
            unpaid=money(EXACT.subtract(invoiced, paid)),
            not_due=money(not_due),
            overdue=money(exact_sum((b0, b1, b2, b3))),
            ageing=(money(b0), money(b1), money(b2), money(b3)),
        )

    rows = [total(_OWNER, name, owners[name]) for name in sorted(owners)]
    named = sorted(t for t in teams if t is not None)
    rows.extend(total(_TEAM, name, teams[name]) for name in named)
    if None in teams:
        rows.append(total(_TEAM, None, teams[None]))
    rows.append(total(_TOTAL, "(all)", everyone))
    return ReceivablesTotals(tuple(rows), f"Receivables totals as of {day.isoformat()} ({code})")


def _add(sums: list[Any], e: _Entry) -> None:
    # Totals over every contract: exact (EXACT), however many there are. A contract's own figures
    # are bounded by its amount, so they stay well inside the default context.
    add = EXACT.add
    sums[0] += 1
    for i in range(1, _SUMS + 1):
        sums[i] = add(sums[i], e[i + 4])


def signed_from_contracts(contracts: Iterable[ReceivableContract]) -> Iterator[SignedDeal]:
    """The signed contracts of ``contracts`` as :class:`~salesflow.analytics.performance.SignedDeal`
    values (owner, amount, signing date, ``source`` = contract id), lazily, for
    :func:`~salesflow.analytics.performance.attainment` (R15).

    Every signed contract counts on its signing date, terminated and expired ones too: what was
    signed stays signed. Contracts without a signing date (drafts, in review) are skipped.
    """
    if isinstance(contracts, str) or not isinstance(contracts, Iterable):
        raise InvalidTypeError("contracts", contracts, "an iterable of contracts")
    return _signed(contracts)


def _signed(contracts: Iterable[ReceivableContract]) -> Iterator[SignedDeal]:
    for contract in contracts:
        signed = contract.signed_on
        if signed is None:
            continue
        yield SignedDeal(
            owner=contract.owner, amount=contract.amount, signed_on=signed, source=contract.id
        )
