"""Input that fits the user's data: field mappings, stage display names, one-shot iterables.

Every calculator reads attributes (``stage``, ``amount``, ``owner``...) from the rows it is given.
Three things make rows that were not written for salesflow work as they are:

* **A field mapping.** ``fields={"amount": "value", "stage": "phase", "industry": lambda row:
  sectors[row.account]}`` says where each field the calculator reads comes from: another
  attribute (a dotted path such as ``"account.industry"`` follows relations) or a function of the
  row. Fields left out are read under their own name. Rows that are mappings (a ``dict``, a
  ``csv.DictReader`` row, ``DataFrame.to_dict("records")``) are read by key when ``fields`` is
  given (``fields={}`` when the keys already have the right names). :func:`mapped` wraps each
  row in a light view that reads through the mapping; results that keep rows (a forecast's
  drill-down) keep the row itself, never the view (:func:`row_of`).
* **Stage display names.** A stage may be given by its key (``"engaging"``) or its display name
  in any case (``"Engaging"``), as CSV import accepts it (:class:`StageNames`).
* **One-shot iterables.** A generator, a database cursor or a SQLAlchemy ``Result`` can be read
  once only, and not every such object is its own iterator (``iter(result) is not result``), so
  "is it its own iterator?" misses some. :func:`is_reiterable` trusts only collections (sized,
  iterable containers: lists, tuples, sets, dict views, anything with ``__len__``,
  ``__iter__`` and ``__contains__``); everything else is read once and what must be read again
  is kept during that one pass.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import Any

from salesflow.domain.stages import StagePlan
from salesflow.errors import InvalidTypeError, StageError, ValidationError

__all__ = [
    "FieldSpec",
    "Fields",
    "RowView",
    "StageNames",
    "check_fields",
    "is_reiterable",
    "mapped",
    "row_of",
]

FieldSpec = str | Callable[[Any], Any]
"""Where a field comes from: an attribute name (or key, or dotted path), or a function of the row."""

Fields = Mapping[str, FieldSpec]
"""A field mapping: the calculator's field name -> where it comes from in the user's rows."""


def check_fields(fields: object) -> dict[str, FieldSpec] | None:
    """Validate a field mapping (``None`` means: read every field under its own name)."""
    if fields is None:
        return None
    if not isinstance(fields, Mapping):
        raise InvalidTypeError(
            "fields", fields, "a mapping such as {'amount': 'value', 'stage': 'phase'}"
        )
    checked: dict[str, FieldSpec] = {}
    for name, spec in fields.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValidationError("fields", name, "field names such as 'amount' or 'stage'")
        if isinstance(spec, str):
            if not spec.strip():
                raise ValidationError(f"fields[{name!r}]", spec, "a column or attribute name")
        elif not callable(spec):
            raise InvalidTypeError(
                f"fields[{name!r}]", spec, "a column or attribute name, or a function of the row"
            )
        checked[name] = spec
    return checked


class RowView:
    """A user's row seen through a field mapping (see :func:`mapped`).

    Mapped fields are properties of a subclass made for the mapping; any other attribute is read
    from the row under its own name (by key when the row is a mapping).
    """

    __slots__ = ("_row",)

    def __init__(self, row: Any) -> None:
        self._row = row

    def __getattr__(self, name: str) -> Any:
        row = object.__getattribute__(self, "_row")
        if isinstance(row, Mapping):
            try:
                return row[name]
            except KeyError:
                raise AttributeError(name, name=name, obj=row) from None
        return getattr(row, name)

    def __repr__(self) -> str:
        return repr(self._row)


def _reader(name: str, spec: FieldSpec) -> property:
    if callable(spec):
        function = spec

        def read(view: RowView) -> Any:
            try:
                return function(view._row)
            except AttributeError as exc:
                # Python would otherwise retry the field through __getattr__ under its own name
                # and read a column the mapping meant to replace.
                raise ValidationError(
                    f"fields[{name!r}]",
                    view._row,
                    f"a row the function can read ({exc})",
                ) from exc

        return property(read)
    path = spec
    get = operator.attrgetter(path)

    def read_name(view: RowView) -> Any:
        row = view._row
        if isinstance(row, Mapping):
            try:
                return row[path]
            except KeyError:
                raise ValidationError(
                    f"fields[{name!r}]", path, f"a key of the row (it has {sorted(row)})"
                ) from None
        try:
            return get(row)
        except AttributeError:
            raise ValidationError(
                f"fields[{name!r}]", path, f"an attribute of the row {row!r}"
            ) from None

    return property(read_name)


def view_type(fields: Mapping[str, FieldSpec]) -> type[RowView]:
    """The :class:`RowView` subclass that reads through ``fields``."""
    namespace: dict[str, Any] = {"__slots__": ()}
    for name, spec in fields.items():
        namespace[name] = _reader(name, spec)
    return type("MappedRow", (RowView,), namespace)


class _Mapped:
    """A view of ``rows`` through a field mapping; re-iterable when ``rows`` is."""

    def __init__(self, rows: Iterable[Any], fields: Mapping[str, FieldSpec]) -> None:
        self.rows = rows
        self.view = view_type(fields)

    def __iter__(self) -> Iterator[Any]:
        view = self.view
        for row in self.rows:
            yield view(row)


def mapped(rows: Iterable[Any], fields: Mapping[str, FieldSpec] | None) -> Iterable[Any]:
    """``rows`` read through ``fields`` (``rows`` itself when there is no mapping).

    The result is re-iterable exactly when ``rows`` is: each pass reads ``rows`` again.
    """
    if fields is None:
        return rows
    if isinstance(rows, str | bytes) or not isinstance(rows, Iterable):
        raise InvalidTypeError("rows", rows, "an iterable of rows")
    return _Mapped(rows, fields)


def row_of(item: Any) -> Any:
    """The user's own row behind ``item`` (``item`` itself unless it is a :class:`RowView`)."""
    if isinstance(item, RowView):
        return object.__getattribute__(item, "_row")
    return item


