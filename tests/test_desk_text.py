"""One meaning of text on every backend: memory, SQLite, PostgreSQL and MariaDB store exactly what
the domain accepts (the longest id and name, any character but NUL and lone surrogates) and refuse
the rest alike, with the same ``ValidationError`` and nothing stored."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from salesflow import Actor, Contact, Money, Opportunity, read_opportunities
from salesflow.domain.checks import MAX_ID_LENGTH, MAX_NAME_LENGTH, MAX_TEXT_LENGTH
from salesflow.domain.opportunities import NOTE_MAX
from salesflow.errors import ValidationError
from salesflow.testing.storage import ManualClock

OpenDesk = Callable[..., Any]

ADMIN = Actor("root", roles={"admin"})
HEADER = "id,owner,amount,currency,stage,name,account\n"
GOOD = "o-1,ann,100.00,CNY,quotation,Good deal,ACME\n"


def longest(limit: int, text: str = "甲𝄞") -> str:
    """``limit`` characters, a Han character (three UTF-8 bytes) and a four-byte one in turn."""
    return (text * limit)[:limit]


BAD_ROWS = [
    pytest.param("o-2,ann,1,CNY,quotation," + "n" * 300 + ",ACME\n", "name", id="300-char name"),
    pytest.param("o" * 200 + ",ann,1,CNY,quotation,Deal,ACME\n", "id", id="200-char id"),
    pytest.param("o-2,ann,1,CNY,quotation,De\x00al,ACME\n", "name", id="NUL"),
    pytest.param("o-2,ann,1,CNY,quotation,Deal,AC\udc80ME\n", "account", id="lone surrogate"),
    pytest.param("o-2,ann\x00,1,CNY,quotation,Deal,ACME\n", "owner", id="NUL in an id"),
]


@pytest.mark.parametrize(("row", "field"), BAD_ROWS)
def test_text_the_backends_would_store_differently_is_refused_alike(
    open_desk: OpenDesk, row: str, field: str
) -> None:
    desk = open_desk()
    text = HEADER + GOOD + row
    with pytest.raises(ValidationError) as expected:
        read_opportunities(io.StringIO(text))  # the pure reader: what every backend must say
    with pytest.raises(ValidationError) as caught:
        desk.import_opportunities(ADMIN, io.StringIO(text))
    assert type(caught.value) is type(expected.value)
    assert str(caught.value) == str(expected.value)
    assert caught.value.field == field
    assert caught.value.where is not None
    assert caught.value.where.startswith("line 3")
    # The import is one unit of work: the good row before the bad one is not stored either.
    assert desk.opportunities() == []
    assert desk.events() == []


@pytest.mark.parametrize("note", ["a\x00b", "a\ud800b", "n" * (NOTE_MAX + 1)])
def test_a_note_no_backend_can_store_alike_changes_nothing(open_desk: OpenDesk, note: str) -> None:
    desk = open_desk()
    desk.import_opportunities(ADMIN, io.StringIO(HEADER + GOOD))
    before = (desk.opportunities(), desk.events())
    with pytest.raises(ValidationError) as caught:
        desk.move_opportunity(ADMIN, "o-1", "lost", reason="price", note=note)
    assert caught.value.field == "note"
    assert (desk.opportunities(), desk.events()) == before


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": "c" * (MAX_ID_LENGTH + 1)}, "id"),
        ({"name": "n" * (MAX_NAME_LENGTH + 1)}, "name"),
        ({"owner": "ann\x00"}, "owner"),
        ({"account": "\udfffACME"}, "account"),
        ({"phones": ["+86 138\x00"]}, "phones[0]"),
    ],
)
def test_a_contact_no_backend_can_store_alike_never_reaches_the_desk(
    open_desk: OpenDesk, changes: dict[str, Any], field: str
) -> None:
    desk = open_desk()
    with pytest.raises(ValidationError) as caught:
        desk.add_contact(ADMIN, Contact(**{"id": "c-1", **changes}))
    assert caught.value.field == field
    assert desk.contacts() == []


def test_the_longest_ids_names_and_notes_are_stored_and_read_back_equal(
    open_desk: OpenDesk,
) -> None:
    clock = ManualClock(datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
    desk = open_desk(clock=clock)
    key, name = longest(MAX_ID_LENGTH), longest(MAX_NAME_LENGTH, "名𝄞")
    opportunity = Opportunity(
        id=key,
        owner=longest(MAX_ID_LENGTH, "o𝄞"),
        team=longest(MAX_ID_LENGTH, "t𝄞"),
        industry=longest(MAX_ID_LENGTH, "i𝄞"),
        region=longest(MAX_ID_LENGTH, "r𝄞"),
        name=name,
        account=longest(MAX_NAME_LENGTH, "a𝄞"),
        amount=Money.of("100.00", "CNY"),
        stage="quotation",
    )
    desk.add_opportunity(ADMIN, opportunity)
    note = longest(NOTE_MAX, "注𝄞")
    moved = desk.move_opportunity(ADMIN, key, "lost", reason="price", note=note).value
    contact = Contact(
        id=longest(MAX_ID_LENGTH, "c𝄞"),
        name=name,
        account=longest(MAX_NAME_LENGTH, "a𝄞"),
        owner=opportunity.owner,
        industry=opportunity.industry,
        region=opportunity.region,
        phones=[longest(MAX_NAME_LENGTH, "1𝄞")],
    )
    desk.add_contact(ADMIN, contact)

    reader = open_desk()  # a second desk on the same storage reads what was written
    stored = reader.opportunity(key)
    assert stored == moved
    assert (stored.id, stored.name, stored.history[-1].note) == (key, name, note)
    assert reader.opportunities(owner=opportunity.owner) == [moved]
    assert [c.to_record() for c in reader.contacts()] == [{**contact.to_record(), "version": 1}]
    assert reader.events(subject_id=key)[-1].data["note"] == note


def test_free_text_at_its_limit_travels_in_an_event_on_every_backend(open_desk: OpenDesk) -> None:
    # An event carries free text (a comment, a reason): at its limit, four bytes a character,
    # it still fits MariaDB's TEXT column.
    desk = open_desk()
    text = longest(MAX_TEXT_LENGTH, "𝄞")
    desk.import_opportunities(ADMIN, io.StringIO(HEADER + GOOD))
    event = desk.event("comment_made", "opportunity", "o-1", ADMIN, comment=text)
    with desk.storage.transaction() as uow:
        uow.events.append(event)
    assert desk.events(name="comment_made")[0].data == {"comment": text}
