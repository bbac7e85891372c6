"""Column types that keep values exact on every database.

* :class:`ExactDecimal`: ``NUMERIC`` on PostgreSQL, ``DECIMAL(38, 10)`` on MySQL/MariaDB and the
  exact decimal *text* on SQLite, which has no decimal type (its ``NUMERIC`` affinity would turn
  ``12.30`` into a float). Never a float anywhere.
* :class:`UTCDateTime`: aware datetimes stored as UTC (naive columns, microseconds kept) and read
  back as aware UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Numeric, String
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from salesflow.domain.numbers import EXACT, MAX_PLACES
from salesflow.errors import ValidationError

__all__ = ["MYSQL_SCALE", "ExactDecimal", "UTCDateTime", "sqlite_datetime"]

MYSQL_SCALE = MAX_PLACES
"""Decimal places MySQL/MariaDB keep (their DECIMAL needs a fixed scale); more are refused.

``DECIMAL(38, 10)`` holds every amount within the bounds of
:mod:`salesflow.domain.numbers` (15 integer digits, 10 decimal places) exactly, with room for 13
more integer digits."""
_MYSQL_QUANTUM = Decimal(1).scaleb(-MYSQL_SCALE)


def _is_mysql(dialect: Dialect) -> bool:
    return dialect.name in ("mysql", "mariadb")


class ExactDecimal(TypeDecorator[Decimal]):
    """An exact decimal column (see the module docs)."""

    impl = Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(80))
        if _is_mysql(dialect):
            return dialect.type_descriptor(
                mysql.DECIMAL(precision=38, scale=MYSQL_SCALE, asdecimal=True)
            )
        return dialect.type_descriptor(Numeric(asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return str(value)
        if _is_mysql(dialect) and value.as_tuple().exponent < -MYSQL_SCALE:  # type: ignore[operator]
            # Trailing zeros beyond the scale (1.500000000000) lose nothing; other digits would.
            scaled = value.quantize(_MYSQL_QUANTUM, context=EXACT)
            if scaled != value:
                raise ValidationError(
                    "amount", value, f"at most {MYSQL_SCALE} decimal places on MySQL/MariaDB"
                )
            return scaled
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as naive UTC, read back aware in UTC."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if _is_mysql(dialect):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValidationError("at", value, "a timezone-aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def sqlite_datetime(value: datetime) -> str:
    """An aware datetime as SQLAlchemy's SQLite dialect stores a naive UTC DATETIME (for bulk
    inserts that bypass type processing)."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%d %H:%M:%S.%f")
