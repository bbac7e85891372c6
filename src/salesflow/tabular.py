"""CSV in and out: opportunities from a pipeline export, and back.

Column names rarely match ours, so a ``mapping`` says where each field comes from: a column name,
or a function of the whole row (to join a lookup table or compute a value). Fields not mapped are
read from the column of the same name when there is one.

A deal already in a lost stage may say why it was lost in a ``lost_reason`` column (or mapping): a
code of the plan's lost reasons, recorded as its stage change into the lost stage (see
:meth:`~salesflow.domain.opportunities.Opportunity.from_record`). Without one, an imported lost
deal has no recorded reason and :func:`~salesflow.analytics.lost_reasons.lost_reasons` reports it
as ``"unknown"``. Writing does not produce the column.

Reading validates every row; a bad row raises :class:`~salesflow.errors.ValidationError` naming
its line number and field, and :func:`read_opportunities` then returns nothing half-parsed.
:func:`iter_opportunities` streams in constant memory for imports that run in a transaction.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any

from salesflow.domain.opportunities import Opportunity
from salesflow.domain.stages import StagePlan
from salesflow.errors import InvalidTypeError, ValidationError

__all__ = [
    "FIELDS",
    "READ_FIELDS",
    "iter_opportunities",
    "read_opportunities",
    "write_opportunities",
]

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
        if isinstance(column, str):
            if column not in header:
                raise ValidationError(
                    f"mapping[{field!r}]", column, f"a column of the file, one of {header}"
                )
        elif not callable(column):
            raise InvalidTypeError(f"mapping[{field!r}]", column, "a column name or a function")
    for field in READ_FIELDS:
        if field not in mapping and field in header:
            mapping[field] = field
    return mapping


def _parse(
    source: Source,
    plan: StagePlan | None,
    mapping: Mapping[str, Column] | None,
    currency: str | None,
    dayfirst: bool,
    encoding: str,
) -> Iterator[tuple[str, Opportunity]]:
    with _open(source, "r", encoding) as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        if not header:
            raise ValidationError("header", None, "a CSV header row", where="line 1")
        columns = _compile(mapping, header)
        for row in reader:
            where = f"line {reader.line_num}"
            if None in row:
                extra = row[None]
                raise ValidationError("row", extra, f"at most {len(header)} cells", where=where)
            record: dict[str, Any] = {}
            for field, column in columns.items():
                if isinstance(column, str):
                    record[field] = row[column]
                    continue
                try:
                    record[field] = column(row)
                except Exception as exc:
                    raise ValidationError(
                        field, dict(row), f"a row the mapping accepts ({exc!r})", where=where
                    ) from exc
            opportunity = Opportunity.from_record(
                record, plan=plan, currency=currency, dayfirst=dayfirst, where=where
            )
            yield where, opportunity


def iter_opportunities(
    source: Source,
    *,
    plan: StagePlan | None = None,
    mapping: Mapping[str, Column] | None = None,
    currency: str | None = None,
    dayfirst: bool = False,
    encoding: str = "utf-8-sig",
) -> Iterator[Opportunity]:
    """Yield an :class:`Opportunity` per CSV row, streaming.

    Raises :class:`~salesflow.errors.ValidationError` at the first bad row, naming its line number
    (the header is line 1); the rows before it have already been yielded, so run an import that
    must be all-or-nothing inside a transaction, or use :func:`read_opportunities`.

    Args:
        source: a path or an open text file.
        plan: the stage plan; stage cells may hold a stage key or display name. Lost reasons are
            checked against it (the default plan when it is ``None``).
        mapping: field -> column name, or field -> function of the row (e.g.
            ``{"owner": "sales_agent", "industry": lambda row: sectors.get(row["account"])}``);
            the fields are :data:`READ_FIELDS`, so ``{"lost_reason": "Loss Reason"}`` reads why
            a lost deal was lost (a code of the plan's lost reasons; blank means not recorded).
        currency: the currency of amounts when there is no currency column.
        dayfirst: read ambiguous dates such as ``03/04/2026`` as day first.
        encoding: the file's encoding (a UTF-8 byte-order mark is skipped by default).
    """
    for _where, opportunity in _parse(source, plan, mapping, currency, dayfirst, encoding):
        yield opportunity


def read_opportunities(
    source: Source,
    *,
    plan: StagePlan | None = None,
    mapping: Mapping[str, Column] | None = None,
    currency: str | None = None,
    dayfirst: bool = False,
    encoding: str = "utf-8-sig",
) -> list[Opportunity]:
    """Read every row of a CSV file as an :class:`Opportunity`: all of them, or an error.

    Arguments as for :func:`iter_opportunities`. An id that appears twice is refused, naming the
    line of its second appearance.
    """
    opportunities = []
    seen: set[str] = set()
    for where, opportunity in _parse(source, plan, mapping, currency, dayfirst, encoding):
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

    :func:`read_opportunities` reads the file back to equal opportunities (without history).
    """
    count = 0
    with _open(target, "w", encoding) as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        for opportunity in opportunities:
            writer.writerow(opportunity.to_record())
            count += 1
    return count
