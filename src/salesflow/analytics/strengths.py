"""Rep strengths (R17): where does each rep sign best, and who should get a new customer?

Rules (pinned by tests):

* :func:`rep_industry_matrix` counts, per rep and industry, the **closed** opportunities (won plus
  lost), the won and the lost ones, the won amount, and the open ones (kept apart: an open deal
  says nothing yet about the rep's win rate).
* The **win rate** is won / closed, a ``Decimal`` percentage; ``None`` when nothing has closed.
* The **smoothed win rate** shrinks the win rate towards the team's win rate in the same industry,
  with a Beta prior of ``prior_strength`` pseudo-deals centred on that team rate:
  ``(won + strength x team_rate) / (closed + strength)``. It always lies between the rep's raw
  rate and the team rate, so two lucky deals do not make an expert, while a long record speaks for
  itself. The default strength, 10, weighs the team's experience like ten closed deals.
* Rates are computed exactly and shown rounded half up to ``places`` decimals; rankings compare
  the exact values.
* :func:`recommend_owners` ranks every rep of the matrix for a customer in one industry by smoothed
  win rate (then won deals, then closed deals, then name). A rep with no closed deal in that
  industry ranks at the team's rate: the prior is all there is to know.

The matrix makes one pass over its input and keeps memory proportional to the number of (rep,
industry) cells.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import tzinfo
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from salesflow.analytics.grouping import (
    MISSING,
    amount_fields,
    check_currency,
    check_label,
    check_places,
    compile_loop,
    group_fields,
    label,
    money_of,
    percent_of,
    sort_key,
    team_fields,
    to_by,
    where,
)
from salesflow.analytics.inputs import Fields, check_fields, mapped, stage_names
from salesflow.analytics.windows import WindowLike, within
from salesflow.domain.money import Money
from salesflow.domain.numbers import EXACT, ZERO, to_decimal
from salesflow.domain.stages import StagePlan
from salesflow.errors import InvalidTypeError, ValidationError
from salesflow.tables import NEGATIVE, POSITIVE, Table, matplotlib_axes, plot_bars

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "DEFAULT_PRIOR_STRENGTH",
    "OwnerScore",
    "Recommendation",
    "RepIndustryMatrix",
    "StrengthCell",
    "StrengthItem",
    "recommend_owners",
    "rep_industry_matrix",
]

DEFAULT_PRIOR_STRENGTH = Decimal(10)
"""Pseudo-deals the team's rate weighs in a smoothed win rate, unless told otherwise."""

# The hot loop, generated for the attribute names of the call (see compile_loop): per (rep,
# industry) cell [open, won, lost, won amount, its currency]. The first won amount of a cell, a
# second currency and any amount that is not Money-like go through won_slowly(), which validates;
# a later amount Decimal cannot add (a float) fails before anything is stored. ``add`` is
# EXACT.add: a sum of amounts with 25 significant digits outgrows the default context's 28.
_MATRIX = """
def loop(items, cells, open_keys, won_key, lost_keys, zero, won_slowly, other_stage, add):
    for item in items:
        key = ({group}, item.{value})
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = [0, 0, 0, zero, None]
        stage = item.stage
        if stage in open_keys:
            cell[0] += 1
        elif stage == won_key:
            cell[1] += 1
            money = item.amount
            try:
                if money.currency == cell[4]:
                    cell[3] = add(cell[3], money.amount)
                    continue
            except (AttributeError, TypeError):
                pass
            won_slowly(key, cell, item)
        elif stage in lost_keys:
            cell[2] += 1
        else:
            other_stage(key, cell, item, stage)
"""


class StrengthItem(Protocol):
    """What :func:`rep_industry_matrix` reads from each input object (an Opportunity, a row...).

    ``amount`` is a :class:`Money`, or a ``Decimal`` with the currency in a ``currency`` attribute.
    The attributes named by ``by`` (``owner``) and ``dimension`` (``industry``) are read too.
    """

    @property
    def stage(self) -> str:
        """The stage key."""
        ...

    @property
    def amount(self) -> Money | Decimal:
        """The opportunity amount."""
        ...


def _percent(rate: Fraction | None, places: int) -> Decimal | None:
    if rate is None:
        return None
    return percent_of(rate, places)


