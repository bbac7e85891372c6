"""salesflow inside your SQLAlchemy ORM session: your rows and salesflow's in one transaction.

Run it with ``python examples/embedding/orm_session.py`` (a SQLite file in a temporary folder), or
give a database URL: ``python examples/embedding/orm_session.py postgresql://user@host/crm``.

The CRM keeps its own ``Deal`` table. Each deal it records also becomes a salesflow opportunity,
through a desk opened on the ORM session: the desk's commands join the session's transaction, so
``session.rollback()`` leaves neither the deal nor the opportunity, ``session.commit()`` keeps
both, and the desk's events reach their handlers only after that commit. The storage guide
(docs/guide/storage.md, "Inside your own application") quotes it.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import salesflow
from salesflow import Actor, Money, Opportunity

REP = Actor("li.wei", roles={"sales_rep"}, teams={"east"})


class Base(DeclarativeBase):
    pass


class Deal(Base):
    """The CRM's own table, which salesflow knows nothing about."""

    __tablename__ = "crm_deal"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))


class Outbox:
    """An event handler (a plugin): what it receives was committed."""

    def __init__(self) -> None:
        self.received: list[str] = []

    @salesflow.hookimpl
    def salesflow_handle_event(self, event: salesflow.Event) -> None:
        self.received.append(f"{event.name} {event.subject_id}")


def start(url: str) -> Engine:
    """At start-up: the CRM's tables, and salesflow's (created once, in a transaction of their
    own, never inside a request's)."""
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    salesflow.open(engine, load_entrypoints=False).close()  # closing leaves the engine alone
    return engine


def record_deal(session: Session, desk: salesflow.SalesDesk, deal_id: str, amount: str) -> None:
    """The CRM's use case: a deal row of its own and the matching opportunity."""
    session.add(Deal(id=deal_id, title=f"Deal {deal_id}"))
    opportunity = Opportunity(
        id=deal_id, owner=REP.id, team="east", amount=Money.of(amount, "CNY"), stage="quotation"
    )
    desk.add_opportunity(REP, opportunity)


def main(url: str) -> dict[str, Any]:
    engine = start(url)
    outbox = Outbox()
    manager = salesflow.get_plugin_manager(load_entrypoints=False, plugins=[outbox])

    with Session(engine) as session:
        desk = salesflow.SalesDesk(
            salesflow.open_storage(session, create=False), plugin_manager=manager
        )
        record_deal(session, desk, "D-1", "120000")
        print("before the rollback the handler has seen:", outbox.received)
        session.rollback()  # neither the deal nor the opportunity is kept, no event handed out

    with Session(engine) as session:
        desk = salesflow.SalesDesk(
            salesflow.open_storage(session, create=False), plugin_manager=manager
        )
        record_deal(session, desk, "D-2", "80000")
        print("before the commit the handler has seen:", outbox.received)
        session.commit()  # both are kept; now the events go out
        print("after the commit the handler has seen:", outbox.received)

    with Session(engine) as session:
        deals = list(session.scalars(select(Deal.id).order_by(Deal.id)))
    opportunities = [o.id for o in salesflow.open(engine, load_entrypoints=False).opportunities()]
    print("deals:", deals, "opportunities:", opportunities)
    engine.dispose()
    return {"deals": deals, "opportunities": opportunities, "events": outbox.received}


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as folder:
            main(f"sqlite:///{Path(folder) / 'crm.db'}")
