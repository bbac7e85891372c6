"""Two processes deciding the same approval step at once: one wins, the other gets ConcurrencyError.

Run on PostgreSQL (and SQLite): the decisions race through separate connections. Whichever way the
race goes (the loser reads the winner's version, or both read the same one and the loser's save finds
the row's revision moved), nothing is lost and the loser is told.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from datetime import date
from pathlib import Path

import salesflow
from salesflow import Actor, Money
from salesflow.adapters.sql.storage import SqlStorage
from salesflow.domain.catalog import Catalog, Product
from salesflow.domain.quotes import Quote, QuoteState

Race = Callable[[str, list[list[str]], str], list[str]]

DECIDER = textwrap.dedent(
    """
    import sys
    import salesflow
    from salesflow.errors import ConcurrencyError

    desk = salesflow.open(sys.argv[1], load_entrypoints=False)
    actor = salesflow.Actor(sys.argv[2], roles={"sales_manager"})
    version = desk.approval("quote:Q-1").version
    print(f"read {version}", flush=True)
    sys.stdin.readline()  # both hold the same version now
    try:
        desk.approve(actor, "quote:Q-1", role="sales_manager", version=version)
        print("approved", flush=True)
    except ConcurrencyError as error:
        print("conflict", flush=True)
    """
)


def _race(url: str, race: Race) -> None:
    desk = salesflow.open(url, load_entrypoints=False)
    catalog = Catalog(products=[Product(sku="P", name="P", list_price=Money.of("100", "CNY"))])
    desk.update_catalog(Actor("root", roles={"admin"}), catalog)
    ann = Actor("ann", roles={"sales_rep"})
    quote = Quote(id="Q-1", owner="ann", currency="CNY", quoted_on=date(2026, 11, 26)).add_line(
        catalog, "P", 3, discount=15
    )
    desk.create_quote(ann, quote)
    desk.submit_quote(ann, "Q-1")
    outcomes = race(DECIDER, [[url, who] for who in ("mia", "max")], ready="read 1")
    assert sorted(outcomes) == ["approved", "conflict"]
    winner = ("mia", "max")[outcomes.index("approved")]
    request = desk.approval("quote:Q-1")
    assert [entry.actor for entry in request.audit] == ["ann", winner]
    assert desk.quote("Q-1").state is QuoteState.APPROVED
    storage = desk.storage
    assert isinstance(storage, SqlStorage)
    storage.destroy()
    desk.close()


def test_on_postgres(postgres_url: str, race: Race) -> None:
    _race(postgres_url, race)


def test_on_sqlite(tmp_path: Path, race: Race) -> None:
    _race(f"sqlite:///{tmp_path / 'race.db'}", race)