@attrs.frozen(kw_only=True)
class StrengthCell:
    """One rep's record in one industry."""

    owner: Any
    """The group key (the owner, or a tuple when grouping by several attributes)."""
    industry: Any
    """The value of the dimension (an industry by default)."""
    open: int
    """Opportunities still open (not part of any rate)."""
    won: int
    """Won opportunities."""
    lost: int
    """Lost opportunities."""
    won_amount: dict[str, Decimal] = attrs.field(eq=False)
    """Won amount per currency."""
    team_won: int
    """Deals the whole team won in the industry."""
    team_closed: int
    """Deals the whole team closed in the industry."""
    prior_strength: Decimal
    """Pseudo-deals the team's rate weighs in :attr:`exact_smoothed`."""

    @property
    def closed(self) -> int:
        """Won plus lost."""
        return self.won + self.lost

    @property
    def exact_win_rate(self) -> Fraction | None:
        """won / closed as an exact fraction (``None`` when nothing has closed)."""
        closed = self.won + self.lost
        return Fraction(self.won, closed) if closed else None

    @property
    def exact_team_rate(self) -> Fraction | None:
        """The team's win rate in the industry as an exact fraction (``None``: nothing closed)."""
        return Fraction(self.team_won, self.team_closed) if self.team_closed else None

    @property
    def exact_smoothed(self) -> Fraction | None:
        """``(won + strength x team rate) / (closed + strength)`` as an exact fraction; ``None``
        when neither the rep nor the team has closed a deal in the industry (or the strength is 0
        and the rep has closed nothing)."""
        centre = self.exact_team_rate
        prior = Fraction(self.prior_strength)
        closed = self.won + self.lost
        if centre is None or not closed + prior:
            return None
        return (self.won + prior * centre) / (closed + prior)


