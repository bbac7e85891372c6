"""Targets and attainment (R15): "how far are we from target, and will the pipeline close the gap?".

Rules (pinned by tests):

* A :class:`Target` is an amount for a rep or a team in one :class:`~salesflow.domain.periods.Period`.
* **Signed** is the exact sum of the deals signed in the period (any objects with ``owner``,
  ``amount`` and ``signed_on``, see :class:`SignedItem`; :func:`signed_deals` derives them from
  won opportunities, and formal contracts will feed the same protocol).
* **Expected** is the weighted forecast (R2) of the period's months from the forecast's ``as_of``
  on: overdue and undated opportunities are not counted, since nobody knows when they will close.
* Per rep and team: ``gap = max(target - signed, 0)``, ``projected = signed + expected``,
  ``coverage = expected / gap`` and ``attainment = signed / target``, both percentages rounded half
  up to ``places`` decimals (``None`` when the gap, or the target, is zero).
* **Teams roll up from their members.** Membership is given explicitly as
  ``teams={"east": ["ann", "bob"], ...}``; a rep belongs to at most one team. A team's signed,
  expected and projected are the exact sums of its members'. A team's gap, coverage and
  attainment are computed from the team's figures (a rep's overshoot covers a teammate's
  shortfall), so they are not the sums of the members'.
* **A team's target is the manager's.** Left out, it is the sum of its members' targets. Given,
  it may differ from that sum, as managers set them: above it is a **stretch** (the team aims at
  100k while its reps' targets add up to 80k), below it a **cushion**. The team row reports both
  numbers: ``target`` (the team's), ``members_target`` (the exact sum of its members') and
  ``difference`` (``target - members_target``, labelled by ``basis``: :data:`STRETCH`,
  :data:`CUSHION`, or :data:`MEMBERS` when they agree). Gap, coverage and attainment of the team
  are measured against the team's own target.
* The ``(all)`` row sums every rep once for signed and expected; its target is the company's sum
  of the teams' targets (stretches and cushions included) and of the targets of reps in no team,
  its ``members_target`` the sum of every rep's target.
* **Targets per period, pro-rated.** A target is set for a month, a quarter or a (fiscal) year.
  Measuring ``period``, a rep's or team's target is the one set for ``period`` itself; without
  one, it is the **pro-rated share** of the shortest target set for a longer period that contains
  ``period`` (a quarter's target measured over one of its months). Pro-rating is exact and equal
  per month: :meth:`Target.monthly` splits the amount over its months with
  :meth:`Money.allocate <salesflow.domain.money.Money.allocate>` (equal weights, in whole minor
  units of the currency; the minor units left over go one each to the earliest months), so the
  months of a quarter add up to exactly the quarter's target, and a share of several months
  (:meth:`Target.share`) is the exact sum of those months. Targets of shorter periods inside
  ``period`` are not added up: set the target of the period you measure, or measure the shorter
  periods.
* One currency: mixing currencies raises :class:`~salesflow.errors.CurrencyMismatchError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from salesflow.analytics.forecast import Forecast
from salesflow.analytics.frames import is_frame
from salesflow.analytics.grouping import ALL, check_currency, check_places, percent_of
from salesflow.analytics.inputs import (
    Fields,
    StageNames,
    check_fields,
    mapped,
    row_of,
    stage_names,
)
from salesflow.domain.money import Money
from salesflow.domain.numbers import EXACT, ZERO, exact_sum
from salesflow.domain.periods import Period
from salesflow.domain.stages import StagePlan
from salesflow.errors import CurrencyMismatchError, InvalidTypeError, ValidationError
from salesflow.tables import NEGATIVE, POSITIVE, WARNING, Table, outside_legend, plot_bars

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "CUSHION",
    "MEMBERS",
    "REP",
    "STRETCH",
    "TEAM",
    "TOTAL",
    "Attainment",
    "AttainmentRow",
    "SignedDeal",
    "SignedItem",
    "Target",
    "attainment",
    "signed_deals",
]

REP = "rep"
"""Row kind of a rep."""
TEAM = "team"
"""Row kind of a team (the sum of its members)."""
TOTAL = "total"
"""Row kind of the ``(all)`` row (the sum of every rep)."""
STRETCH = "stretch"
"""Basis of a team target set above the sum of its members' targets."""
CUSHION = "cushion"
"""Basis of a team target set below the sum of its members' targets."""
MEMBERS = "members"
"""Basis of a team target equal to the sum of its members' targets (or left out)."""


