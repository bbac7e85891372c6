"""Two processes deciding the same approval step at once: one wins, the other gets ConcurrencyError.

Run on PostgreSQL (and SQLite): the decisions race through separate connections. Whichever way the
race goes (the loser reads the winner's version, or both read the same one and the loser's save finds
the row's revision moved), nothing is lost and the loser is told.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import salesflow
from salesflow import Actor, Money
from salesflow.adapters.sql.storage import SqlStorage
from salesflow.domain.catalog import Catalog, Product
from salesflow.domain.quotes import Quote, QuoteState

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


def _race(url: str) -> None:
    desk = salesflow.open(url, load_entrypoints=False)
    catalog = Catalog(products=[Product(sku="P", name="P", list_price=Money.of("100", "CNY"))])
    desk.update_catalog(Actor("root", roles={"admin"}), catalog)
    ann = Actor("ann", roles={"sales_rep"})
    quote = Quote(id="Q-1", owner="ann", currency="CNY", quoted_on=date(2026, 11, 26)).add_line(
        catalog, "P", 3, discount=15
    )
    desk.create_quote(ann, quote)
    desk.submit_quote(ann, "Q-1")
    children = [
        subprocess.Popen(
            [sys.executable, "-c", DECIDER, url, who],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for who in ("mia", "max")
    ]
    outcomes = []
    with children[0], children[1]:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "read 1"
        for child in children:
            out, err = child.communicate("go\n", timeout=120)
            assert child.returncode == 0, err
            outcomes.append(out.strip())
    assert sorted(outcomes) == ["approved", "conflict"]
    winner = ("mia", "max")[outcomes.index("approved")]
    request = desk.approval("quote:Q-1")
    assert [entry.actor for entry in request.audit] == ["ann", winner]
    assert desk.quote("Q-1").state is QuoteState.APPROVED
    storage = desk.storage
    assert isinstance(storage, SqlStorage)
    storage.drop_schema()
    desk.close()


def test_on_postgres(postgres_url: str) -> None:
    _race(postgres_url)


def test_on_sqlite(tmp_path: Path) -> None:
    _race(f"sqlite:///{tmp_path / 'race.db'}")