class RepIndustryMatrix(Table):
    """The result of :func:`rep_industry_matrix`: per rep x industry, closed, won, lost, won
    amount, win rate and smoothed win rate (percent), plus the team's rate per industry."""

    def __init__(
        self,
        *,
        by: tuple[str, ...],
        dimension: str,
        cells: dict[tuple[Any, Any], StrengthCell],
        team: dict[Any, tuple[int, int]],
        prior_strength: Decimal,
        places: int,
        currency: str | None,
    ) -> None:
        self.by = by
        """The attributes the reps are made of (``("owner",)``)."""
        self.dimension = dimension
        """The attribute the deals are split by (``"industry"``)."""
        self.prior_strength = prior_strength
        """Pseudo-deals the team's rate weighs in a smoothed win rate."""
        self.places = places
        """Decimal places of the rates shown."""
        self._cells = cells
        self._team = team
        self._currency = currency
        self._owners = tuple(sorted({owner for owner, _ in cells}, key=sort_key))
        self._industries = tuple(sorted(team, key=sort_key))

    # -- lookups -------------------------------------------------------------------------------

    @property
    def owners(self) -> tuple[Any, ...]:
        """Every rep in the matrix, sorted."""
        return self._owners

    @property
    def industries(self) -> tuple[Any, ...]:
        """Every industry in the matrix, sorted."""
        return self._industries

    @property
    def currencies(self) -> tuple[str, ...]:
        """The currencies of the won amounts, sorted."""
        codes = {code for cell in self._cells.values() for code in cell.won_amount}
        if not codes and self._currency is not None:
            codes.add(self._currency)
        return tuple(sorted(codes))

    def __iter__(self) -> Iterator[StrengthCell]:
        """The cells, by rep then industry."""
        return iter([self._cells[k] for k in sorted(self._cells, key=sort_key)])

    def __len__(self) -> int:
        return len(self._cells)

    def _industry(self, industry: Any) -> Any:
        if industry not in self._team:
            raise ValidationError(
                self.dimension, industry, f"one of the matrix's {list(self._industries)}"
            )
        return industry

    def cell(self, owner: Any, industry: Any) -> StrengthCell:
        """The cell of ``owner`` in ``industry``; an empty cell (at the prior) when the rep has
        no deal there."""
        self._industry(industry)
        if owner not in self._owners:
            raise ValidationError("owner", owner, f"one of the matrix's {list(self._owners)}")
        found = self._cells.get((owner, industry))
        if found is not None:
            return found
        return StrengthCell(
            owner=owner,
            industry=industry,
            open=0,
            won=0,
            lost=0,
            won_amount={},
            team_won=self._team[industry][0],
            team_closed=self._team[industry][1],
            prior_strength=self.prior_strength,
        )

    def exact_team_rate(self, industry: Any) -> Fraction | None:
        """The team's win rate in ``industry`` as an exact fraction (``None``: nothing closed)."""
        won, closed = self._team[self._industry(industry)]
        return Fraction(won, closed) if closed else None

    def team_win_rate(self, industry: Any) -> Decimal | None:
        """The team's win rate in ``industry`` (percent), the centre of the prior."""
        return _percent(self.exact_team_rate(industry), self.places)

    def win_rate(self, owner: Any, industry: Any) -> Decimal | None:
        """``owner``'s raw win rate in ``industry`` (percent; ``None`` when nothing closed)."""
        return _percent(self.cell(owner, industry).exact_win_rate, self.places)

    def smoothed_win_rate(self, owner: Any, industry: Any) -> Decimal | None:
        """``owner``'s smoothed win rate in ``industry`` (percent)."""
        return _percent(self.cell(owner, industry).exact_smoothed, self.places)

    # -- tables --------------------------------------------------------------------------------

    @property
    def caption(self) -> str:
        """Title of the printed table."""
        return (
            f"Win rates per {', '.join(self.by) or 'team'} and {self.dimension} "
            f"(smoothed towards the team's {self.dimension} rate, "
            f"prior strength {self.prior_strength})"
        )

    def to_records(self) -> list[dict[str, Any]]:
        """One record per (rep, industry) with deals: the rep columns, the dimension, ``open``,
        ``closed``, ``won``, ``lost``, ``win_rate``, ``smoothed_win_rate``, ``team_win_rate``
        (percent) and the won amount columns (``won_amount`` and ``currency``)."""
        currencies = self.currencies
        records = []
        for cell in self:
            records.append(
                {
                    **group_fields(self.by, cell.owner),
                    self.dimension: cell.industry,
                    "open": cell.open,
                    "closed": cell.closed,
                    "won": cell.won,
                    "lost": cell.lost,
                    "win_rate": _percent(cell.exact_win_rate, self.places),
                    "smoothed_win_rate": _percent(cell.exact_smoothed, self.places),
                    "team_win_rate": self.team_win_rate(cell.industry),
                    **amount_fields(cell.won_amount, currencies, "won_amount"),
                }
            )
        return records

    def total_records(self) -> list[dict[str, Any]]:
        """The team's record per industry (:data:`~salesflow.analytics.grouping.ALL` in the
        first rep column): deals and won amounts are the sums of the reps'; every rate is the
        team's win rate there."""
        currencies = self.currencies
        records = []
        for industry in self._industries:
            deals = [0, 0, 0]
            won_amount: dict[str, Decimal] = {}
            for (_owner, value), cell in self._cells.items():
                if value != industry:
                    continue
                deals[0] += cell.open
                deals[1] += cell.won
                deals[2] += cell.lost
                for code, amount in cell.won_amount.items():
                    won_amount[code] = EXACT.add(won_amount.get(code, ZERO), amount)
            rate = self.team_win_rate(industry)
            records.append(
                {
                    **team_fields(self.by),
                    self.dimension: industry,
                    "open": deals[0],
                    "closed": deals[1] + deals[2],
                    "won": deals[1],
                    "lost": deals[2],
                    "win_rate": rate,
                    "smoothed_win_rate": rate,
                    "team_win_rate": rate,
                    **amount_fields(won_amount, currencies, "won_amount"),
                }
            )
        return records

    def record_columns(self) -> list[str]:
        """The rep columns, the dimension, deal counts, rates and the won amount columns."""
        codes = self.currencies
        amounts = (
            ["won_amount", "currency"] if len(codes) <= 1 else [f"won_amount_{c}" for c in codes]
        )
        rates = ["win_rate", "smoothed_win_rate", "team_win_rate"]
        return [*self.by, self.dimension, "open", "closed", "won", "lost", *rates, *amounts]

    def _tone(self, column: str, value: Any, record: dict[str, Any]) -> str | None:
        team = record.get("team_win_rate")
        if column != "smoothed_win_rate" or value is None or team is None or value == team:
            return None
        return POSITIVE if value > team else NEGATIVE

    def plot(self, ax: Axes | None = None, **kw: Any) -> Axes:
        """A heat map of the smoothed win rate per rep (rows) and industry (columns), each cell
        labelled with its rate; blank where neither the rep nor the team has closed a deal."""
        axes = matplotlib_axes(ax)
        grid = [
            [_float(self.cell(owner, industry).exact_smoothed) for industry in self._industries]
            for owner in self._owners
        ]
        kw.setdefault("cmap", "RdYlGn")
        kw.setdefault("vmin", 0.0)
        kw.setdefault("vmax", 100.0)
        title = kw.pop("title", "Smoothed win rate (%) per rep and " + self.dimension)
        image = axes.imshow(grid or [[float("nan")]], aspect="auto", **kw)
        axes.set_xticks(range(len(self._industries)), [str(i) for i in self._industries])
        axes.tick_params(axis="x", labelrotation=45)
        axes.set_yticks(range(len(self._owners)), [_label(o) for o in self._owners])
        if len(self._owners) * len(self._industries) <= 400:
            for y, row in enumerate(grid):
                for x, value in enumerate(row):
                    if value == value:  # not NaN
                        axes.text(x, y, f"{value:.0f}", ha="center", va="center", fontsize=7)
        axes.figure.colorbar(image, ax=axes, label="smoothed win rate (%)")
        axes.set_title(title)
        return axes