def is_reiterable(rows: object) -> bool:
    """Whether ``rows`` can be read again with the same result: a collection that is not an
    iterator. A generator, a cursor or a SQLAlchemy ``Result`` is not (nor is anything else
    that does not say how long it is)."""
    return isinstance(rows, Collection) and not isinstance(rows, Iterator)


class StageNames:
    """Stage keys of a plan from keys or display names, with an error that says what to do.

    ``defaulted`` says the plan was not given (the default plan was used): a stage it does not
    know then most likely comes from the user's own plan, and the error says to pass ``plan=``.
    """

    def __init__(self, plan: StagePlan, defaulted: bool) -> None:
        self.plan = plan
        self.defaulted = defaulted
        self._known: dict[Any, str] = {key: key for key in plan.keys}

    def key(self, value: Any, field: str = "stage", where: str | None = None) -> str:
        """The key of the stage ``value`` names (a key, or a display name in any case)."""
        try:
            return self._known[value]
        except (KeyError, TypeError):
            pass
        if isinstance(value, str):
            try:
                key = self.plan.resolve(value).key
            except StageError:
                pass
            else:
                self._known[value] = key
                return key
        raise self.error(value, field, where)

    def find(self, value: Any) -> str | None:
        """The key of the stage ``value`` names, or ``None`` when the plan has none."""
        try:
            return self.key(value)
        except StageError:
            return None

    def error(self, value: Any, field: str = "stage", where: str | None = None) -> StageError:
        """The error for a stage the plan does not know."""
        expected = f"one of {list(self.plan.keys)} or their display names"
        if self.defaulted:
            expected += (
                "; no plan was given, so the default plan was used: "
                "pass plan= with your stages (StagePlan.from_dict(...))"
            )
        return StageError(field, value, expected, where=where)


def stage_names(plan: StagePlan | None) -> tuple[StagePlan, StageNames]:
    """The plan to use (the default when ``None``) and its :class:`StageNames`."""
    if plan is None:
        default = StagePlan.default()
        return default, StageNames(default, defaulted=True)
    if not isinstance(plan, StagePlan):
        raise InvalidTypeError("plan", plan, "a StagePlan")
    return plan, StageNames(plan, defaulted=False)
