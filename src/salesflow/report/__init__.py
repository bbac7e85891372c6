"""The sales report: one self-contained HTML file a manager opens in any browser, offline.

:func:`render_report` reads a :class:`~salesflow.desk.SalesDesk` and returns the page;
:func:`write_report` writes it to a file. The page holds everything it shows: inline CSS, charts as
inline SVG (drawn with matplotlib, the ``plot`` extra), no scripts, no fonts, images or styles from
elsewhere, so it opens the same from a mail attachment as from a web server. Every string that comes
from the data (names, accounts, reasons, the database URL) is HTML-escaped.

Sections: the key figures; the monthly forecast per rep (this month, next, later, overdue and
undated); each rep's funnel against the target with the deviations highlighted; the industry mix;
attainment for the month and the quarter; receivables with their ageing; why deals were lost; call
statistics; approvals waiting. Figures in tables are exact (``Decimal``, grouped thousands); the
charts draw them.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from salesflow._version import __version__

if TYPE_CHECKING:
    from salesflow import Forecast, Funnel, Money, Receivables, SalesDesk, Target

__all__ = ["render_report", "write_report"]

_STAGE_COLORS = ("#d6eaf8", "#85c1e9", "#2e86c1", "#1f4e79", "#27ae60", "#c0392b", "#7d3c98")
_BUCKET_COLORS = ("#c0392b", "#1f4e79", "#2e86c1", "#85c1e9", "#95a5a6")
_AGEING_COLORS = ("#85c1e9", "#f5b041", "#eb984e", "#cb4335", "#78281f")


def write_report(desk: SalesDesk, path: str | Path, **options: Any) -> Path:
    """Write :func:`render_report` of ``desk`` to ``path`` (UTF-8) and return the path."""
    target = Path(path)
    target.write_text(render_report(desk, **options), encoding="utf-8")
    return target


def render_report(
    desk: SalesDesk,
    *,
    as_of: date | None = None,
    targets: Iterable[Target] = (),
    teams: Mapping[str, Iterable[str]] | None = None,
    funnel_target: Mapping[str, Decimal | int | str] | None = None,
    tolerance: Decimal | int | str = Decimal("0.5"),
    min_opportunities: int = 10,
    threshold: Decimal | int | str | None = None,
    title: str = "Sales report",
) -> str:
    """The report of everything ``desk`` holds, as of ``as_of`` (the desk's today by default).

    Args:
        desk: the desk to read (the system's own read: everything).
        as_of: the day the report is made for.
        targets: signing targets (:class:`~salesflow.analytics.performance.Target`) for the month
            and the quarter of ``as_of``; others are ignored. Without them attainment shows what
            was signed and is expected, against a target of 0.
        teams: the reps of each team, for the team rows of attainment.
        funnel_target: stage key -> target share (percent, adding up to 100); without it the
            funnels are shown without deviations.
        tolerance, min_opportunities: the deviation rule (see
            :meth:`~salesflow.analytics.funnel.Funnel.deviations`).
        threshold: the forecast threshold (the plan's by default).
        title: the page title.
    """
    from salesflow import Period

    day = desk.today() if as_of is None else as_of
    targets = list(targets)
    month = Period.containing(day)
    quarter = Period.containing(day, "quarter")
    page = _Page(title, day, desk)
    page.add(_forecast_section(desk.forecast(as_of=day, by=("team", "owner"), threshold=threshold)))
    funnel = desk.funnel(by="owner")
    page.add(_funnel_section(funnel, funnel_target, tolerance, min_opportunities))
    page.add(_industry_section(desk))
    for period in (month, quarter):
        result = desk.attainment(targets, period=period, teams=teams, as_of=day)
        page.add(_attainment_section(result, chart=period == quarter))
    page.add(_receivables_section(desk.receivables(as_of=day)))
    page.add(_lost_section(desk))
    page.add(_calls_section(desk))
    page.add(_approvals_section(desk, day))
    return page.render()


# -- formatting --------------------------------------------------------------------------------------


def _e(value: object) -> str:
    """Escaped text of ``value`` (``None`` is empty)."""
    return "" if value is None else html.escape(str(value), quote=True)


def _amount(value: Money | Decimal | int | None, places: int = 2) -> str:
    if value is None:
        return ""
    number = value if isinstance(value, Decimal | int) else value.amount
    return f"{Decimal(number):,.{places}f}"


def _percent(value: Decimal | None) -> str:
    return "" if value is None else f"{value:,.1f}%"


def _seconds(value: int | Decimal | None) -> str:
    if value is None:
        return ""
    total = int(value)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class _Cell:
    """A table cell: its text (escaped when rendered), whether it is a number, a CSS class."""

    def __init__(self, text: object, *, number: bool = False, css: str = "", title: str = ""):
        self.text = text
        self.number = number
        self.css = css
        self.title = title

    def render(self, tag: str = "td") -> str:
        classes = " ".join(c for c in ("num" if self.number else "", self.css) if c)
        attributes = f' class="{classes}"' if classes else ""
        if self.title:
            attributes += f' title="{_e(self.title)}"'
        return f"<{tag}{attributes}>{_e(self.text)}</{tag}>"


def _num(text: str, css: str = "", title: str = "") -> _Cell:
    return _Cell(text, number=True, css=css, title=title)


def _table(
    head: Sequence[str],
    rows: Iterable[Sequence[_Cell | object]],
    *,
    numeric: Sequence[bool] | None = None,
    foot: Sequence[_Cell | object] | None = None,
    caption: str = "",
) -> str:
    def cell(value: _Cell | object, index: int, tag: str = "td") -> str:
        if isinstance(value, _Cell):
            return value.render(tag)
        is_number = bool(numeric and index < len(numeric) and numeric[index])
        return _Cell(value, number=is_number).render(tag)

    heads = "".join(
        f"<th{' class=num' if numeric and i < len(numeric) and numeric[i] else ''}>{_e(h)}</th>"
        for i, h in enumerate(head)
    )
    body = "".join(
        "<tr>" + "".join(cell(v, i) for i, v in enumerate(row)) + "</tr>" for row in rows
    )
    if not body:
        body = f'<tr><td colspan="{len(head)}" class="empty">Nothing to show.</td></tr>'
    tfoot = ""
    if foot is not None:
        tfoot = (
            "<tfoot><tr>" + "".join(cell(v, i, "td") for i, v in enumerate(foot)) + "</tr></tfoot>"
        )
    cap = f"<caption>{_e(caption)}</caption>" if caption else ""
    return (
        f'<div class="scroll"><table>{cap}<thead><tr>{heads}</tr></thead>'
        f"<tbody>{body}</tbody>{tfoot}</table></div>"
    )


class _Section:
    def __init__(self, key: str, title: str, lead: str, body: str, kpis: Sequence[Any] = ()):
        self.key = key
        self.title = title
        self.lead = lead
        self.body = body
        self.kpis = list(kpis)


def _chart(draw: Callable[[], str]) -> str:
    return f'<figure class="chart">{draw()}</figure>'


# -- sections ------------------------------------------------------------------------------------------


def _forecast_section(fc: Forecast) -> _Section:
    from salesflow import OVERDUE, UNDATED

    this_month = fc.current_month
    next_month = this_month.next()
    columns: tuple[str, ...] = (
        "Overdue",
        f"This month ({this_month.label})",
        f"Next month ({next_month.label})",
        "Later",
        "Undated",
    )
    sections: list[str] = []
    kpis: list[tuple[str, str, str]] = []
    for code in fc.currencies or (None,):
        view = fc if code is None or len(fc.currencies) < 2 else fc.in_currency(code)
        table = view.table() if code is not None else {}
        labels: list[str] = []
        values: dict[str, list[Decimal]] = {c: [] for c in columns}
        rows = []
        sums = dict.fromkeys(columns, Decimal(0))
        for group, cells in table.items():
            team, owner = group
            buckets = dict.fromkeys(columns, Decimal(0))
            for bucket, money in cells.items():
                if bucket == OVERDUE:
                    key = columns[0]
                elif bucket == UNDATED:
                    key = columns[4]
                elif bucket == this_month:
                    key = columns[1]
                elif bucket == next_month:
                    key = columns[2]
                else:
                    key = columns[3]
                buckets[key] += money.amount
            labels.append(str(owner))
            for key in columns:
                values[key].append(buckets[key])
                sums[key] += buckets[key]
            total = sum(buckets.values(), Decimal(0))
            rows.append(
                [owner, team, *(_num(_amount(buckets[k])) for k in columns), _num(_amount(total))]
            )
        total_all = sum(sums.values(), Decimal(0))
        foot = [
            "All reps",
            "",
            *(_num(_amount(sums[k])) for k in columns),
            _num(_amount(total_all)),
        ]
        unit = f" ({code})" if code else ""
        if labels:
            chart_series = {columns[1]: values[columns[1]], columns[2]: values[columns[2]]}
            chart_series |= {
                "Later": values["Later"],
                "Overdue": values["Overdue"],
                "Undated": values["Undated"],
            }
            from salesflow.report.charts import stacked_bars

            sections.append(
                _chart(
                    partial(
                        stacked_bars,
                        f"forecast{unit}",
                        labels,
                        chart_series,
                        colors=("#1f4e79", "#2e86c1", "#aed6f1", "#c0392b", "#95a5a6"),
                        title=f"Expected signing amount per rep{unit}",
                    )
                )
            )
        sections.append(
            _table(
                ["Rep", "Team", *columns, "Total"],
                rows,
                numeric=[False, False, True, True, True, True, True, True],
                foot=foot,
                caption=f"Expected signing amount{unit}",
            )
        )
        if code is not None:
            kpis.append((f"Expected this month{unit}", _amount(sums[columns[1]]), "forecast"))
            kpis.append((f"Expected next month{unit}", _amount(sums[columns[2]]), "forecast"))
            if sums[columns[0]]:
                kpis.append((f"Slipped (overdue){unit}", _amount(sums[columns[0]]), "warn"))
    lead = (
        f"Open opportunities at or above the {fc.threshold}% threshold, weighted by their stage's "
        f"probability, by the month they are expected to close ({fc.count} opportunities). "
        "Overdue: expected before this month and still open."
    )
    return _Section("forecast", "Forecast per rep", lead, "".join(sections), kpis)


def _funnel_section(
    funnel: Funnel,
    target: Mapping[str, Decimal | int | str] | None,
    tolerance: Decimal | int | str,
    min_opportunities: int,
) -> _Section:
    from salesflow.report.charts import stacked_bars

    stages = list(funnel.stages)
    plan = funnel.plan
    names = [plan[s].name for s in stages]
    flagged: dict[tuple[Any, str], Any] = {}
    targets: dict[str, Decimal] = {}
    if target is not None:
        for found in funnel.deviations(
            target, tolerance=tolerance, min_opportunities=min_opportunities
        ):
            flagged[(found.group, found.stage)] = found
        targets = {s: Decimal(str(target.get(s, 0))) for s in stages}
    rows = []
    labels = []
    shares_by_stage: dict[str, list[Decimal]] = {name: [] for name in names}
    if targets:
        labels.append("Target")
        for stage, name in zip(stages, names, strict=True):
            shares_by_stage[name].append(targets[stage])
        rows.append(
            [_Cell("Target", css="target"), ""]
            + [_num(_percent(targets[s]), css="target") for s in stages]
        )
    for group in funnel.groups:
        total = funnel.total(group)
        shares = funnel.shares(group)
        counts = funnel.counts(group)
        labels.append(str(group))
        checked = total >= min_opportunities
        cells: list[_Cell | object] = [group, _num(str(total), css="" if checked else "muted")]
        for stage, name in zip(stages, names, strict=True):
            share = shares.get(stage, Decimal(0))
            shares_by_stage[name].append(share)
            text = f"{_percent(share)} ({counts.get(stage, 0)})"
            deviation = flagged.get((group, stage))
            if deviation is not None:
                arrow = "\u25b2" if deviation.direction == "above" else "\u25bc"
                hint = (
                    f"{deviation.direction} target {_percent(deviation.target_share)}: "
                    f"{deviation.count} of {deviation.opportunities}"
                )
                cells.append(_num(f"{arrow} {text}", css=f"dev-{deviation.direction}", title=hint))
            else:
                cells.append(_num(text))
        rows.append(cells)
    body = ""
    if funnel.groups:
        body += _chart(
            lambda: stacked_bars(
                "funnel",
                labels,
                shares_by_stage,
                colors=_STAGE_COLORS,
                title="Share of each rep's opportunities per stage",
                percent=True,
            )
        )
    body += _table(
        ["Rep", "Opportunities", *names],
        rows,
        numeric=[False, True, *([True] * len(stages))],
        caption=funnel.caption,
    )
    if targets:
        rule = (
            f"Highlighted: a share outside target \u00d7 (1 \u00b1 {tolerance}), "
            f"\u25b2 above and \u25bc below; reps with fewer than {min_opportunities} "
            f"opportunities are not checked. {len(flagged)} deviations."
        )
    else:
        rule = "No target funnel was given (salesflow --config with [funnel.target])."
    body += f'<p class="note">{_e(rule)}</p>'
    lead = (
        "Where each rep's open and won opportunities stand, against the target mix "
        f"({funnel.excluded} lost opportunities left out)."
    )
    kpis = (
        [("Funnel deviations", str(len(flagged)), "warn" if flagged else "ok")] if targets else []
    )
    return _Section("funnel", "Funnel against target", lead, body, kpis)


def _industry_section(desk: SalesDesk) -> _Section:
    from salesflow import distribution
    from salesflow.report.charts import stacked_bars

    plan = desk.plan
    live = [o for o in desk.opportunities() if not plan.is_lost(o.stage)]
    mix = distribution(live, dimension="industry", by="owner", currency=desk.currency)
    industries = [str(v) for v in mix.values]
    series: dict[str, list[Decimal]] = {i: [] for i in industries}
    labels = []
    for group in (*mix.groups, None):
        shares = mix.shares(group)
        labels.append("All reps" if group is None else str(group))
        for value, name in zip(mix.values, industries, strict=True):
            series[name].append(shares.get(value, Decimal(0)))
    amounts = mix.amounts_by_currency(None)
    counts = mix.counts(None)
    shares_all = mix.shares(None)
    rows = []
    for value in mix.values:
        money = amounts.get(value, {})
        rows.append(
            [
                value,
                _num(str(counts.get(value, 0))),
                _num(_percent(shares_all.get(value))),
                _num(", ".join(f"{_amount(m)} {code}" for code, m in money.items())),
            ]
        )
    body = ""
    if mix.groups:
        body += _chart(
            lambda: stacked_bars(
                "industry-mix",
                labels,
                series,
                title="Share of each rep's opportunities per industry",
                percent=True,
            )
        )
    body += _table(
        ["Industry", "Opportunities", "Share", "Amount"],
        rows,
        numeric=[False, True, True, True],
        caption=f"Open and won opportunities by industry ({mix.total()})",
    )
    lead = "Which industries each rep's pipeline is made of (open and won opportunities)."
    return _Section("industries", "Industry mix", lead, body)


def _attainment_section(result: Any, *, chart: bool) -> _Section:
    from salesflow.report.charts import grouped_bars

    period = result.period
    rows = []
    for row in result.rows:
        kind = row.kind
        name = "All" if kind == "total" else row.name
        css = "subtotal" if kind != "rep" else ""
        rows.append(
            [
                _Cell(name, css=css),
                _Cell(kind, css=css),
                _num(_amount(row.target), css),
                _num(_amount(row.signed), css),
                _num(_amount(row.gap), css),
                _num(_amount(row.expected), css),
                _num(_amount(row.projected), css),
                _num(_percent(row.attainment), css),
                _num(_percent(row.coverage), css),
            ]
        )
    body = ""
    reps = result.reps
    if chart and reps:
        labels = [r.name for r in reps]
        series = {
            "Target": [r.target.amount for r in reps],
            "Signed": [r.signed.amount for r in reps],
            "Projected (signed + expected)": [r.projected.amount for r in reps],
        }
        body += _chart(
            lambda: grouped_bars(
                f"attainment-{period.label}",
                labels,
                series,
                colors=("#d5d8dc", "#1f4e79", "#85c1e9"),
                title=f"Target, signed and projected per rep, {period.label}",
            )
        )
    body += _table(
        [
            "Name",
            "Kind",
            "Target",
            "Signed",
            "Gap",
            "Expected",
            "Projected",
            "Attainment",
            "Coverage",
        ],
        rows,
        numeric=[False, False, True, True, True, True, True, True, True],
        caption=f"{result.caption}: signed = formal contracts by signing date",
    )
    total = result.total
    kpis = []
    if period.kind == "month":
        kpis.append((f"Signed in {period.label}", _amount(total.signed), "ok"))
        if total.attainment is not None:
            kpis.append((f"Attainment {period.label}", _percent(total.attainment), "forecast"))
    lead = (
        f"Target, signed (formal contracts signed in {period.label}), the gap, what is still "
        "expected in the period, and signed + expected."
    )
    return _Section(f"attainment-{period.label}", f"Attainment {period.label}", lead, body, kpis)


def _receivables_section(result: Receivables) -> _Section:
    from salesflow.report.charts import stacked_bars

    buckets = ("not due", "1-30 days", "31-60 days", "61-90 days", "90+ days")
    by_owner: dict[str, list[Decimal]] = {}
    rows = []
    unpaid = Decimal(0)
    overdue = Decimal(0)
    uninvoiced = Decimal(0)
    for row in result.rows:
        parts = [row.not_due.amount, *(m.amount for m in row.ageing)]
        sums = by_owner.setdefault(row.owner, [Decimal(0)] * len(parts))
        by_owner[row.owner] = [a + b for a, b in zip(sums, parts, strict=True)]
        unpaid += row.unpaid.amount
        overdue += row.overdue.amount
        uninvoiced += row.uninvoiced.amount
        days = row.max_days_overdue
        css = "dev-below" if row.overdue.amount else ""
        rows.append(
            [
                row.contract_id,
                row.owner,
                row.state,
                row.signed_on.isoformat(),
                _num(_amount(row.amount)),
                _num(_amount(row.invoiced)),
                _num(_amount(row.paid)),
                _num(_amount(row.uninvoiced)),
                _num(_amount(row.unpaid)),
                _num(_amount(row.overdue), css),
                _num("" if days is None else str(days), css),
            ]
        )
    body = ""
    owners = sorted(by_owner)
    if any(any(v) for v in by_owner.values()):
        series = {name: [by_owner[o][i] for o in owners] for i, name in enumerate(buckets)}
        body += _chart(
            lambda: stacked_bars(
                "receivables",
                owners,
                series,
                colors=_AGEING_COLORS,
                title="Unpaid invoices per rep, by days overdue",
            )
        )
    body += _table(
        [
            "Contract",
            "Rep",
            "State",
            "Signed",
            "Amount",
            "Invoiced",
            "Paid",
            "Not invoiced",
            "Unpaid",
            "Overdue",
            "Days overdue",
        ],
        rows,
        numeric=[False, False, False, False, True, True, True, True, True, True, True],
        caption=result.caption,
    )
    lead = (
        "Signed contracts, oldest signing first: what is not invoiced yet, what is invoiced but "
        "not paid, and how long the overdue part has waited."
    )
    kpis = [
        ("Unpaid invoices", _amount(unpaid), "forecast"),
        ("Overdue", _amount(overdue), "warn" if overdue else "ok"),
        ("Signed, not invoiced", _amount(uninvoiced), "forecast"),
    ]
    return _Section("receivables", "Receivables and ageing", lead, body, kpis)


def _lost_section(desk: SalesDesk) -> _Section:
    from salesflow.report.charts import bar_chart

    result = desk.lost_reasons(by="owner")
    totals = desk.lost_reasons(by=())
    counts = totals.counts(None)
    amounts = totals.amounts_by_currency(None)
    reasons = [r for r in totals.reasons if counts.get(r, 0)]
    rows = []
    for reason in totals.reasons:
        money = amounts.get(reason, {})
        rows.append(
            [
                reason,
                _num(str(counts.get(reason, 0))),
                _num(_percent(totals.shares(None).get(reason))),
                _num(", ".join(f"{_amount(m)} {code}" for code, m in money.items())),
            ]
        )
    body = ""
    if reasons:
        ordered = sorted(reasons, key=lambda r: (-counts[r], r))
        body += _chart(
            lambda: bar_chart(
                "lost-reasons",
                ordered,
                [counts[r] for r in ordered],
                color="#c0392b",
                title="Lost opportunities per reason",
                amounts=False,
            )
        )
    body += _table(
        ["Reason", "Lost", "Share", "Amount"],
        rows,
        numeric=[False, True, True, True],
        caption=totals.caption,
    )
    per_rep = []
    for group in result.groups:
        row_counts = result.counts(group)
        top = sorted(((n, r) for r, n in row_counts.items() if n), key=lambda x: (-x[0], x[1]))
        per_rep.append(
            [group, _num(str(result.total(group))), ", ".join(f"{r} ({n})" for n, r in top)]
        )
    body += _table(
        ["Rep", "Lost", "Reasons"], per_rep, numeric=[False, True, False], caption=result.caption
    )
    lead = "Why deals were lost, from the reason recorded with each move into a lost stage."
    return _Section("lost", "Lost reasons", lead, body)


def _calls_section(desk: SalesDesk) -> _Section:
    from salesflow.report.charts import grouped_bars

    stats = desk.call_stats(by="owner")
    groups = stats.groups
    rows = []
    labels = []
    answered, missed, uncounted = [], [], []
    for group, figures in groups.items():
        name = "(no owner)" if group is None else str(group)
        labels.append(name)
        answered.append(figures.answered)
        missed.append(figures.calls - figures.answered)
        uncounted.append(figures.uncounted)
        rows.append(
            [
                name,
                _num(f"{figures.calls:,}"),
                _num(f"{figures.answered:,}"),
                _num(_percent(figures.answer_rate)),
                _num(_seconds(figures.talk_seconds)),
                _num(_seconds(figures.average_talk_seconds)),
                _num(f"{figures.uncounted:,}"),
            ]
        )
    team = stats.team
    foot = [
        "All",
        _num(f"{team.calls:,}"),
        _num(f"{team.answered:,}"),
        _num(_percent(team.answer_rate)),
        _num(_seconds(team.talk_seconds)),
        _num(_seconds(team.average_talk_seconds)),
        _num(f"{team.uncounted:,}"),
    ]
    body = ""
    if labels:
        body += _chart(
            lambda: grouped_bars(
                "calls",
                labels,
                {"Answered": answered, "Not answered": missed, "Uncounted": uncounted},
                colors=("#1f4e79", "#85c1e9", "#d5d8dc"),
                title="Calls per rep",
                amounts=False,
            )
        )
    body += _table(
        ["Rep", "Calls", "Answered", "Answer rate", "Talk time", "Average talk", "Uncounted"],
        rows,
        numeric=[False, True, True, True, True, True, True],
        foot=foot,
        caption=stats.caption,
    )
    lead = (
        "Calls count when they reach a known contact; calls to numbers no contact has are shown "
        "as uncounted, never hidden. Talk time in hours:minutes:seconds."
    )
    kpis = [("Calls to contacts", f"{team.calls:,}", "ok")]
    return _Section("calls", "Call statistics", lead, body, kpis)


def _approvals_section(desk: SalesDesk, day: date) -> _Section:
    pending = desk.approvals(state="pending")
    rows = []

    def since_key(request: Any) -> str:
        since = request.waiting_since
        return "" if since is None else since.isoformat()

    for request in sorted(pending, key=lambda r: (since_key(r), r.id)):
        since = request.waiting_since
        waited = "" if since is None else str((day - since.date()).days)
        rows.append(
            [
                request.id,
                request.submitter,
                ", ".join(request.awaiting_roles),
                "" if since is None else since.date().isoformat(),
                _num(waited),
            ]
        )
    body = _table(
        ["Request", "Submitted by", "Waiting for", "Since", "Days"],
        rows,
        numeric=[False, False, False, False, True],
        caption=f"{len(rows)} approval requests pending",
    )
    lead = "Quotes and contracts waiting for a decision, longest waiting first."
    kpis = [("Approvals waiting", str(len(rows)), "warn" if rows else "ok")]
    return _Section("approvals", "Approvals waiting", lead, body, kpis)


# -- the page ----------------------------------------------------------------------------------------


class _Page:
    def __init__(self, title: str, day: date, desk: SalesDesk) -> None:
        self.title = title
        self.day = day
        self.url = getattr(desk.storage, "url", "")
        self.sections: list[_Section] = []

    def add(self, section: _Section) -> None:
        self.sections.append(section)

    def render(self) -> str:
        kpis = "".join(
            f'<div class="kpi {css}"><span class="label">{_e(label)}</span>'
            f'<span class="value">{_e(value)}</span></div>'
            for section in self.sections
            for label, value, css in section.kpis
        )
        nav = " ".join(f'<a href="#{_e(s.key)}">{_e(s.title)}</a>' for s in self.sections)
        body = "".join(
            f'<section id="{_e(s.key)}"><h2>{_e(s.title)}</h2>'
            f'<p class="lead">{_e(s.lead)}</p>{s.body}</section>'
            for s in self.sections
        )
        meta = f"As of {self.day.isoformat()} \u00b7 {self.url} \u00b7 salesflow {__version__}"
        return (
            "<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<link rel="icon" href="data:,">'
            f"<title>{_e(self.title)} \u00b7 {_e(self.day.isoformat())}</title>"
            f"<style>{_CSS}</style></head><body>"
            f'<header><h1>{_e(self.title)}</h1><p class="meta">{_e(meta)}</p></header>'
            f'<div class="kpis">{kpis}</div><nav>{nav}</nav><main>{body}</main>'
            "<footer>Made by salesflow from the records of the desk; every amount is exact to the "
            "cent, charts are drawn from the same figures.</footer>"
            "</body></html>\n"
        )


_CSS = """
:root { --ink: #1a202c; --muted: #64748b; --line: #e2e8f0; --accent: #1f4e79; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue",
  Arial, sans-serif; color: var(--ink); background: #f6f8fb; }
header { background: var(--accent); color: #fff; padding: 20px 32px 16px; }
header h1 { margin: 0 0 4px; font-size: 24px; font-weight: 650; }
header .meta { margin: 0; opacity: .85; font-size: 13px; }
.kpis { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 12px;
  padding: 16px 32px 4px; }
.kpi { background: #fff; border: 1px solid var(--line); border-left: 4px solid #2e86c1;
  border-radius: 6px; padding: 10px 12px; }
.kpi.warn { border-left-color: #c0392b; } .kpi.ok { border-left-color: #27ae60; }
.kpi .label { display: block; color: var(--muted); font-size: 12px; }
.kpi .value { display: block; font-size: 20px; font-weight: 650; font-variant-numeric: tabular-nums; }
nav { padding: 10px 32px; display: flex; flex-wrap: wrap; gap: 6px 14px; font-size: 13px; }
nav a { color: var(--accent); text-decoration: none; } nav a:hover { text-decoration: underline; }
main { padding: 0 32px 24px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px;
  margin: 14px 0; }
section h2 { margin: 0 0 4px; font-size: 18px; color: var(--accent); }
.lead { margin: 0 0 10px; color: var(--muted); max-width: 960px; }
figure.chart { margin: 8px 0 12px; } svg.chart { max-width: 100%; height: auto; display: block; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 6px 0 10px; min-width: 50%; font-size: 13px; }
caption { text-align: left; color: var(--muted); font-size: 12px; padding-bottom: 4px; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left;
  white-space: nowrap; }
th { background: #f1f5f9; font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
tfoot td, td.subtotal { font-weight: 650; background: #f8fafc; }
td.target { font-style: italic; color: var(--muted); background: #fbfcfe; }
td.dev-above { background: #fdebd0; color: #7e5109; font-weight: 600; }
td.dev-below { background: #fadbd8; color: #922b21; font-weight: 600; }
td.muted { color: var(--muted); } td.empty { color: var(--muted); font-style: italic; }
.note { color: var(--muted); font-size: 12px; margin: 4px 0 0; }
footer { color: var(--muted); font-size: 12px; padding: 0 32px 24px; }
"""