@attrs.frozen(kw_only=True)
class OwnerScore:
    """One rep's place in a :class:`Recommendation`."""

    rank: int
    """1 for the best."""
    owner: Any
    """The rep."""
    smoothed_win_rate: Decimal | None
    """The smoothed win rate in the industry (percent)."""
    win_rate: Decimal | None
    """The raw win rate in the industry (percent; ``None`` when nothing closed)."""
    closed: int
    """Closed deals in the industry."""
    won: int
    """Won deals in the industry."""


class Recommendation(Table):
    """The result of :func:`recommend_owners`: the best reps for one industry, best first."""

    def __init__(
        self, industry: Any, scores: Sequence[OwnerScore], team_rate: Decimal | None
    ) -> None:
        self.industry = industry
        """The industry the recommendation is for."""
        self.scores = tuple(scores)
        """The ranked reps."""
        self.team_win_rate = team_rate
        """The team's win rate in the industry (percent), the centre of the prior."""

    @property
    def owners(self) -> list[Any]:
        """The recommended reps, best first."""
        return [score.owner for score in self.scores]

    def __iter__(self) -> Iterator[OwnerScore]:
        return iter(self.scores)

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, index: int) -> OwnerScore:
        return self.scores[index]

    @property
    def caption(self) -> str:
        """Title of the printed table."""
        return (
            f"Best reps for a new {self.industry} customer "
            f"(team win rate there: {self.team_win_rate}%)"
        )

    def to_records(self) -> list[dict[str, Any]]:
        """One record per rep: ``rank``, ``owner``, ``smoothed_win_rate``, ``win_rate``,
        ``closed``, ``won``."""
        return [
            {
                "rank": s.rank,
                "owner": s.owner,
                "smoothed_win_rate": s.smoothed_win_rate,
                "win_rate": s.win_rate,
                "closed": s.closed,
                "won": s.won,
            }
            for s in self.scores
        ]

    def record_columns(self) -> list[str]:
        """``rank``, ``owner``, ``smoothed_win_rate``, ``win_rate``, ``closed``, ``won``."""
        return ["rank", "owner", "smoothed_win_rate", "win_rate", "closed", "won"]

    def plot(self, ax: Axes | None = None, **kw: Any) -> Axes:
        """The ranked reps' smoothed and raw win rates, best first."""
        series = {
            "smoothed win rate": [_float(s.smoothed_win_rate) for s in self.scores],
            "win rate": [_float(s.win_rate) for s in self.scores],
        }
        title = kw.pop("title", self.caption)
        return plot_bars(
            ax,
            [_label(s.owner) for s in self.scores],
            series,
            horizontal=True,
            title=title,
            value_label="win rate (%)",
            **kw,
        )


