"""receivables() has no columnar path (issue 17): a DataFrame of contracts or billings is refused
with an error that says what to pass, and the way it names (the frame's rows with ``fields=``
giving Money and dates) lists the same receivables as the contract objects, to the cent."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesflow.analytics.receivables import Receivables, receivables
from salesflow.domain.billing import ContractBilling
from salesflow.domain.catalog import Catalog, Product
from salesflow.domain.contracts import Contract
from salesflow.domain.money import Money
from salesflow.domain.quotes import Quote
from salesflow.errors import InvalidTypeError

pd = pytest.importorskip("pandas")

AS_OF = date(2026, 6, 30)
CATALOG = Catalog(
    products=[Product(sku="DAY", name="Project day", list_price=Money.of("100.00", "CNY"))]
)


def _contract(cid: str, owner: str, team: str | None, signed: date | None, days: int) -> Contract:
    quote = Quote(id=f"Q-{cid}", owner=owner, currency="CNY", quoted_on=date(2025, 11, 1))
    quote = quote.add_line(CATALOG, "DAY", days).submit_for_approval().approve()
    contract = Contract.from_quote(quote, id=cid, owner=owner, team=team)
    return contract if signed is None else contract.submit().make_formal(signed)


def _record(contract: Contract) -> dict[str, Any]:
    return {
        "id": contract.id,
        "owner": contract.owner,
        "team": contract.team,
        "state": contract.state,
        "amount": contract.amount.amount,
        "currency": contract.amount.currency,
        "signed_on": contract.signed_on,
    }


def _pandas(contracts: list[Contract]) -> Any:
    frame = pd.DataFrame([_record(c) for c in contracts], columns=list(_record(contracts[0])))
    # What read_csv(dtype={"amount": str}, parse_dates=["signed_on"]) gives: amounts as written,
    # a datetime column (NaT while unsigned).
    frame["amount"] = frame["amount"].astype(str)
    frame["signed_on"] = pd.to_datetime(frame["signed_on"])
    return frame


def _pandas_rows(frame: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    # Missing values (NaN, NaT) as None, then each row as a dict.
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    fields = {
        "amount": lambda row: Money.of(row["amount"], row["currency"]),
        "signed_on": lambda row: row["signed_on"] and row["signed_on"].date(),
    }
    return rows, fields


def _polars(contracts: list[Contract]) -> Any:
    pl = pytest.importorskip("polars")
    return pl.DataFrame(
        [_record(c) for c in contracts],
        schema={
            "id": pl.String,
            "owner": pl.String,
            "team": pl.String,
            "state": pl.String,
            "amount": pl.Decimal(18, 2),
            "currency": pl.String,
            "signed_on": pl.Date,
        },
    )


def _polars_rows(frame: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    fields = {"amount": lambda row: Money.of(row["amount"], row["currency"])}
    return frame.to_dicts(), fields


FRAMES: dict[str, tuple[Callable[[list[Contract]], Any], Callable[[Any], Any]]] = {
    "pandas": (_pandas, _pandas_rows),
    "polars": (_polars, _polars_rows),
}


def _same(got: Receivables, want: Receivables) -> None:
    assert got.to_records() == want.to_records()
    assert got.totals.to_records() == want.totals.to_records()
    assert got.totals.team_records() == want.totals.team_records()
    assert got.totals.total_records() == want.totals.total_records()
    assert got.currency == want.currency


def _example() -> tuple[list[Contract], list[ContractBilling]]:
    c1 = _contract("C-1", "ann", "east", date(2026, 1, 10), 10)
    b1 = ContractBilling.open(c1)
    b1 = b1.issue_invoice("I1", amount="500.00", issued_on="2026-01-15", due_on="2026-02-14")
    b1 = b1.record_payment("P1", "I1", "200.00", received_on="2026-02-20")
    c2 = _contract("C-2", "bob", None, date(2026, 3, 1), 3)
    c3 = _contract("C-3", "bob", "west", None, 4)
    return [c1, c2, c3], [b1]


@pytest.mark.parametrize("library", sorted(FRAMES))
def test_a_frame_of_contracts_or_billings_is_refused_saying_what_to_pass(library: str) -> None:
    contracts, billings = _example()
    frame = FRAMES[library][0](contracts)
    with pytest.raises(InvalidTypeError) as caught:
        receivables(frame, billings, as_of=AS_OF)
    assert caught.value.field == "contracts"
    assert caught.value.value is frame
    message = str(caught.value)
    assert f"a {library} DataFrame" in message
    assert "ContractBilling" in message and "fields=" in message
    assert "docs/guide/dataframes.md" in message
    with pytest.raises(InvalidTypeError) as caught:
        receivables(contracts, frame, as_of=AS_OF)
    assert caught.value.field == "billings"


@pytest.mark.parametrize("library", ["pyarrow", "duckdb"])
def test_every_frame_library_is_refused(library: str) -> None:
    pa = pytest.importorskip("pyarrow")
    table = pa.table({"id": ["C-1"], "owner": ["ann"]})
    frame = table
    if library == "duckdb":
        duckdb = pytest.importorskip("duckdb")
        frame = duckdb.from_arrow(table)
    with pytest.raises(InvalidTypeError, match=f"a {library} "):
        receivables(frame, as_of=AS_OF)


@pytest.mark.parametrize("library", sorted(FRAMES))
def test_the_rows_of_a_frame_list_what_the_objects_list(library: str) -> None:
    contracts, billings = _example()
    to_frame, to_rows = FRAMES[library]
    rows, fields = to_rows(to_frame(contracts))
    got = receivables(rows, billings, as_of=AS_OF, fields=fields)
    _same(got, receivables(contracts, billings, as_of=AS_OF))
    assert [r.contract_id for r in got.rows] == ["C-1", "C-2"]
    assert got.rows[0].unpaid == Money.of("300.00", "CNY")


@st.composite
def portfolios(draw: st.DrawFn) -> tuple[list[Contract], list[ContractBilling]]:
    contracts: list[Contract] = []
    billings: list[ContractBilling] = []
    for i in range(draw(st.integers(1, 6))):
        days = draw(st.integers(1, 30))
        signed = draw(st.none() | st.dates(date(2025, 1, 1), date(2026, 6, 1)))
        owner = draw(st.sampled_from(["ann", "bob", "cid"]))
        team = draw(st.sampled_from(["east", "west", None]))
        contract = _contract(f"C-{i}", owner, team, signed, days)
        contracts.append(contract)
        if signed is None or not draw(st.booleans()):
            continue
        cents = draw(st.integers(1, days * 10_000))
        issued = signed + timedelta(days=draw(st.integers(0, 200)))
        due = issued + timedelta(days=draw(st.integers(0, 60)))
        billing = ContractBilling.open(contract).issue_invoice(
            "I1",
            amount=str(Decimal(cents).scaleb(-2)),
            issued_on=issued.isoformat(),
            due_on=due.isoformat(),
        )
        paid = draw(st.integers(0, cents))
        if paid:
            billing = billing.record_payment(
                "P1",
                "I1",
                str(Decimal(paid).scaleb(-2)),
                received_on=(issued + timedelta(days=draw(st.integers(0, 90)))).isoformat(),
            )
        billings.append(billing)
    return contracts, billings


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    portfolios(),
    st.sampled_from(sorted(FRAMES)),
    st.dates(date(2025, 6, 1), date(2027, 1, 1)),
    st.booleans(),
    st.booleans(),
)
def test_on_generated_contracts_frames_are_refused_and_their_rows_agree(
    portfolio: tuple[list[Contract], list[ContractBilling]],
    library: str,
    as_of: date,
    not_invoiced: bool,
    not_paid: bool,
) -> None:
    contracts, billings = portfolio
    to_frame, to_rows = FRAMES[library]
    frame = to_frame(contracts)
    kwargs: dict[str, Any] = {
        "as_of": as_of,
        "not_invoiced": not_invoiced,
        "not_paid": not_paid,
        "currency": "CNY",
    }
    with pytest.raises(InvalidTypeError, match="ContractBilling objects"):
        receivables(frame, billings, **kwargs)
    rows, fields = to_rows(frame)
    _same(
        receivables(rows, billings, fields=fields, **kwargs),
        receivables(contracts, billings, **kwargs),
    )


def test_a_missing_team_read_as_nan_is_refused_naming_the_contract() -> None:
    contracts, billings = _example()
    frame = _pandas(contracts)
    rows = frame.to_dict("records")  # without the None step: NaN for the missing team
    fields = _pandas_rows(frame)[1]
    with pytest.raises(InvalidTypeError, match="contract 'C-2': invalid team: nan"):
        receivables(rows, billings, as_of=AS_OF, fields=fields)
