"""Contacts (联系人): the people the company talks to, and the numbers they call from.

A :class:`Contact` keeps its phone numbers as entered (any format), so the record keeps what the user
typed. Blank optional text means "missing" and is kept as ``None``.

Numbers are normalised once, when the contact is stored: the desk keeps one
:class:`ContactNumber` per number listed (the number as given beside its E.164 form, or ``None``
when it is not a phone number), and the phone directory of an import is read from them
(``PhoneDirectory.build(..., normalised=...)``), so an import parses only
numbers it has not seen. :func:`contact_numbers` makes them.
"""

from __future__ import annotations

import hashlib
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
from salesflow.domain.phones import PhoneSettings
from salesflow.errors import InvalidTypeError, ValidationError

__all__ = ["Contact", "ContactNumber", "contact_numbers"]

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

    ``phones`` holds any number of numbers as entered (any format), so the record keeps what the
    user typed; their E.164 forms are stored beside them (:class:`ContactNumber`) by the desk. ``owner`` is the rep responsible for the contact (missed calls become their tasks).
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


def _check_region(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not (isinstance(value, str) and len(value) == 2):
        raise ValidationError(attribute.name, value, "an ISO 3166 country code or None")


def _check_e164(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not (
        isinstance(value, str) and value.startswith("+") and value[1:].isdigit()
    ):
        raise ValidationError(attribute.name, value, "an E.164 number such as '+8613800138000'")


@attrs.frozen(kw_only=True)
class ContactNumber:
    """One number a contact lists, normalised once when the contact was stored.

    ``given`` is the number as typed (``contact.phones[position]``); ``number`` its E.164 form
    under ``region`` (the default region it was read in), or ``None`` when it is not a phone
    number. Stored by :attr:`id` and queryable by ``number`` and ``contact_id``: the stored phone
    directory.
    """

    contact_id: str = attrs.field(validator=check_id)
    position: int = attrs.field(validator=check_count)
    given: str = attrs.field(validator=attrs.validators.instance_of(str))
    number: str | None = attrs.field(default=None, validator=_check_e164)
    region: str | None = attrs.field(default=None, validator=_check_region)

    @property
    def id(self) -> str:
        """The storage key: ``"<number>#<fingerprint>"`` (``-`` for no number; see
        :meth:`fingerprint`). A directory is read from the keys alone, without loading the
        documents: the fingerprint says which contact number (as typed, in which region) the key
        is for, and the number is beside it."""
        digest = self.fingerprint(self.contact_id, self.position, self.region, self.given)
        return f"{self.number or '-'}#{digest}"

    @staticmethod
    def fingerprint(contact_id: str, position: int, region: str | None, given: str) -> str:
        """A digest of the contact id, the position, the region and the number as typed (80 bits,
        hex): equal only for the same number of the same contact read the same way."""
        text = f"{contact_id}\x00{position}\x00{region or ''}\x00{given}"
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=10).hexdigest()

    @staticmethod
    def split_key(key: str) -> tuple[str | None, str]:
        """``(number or None, fingerprint)`` of a storage key made by :attr:`id`."""
        number, _, fingerprint = key.rpartition("#")
        return (None if number == "-" else number), fingerprint


def contact_numbers(contact: Contact, settings: PhoneSettings) -> list[ContactNumber]:
    """The :class:`ContactNumber` entries of ``contact``: each number as given, normalised under
    ``settings`` (its default region), in the contact's order."""
    if not isinstance(contact, Contact):
        raise InvalidTypeError("contact", contact, "a Contact")
    if not isinstance(settings, PhoneSettings):
        raise InvalidTypeError("settings", settings, "PhoneSettings")
    region = settings.default_region
    return [
        ContactNumber(
            contact_id=contact.id,
            position=i,
            given=raw,
            number=settings.normalise(raw),
            region=region,
        )
        for i, raw in enumerate(contact.phones)
    ]