def rep_industry_matrix(
    opportunities: Iterable[StrengthItem],
    plan: StagePlan | None = None,
    *,
    by: Sequence[str] | str = "owner",
    dimension: str = "industry",
    prior_strength: Decimal | int | str = DEFAULT_PRIOR_STRENGTH,
    missing: str = MISSING,
    places: int = 1,
    currency: str | None = None,
    fields: Fields | None = None,
    created: WindowLike = None,
    closed: WindowLike = None,
    tz: tzinfo | None = None,
) -> RepIndustryMatrix:
    """Win record per rep and industry, with a smoothed win rate (R17).

    Args:
        opportunities: any iterable of objects with ``stage`` and ``amount`` (see
            :class:`StrengthItem`), plus the attributes named by ``by`` and ``dimension``.
        plan: the stage plan (``StagePlan.default()`` when omitted): says which stages are won
            and lost.
        by: the attribute(s) that make a rep (``"owner"``).
        dimension: the attribute to split by (``"industry"``; ``"region"`` works too).
        prior_strength: how many pseudo-deals the team's rate in the industry weighs (0 turns the
            smoothing off).
        missing: the key under which ``None`` and blank industries are reported.
        places: decimal places of the rates shown (0 to 6).
        currency: the currency of ``Decimal`` amounts without a ``currency`` attribute.
        fields: where each field comes from in your rows, e.g. ``{"owner": "sales_agent",
            "industry": lambda row: sectors[row.account]}`` (see
            :mod:`salesflow.analytics.inputs`). Stages may be keys or display names.
        created: count only the opportunities created in this window, a
            :class:`~salesflow.domain.periods.Period` or a ``(start, end)`` pair of dates, both
            inclusive (see :mod:`salesflow.analytics.windows`).
        closed: count only the opportunities won or lost in this window (so no open ones:
            they have not closed).
        tz: the zone that decides the day of a stage change in a window (UTC by default).

    Raises:
        StageError: an opportunity's stage is not in the plan.
        ValidationError: a bad argument or a malformed opportunity (named in the message).
    """
    plan, names = stage_names(plan)
    group_by = to_by(by)
    if not isinstance(dimension, str) or not dimension.isidentifier():
        raise ValidationError("dimension", dimension, "an attribute name such as 'industry'")
    strength = to_decimal(prior_strength, "prior_strength")
    if strength < 0:
        raise ValidationError("prior_strength", prior_strength, "zero or more pseudo-deals")
    check_label(missing, "missing")
    check_places(places)
    check_currency(currency)
    loop = compile_loop(_MATRIX, group_by, dimension)
    cells: dict[tuple[Any, Any], list[Any]] = {}  # [open, won, lost, won amount, its currency]
    others: dict[tuple[Any, Any, str], Decimal] = {}

    def won_slowly(key: tuple[Any, Any], cell: list[Any], item: Any) -> None:
        amount, code = money_of(item, currency)
        if cell[4] is None or cell[4] == code:
            cell[3] = EXACT.add(cell[3], amount)
            cell[4] = code
        else:
            other = (key[0], key[1], code)
            others[other] = EXACT.add(others.get(other, ZERO), amount)

    def other_stage(key: tuple[Any, Any], cell: list[Any], item: Any, stage: object) -> None:
        # A display name (or a stage the plan does not know: raises, saying so).
        found = names.key(stage, where=where(item))
        if found in open_keys:
            cell[0] += 1
        elif found == won_key:
            cell[1] += 1
            won_slowly(key, cell, item)
        else:
            cell[2] += 1

    open_keys = frozenset(s.key for s in plan.open_stages)
    lost_keys = frozenset(s.key for s in plan if s.is_lost)
    won_key = plan.won_stage.key
    try:
        loop(
            within(
                mapped(opportunities, check_fields(fields)),
                names,
                created=created,
                closed=closed,
                tz=tz,
            ),
            cells,
            open_keys,
            won_key,
            lost_keys,
            ZERO,
            won_slowly,
            other_stage,
            EXACT.add,
        )
    except AttributeError as exc:
        raise InvalidTypeError(
            exc.name or "opportunity",
            getattr(exc, "obj", None),
            "an object with stage, amount and the attributes named by by= and dimension=",
        ) from exc
    return _matrix(cells, others, group_by, dimension, strength, missing, places, currency)


