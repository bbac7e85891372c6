"""The query filters of the port: how they are checked, and how they match in Python.

Every backend refuses the same bad filters with the same errors (these functions), whether it then
filters in SQL or, like :class:`~salesflow.storage.BaseStorage`, in Python (:func:`wanted`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from salesflow.errors import InvalidTypeError, ValidationError
from salesflow.ports import Between
from salesflow.storage.kinds import DocumentKind

__all__ = ["check_filters", "narrow_stages", "opportunity_filter", "wanted"]


def check_filters(
    kind: DocumentKind, filters: Mapping[str, Any], order_by: str | None = None
) -> None:
    """Refuse filters (or an order) on fields ``kind`` does not index.

    Raises:
        ValidationError: on ``"filters"`` (the message says "fields a <kind> is indexed by: ...")
            or ``"order_by"``.
    """
    names = {index.name for index in kind.indexes}
    unknown = sorted(set(filters) - names)
    if unknown:
        raise ValidationError(
            "filters", unknown, f"fields a {kind.name} is indexed by: {sorted(names)}"
        )
    if order_by is not None and order_by not in names:
        raise ValidationError("order_by", order_by, f"one of {sorted(names)}")


def opportunity_filter(
    owner: str | Sequence[str] | None,
    team: str | Sequence[str] | None,
    stage: str | Sequence[str] | None,
    close_from: date | None,
    close_until: date | None,
    updated_since: datetime | None,
) -> None:
    """Check the filters of :meth:`OpportunityRepository.query
    <salesflow.ports.OpportunityRepository.query>`.

    Raises:
        InvalidTypeError: ``close_from``/``close_until`` not a date, ``updated_since`` not an
            aware datetime, ``owner``/``team``/``stage`` neither a string nor a sequence of them.
    """
    for name, value in (("close_from", close_from), ("close_until", close_until)):
        if value is not None and type(value) is not date:
            raise InvalidTypeError(name, value, "a date")
    if updated_since is not None and (
        not isinstance(updated_since, datetime) or updated_since.utcoffset() is None
    ):
        raise InvalidTypeError("updated_since", updated_since, "a timezone-aware datetime")
    for name, chosen in (("owner", owner), ("team", team), ("stage", stage)):
        if chosen is not None and not isinstance(chosen, str | list | tuple | set | frozenset):
            raise InvalidTypeError(name, chosen, "a string or a sequence of strings")


def narrow_stages(stages: Sequence[str], stage: object) -> list[str]:
    """The keys of ``stages`` that a ``stage`` filter of :meth:`OpportunityRepository.query
    <salesflow.ports.OpportunityRepository.query>` keeps (all of them when ``stage`` is
    ``None``), in their order: what a read that only needs some stages (the closed ones, the lost
    ones) asks storage for.

    Raises:
        InvalidTypeError: ``stage`` neither a string nor a sequence of strings.
    """
    if stage is None:
        return list(stages)
    if not isinstance(stage, str | list | tuple | set | frozenset):
        raise InvalidTypeError("stage", stage, "a string or a sequence of strings")
    chosen = {stage} if isinstance(stage, str) else set(stage)
    return [key for key in stages if key in chosen]


def wanted(value: Any, filter: Any) -> bool:
    """Whether an indexed ``value`` matches one ``filter`` of a query: a :class:`Between` range
    (``None`` never matches one), a list, tuple or set of values (any of them), or a value
    (``None`` matches ``None``)."""
    if isinstance(filter, Between):
        return filter.matches(value)
    if isinstance(filter, list | tuple | set | frozenset):
        return value in filter
    return bool(value == filter)
