"""Units of measure: a product sold by the box of 5, by the dozen, by the day.

A product is priced per *base unit* (its list price, tiers, floor and cost). A
:class:`UnitOfMeasure` names another unit the product may be sold in and how many base units it
holds (``factor``), with an optional price of its own for one such unit (a box of 5 at 45.00 rather
than 5 x 10.00). A quote line in a unit of measure counts ``quantity x factor`` base units: volume
tiers, floors, costs and the policy's reference amounts all use base units; a unit of measure's own
price replaces the tiered catalog amount (``quantity x price``), like a price the catalog grants.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from salesflow.domain.checks import as_quantity, check_id, check_optional_money
from salesflow.domain.money import Money
from salesflow.domain.numbers import to_amount
from salesflow.errors import InvalidTypeError, ValidationError

__all__ = ["UnitOfMeasure", "parse_units"]


@attrs.frozen(kw_only=True)
class UnitOfMeasure:
    """A unit a product may be sold in: ``code`` (``"box"``), ``factor`` base units per unit
    (``5``), and optionally ``price``, the price of one such unit."""

    code: str = attrs.field(validator=check_id)
    factor: Decimal = attrs.field(converter=as_quantity)
    price: Money | None = attrs.field(default=None, validator=check_optional_money)

    def to_dict(self) -> dict[str, Any]:
        """This unit as a plain dict (numbers as strings)."""
        data: dict[str, Any] = {"code": self.code, "factor": str(self.factor)}
        if self.price is not None:
            data["price"] = str(self.price.amount)
        return data

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], currency: str, *, where: str | None = None
    ) -> UnitOfMeasure:
        """Build a unit from ``{"code", "factor", "price"}`` (price optional, in ``currency``)."""
        if isinstance(data, UnitOfMeasure):
            return data
        if not isinstance(data, Mapping) or not {"code", "factor"} <= set(data):
            raise InvalidTypeError("units", data, "a dict with code and factor", where=where)
        extra = set(data) - {"code", "factor", "price"}
        if extra:
            raise ValidationError(
                "units", sorted(extra), "only code, factor and price", where=where
            )
        price = data.get("price")
        try:
            return cls(
                code=data["code"],
                factor=data["factor"],
                price=None
                if price in (None, "")
                else Money.of(to_amount(price, "price"), currency),
            )
        except ValidationError as exc:
            raise (exc.located(where) if where else exc) from None


def parse_units(value: object, currency: str) -> tuple[UnitOfMeasure, ...]:
    """Units from a list of :class:`UnitOfMeasure` or dicts, or the text ``"box:5:45.00;dozen:12"``
    (code:factor[:price], ``;`` between units)."""
    if value is None:
        return ()
    shape = "units like 'box:5:45.00;dozen:12' (code:factor[:price])"
    if isinstance(value, str):
        units = []
        for i, part in enumerate(p for p in value.split(";") if p.strip()):
            pieces = [p.strip() for p in part.split(":")]
            if len(pieces) not in (2, 3) or not all(pieces):
                raise ValidationError("units", value, shape)
            entry = {"code": pieces[0], "factor": pieces[1]}
            if len(pieces) == 3:
                entry["price"] = pieces[2]
            units.append(UnitOfMeasure.from_dict(entry, currency, where=f"units[{i}]"))
        return tuple(units)
    if not isinstance(value, list | tuple):
        raise InvalidTypeError("units", value, shape + " or a list of dicts")
    return tuple(
        UnitOfMeasure.from_dict(v, currency, where=f"units[{i}]") for i, v in enumerate(value)
    )
