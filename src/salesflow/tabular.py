"""CSV in and out: opportunities from a pipeline export, and back.

Column names rarely match ours, so a ``mapping`` says where each field comes from: a column name,
or a function of the whole row (to join a lookup table or compute a value). Fields not mapped are
read from the column of the same name when there is one.

A deal already in a lost stage may say why it was lost in a ``lost_reason`` column (or mapping): a
code of the plan's lost reasons, recorded as its stage change into the lost stage (see
:meth:`~salesflow.domain.opportunities.Opportunity.from_record`). Without one, an imported lost
deal has no recorded reason and :func:`~salesflow.analytics.lost_reasons.lost_reasons` reports it
as ``"unknown"``. Writing does not produce the column.

Dates are read by :class:`~salesflow.domain.dates.DateReader`, one order for the whole file: ISO
8601 always works; a numeric date such as ``12/31/2026`` is read month first, and a file whose dates
are only valid day first (``31/12/2026``) is read day first, but a file that has a day-first date
**and** a date that reads both ways (``01/12/2026``) is refused at the ambiguous one, naming its
line and value, until ``dayfirst=True`` or ``False`` says which; a file that mixes a day-first-only
date with a month-first-only one is refused too. A two-digit year is refused unless ``year_pivot``
is given. See :mod:`salesflow.domain.dates` for every rule.

Stage history can come from date columns: ``history={"engaging": "engage_date", "won":
"close_date", "lost": "close_date"}`` (see :func:`iter_opportunities`), so that
:func:`~salesflow.analytics.velocity.stage_velocity` and
:func:`~salesflow.analytics.velocity.learned_probabilities` work on an export.

**Formula cells.** A spreadsheet runs a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or
a carriage return as a formula (CSV injection). Every CSV salesflow writes passes its text cells
through :func:`neutralise_cell`, which puts a ``'`` before such a text (and before a text that
already starts with ``'`` followed by one of them, so that the change can be undone exactly).
Reading a CSV file undoes it (:func:`restore_cell`), so :func:`write_opportunities` and
:func:`read_opportunities` round-trip; a file from elsewhere whose cell reads ``'=1+1`` gives
``=1+1``, the text the ``'`` protected.

Reading validates every row; a bad row raises :class:`~salesflow.errors.ValidationError` naming
its line number and field, and :func:`read_opportunities` then returns nothing half-parsed.
:func:`iter_opportunities` streams in constant memory for imports that run in a transaction.

Text in a cell follows the domain's text rules (no NUL character, no lone surrogate, the length
limit of its field: see :mod:`salesflow.domain.checks`), and a CSV field of more than
:data:`CSV_FIELD_LIMIT` characters (mapped or not) is refused as a
:class:`~salesflow.errors.ValidationError` naming its line. Python's ``csv`` module keeps its field
limit process-wide (``csv.field_size_limit``) and has no per-reader one, so salesflow sets its own
limit around each row it reads and puts the previous one back at once (:func:`next_row`): other
code keeps the limit it chose, and salesflow's reading never depends on it (only another thread
parsing CSV during that very row would see salesflow's limit).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any, Final, TypeVar

import attrs

from salesflow.cells import FORMULA_START, RISKY_START, neutralise_cell, restore_cell
from salesflow.domain.checks import MAX_TERMS_LENGTH
from salesflow.domain.dates import DateReader
from salesflow.domain.opportunities import Opportunity, StageChange
from salesflow.domain.stages import StagePlan
from salesflow.errors import InvalidTypeError, StageError, ValidationError

__all__ = [
    "CSV_FIELD_LIMIT",
    "FIELDS",
    "FORMULA_START",
    "READ_FIELDS",
    "csv_error",
    "iter_opportunities",
    "neutralise_cell",
    "next_row",
    "read_opportunities",
    "restore_cell",
    "write_opportunities",
]

_Row = TypeVar("_Row")

CSV_FIELD_LIMIT: Final = MAX_TERMS_LENGTH
"""The longest CSV field salesflow reads (characters, 1 MiB): the longest text a domain field
holds (a contract's terms), far beyond any cell of an export. Python's own default is 128 KiB."""

FIELDS = (
    "id",
    "name",
    "account",
    "owner",
    "team",
    "industry",
    "region",
    "amount",
    "currency",
    "stage",
    "expected_close",
    "created",
)
"""The opportunity fields a CSV row can fill, in the order :func:`write_opportunities` writes."""

READ_FIELDS = (*FIELDS, "lost_reason")
"""The fields reading accepts: :data:`FIELDS` and the optional ``lost_reason`` of a lost deal."""

Source = str | os.PathLike[str] | IO[str]
Column = str | Callable[[Mapping[str, str]], Any]


def next_row(reader: Iterator[_Row]) -> _Row:
    """The next row of a ``csv.reader`` or ``csv.DictReader``, read with :data:`CSV_FIELD_LIMIT`
    as the field limit; the process-wide limit is put back before this returns (see the module
    documentation). Raises ``StopIteration`` at the end and ``csv.Error`` as the reader does
    (:func:`csv_error` turns it into a :class:`~salesflow.errors.ValidationError`)."""
    previous = csv.field_size_limit(CSV_FIELD_LIMIT)
    try:
        return next(reader)
    finally:
        csv.field_size_limit(previous)


def csv_error(error: csv.Error, where: str) -> ValidationError:
    """The :class:`~salesflow.errors.ValidationError` of a row the ``csv`` module could not read
    (``where`` names its line): a field beyond :data:`CSV_FIELD_LIMIT`, or malformed CSV."""
    if str(error).startswith("field larger than field limit"):
        return ValidationError(
            "field",
            f"more than {CSV_FIELD_LIMIT:,} characters",
            f"a CSV field of at most {CSV_FIELD_LIMIT:,} characters",
            where=where,
        )
    return ValidationError("row", str(error), "a CSV row", where=where)


@contextmanager
def _open(source: Source, mode: str, encoding: str) -> Iterator[IO[str]]:
    if isinstance(source, str | os.PathLike):
        with open(source, mode, encoding=encoding, newline="") as handle:
            yield handle
    elif isinstance(source, io.IOBase) or hasattr(source, "read" if "r" in mode else "write"):
        yield source
    else:
        raise InvalidTypeError("source", source, "a path or an open text file")


def _compile(mapping: Mapping[str, Column] | None, header: list[str]) -> dict[str, Column]:
    mapping = dict(mapping or {})
    unknown = sorted(set(mapping) - set(READ_FIELDS))
    if unknown:
        raise ValidationError("mapping", unknown, f"keys among the fields {list(READ_FIELDS)}")
    for field, column in mapping.items():
        _check_column(f"mapping[{field!r}]", column, header)
    for field in READ_FIELDS:
        if field not in mapping and field in header:
            mapping[field] = field
    return mapping


def _check_column(field: str, column: object, header: list[str]) -> None:
    if isinstance(column, str):
        if column not in header:
            raise ValidationError(field, column, f"a column of the file, one of {header}")
    elif not callable(column):
        raise InvalidTypeError(field, column, "a column name or a function")


class _History:
    """Builds a row's stage history from the date columns ``history=`` names."""

    def __init__(
        self, history: Mapping[str, Column], plan: StagePlan | None, header: list[str]
    ) -> None:
        if not isinstance(history, Mapping):
            raise InvalidTypeError("history", history, "a mapping stage -> date column")
        self.plan = plan = StagePlan.default() if plan is None else plan
        columns: dict[str, Column] = {}
        for name, column in history.items():
            try:
                key = plan.resolve(name).key
            except StageError:
                raise StageError(
                    "history", name, f"a stage key or display name of the plan, one of {plan.keys}"
                ) from None
            if key in columns:
                raise ValidationError("history", name, f"one column per stage ({key!r} twice)")
            _check_column(f"history[{name!r}]", column, header)
            columns[key] = column
        # In plan order: (stage key, position, column, whether the stage is open).
        self.steps = [
            (stage.key, i, columns[stage.key], stage.is_open)
            for i, stage in enumerate(plan)
            if stage.key in columns
        ]
        self.position = {stage.key: i for i, stage in enumerate(plan)}
        self.columns = columns

    def changes(
        self, row: Mapping[str, str], stage: str, dates: DateReader, where: str
    ) -> tuple[StageChange, ...]:
        """The stage changes of one row whose current stage is ``stage`` (see
        :func:`iter_opportunities`)."""
        here = self.position[stage]
        current_is_open = self.plan[stage].is_open
        dated: list[tuple[str, str, Any]] = []  # (stage, column name, date)
        for key, position, column, is_open in self.steps:
            if key != stage and not is_open:
                continue  # another outcome's column (a won deal's close date is not a loss)
            name = column if isinstance(column, str) else f"history[{key!r}]"
            value = _value(row, column, name, where)
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            day = dates.read(value, name, where)
            if current_is_open and position > here:
                raise ValidationError(
                    name,
                    value,
                    f"no date for stage {key!r}, which comes after the current stage {stage!r}",
                    where=where,
                )
            if dated and day < dated[-1][2]:
                raise ValidationError(
                    name,
                    value,
                    f"a date on or after {dated[-1][1]} ({dated[-1][2].isoformat()}): "
                    "stages are entered in plan order",
                    where=where,
                )
            dated.append((key, name, day))
        if not dated:
            return ()
        if dated[-1][0] != stage:
            if stage not in self.columns:
                raise ValidationError(
                    "history",
                    stage,
                    f"a date column for the current stage {stage!r} in history= (this deal has "
                    f"a date for {dated[-1][0]!r}, so its history must end with its move to "
                    f"{stage!r})",
                    where=where,
                )
            column = self.columns[stage]
            raise ValidationError(
                column if isinstance(column, str) else f"history[{stage!r}]",
                None,
                f"the date the deal entered its current stage {stage!r} (it has a date for "
                f"{dated[-1][0]!r})",
                where=where,
            )
        changes = []
        previous: str | None = None
        for key, _name, day in dated:
            changes.append(StageChange(day, previous, key))
            previous = key
        return tuple(changes)


def _value(row: Mapping[str, str], column: Column, field: str, where: str) -> Any:
    if isinstance(column, str):
        value = row[column]
        return restore_cell(value) if value[:1] == "'" else value
    try:
        return column(row)
    except Exception as exc:
        raise ValidationError(
            field, dict(row), f"a row the mapping accepts ({exc!r})", where=where
        ) from exc


_DATE_FIELDS = ("expected_close", "created")


def _parse(
    source: Source,
    plan: StagePlan | None,
    mapping: Mapping[str, Column] | None,
    currency: str | None,
    dates: DateReader,
    history: Mapping[str, Column] | None,
    encoding: str,
) -> Iterator[tuple[str, Opportunity]]:
    with _open(source, "r", encoding) as handle:
        reader = csv.DictReader(handle)
        previous = csv.field_size_limit(CSV_FIELD_LIMIT)
        try:
            header = list(reader.fieldnames or [])
        except csv.Error as exc:
            raise csv_error(exc, "line 1") from None
        finally:
            csv.field_size_limit(previous)
        if not header:
            raise ValidationError("header", None, "a CSV header row", where="line 1")
        columns = _compile(mapping, header)
        stages = None if history is None else _History(history, plan, header)
        if stages is not None:
            plan = stages.plan  # a history is read against a plan: the default one if none
        while True:
            try:
                row = next_row(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                # DictReader.line_num is updated after a row is read; its reader's is current
                raise csv_error(exc, f"line {reader.reader.line_num}") from None
            where = f"line {reader.line_num}"
            if None in row:
                extra = row[None]
                raise ValidationError("row", extra, f"at most {len(header)} cells", where=where)
            record = {field: _value(row, column, field, where) for field, column in columns.items()}
            for field in _DATE_FIELDS:
                value = record.get(field)
                if isinstance(value, str) and value.strip():
                    record[field] = dates.read(value, field, where)
            opportunity = Opportunity.from_record(record, plan=plan, currency=currency, where=where)
            if stages is not None:
                changes = stages.changes(row, opportunity.stage, dates, where)
                if changes:
                    opportunity = _with_history(opportunity, changes, where)
            yield where, opportunity


def _with_history(
    opportunity: Opportunity, changes: tuple[StageChange, ...], where: str
) -> Opportunity:
    """``opportunity`` with ``changes`` as its history; a lost reason read from the row (the one
    change :meth:`Opportunity.from_record` made) moves onto the last change."""
    if opportunity.history and opportunity.history[-1].reason is not None:
        known = opportunity.history[-1]
        changes = (
            *changes[:-1],
            attrs.evolve(changes[-1], reason=known.reason, note=known.note),
        )
    try:
        return attrs.evolve(opportunity, history=changes)
    except ValidationError as exc:
        raise exc.located(where) from None


def iter_opportunities(
    source: Source,
    *,
    plan: StagePlan | None = None,
    mapping: Mapping[str, Column] | None = None,
    currency: str | None = None,
    dayfirst: bool | None = None,
    year_pivot: int | None = None,
    history: Mapping[str, Column] | None = None,
    encoding: str = "utf-8-sig",
) -> Iterator[Opportunity]:
    """Yield an :class:`Opportunity` per CSV row, streaming.

    Raises :class:`~salesflow.errors.ValidationError` at the first bad row, naming its line number
    (the header is line 1); the rows before it have already been yielded, so run an import that
    must be all-or-nothing inside a transaction, or use :func:`read_opportunities`.

    Args:
        source: a path or an open text file.
        plan: the stage plan; stage cells may hold a stage key or display name. Lost reasons are
            checked against it (the default plan when it is ``None``), and so are the stages of
            ``history`` and of the rows when it is given.
        mapping: field -> column name, or field -> function of the row (e.g.
            ``{"owner": "sales_agent", "industry": lambda row: sectors.get(row["account"])}``);
            the fields are :data:`READ_FIELDS`, so ``{"lost_reason": "Loss Reason"}`` reads why
            a lost deal was lost (a code of the plan's lost reasons; blank means not recorded).
            A function gets the row's cells as they are in the file.
        currency: the currency of amounts when there is no currency column.
        dayfirst: how numeric dates such as ``03/04/2026`` are written: ``True`` day first,
            ``False`` month first, ``None`` (the default) decided by the file's own dates, a
            file with a day-first date and an ambiguous one being refused (see
            :class:`~salesflow.domain.dates.DateReader`).
        year_pivot: read two-digit years in the hundred years from this one (``1970``: ``69``
            is 2069, ``70`` is 1970); without it a two-digit year is refused.
        history: stage -> date column (or function of the row), to build each deal's stage
            history: ``{"engaging": "engage_date", "won": "close_date", "lost":
            "close_date"}``. Stages are keys or display names of ``plan``. For each row, the
            stages with a date become :class:`~salesflow.domain.opportunities.StageChange`
            moves in plan order, the first from ``None``, each dated midnight UTC of its day;
            a blank cell means the deal skipped that stage (or its date is unknown). Rules: the
            deal's current stage is the last move, so it needs a date whenever an earlier stage
            has one (a row without any date has no history); a date for an open stage after an
            open current stage is refused, while the column of a won or lost stage that is not
            the deal's outcome is ignored (a won deal's ``close_date`` is not a loss); the dates
            may not go back in plan order. A ``lost_reason`` goes on the move into the lost stage.
        encoding: the file's encoding (a UTF-8 byte-order mark is skipped by default).
    """
    dates = DateReader(dayfirst=dayfirst, year_pivot=year_pivot)
    for _where, opportunity in _parse(source, plan, mapping, currency, dates, history, encoding):
        yield opportunity


def read_opportunities(
    source: Source,
    *,
    plan: StagePlan | None = None,
    mapping: Mapping[str, Column] | None = None,
    currency: str | None = None,
    dayfirst: bool | None = None,
    year_pivot: int | None = None,
    history: Mapping[str, Column] | None = None,
    encoding: str = "utf-8-sig",
) -> list[Opportunity]:
    """Read every row of a CSV file as an :class:`Opportunity`: all of them, or an error.

    Arguments as for :func:`iter_opportunities`. An id that appears twice is refused, naming the
    line of its second appearance.
    """
    dates = DateReader(dayfirst=dayfirst, year_pivot=year_pivot)
    opportunities = []
    seen: set[str] = set()
    for where, opportunity in _parse(source, plan, mapping, currency, dates, history, encoding):
        if opportunity.id in seen:
            raise ValidationError(
                "id", opportunity.id, "an id not used by an earlier row", where=where
            )
        seen.add(opportunity.id)
        opportunities.append(opportunity)
    return opportunities


def write_opportunities(
    opportunities: Iterable[Opportunity], target: Source, *, encoding: str = "utf-8"
) -> int:
    """Write ``opportunities`` as CSV with the :data:`FIELDS` columns; return the row count.

    Text cells pass through :func:`neutralise_cell` (no cell starts a spreadsheet formula), and
    :func:`read_opportunities` reads the file back to equal opportunities (without history).
    """
    count = 0
    with _open(target, "w", encoding) as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        for opportunity in opportunities:
            record = opportunity.to_record()
            for field, value in record.items():
                if value and value[0] in RISKY_START:
                    record[field] = neutralise_cell(value)
            writer.writerow(record)
            count += 1
    return count