class SignedItem(Protocol):
    """What :func:`attainment` reads from each signed deal (a :class:`SignedDeal`, a contract...)."""

    @property
    def owner(self) -> str:
        """The rep who signed."""
        ...

    @property
    def amount(self) -> Money:
        """The signed amount."""
        ...

    @property
    def signed_on(self) -> date:
        """The signing date."""
        ...


def _check_name(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(attribute.name, value, "a non-empty string")


def _check_amount(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Money):
        raise InvalidTypeError(attribute.name, value, "Money, e.g. Money.of('1000', 'CNY')")
    if value.amount < 0:
        raise ValidationError(attribute.name, value, "an amount of zero or more")


def _check_signed_on(_instance: object, _attribute: object, value: Any) -> None:
    if type(value) is not date:
        raise InvalidTypeError("signed_on", value, "a date (not a datetime)")


def _to_period(value: object) -> Period:
    if isinstance(value, Period):
        return value
    if isinstance(value, str):
        return Period.parse(value)
    raise InvalidTypeError("period", value, "a Period or a label such as '2026-Q4'")


@attrs.frozen(kw_only=True)
class SignedDeal:
    """A signed deal: who signed how much, when; ``source`` names what it came from (an
    opportunity or contract id)."""

    owner: str = attrs.field(validator=_check_name)
    amount: Money = attrs.field(validator=_check_amount)
    signed_on: date = attrs.field(validator=_check_signed_on)
    source: str | None = None


@attrs.frozen(kw_only=True)
class Target:
    """The amount a rep or a team should sign in a period.

    ``owner`` is a rep's name or a team's name (a key of ``attainment(teams=...)``); ``period`` a
    :class:`~salesflow.domain.periods.Period` or its label (``"2026-Q4"``, ``"2026-11"``);
    ``amount`` a non-negative :class:`~salesflow.domain.money.Money`.
    """

    owner: str = attrs.field(validator=_check_name)
    period: Period = attrs.field(converter=_to_period)
    amount: Money = attrs.field(validator=_check_amount)

    def monthly(self) -> tuple[Target, ...]:
        """This target split equally over its months, exactly: one month :class:`Target` per
        month, in order, whose amounts add up to exactly this target's.

        The split is :meth:`Money.allocate <salesflow.domain.money.Money.allocate>` with equal
        weights, in whole minor units of the currency: the minor units left over go one each
        to the earliest months (100.00 CNY over a quarter: 33.34, 33.33, 33.33).

        Raises:
            ValidationError: the amount is not a whole number of minor units (``amount``).
        """
        if self.period.kind == "month":
            return (self,)
        if not self.amount.is_rounded():
            raise ValidationError(
                "amount",
                self.amount,
                f"a target in whole minor units of {self.amount.currency} to pro-rate "
                f"(target of {self.owner!r} for {self.period.label})",
            )
        parts = self.amount.allocate([1] * self.period.length)
        return tuple(
            Target(owner=self.owner, period=Period.from_month_index(index), amount=part)
            for index, part in zip(self.period.month_indexes(), parts, strict=True)
        )

    def share(self, period: Period | str) -> Target:
        """The pro-rated target of ``period``, a period inside this target's (a month of a
        quarter, a quarter of a year): the exact sum of :meth:`monthly` over ``period``'s
        months. The shares of the parts of a period add up to exactly its target.

        Raises:
            ValidationError: ``period`` is not inside this target's period, or the amount is
                not a whole number of minor units.
        """
        inner = _to_period(period)
        if inner == self.period:
            return self
        if not _covers(self.period, inner):
            raise ValidationError(
                "period", inner, f"a period inside {self.period.label}, the target's period"
            )
        wanted = set(inner.month_indexes())
        months = [m.amount.amount for m in self.monthly() if m.period.first in wanted]
        return Target(
            owner=self.owner,
            period=inner,
            amount=Money._trusted(exact_sum(months), self.amount.currency),
        )


def _covers(outer: Period, inner: Period) -> bool:
    """Whether ``outer`` is longer than ``inner`` and holds every month of it."""
    return (
        outer.length > inner.length
        and outer.first <= inner.first
        and inner.first + inner.length <= outer.first + outer.length
    )


def signed_deals(
    opportunities: Iterable[Any], plan: StagePlan | None = None, *, fields: Fields | None = None
) -> Iterator[SignedDeal]:
    """The won opportunities of ``opportunities`` as :class:`SignedDeal` values, lazily.

    The signing date is the date (in its own time zone) of the last move into the plan's won stage
    in the opportunity's ``history``; without one, its ``expected_close``. A won opportunity with
    neither raises :class:`~salesflow.errors.ValidationError`: it cannot be put in a period, and
    dropping it would understate what was signed. Stages may be keys or display names;
    ``fields`` maps the fields read (see :mod:`salesflow.analytics.inputs`).
    """
    plan, names = stage_names(plan)
    return _signed(mapped(opportunities, check_fields(fields)), names)


def _signed(opportunities: Iterable[Any], names: StageNames) -> Iterator[SignedDeal]:
    won = names.plan.won_stage.key
    for item in opportunities:
        stage = item.stage
        if stage != won and (stage in names.plan or names.key(stage) != won):
            continue
        signed_on: date | None = None
        for change in reversed(tuple(getattr(item, "history", ()) or ())):
            if change.to_stage == won or names.find(change.to_stage) == won:
                at = change.at
                signed_on = at.date() if isinstance(at, datetime) else at
                break
        if signed_on is None:
            signed_on = getattr(item, "expected_close", None)
        where = f"opportunity {getattr(item, 'id', item)!r}"
        if signed_on is None:
            raise ValidationError(
                "signed_on", None, "a move into the won stage or an expected_close", where=where
            )
        amount = item.amount
        if not isinstance(amount, Money):
            raise InvalidTypeError("amount", amount, "Money", where=where)
        yield SignedDeal(
            owner=item.owner, amount=amount, signed_on=signed_on, source=getattr(item, "id", None)
        )


@attrs.frozen(kw_only=True)
class AttainmentRow:
    """One rep's, team's or the total's figures for the period."""

    name: str
    """The rep, the team, or ``(all)``."""
    kind: str
    """:data:`REP`, :data:`TEAM` or :data:`TOTAL`."""
    team: str | None
    """The rep's team (the team itself on a team row; ``None`` for a rep in no team)."""
    target: Money
    """The target: a team's own when set (else the sum of its members'), the company's on the
    ``(all)`` row."""
    signed: Money
    """Signed in the period."""
    expected: Money
    """The weighted forecast of the period."""
    gap: Money
    """``max(target - signed, 0)``."""
    projected: Money
    """``signed + expected``."""
    coverage: Decimal | None
    """``expected / gap`` in percent (``None`` when there is no gap)."""
    attainment: Decimal | None
    """``signed / target`` in percent (``None`` without a target)."""
    members_target: Money | None = None
    """The exact sum of the members' targets (every rep's on the ``(all)`` row); ``None`` on a
    rep's row."""
    difference: Money | None = None
    """``target - members_target``: above zero a stretch, below a cushion; ``None`` on a rep's
    row."""
    basis: str | None = None
    """:data:`STRETCH`, :data:`CUSHION` or :data:`MEMBERS` (how ``target`` relates to
    ``members_target``); ``None`` on a rep's row."""


class Attainment(Table):
    """The result of :func:`attainment`: per rep, team and in total, target, signed, gap,
    expected, projected, coverage and attainment for one period (R15)."""

    def __init__(self, *, period: Period, currency: str, rows: list[AttainmentRow]) -> None:
        self.period = period
        """The period measured."""
        self.currency = currency
        """The currency of every amount."""
        self.rows = tuple(rows)
        """Every row: each team's members then the team, reps in no team, then ``(all)``."""

    def row(self, name: str, kind: str | None = None) -> AttainmentRow:
        """The row of rep or team ``name`` (``kind`` picks one when a rep and a team share it;
        ``(all)`` is the total)."""
        for row in self.rows:
            if row.name == name and (kind is None or row.kind == kind):
                return row
        raise ValidationError("name", name, "a rep, a team or '(all)' of this attainment")

    @property
    def reps(self) -> list[AttainmentRow]:
        """The reps' rows."""
        return [r for r in self.rows if r.kind == REP]

    @property
    def teams(self) -> list[AttainmentRow]:
        """The teams' rows."""
        return [r for r in self.rows if r.kind == TEAM]

    @property
    def total(self) -> AttainmentRow:
        """The ``(all)`` row."""
        return self.rows[-1]

    @property
    def caption(self) -> str:
        """Title of the printed table."""
        return f"Attainment {self.period.label} ({self.currency})"

    def to_records(self) -> list[dict[str, Any]]:
        """One record per rep: ``name``, ``kind``, ``team``, ``currency``, then ``target``,
        ``signed``, ``gap``, ``expected``, ``projected`` (Decimal), ``coverage``,
        ``attainment`` (percent or ``None``), then ``members_target``, ``difference`` and
        ``basis`` (``None`` for a rep). The teams' rows are :meth:`team_records`, the ``(all)``
        row :meth:`total_records`."""
        return _records(self.reps)

    def team_records(self) -> list[dict[str, Any]]:
        """One record per team, as :meth:`to_records`: the team's target beside the sum of its
        members' (``members_target``) and the ``difference``, a :data:`STRETCH` or a
        :data:`CUSHION` (``basis``)."""
        return _records(self.teams)

    def total_records(self) -> list[dict[str, Any]]:
        """The ``(all)`` record: every rep once (its signed, expected and projected are the sums
        of the reps' records; its target is the sum of the teams' targets and of the reps in no
        team, its ``members_target`` the sum of the reps'; gap, coverage and attainment are
        computed from these)."""
        return _records([self.total])

    def record_columns(self) -> list[str]:
        """The columns of every record."""
        return list(_COLUMNS)

    def display_records(self) -> list[dict[str, Any]]:
        """Each team's members then the team, then the reps in no team (the ``(all)`` row is
        :meth:`display_totals`)."""
        return _records([r for r in self.rows if r.kind != TOTAL])

    def _tone(self, column: str, value: Any, record: dict[str, Any]) -> str | None:
        if column == "gap" and value:
            return NEGATIVE
        if column == "attainment" and value is not None and value >= 100:
            return POSITIVE
        if column == "coverage" and value is not None and value < 100:
            return WARNING
        return None

    def plot(self, ax: Axes | None = None, **kw: Any) -> Axes:
        """Per rep, signed and expected stacked against the target (a black tick): who will
        make it and who will not."""
        reps = self.reps
        labels = [r.name for r in reps]
        series = {
            "signed": [float(r.signed.amount) for r in reps],
            "expected": [float(r.expected.amount) for r in reps],
        }
        title = kw.pop("title", self.caption)
        axes = plot_bars(
            ax,
            labels,
            series,
            stacked=True,
            horizontal=True,
            title=title,
            value_label=f"amount ({self.currency})",
            **kw,
        )
        axes.scatter(
            [float(r.target.amount) for r in reps],
            range(len(reps)),
            marker="|",
            s=300,
            color="black",
            label="target",
            zorder=3,
        )
        outside_legend(axes)
        return axes


_COLUMNS = (
    "name",
    "kind",
    "team",
    "currency",
    "target",
    "signed",
    "gap",
    "expected",
    "projected",
    "coverage",
    "attainment",
    "members_target",
    "difference",
    "basis",
)


def _records(rows: Iterable[AttainmentRow]) -> list[dict[str, Any]]:
    return [
        {
            "name": r.name,
            "kind": r.kind,
            "team": r.team,
            "currency": r.target.currency,
            "target": r.target.amount,
            "signed": r.signed.amount,
            "gap": r.gap.amount,
            "expected": r.expected.amount,
            "projected": r.projected.amount,
            "coverage": r.coverage,
            "attainment": r.attainment,
            "members_target": None if r.members_target is None else r.members_target.amount,
            "difference": None if r.difference is None else r.difference.amount,
            "basis": r.basis,
        }
        for r in rows
    ]


# -- the calculator -----------------------------------------------------------------------------


class _Sums:
    """Amounts per name in one currency (the first one seen, or the one given)."""

    def __init__(self, currency: str | None) -> None:
        self.currency = currency
        self.targets: dict[str, Decimal] = {}
        self.signed: dict[str, Decimal] = {}
        self.expected: dict[str, Decimal] = {}

    def check(self, code: str, what: str) -> None:
        if self.currency is None:
            self.currency = code
        elif code != self.currency:
            raise CurrencyMismatchError(self.currency, code, operation=f"measure {what} against")


def _teams(teams: Mapping[str, Iterable[str]] | None) -> dict[str, tuple[str, ...]]:
    if teams is None:
        return {}
    if not isinstance(teams, Mapping):
        raise InvalidTypeError("teams", teams, "a mapping of team name to its members' names")
    parsed: dict[str, tuple[str, ...]] = {}
    team_of: dict[str, str] = {}
    for team, members in teams.items():
        if not isinstance(team, str) or not team.strip() or team == ALL:
            raise ValidationError("teams", team, "team names that are non-empty strings")
        if isinstance(members, str) or not isinstance(members, Iterable):
            raise InvalidTypeError(f"teams[{team!r}]", members, "an iterable of rep names")
        names = tuple(dict.fromkeys(members))
        for name in names:
            if not isinstance(name, str) or not name.strip() or name == ALL:
                raise ValidationError(f"teams[{team!r}]", name, "rep names as non-empty strings")
            if name in team_of:
                raise ValidationError(
                    f"teams[{team!r}]",
                    name,
                    f"a rep in one team only ({name!r} is also in {team_of[name]!r})",
                )
            team_of[name] = team
        parsed[team] = names
    clash = sorted(set(parsed) & set(team_of))
    if clash:
        raise ValidationError("teams", clash, "team names that are not also rep names")
    return parsed


def _read_targets(targets: Iterable[Target], period: Period, sums: _Sums) -> None:
    if isinstance(targets, Target) or not isinstance(targets, Iterable):
        raise InvalidTypeError("targets", targets, "an iterable of Target")
    # Per owner, the targets of longer periods holding ``period``: the shortest is pro-rated
    # when no target is set for ``period`` itself.
    longer: dict[str, list[tuple[int, Target]]] = {}
    for i, target in enumerate(targets):
        if not isinstance(target, Target):
            raise InvalidTypeError(f"targets[{i}]", target, "a Target")
        if target.period != period:
            if _covers(target.period, period):
                longer.setdefault(target.owner, []).append((i, target))
            continue
        if target.owner in sums.targets:
            raise ValidationError(
                f"targets[{i}]", target, f"one target per rep or team for {period.label}"
            )
        sums.check(target.amount.currency, "targets")
        sums.targets[target.owner] = target.amount.amount
    for owner, found in longer.items():
        if owner in sums.targets:
            continue
        shortest = min(t.period.length for _i, t in found)
        chosen = [(i, t) for i, t in found if t.period.length == shortest]
        if len(chosen) > 1:
            i, target = chosen[1]
            raise ValidationError(
                f"targets[{i}]",
                target,
                f"one {target.period.kind} target per rep or team holding {period.label} "
                f"(targets[{chosen[0][0]}] is one too)",
            )
        i, target = chosen[0]
        sums.check(target.amount.currency, "targets")
        sums.targets[owner] = target.share(period).amount.amount


def _read_signed(signed: Iterable[SignedItem], period: Period, sums: _Sums) -> None:
    if not isinstance(signed, Iterable):
        raise InvalidTypeError("signed", signed, "an iterable of signed deals")
    first, last = period.first, period.first + period.length
    for item in signed:
        where = (
            f"signed deal {getattr(item, 'source', None) or getattr(item, 'id', row_of(item))!r}"
        )
        try:
            owner, money, day = item.owner, item.amount, item.signed_on
        except AttributeError as exc:
            raise InvalidTypeError(
                exc.name or "signed", item, "an object with owner, amount and signed_on"
            ) from exc
        if type(day) is not date:
            raise InvalidTypeError("signed_on", day, "a date (not a datetime)", where=where)
        if not first <= day.year * 12 + day.month - 1 < last:
            continue
        if not isinstance(owner, str) or not owner.strip():
            raise ValidationError("owner", owner, "a non-empty string", where=where)
        if not isinstance(money, Money):
            raise InvalidTypeError("amount", money, "Money", where=where)
        sums.check(money.currency, "signed amounts")
        sums.signed[owner] = EXACT.add(sums.signed.get(owner, ZERO), money.amount)


def _read_expected(
    forecast: Forecast | Mapping[str, Money] | None, period: Period, sums: _Sums
) -> None:
    if forecast is None:
        return
    if isinstance(forecast, Forecast):
        expected = _expected_of(forecast, period)
    elif isinstance(forecast, Mapping):
        expected = dict(forecast)
    else:
        raise InvalidTypeError(
            "forecast", forecast, "a Forecast, a mapping of rep to expected Money, or None"
        )
    for owner, money in expected.items():
        if not isinstance(owner, str) or not owner.strip():
            raise ValidationError("forecast", owner, "reps named by non-empty strings")
        if not isinstance(money, Money):
            raise InvalidTypeError(f"forecast[{owner!r}]", money, "Money")
        sums.check(money.currency, "the forecast")
        sums.expected[owner] = EXACT.add(sums.expected.get(owner, ZERO), money.amount)


def _expected_of(forecast: Forecast, period: Period) -> dict[str, Money]:
    if "owner" not in forecast.by:
        raise ValidationError("forecast", forecast.by, "a forecast grouped by 'owner'")
    if period.kind != "month" and forecast.fiscal_year_start != period.fiscal_year_start:
        raise ValidationError(
            "forecast",
            forecast.fiscal_year_start,
            f"a forecast with fiscal_year_start={period.fiscal_year_start}, like the period",
        )
    position = forecast.by.index("owner")
    expected: dict[str, Money] = {}
    for group, cells in forecast.table(period.kind).items():
        money = cells.get(period)
        if money is None:
            continue
        owner = group if len(forecast.by) == 1 else group[position]
        expected[owner] = expected[owner] + money if owner in expected else money
    return expected


def _percent(part: Decimal, whole: Decimal, places: int) -> Decimal | None:
    if not whole:
        return None
    return percent_of(Fraction(part) / Fraction(whole), places)


def attainment(
    targets: Iterable[Target],
    signed: Iterable[SignedItem],
    forecast: Forecast | Mapping[str, Money] | None = None,
    *,
    period: Period | str,
    teams: Mapping[str, Iterable[str]] | None = None,
    currency: str | None = None,
    places: int = 1,
    fields: Fields | None = None,
) -> Attainment:
    """Target, signed, gap, expected, projected, coverage and attainment per rep and team for
    ``period`` (R15).

    Args:
        targets: :class:`Target` values: per rep or team, the one set for ``period``, else the
            pro-rated share (:meth:`Target.share`) of the shortest one set for a longer period
            holding ``period``; the others are ignored. At most one per rep or team and period.
            A team's target may differ from the sum of its members' (a stretch or a cushion).
        signed: signed deals (see :class:`SignedItem` and :func:`signed_deals`); only those
            signed in ``period`` count.
        forecast: a :class:`~salesflow.analytics.forecast.Forecast` grouped by ``owner`` (its
            figure for ``period`` is taken), a mapping of rep to the expected ``Money``, or
            ``None`` (nothing expected).
        period: the period measured, a :class:`~salesflow.domain.periods.Period` or a label.
        teams: team name -> its reps' names. A target whose owner is a team name is that team's.
        currency: the currency when nothing else names one (an empty input).
        places: decimal places of coverage and attainment (0 to 6).
        fields: where ``owner``, ``amount`` and ``signed_on`` come from in the signed deals,
            e.g. ``{"signed_on": "close_date"}`` (see :mod:`salesflow.analytics.inputs`).

    Raises:
        ValidationError: a bad argument, a duplicate target, or a target to pro-rate that is
            not in whole minor units.
        CurrencyMismatchError: the amounts are in more than one currency.
    """
    period = _to_period(period)
    members = _teams(teams)
    check_currency(currency)
    check_places(places)
    sums = _Sums(currency)
    _read_targets(targets, period, sums)
    if is_frame(signed):  # a DataFrame: summed on its columns (analytics.columnar)
        from salesflow.analytics.columnar import signed_frame

        found = signed_frame(signed, period, sums.currency, check_fields(fields))
        for owner, (amount, code) in found.items():
            sums.check(code, "signed amounts")
            sums.signed[owner] = amount
    elif not isinstance(signed, Iterable):
        raise InvalidTypeError("signed", signed, "an iterable of signed deals")
    else:
        _read_signed(mapped(signed, check_fields(fields)), period, sums)
    _read_expected(forecast, period, sums)
    if sums.currency is None:
        raise ValidationError("currency", None, "attainment(currency=...) for an empty input")
    code = sums.currency
    for team in members:
        for table, what in ((sums.signed, "signed deals"), (sums.expected, "the forecast")):
            if team in table:
                raise ValidationError(
                    "owner", team, f"a rep, not the team {team!r}, as the owner in {what}"
                )

    team_of = {rep: team for team, reps in members.items() for rep in reps}
    reps = set(team_of) | set(sums.signed) | set(sums.expected)
    reps |= {name for name in sums.targets if name not in members}

    def row(
        name: str, kind: str, team: str | None, target: Decimal, done: Decimal, exp: Decimal
    ) -> AttainmentRow:
        # Sums of many deals: exact, and may exceed the bound of a single amount.
        gap = max(EXACT.subtract(target, done), ZERO)
        return AttainmentRow(
            name=name,
            kind=kind,
            team=team,
            target=Money._trusted(target, code),
            signed=Money._trusted(done, code),
            expected=Money._trusted(exp, code),
            gap=Money._trusted(gap, code),
            projected=Money._trusted(EXACT.add(done, exp), code),
            coverage=_percent(exp, gap, places),
            attainment=_percent(done, target, places),
        )

    def rep_row(name: str) -> AttainmentRow:
        return row(
            name,
            REP,
            team_of.get(name),
            sums.targets.get(name, ZERO),
            sums.signed.get(name, ZERO),
            sums.expected.get(name, ZERO),
        )

    def set_against(summed: AttainmentRow, members_target: Decimal) -> AttainmentRow:
        difference = EXACT.subtract(summed.target.amount, members_target)
        basis = STRETCH if difference > 0 else CUSHION if difference < 0 else MEMBERS
        return attrs.evolve(
            summed,
            members_target=Money._trusted(members_target, code),
            difference=Money._trusted(difference, code),
            basis=basis,
        )

    rows: list[AttainmentRow] = []
    for team in sorted(members):
        team_rows = [rep_row(name) for name in sorted(members[team])]
        summed = exact_sum(r.target.amount for r in team_rows)
        # A manager's target may differ from the members' sum: a stretch or a cushion.
        target = sums.targets.get(team, summed)
        rows.extend(team_rows)
        team_row = row(
            team,
            TEAM,
            team,
            target,
            exact_sum(r.signed.amount for r in team_rows),
            exact_sum(r.expected.amount for r in team_rows),
        )
        rows.append(set_against(team_row, summed))
    rows.extend(rep_row(name) for name in sorted(reps - set(team_of)))
    every = [r for r in rows if r.kind == REP]
    company = [r for r in rows if r.kind == TEAM or (r.kind == REP and r.team is None)]
    total = row(
        ALL,
        TOTAL,
        None,
        exact_sum(r.target.amount for r in company),
        exact_sum(r.signed.amount for r in every),
        exact_sum(r.expected.amount for r in every),
    )
    rows.append(set_against(total, exact_sum(r.target.amount for r in every)))
    return Attainment(period=period, currency=code, rows=rows)
