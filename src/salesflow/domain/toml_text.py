"""TOML text for the domain's plain dicts: catalogs and quotes written by hand or kept in a repo.

Values are written so that they read back exactly: ``Decimal`` amounts as strings (a TOML float is
binary), ``None`` left out (TOML has no null; every reader treats a missing key as ``None``). Reading
parses floats as ``Decimal``, which the domain then refuses or accepts like any other number.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from salesflow.errors import InvalidTypeError, ValidationError

__all__ = ["dumps", "loads"]


def dumps(data: Mapping[str, Any]) -> str:
    """``data`` (a domain object's ``to_dict()``) as a TOML document (sets written sorted)."""
    import tomli_w

    return str(tomli_w.dumps(_plain(data)))


def loads(text: str, what: str) -> dict[str, Any]:
    """The table a TOML document holds; :class:`~salesflow.errors.ValidationError` naming
    ``what`` for text that is not TOML."""
    if not isinstance(text, str):
        raise InvalidTypeError(what, text, "TOML text")
    try:
        return tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(what, text[:80], f"a valid TOML document ({exc})") from None


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, frozenset | set):
        return [_plain(v) for v in sorted(value)]
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime) and value.utcoffset() is None:
        # A naive time would read back as a different instant in every zone.
        raise ValidationError("value", value, "an aware datetime")
    if isinstance(value, float) or not isinstance(value, str | int | date):
        raise InvalidTypeError("value", value, "a string, int, bool, Decimal, date, list or table")
    return value
