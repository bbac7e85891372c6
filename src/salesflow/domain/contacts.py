"""Contacts (联系人): the people the company talks to, and the numbers they call from.

A :class:`Contact` keeps its phone numbers as entered (any format); they are normalised where they
are looked up (:class:`~salesflow.domain.phones.PhoneDirectory`), so the record keeps what the user
typed. Blank optional text means "missing" and is kept as ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from salesflow.domain.checks import (
    MAX_NAME_LENGTH,
    as_optional_id,
    as_optional_name,
    check_count,
    check_id,
    check_string,
)
from salesflow.errors import InvalidTypeError, ValidationError

__all__ = ["Contact"]

_TEXT_FIELDS = ("id", "name", "account", "owner", "industry", "region")


def _to_phones(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Iterable):
        raise InvalidTypeError("phones", value, "an iterable of phone numbers (strings)")
    phones = tuple(value)
    for i, raw in enumerate(phones):
        if not isinstance(raw, str) or not raw.strip():
            raise ValidationError(f"phones[{i}]", raw, "a phone number as a non-empty string")
        check_string(raw, f"phones[{i}]", MAX_NAME_LENGTH)
    return phones


@attrs.frozen(kw_only=True)
class Contact:
    """A person the company talks to (联系人): id, name, account, owner, industry, region, phones.

    ``phones`` holds any number of numbers as entered (any format); they are normalised where they
    are looked up (:class:`~salesflow.domain.phones.PhoneDirectory`), so the record keeps what the
    user typed. ``owner`` is the rep responsible for the contact (missed calls become their tasks).
    """

    id: str = attrs.field(validator=check_id)
    name: str | None = attrs.field(default=None, converter=as_optional_name)
    account: str | None = attrs.field(default=None, converter=as_optional_name)
    owner: str | None = attrs.field(default=None, converter=as_optional_id)
    industry: str | None = attrs.field(default=None, converter=as_optional_id)
    region: str | None = attrs.field(default=None, converter=as_optional_id)
    phones: tuple[str, ...] = attrs.field(default=(), converter=_to_phones)
    version: int = attrs.field(default=0, validator=check_count)

    def to_record(self) -> dict[str, Any]:
        """This contact as a dict of plain values (``phones`` as a tuple of strings)."""
        return {
            "id": self.id,
            "name": self.name,
            "account": self.account,
            "owner": self.owner,
            "industry": self.industry,
            "region": self.region,
            "phones": self.phones,
            "version": self.version,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Contact:
        """The inverse of :meth:`to_record` (``phones`` may also be one ``;``-separated string)."""
        if not isinstance(record, Mapping):
            raise InvalidTypeError("record", record, "a mapping of field name to value")
        phones = record.get("phones") or ()
        if isinstance(phones, str):
            phones = tuple(p.strip() for p in phones.split(";") if p.strip())
        texts: dict[str, Any] = {name: record.get(name) for name in _TEXT_FIELDS}
        return cls(**texts, phones=phones, version=record.get("version", 0))
