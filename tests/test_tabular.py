"""CSV in and out: mappings, line numbers in errors, nothing half-parsed."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest

from salesflow.domain.money import Money
from salesflow.domain.stages import StagePlan
from salesflow.errors import InvalidTypeError, StageError, ValidationError
from salesflow.samples import generate_pipeline
from salesflow.tabular import iter_opportunities, read_opportunities, write_opportunities

CSV = """deal,rep,value,stage,close
D1,ann,1000.50,Quotation,2026-12-01
D2,bob,20,won,
D3,ann,7,needs_analysis,12/24/2026
"""


def test_mapping_renames_columns_and_functions_compute_fields() -> None:
    opps = read_opportunities(
        io.StringIO(CSV),
        plan=StagePlan.default(),
        currency="CNY",
        mapping={
            "id": "deal",
            "owner": "rep",
            "amount": "value",
            "expected_close": "close",
            "team": lambda row: "east" if row["rep"] == "ann" else "west",
        },
    )
    assert [o.id for o in opps] == ["D1", "D2", "D3"]
    assert opps[0].amount == Money.of("1000.50", "CNY")
    assert opps[0].stage == "quotation"
    assert opps[1].expected_close is None
    assert opps[2].expected_close == date(2026, 12, 24)
    assert [o.team for o in opps] == ["east", "west", "east"]


def test_a_bad_row_names_its_line_and_nothing_is_returned() -> None:
    text = CSV.replace("D2,bob,20,won,", "D2,bob,2O,won,")
    with pytest.raises(ValidationError) as info:
        read_opportunities(
            io.StringIO(text),
            currency="CNY",
            mapping={"id": "deal", "owner": "rep", "amount": "value"},
        )
    assert info.value.field == "amount"
    assert info.value.where == "line 3"
    assert str(info.value).startswith("line 3: invalid amount: '2O'")


def test_line_numbers_count_physical_lines_of_quoted_cells() -> None:
    text = 'id,owner,amount,stage,name\nA,ann,1,won,"two\nlines"\nB,bob,x,won,plain\n'
    with pytest.raises(ValidationError, match=r"^line 4: "):
        read_opportunities(io.StringIO(text), currency="CNY")


def test_streaming_yields_rows_before_the_bad_one() -> None:
    text = "id,owner,amount,stage\nA,ann,1,won\nB,bob,1,signed\n"
    stream = iter_opportunities(io.StringIO(text), currency="CNY", plan=StagePlan.default())
    assert next(stream).id == "A"
    with pytest.raises(StageError, match=r"^line 3: "):
        next(stream)


def test_duplicate_ids_are_refused() -> None:
    text = "id,owner,amount,stage\nA,ann,1,won\nA,bob,1,won\n"
    with pytest.raises(ValidationError, match=r"^line 3: .*earlier row"):
        read_opportunities(io.StringIO(text), currency="CNY")


def test_mapping_errors() -> None:
    with pytest.raises(ValidationError, match="column of the file"):
        read_opportunities(io.StringIO(CSV), mapping={"id": "missing"})
    with pytest.raises(ValidationError, match="keys among the fields"):
        read_opportunities(io.StringIO(CSV), mapping={"deal_id": "deal"})
    with pytest.raises(InvalidTypeError):
        read_opportunities(io.StringIO(CSV), mapping={"id": 3})  # type: ignore[dict-item]
    with pytest.raises(ValidationError, match="mapping accepts"):
        read_opportunities(
            io.StringIO(CSV),
            currency="CNY",
            mapping={"id": "deal", "owner": "rep", "amount": "value", "team": lambda row: row["x"]},
        )


def test_ragged_rows_and_empty_files() -> None:
    with pytest.raises(ValidationError, match="at most 4 cells"):
        read_opportunities(
            io.StringIO("id,owner,amount,stage\nA,ann,1,won,extra\n"), currency="CNY"
        )
    with pytest.raises(ValidationError, match="header"):
        read_opportunities(io.StringIO(""))
    with pytest.raises(InvalidTypeError):
        read_opportunities(42)  # type: ignore[arg-type]


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    opps = generate_pipeline(50, with_history=False)
    path = tmp_path / "pipeline.csv"
    assert write_opportunities(opps, path) == 50
    assert read_opportunities(path, plan=StagePlan.default()) == opps


def test_a_utf8_bom_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_text("id,owner,amount,stage,currency\nA,李伟,1,won,CNY\n", encoding="utf-8-sig")
    (opportunity,) = read_opportunities(path)
    assert opportunity.owner == "李伟"


def test_lost_deals_may_say_why_in_a_mapped_lost_reason_column() -> None:
    text = (
        "deal,rep,value,stage,close,Loss Reason\n"
        "D1,ann,1000,Lost,2026-10-01,competitor\n"
        "D2,bob,20,lost,2026-09-15,\n"
        "D3,ann,7,quotation,2026-12-24,\n"
    )
    mapping = {
        "id": "deal",
        "owner": "rep",
        "amount": "value",
        "expected_close": "close",
        "lost_reason": "Loss Reason",
    }
    plan = StagePlan.default()
    d1, d2, d3 = read_opportunities(io.StringIO(text), plan=plan, currency="CNY", mapping=mapping)
    assert (d1.stage, d1.history[-1].reason, d1.history[-1].from_stage) == (
        "lost",
        "competitor",
        None,
    )
    assert d2.history == () and d3.history == ()  # a lost deal without a reason: none recorded
    bad = text.replace("competitor", "too_dear")
    with pytest.raises(ValidationError) as info:
        read_opportunities(io.StringIO(bad), plan=plan, currency="CNY", mapping=mapping)
    assert (info.value.field, info.value.where) == ("reason", "line 2")
    misplaced = text.replace("2026-12-24,", "2026-12-24,price")
    with pytest.raises(ValidationError, match="not a lost stage"):
        read_opportunities(io.StringIO(misplaced), plan=plan, currency="CNY", mapping=mapping)
    # A column named lost_reason is read without a mapping; writing leaves reasons out.
    plain = "id,owner,amount,currency,stage,expected_close,lost_reason\nA,ann,1,CNY,lost,2026-01-05,timing\n"
    (a,) = read_opportunities(io.StringIO(plain))
    assert a.history[-1].reason == "timing"
    out = io.StringIO()
    write_opportunities([a], out)
    assert "lost_reason" not in out.getvalue()


def test_a_field_beyond_the_csv_field_limit_is_refused_naming_its_line() -> None:
    import csv

    from salesflow.tabular import CSV_FIELD_LIMIT

    process_limit = csv.field_size_limit()
    head = "id,owner,amount,currency,stage,notes\n"
    ok = "D1,ann,10,CNY,quotation,short\n"
    # 200 KiB: beyond Python's default (128 KiB) yet read, since salesflow sets its own limit
    wide = "D2,ann,10,CNY,quotation," + "w" * 200_000 + "\n"
    assert [o.id for o in read_opportunities(io.StringIO(head + ok + wide))] == ["D1", "D2"]
    too_wide = "D3,ann,10,CNY,quotation," + "w" * (CSV_FIELD_LIMIT + 1) + "\n"
    with pytest.raises(ValidationError, match=r"^line 4: invalid field") as caught:
        read_opportunities(io.StringIO(head + ok + wide + too_wide))
    assert (caught.value.field, caught.value.where) == ("field", "line 4")
    with pytest.raises(ValidationError, match=r"^line 1: "):
        read_opportunities(io.StringIO("id," + "h" * (CSV_FIELD_LIMIT + 1) + "\n"))
    # the process-wide limit is left as it was
    assert csv.field_size_limit() == process_limit


@pytest.mark.parametrize(
    ("cell", "field"),
    [("De\x00al", "name"), ("De\udc00al", "name"), ("n" * 256, "name"), ("o" * 129, "id")],
)
def test_text_a_backend_cannot_store_is_refused_naming_its_line(cell: str, field: str) -> None:
    head = "id,owner,amount,currency,stage,name\n"
    row = (
        f"{cell},ann,1,CNY,quotation,ok\n" if field == "id" else f"D2,ann,1,CNY,quotation,{cell}\n"
    )
    with pytest.raises(ValidationError) as caught:
        read_opportunities(io.StringIO(head + "D1,ann,1,CNY,quotation,ok\n" + row))
    assert caught.value.field == field
    assert caught.value.where is not None
    assert caught.value.where.startswith("line 3")
