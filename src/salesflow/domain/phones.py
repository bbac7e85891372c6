"""Phone numbers: normalisation to E.164 and the directory that maps numbers to contacts.

Rules (pinned by tests):

* A number is normalised with the `phonenumbers` library (Google's libphonenumber metadata) to
  E.164 (``+8613800138000``). Spaces, dashes, brackets, a ``+`` or an international call prefix
  (``0086`` from China, ``011`` from the US), ``tel:`` URIs and national formats parsed in the
  configured **default region** all give the same E.164 string. Extensions are dropped.
* A number counts as parsed when libphonenumber finds it *possible* (right length for its country),
  not only when it is *valid* (a range in use): test and newly allocated ranges must still match.
* Anything else (``"1001"``, an internal extension; ``"anonymous"``; ``"client:alice"``) is
  **unparseable**: it is kept as given wherever it was written, and it matches nothing.
* The company's own numbers (from :class:`PhoneSettings`) never match a contact: a contact record
  that lists the switchboard would otherwise turn every internal call into "work".
* One number listed by several contacts (a shared office line) is kept with all its contacts;
  :meth:`PhoneDirectory.resolve` picks the one owned by the call's owner, else the first listed.

``phonenumbers`` is imported on first use only: its metadata costs ~40 ms, and ``import salesflow``
must stay fast.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import compress, repeat
from typing import TYPE_CHECKING, Any, Literal, Protocol

import attrs

from salesflow.domain.checks import MAX_NAME_LENGTH, check_string
from salesflow.errors import InvalidTypeError, NotFoundError, ValidationError

if TYPE_CHECKING:
    import phonenumbers

__all__ = [
    "MatchReason",
    "PhoneDirectory",
    "PhoneHolder",
    "PhoneSettings",
    "normalise_number",
]

MatchReason = Literal["matched", "unknown_number", "unparseable_number", "company_number"]
"""Why a number did or did not resolve to a contact (see :meth:`PhoneDirectory.classify`)."""


@functools.cache
def _supported_regions() -> frozenset[str]:
    import phonenumbers

    return frozenset(phonenumbers.SUPPORTED_REGIONS)


def _parse(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    import phonenumbers

    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_possible_number(number) else None


def normalise_number(raw: str, region: str | None = None) -> str | None:
    """``raw`` in E.164 (``+8613800138000``), or ``None`` when it is not a possible phone number.

    ``region`` is the ISO 3166 country code (``"CN"``, ``"US"``) used for numbers written without a
    country code; without it only international forms (``+86 ...``) parse. Raises
    :class:`~salesflow.errors.InvalidTypeError` when ``raw`` is not a string.
    """
    if not isinstance(raw, str):
        raise InvalidTypeError("number", raw, "a phone number as a string")
    text = raw.strip()
    if not text:
        return None
    number = _parse(text, region)
    if number is None:
        return None
    import phonenumbers

    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _to_region(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidTypeError("default_region", value, "an ISO 3166 country code such as 'CN'")
    region = value.strip().upper()
    if region not in _supported_regions():
        raise ValidationError(
            "default_region", value, "an ISO 3166 country code known to libphonenumber, e.g. 'CN'"
        )
    return region


def _to_number_set(value: Iterable[str] | str) -> frozenset[str]:
    items = (value,) if isinstance(value, str) else value
    try:
        numbers = frozenset(items)
    except TypeError:
        raise InvalidTypeError("company_numbers", value, "an iterable of phone numbers") from None
    for raw in numbers:
        if not isinstance(raw, str):
            raise InvalidTypeError("company_numbers", raw, "phone numbers as strings")
        check_string(raw, "company_numbers", MAX_NAME_LENGTH)
    return numbers


@attrs.frozen(kw_only=True)
class PhoneSettings:
    """How numbers are read: the default region and the company's own numbers.

    ``company_numbers`` may be written in any format the default region understands; they are kept
    in E.164. A company number that cannot be parsed is refused with
    :class:`~salesflow.errors.ValidationError` (a typo there would silently count internal calls).
    """

    default_region: str | None = attrs.field(default=None, converter=_to_region)
    """ISO 3166 country code for numbers without a country code (``None``: international only)."""
    company_numbers: frozenset[str] = attrs.field(default=frozenset(), converter=_to_number_set)
    """The company's own numbers in E.164; they never match a contact."""

    def __attrs_post_init__(self) -> None:
        # The region is another field, so the numbers are normalised here, after both are set.
        normalised = set()
        for i, raw in enumerate(sorted(self.company_numbers)):
            e164 = normalise_number(raw, self.default_region)
            if e164 is None:
                raise ValidationError(
                    f"company_numbers[{i}]",
                    raw,
                    "a phone number (with a country code, or in the default region)",
                )
            normalised.add(e164)
        object.__setattr__(self, "company_numbers", frozenset(normalised))

    def normalise(self, raw: str) -> str | None:
        """``raw`` in E.164 in the default region, or ``None`` when unparseable."""
        return normalise_number(raw, self.default_region)

    def is_company_number(self, raw: str) -> bool:
        """Whether ``raw`` is one of the company's own numbers (in any format)."""
        e164 = self.normalise(raw)
        return e164 is not None and e164 in self.company_numbers