def _matrix(
    raw: dict[tuple[Any, Any], list[Any]],
    others: dict[tuple[Any, Any, str], Decimal],
    by: tuple[str, ...],
    dimension: str,
    strength: Decimal,
    missing: str,
    places: int,
    currency: str | None,
) -> RepIndustryMatrix:
    labels: dict[Any, Any] = {}  # raw value -> label: a few dozen owners and industries

    def labelled(value: Any) -> Any:
        try:
            return labels[value]
        except KeyError:
            found = labels[value] = label(value, missing)
            return found

    merged: dict[tuple[Any, Any], list[Any]] = {}  # [open, won, lost, {currency: won amount}]
    for (owner, industry), (n_open, won, lost, amount, code) in raw.items():
        key = (labelled(owner), labelled(industry))
        cell = merged.get(key)
        if cell is None:
            cell = merged[key] = [0, 0, 0, {}]
        cell[0] += n_open
        cell[1] += won
        cell[2] += lost
        if code is not None:
            if not amount.is_finite():
                raise ValidationError("amount", amount, "finite amounts", where=f"{key!r}")
            cell[3][code] = EXACT.add(cell[3].get(code, ZERO), amount)
    for (owner, industry, code), amount in others.items():
        per_currency = merged[(labelled(owner), labelled(industry))][3]
        per_currency[code] = EXACT.add(per_currency.get(code, ZERO), amount)
    team: dict[Any, tuple[int, int]] = {}
    for (_owner, industry), (_open, won, lost, _amount) in merged.items():
        team_won, team_closed = team.get(industry, (0, 0))
        team[industry] = (team_won + won, team_closed + won + lost)
    cells = {
        (owner, industry): StrengthCell(
            owner=owner,
            industry=industry,
            open=n_open,
            won=won,
            lost=lost,
            won_amount=amount,
            team_won=team[industry][0],
            team_closed=team[industry][1],
            prior_strength=strength,
        )
        for (owner, industry), (n_open, won, lost, amount) in merged.items()
    }
    return RepIndustryMatrix(
        by=by,
        dimension=dimension,
        cells=cells,
        team=team,
        prior_strength=strength,
        places=places,
        currency=currency,
    )


def recommend_owners(
    matrix: RepIndustryMatrix,
    industry: Any,
    *,
    top: int = 3,
    among: Iterable[Any] | None = None,
) -> Recommendation:
    """The ``top`` reps for a new customer in ``industry``, best first (R17).

    Ranks by smoothed win rate, then won deals, then closed deals, then name. ``among`` limits the
    candidates (e.g. to the reps with capacity); by default every rep of the matrix is one. A rep
    without a closed deal in ``industry`` ranks at the team's rate there.

    Raises:
        ValidationError: ``industry`` is not in the matrix, ``top`` is not a positive int, or a
            rep in ``among`` is not in the matrix.
    """
    if not isinstance(matrix, RepIndustryMatrix):
        raise InvalidTypeError("matrix", matrix, "a RepIndustryMatrix (see rep_industry_matrix)")
    if type(top) is not int or top < 1:
        raise ValidationError("top", top, "a positive int")
    team_rate = matrix.team_win_rate(industry)  # validates the industry
    if among is None:
        candidates = list(matrix.owners)
    elif isinstance(among, str):
        raise InvalidTypeError("among", among, "an iterable of reps, not a single string")
    else:
        candidates = list(dict.fromkeys(among))
    cells = [matrix.cell(owner, industry) for owner in candidates]
    unknown = Fraction(-1)  # ranks a rep with nothing to go on after every other
    cells.sort(
        key=lambda c: (
            -(c.exact_smoothed if c.exact_smoothed is not None else unknown),
            -c.won,
            -c.closed,
            sort_key(c.owner),
        )
    )
    scores = [
        OwnerScore(
            rank=rank,
            owner=cell.owner,
            smoothed_win_rate=_percent(cell.exact_smoothed, matrix.places),
            win_rate=_percent(cell.exact_win_rate, matrix.places),
            closed=cell.closed,
            won=cell.won,
        )
        for rank, cell in enumerate(cells[:top], start=1)
    ]
    return Recommendation(industry, scores, team_rate)


def _float(value: Fraction | Decimal | None) -> float:
    if value is None:
        return float("nan")
    return float(value * 100) if isinstance(value, Fraction) else float(value)


def _label(owner: Any) -> str:
    if isinstance(owner, tuple):
        return " / ".join(str(part) for part in owner)
    return str(owner)
