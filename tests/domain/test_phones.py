"""Phone numbers: E.164 normalisation, company numbers, unparseable numbers, the directory."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesflow.domain.contacts import Contact
from salesflow.domain.phones import PhoneDirectory, PhoneSettings, normalise_number
from salesflow.errors import InvalidTypeError, NotFoundError, ValidationError

CN_MOBILE = "+8613800138000"
US_NUMBER = "+14155552671"


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("+86 138 0013 8000", None),
        ("+86 138 0013 8000", "US"),
        ("0086 138 0013 8000", "CN"),
        ("138-0013-8000", "CN"),
        ("13800138000", "CN"),
        ("(+86) 138.0013.8000", "CN"),
        ("011 86 138 0013 8000", "US"),
        ("tel:+86-138-0013-8000", None),
    ],
)
def test_chinese_mobile_formats_normalise_to_one_e164(raw: str, region: str | None) -> None:
    assert normalise_number(raw, region) == CN_MOBILE


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("+1 (415) 555-2671", None),
        ("+1 (415) 555-2671", "CN"),
        ("415-555-2671", "US"),
        ("(415) 555 2671", "US"),
        ("1-415-555-2671", "US"),
        ("00 1 415 555 2671", "CN"),
        ("+1 415 555 2671 ext. 3", None),
    ],
)
def test_us_formats_normalise_to_one_e164(raw: str, region: str | None) -> None:
    assert normalise_number(raw, region) == US_NUMBER


def test_a_national_number_depends_on_the_default_region() -> None:
    assert normalise_number("138-0013-8000", "CN") == CN_MOBILE
    assert normalise_number("138-0013-8000", None) is None
    assert normalise_number("415-555-2671", "US") == US_NUMBER
    assert normalise_number("415-555-2671", "CN") != US_NUMBER


def test_possible_but_unallocated_numbers_still_normalise() -> None:
    # Twilio's sample numbers use a NANP exchange that is not in service: still a phone number.
    assert normalise_number("+13051416799") == "+13051416799"


@pytest.mark.parametrize(
    "raw", ["", "   ", "1001", "anonymous", "client:alice", "sip:alice@example.com", "+1", "abc"]
)
def test_unparseable_numbers_give_none(raw: str) -> None:
    assert normalise_number(raw, "CN") is None


def test_a_number_must_be_a_string() -> None:
    with pytest.raises(InvalidTypeError, match="number"):
        normalise_number(13800138000, "CN")  # type: ignore[arg-type]


def test_settings_validate_the_region_and_normalise_company_numbers() -> None:
    settings = PhoneSettings(
        default_region="cn", company_numbers={"010-6000 0000", "+1 415 555 0000"}
    )
    assert settings.default_region == "CN"
    assert settings.company_numbers == frozenset({"+861060000000", "+14155550000"})
    assert settings.is_company_number("+86 10 6000 0000")
    assert not settings.is_company_number(CN_MOBILE)
    assert not settings.is_company_number("1001")
    with pytest.raises(ValidationError, match="default_region"):
        PhoneSettings(default_region="XX")
    with pytest.raises(InvalidTypeError, match="default_region"):
        PhoneSettings(default_region=86)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"company_numbers\[0\]"):
        PhoneSettings(default_region="CN", company_numbers=("ext 12",))


def _directory(**options: object) -> PhoneDirectory:
    contacts = [
        Contact(id="c-li", owner="ann", phones=("+86 138 0013 8000", "010-8888 7777")),
        Contact(id="c-sam", owner="bob", phones=("+1 (415) 555-2671",)),
        Contact(id="c-wu", owner="bob", phones=("13900139000", "ext. 12")),
        Contact(id="c-zhao", owner="ann", phones=("010-6000 0000",)),  # lists the switchboard
        Contact(id="c-nobody"),
    ]
    return PhoneDirectory.build(
        contacts, default_region="CN", company_numbers=["010 6000 0000"], **options
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "contact"),
    [
        ("+86 138 0013 8000", "c-li"),
        ("0086 138 0013 8000", "c-li"),
        ("138-0013-8000", "c-li"),
        (CN_MOBILE, "c-li"),
        ("+86 10 8888 7777", "c-li"),
        ("00 1 415 555 2671", "c-sam"),
        ("+13900139000", None),  # not the same number: +1 is not +86
        ("+86 139 0013 9000", "c-wu"),
    ],
)
def test_directory_resolves_any_format_of_any_number(raw: str, contact: str | None) -> None:
    assert _directory().resolve(raw) == contact


def test_company_numbers_never_match_a_contact() -> None:
    directory = _directory()
    assert directory.resolve("010-6000 0000") is None
    assert directory.resolve("+861060000000") is None
    assert directory.classify("010-6000 0000") == (None, "company_number")
    assert directory.company_listed == (("c-zhao", "010-6000 0000"),)


def test_unparseable_numbers_are_kept_and_match_nothing() -> None:
    directory = _directory()
    assert directory.unparseable == (("c-wu", "ext. 12"),)
    assert directory.resolve("ext. 12") is None
    assert directory.classify("ext. 12") == (None, "unparseable_number")
    assert directory.classify("anonymous") == (None, "unparseable_number")
    assert directory.classify("+86 139 9999 9999") == (None, "unknown_number")
    assert directory.classify("138 0013 8000") == ("c-li", "matched")


def test_shared_numbers_prefer_the_owner_then_the_first_listed() -> None:
    contacts = [
        Contact(id="a", owner="ann", phones=("+86 21 5555 0000",)),
        Contact(id="b", owner="bob", phones=("021-5555-0000",)),
    ]
    directory = PhoneDirectory.build(contacts, default_region="CN")
    assert directory.candidates("+862155550000") == ("a", "b")
    assert directory.shared == {"+862155550000": ("a", "b")}
    assert directory.resolve("021 5555 0000") == "a"
    assert directory.resolve("021 5555 0000", owner="bob") == "b"
    assert directory.resolve("021 5555 0000", owner="cai") == "a"


def test_directory_knows_its_contacts_and_owners() -> None:
    directory = _directory()
    assert len(directory) == 5
    assert "c-li" in directory
    assert "c-unknown" not in directory
    assert directory.owner_of("c-li") == "ann"
    assert directory.owner_of("c-nobody") is None
    assert directory.number_count == 4
    with pytest.raises(NotFoundError):
        directory.contact("c-unknown")


def test_directory_refuses_duplicate_ids_and_non_contacts() -> None:
    with pytest.raises(ValidationError, match="unique"):
        PhoneDirectory.build([Contact(id="a"), Contact(id="a")])
    with pytest.raises(InvalidTypeError):
        PhoneDirectory.build(["a"])  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="settings"):
        PhoneDirectory.build([], PhoneSettings(), default_region="CN")
    with pytest.raises(InvalidTypeError):
        _directory().resolve(None)  # type: ignore[arg-type]


def test_directory_accepts_protocol_alike_contacts() -> None:
    class Row:
        def __init__(self, id: str, owner: str | None, phones: list[str]) -> None:
            self.id, self.owner, self.phones = id, owner, phones

    directory = PhoneDirectory.build([Row("r1", "ann", ["138 0013 8000"])], default_region="CN")
    assert directory.resolve(CN_MOBILE) == "r1"


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), st.sampled_from(["", " ", "-", "."]))
def test_separators_and_prefixes_never_change_the_match(digits: str, sep: str) -> None:
    directory = PhoneDirectory.build([Contact(id="c", phones=(digits,))], default_region="CN")
    spaced = sep.join((digits[:3], digits[3:7], digits[7:]))
    for raw in (spaced, f"+86{sep}{spaced}", f"0086{sep}{spaced}", f"+86{digits}"):
        assert directory.resolve(raw) == "c", raw


def test_importing_salesflow_does_not_import_phonenumbers() -> None:
    code = "import sys, salesflow.domain.phones, salesflow.domain.calls; print('phonenumbers' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


@given(
    st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True),
    st.sampled_from(
        ["{a}-{b}-{c}", "({a}) {b} {c}", "0086 {a}{b}{c}", "+86 {a} {b} {c}", "{a}.{b}.{c}"]
    ),
    st.sampled_from(["", "-", " ", "/"]),
)
def test_the_directory_normalises_exactly_like_libphonenumber(
    digits: str, shape: str, sep: str
) -> None:
    typed = shape.format(a=digits[:3], b=digits[3:7], c=digits[7:])
    directory = PhoneDirectory.build([Contact(id="c", phones=(typed,))], default_region="CN")
    bare = "".join(ch for ch in typed if ch.isdigit())
    respaced = sep.join((digits[:3], digits[3:7], digits[7:]))
    for raw in (typed, bare, respaced, f"+{bare}", f"00{bare}"):
        assert directory.normalise(raw) == normalise_number(raw, "CN"), raw


@pytest.mark.parametrize(
    ("region", "typed", "logged"),
    [
        ("CN", "+86 138 0013 8000", "13800138000"),
        ("CN", "+86 138 0013 8000", "013800138000"),
        ("CN", "021-8888-6666", "2188886666"),
        ("CN", "021-8888-6666", "02188886666"),
        ("US", "+1 (415) 555-2671", "4155552671"),
        ("US", "+1 (415) 555-2671", "14155552671"),
    ],
)
def test_national_forms_a_pbx_logs_resolve_like_a_parse_would(
    region: str, typed: str, logged: str
) -> None:
    contact = Contact(id="c1", name="X", owner="ann", phones=(typed,))
    directory = PhoneDirectory.build([contact], default_region=region)
    assert directory.resolve(logged) == "c1"
    # The shortcut gives exactly what libphonenumber gives for the logged digits.
    assert directory.normalise(logged) == normalise_number(logged, region)