class PhoneHolder(Protocol):
    """What :class:`PhoneDirectory` reads from a contact (a
    :class:`~salesflow.domain.contacts.Contact`, an ORM row...)."""

    @property
    def id(self) -> str:
        """The contact id."""
        ...

    @property
    def owner(self) -> str | None:
        """The rep who owns the contact, if any."""
        ...

    @property
    def phones(self) -> Iterable[str]:
        """The contact's numbers as entered (any format)."""
        ...


# Typed with digits and these separators only (no "+", letters or extension marks), a number parses
# exactly as its bare digits do: libphonenumber keeps only the digits of such a string.
def _without_separators(text: str) -> str:
    """``text`` without the separators above (str.replace is several times faster than
    str.translate here, which matters once per stored number on every import)."""
    if text.isdigit():
        return text
    return (
        text.replace(" ", "")
        .replace("-", "")
        .replace(".", "")
        .replace("(", "")
        .replace(")", "")
        .replace("/", "")
        .replace("\t", "")
    )


@functools.cache
def _national_forms(region: str) -> tuple[str, str]:
    """The country calling code of ``region`` and its national (trunk) prefix ('' if none)."""
    import phonenumbers

    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    prefix = (metadata.national_prefix or "") if metadata is not None else ""
    return str(phonenumbers.country_code_for_region(region)), prefix


# A long-lived directory sees an unbounded stream of caller numbers; the memo is dropped when full.
_MEMO_LIMIT = 1 << 17
_NOT_SEEN: Any = object()
"""The memo's answer for a number it has not seen (``None`` is an answer: not a phone number)."""


class PhoneDirectory:
    """Normalised number -> contact id, built once from the contacts, O(1) per lookup.

    Build with :meth:`build`. Normalisations of incoming numbers are memoised, so a number seen again
    costs one dict lookup; a number already in E.164 that a contact lists costs one dict lookup even
    the first time.

    What could not be indexed is kept, not hidden: :attr:`unparseable` (contact numbers that are not
    phone numbers), :attr:`company_listed` (contact numbers that are the company's own) and
    :attr:`shared` (numbers listed by more than one contact).
    """

    def __init__(
        self,
        *,
        settings: PhoneSettings,
        index: dict[str, str | tuple[str, ...]],
        contacts: dict[str, Any],
        unparseable: tuple[tuple[str, str], ...],
        company_listed: tuple[tuple[str, str], ...],
        aliases: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        """The default region and company numbers used."""
        self._index = index
        self._contacts = contacts
        self._aliases = {} if aliases is None else aliases
        self._memo: dict[str, str | None] = {}
        region = settings.default_region
        self._national = None if region is None else _national_forms(region)
        self.unparseable = unparseable
        """``(contact id, number as given)`` for each contact number that did not parse."""
        self.company_listed = company_listed
        """``(contact id, number as given)`` for each contact number that is a company number."""

    @classmethod
    def build(
        cls,
        contacts: Iterable[PhoneHolder],
        settings: PhoneSettings | None = None,
        *,
        default_region: str | None = None,
        company_numbers: Iterable[str] | None = None,
        normalised: Mapping[str, Sequence[str | None]] | None = None,
    ) -> PhoneDirectory:
        """Index ``contacts`` (objects with ``id``, ``owner`` and ``phones``).

        Pass ``settings``, or ``default_region`` and ``company_numbers`` to build them. Contact ids
        must be unique (:class:`~salesflow.errors.ValidationError` otherwise).

        ``normalised`` maps a contact id to its numbers already in E.164 under ``settings``'
        default region (``None`` for one that is not a phone number), in the order of its
        ``phones``: those contacts cost no parsing (the numbers stored beside the contacts, see
        :class:`~salesflow.domain.contacts.ContactNumber`). A contact it leaves out, or lists with
        another count of numbers, is parsed. The directory is the same either way.
        """
        if settings is None:
            settings = PhoneSettings(
                default_region=default_region,
                company_numbers=() if company_numbers is None else company_numbers,
            )
        elif not isinstance(settings, PhoneSettings):
            raise InvalidTypeError("settings", settings, "PhoneSettings")
        elif default_region is not None or company_numbers is not None:
            raise ValidationError(
                "settings", settings, "either settings or default_region/company_numbers, not both"
            )
        region = settings.default_region
        company = settings.company_numbers
        index: dict[str, str | tuple[str, ...]] = {}
        aliases: dict[str, str] = {}
        by_id: dict[str, Any] = {}
        unparseable: list[tuple[str, str]] = []
        company_listed: list[tuple[str, str]] = []
        # The numbers of all contacts, flattened in contact order, then indexed in bulk.
        owners: list[str] = []
        raws: list[str] = []
        e164s: list[str | None] = []
        for contact in contacts:
            try:
                contact_id = contact.id
                phones = contact.phones
            except AttributeError as exc:
                raise InvalidTypeError(
                    "contacts", contact, "objects with id, owner and phones (see PhoneHolder)"
                ) from exc
            if not isinstance(contact_id, str) or not contact_id:
                raise ValidationError("contact.id", contact_id, "a non-empty string")
            if contact_id in by_id:
                raise ValidationError("contact.id", contact_id, "unique contact ids")
            by_id[contact_id] = contact
            if isinstance(phones, str):
                phones = (phones,)
            phones = tuple(phones)
            known = None if normalised is None else normalised.get(contact_id)
            if known is None or len(known) != len(phones):
                known = [normalise_number(raw, region) for raw in phones]
            owners.extend(repeat(contact_id, len(phones)))
            raws.extend(phones)
            e164s.extend(known)
        if None in e164s or not company.isdisjoint(e164s):
            indexed = [e164 is not None and e164 not in company for e164 in e164s]
            for contact_id, raw, e164, kept in zip(owners, raws, e164s, indexed, strict=True):
                if e164 is None:
                    unparseable.append((contact_id, raw))
                elif not kept:
                    company_listed.append((contact_id, raw))
            owners = list(compress(owners, indexed))
            raws = list(compress(raws, indexed))
            e164s = list(compress(e164s, indexed))
        numbers: list[str] = e164s  # type: ignore[assignment]  # the Nones were left out above
        # No number listed twice (the usual case): the index and the aliases are built by C
        # loops, with the same result as the loop below.
        index = dict(zip(numbers, owners, strict=True))
        if len(index) == len(numbers):
            texts = [raw.strip() for raw in raws]
            aliases = dict(zip(texts, numbers, strict=True))
            # Bare digits differ from the text only when it has a separator and no "+", letter or
            # extension mark (a "+" would stay, so no digits alias): most texts are skipped unread.
            digit_aliases = {
                digits: e164
                for text, e164 in zip(texts, numbers, strict=True)
                if not text.isdigit() and "+" not in text
                for digits in (_without_separators(text),)
                if digits != text and digits.isascii() and digits.isdigit()
            }
            if aliases.keys().isdisjoint(digit_aliases):
                aliases.update(digit_aliases)
            else:
                # A text of one number is the digits of another: assign in the loop's order
                # (each number as typed, then as digits), so that the later one wins alike.
                aliases = {}
                for text, e164 in zip(texts, numbers, strict=True):
                    aliases[text] = e164
                    digits = _without_separators(text)
                    if digits != text and digits.isascii() and digits.isdigit():
                        aliases[digits] = e164
        else:
            index = {}
            for contact_id, raw, e164 in zip(owners, raws, numbers, strict=True):
                # The number as typed, and as bare digits when that is provably the same
                # number, so that a source logging it either way finds it without parsing.
                text = raw.strip()
                aliases[text] = e164
                digits = _without_separators(text)
                if digits != text and digits.isascii() and digits.isdigit():
                    aliases[digits] = e164
                listed = index.get(e164)
                if listed is None:
                    index[e164] = contact_id
                elif isinstance(listed, str):
                    if listed != contact_id:
                        index[e164] = (listed, contact_id)
                elif contact_id not in listed:
                    index[e164] = (*listed, contact_id)
        return cls(
            settings=settings,
            index=index,
            contacts=by_id,
            unparseable=tuple(unparseable),
            company_listed=tuple(company_listed),
            aliases=aliases,
        )

    # -- numbers ---------------------------------------------------------------------------------

    def normalise(self, raw: str) -> str | None:
        """``raw`` in E.164 under this directory's settings, or ``None`` (memoised)."""
        # Most numbers of an import are seen for the first time: get() with a marker, not a
        # KeyError raised and caught per new number.
        try:
            known = self._aliases.get(raw)
            if known is None:
                known = self._memo.get(raw, _NOT_SEEN)
        except TypeError:
            raise InvalidTypeError("number", raw, "a phone number as a string") from None
        if known is not _NOT_SEEN:
            return known
        e164 = self._national_alias(raw)
        if e164 is None:
            e164 = normalise_number(raw, self.settings.default_region)
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[raw] = e164
        return e164

    def _national_alias(self, raw: str) -> str | None:
        """The indexed number that ``raw`` writes the way a PBX logs a default-region number: its
        national significant number (``13800138000``) or that after the trunk prefix
        (``02188886666``), which parse to exactly that number in the default region.

        Worked out from the index on lookup rather than stored per contact number at build (three
        dict entries per number on every import). When both readings are indexed, the one indexed
        first wins, as a table built in contact order would have it.
        """
        national = self._national
        if national is None or not (isinstance(raw, str) and raw.isascii() and raw.isdigit()):
            return None
        code, prefix = national
        index = self._index
        plus = "+" + code
        # Digits that begin like the country code may be read as carrying it: parse those instead.
        whole = plus + raw if not raw.startswith(code) else None
        if whole is not None and whole not in index:
            whole = None
        after_prefix = plus + raw[len(prefix) :] if prefix and raw.startswith(prefix) else None
        if after_prefix is not None and after_prefix not in index:
            after_prefix = None
        if whole is None or after_prefix is None:
            return whole or after_prefix
        return next(key for key in index if key in (whole, after_prefix))

    def candidates(self, raw: str) -> tuple[str, ...]:
        """Every contact id that lists ``raw`` (in any format), in the order they were indexed."""
        found = self._lookup(raw)
        if found is None:
            return ()
        return (found,) if isinstance(found, str) else found

    def _lookup(self, raw: str) -> str | tuple[str, ...] | None:
        # An index key is canonical E.164, which normalises to itself: a raw string equal to a key
        # needs no parsing. Company numbers are never keys, so this cannot match one.
        try:
            found = self._index.get(raw)
        except TypeError:
            raise InvalidTypeError("number", raw, "a phone number as a string") from None
        if found is not None:
            return found
        e164 = self.normalise(raw)
        return None if e164 is None else self._index.get(e164)

    def resolve(self, raw: str, *, owner: str | None = None) -> str | None:
        """The id of the contact with the number ``raw``, or ``None``.

        When several contacts share the number, the first one owned by ``owner`` wins, else the
        first one indexed.
        """
        found = self._lookup(raw)
        if found is None or isinstance(found, str):
            return found
        if owner is not None:
            for contact_id in found:
                if getattr(self._contacts[contact_id], "owner", None) == owner:
                    return contact_id
        return found[0]

    def classify(self, raw: str, *, owner: str | None = None) -> tuple[str | None, MatchReason]:
        """``(contact id, "matched")``, or ``(None, reason)`` with the reason it matched nothing:
        ``"unparseable_number"``, ``"company_number"`` or ``"unknown_number"``."""
        # resolve(), inlined: this runs once per linked call.
        found = self._lookup(raw)
        if found is not None:
            if isinstance(found, str):
                return found, "matched"
            return self.resolve(raw, owner=owner), "matched"
        e164 = self.normalise(raw)
        if e164 is None:
            return None, "unparseable_number"
        if e164 in self.settings.company_numbers:
            return None, "company_number"
        return None, "unknown_number"

    def is_company_number(self, raw: str) -> bool:
        """Whether ``raw`` is one of the company's own numbers."""
        e164 = self.normalise(raw)
        return e164 is not None and e164 in self.settings.company_numbers

    # -- contacts --------------------------------------------------------------------------------

    def __contains__(self, contact_id: object) -> bool:
        return contact_id in self._contacts

    def __len__(self) -> int:
        return len(self._contacts)

    def __iter__(self) -> Iterator[str]:
        return iter(self._contacts)

    def contact(self, contact_id: str) -> Any:
        """The contact object indexed under ``contact_id``
        (:class:`~salesflow.errors.NotFoundError` if none)."""
        try:
            return self._contacts[contact_id]
        except (KeyError, TypeError):
            raise NotFoundError("contact", contact_id) from None

    def owner_of(self, contact_id: str) -> str | None:
        """The owner of a known contact (``None`` when it has none)."""
        owner = getattr(self.contact(contact_id), "owner", None)
        return owner if isinstance(owner, str) and owner else None

    @property
    def shared(self) -> Mapping[str, tuple[str, ...]]:
        """Numbers (E.164) listed by more than one contact, with those contacts."""
        return {e164: ids for e164, ids in self._index.items() if isinstance(ids, tuple)}

    @property
    def number_count(self) -> int:
        """How many distinct numbers are indexed."""
        return len(self._index)

    def __repr__(self) -> str:
        return (
            f"<PhoneDirectory {len(self._contacts)} contacts, {len(self._index)} numbers, "
            f"region {self.settings.default_region}>"
        )
