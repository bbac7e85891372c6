"""salesflow in a web request's unit of work, the way Flask or FastAPI apps scope a session.

Run it with ``python examples/embedding/request_scope.py`` (a SQLite file in a temporary folder),
or give a database URL as the first argument. No web framework is needed: ``handle_request`` is
what a view does, with the session a framework would hand it.

* At start-up: one engine, one ``sessionmaker``, one plugin manager, and salesflow's tables.
* Per request: a session and its transaction (``with Session.begin() as session``: committed
  when the request succeeds, rolled back when it raises), and a desk on that session. Building
  the desk is cheap: ``create=False`` skips the schema check and the plugin manager is shared.

In Flask, open the session per request (or use a ``scoped_session`` and remove it on teardown);
in FastAPI, make ``request_session`` a dependency (``Depends``). Both look like this.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import String, create_engine, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

import salesflow
from salesflow import Actor, Money, Opportunity
from salesflow.adapters.sql.storage import SqlStorage

REP = Actor("li.wei", roles={"sales_rep"}, teams={"east"})


class Base(DeclarativeBase):
    pass


class AuditNote(Base):
    """A row the CRM writes in the same request."""

    __tablename__ = "crm_audit_note"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(200))


class App:
    """What a web app sets up once."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        Base.metadata.create_all(self.engine)
        salesflow.open(self.engine, load_entrypoints=False).close()  # salesflow's tables
        self.sessions = sessionmaker(self.engine)
        self.sent: list[str] = []
        self.plugins = salesflow.get_plugin_manager(load_entrypoints=False, plugins=[self])

    @salesflow.hookimpl
    def salesflow_handle_event(self, event: salesflow.Event) -> None:
        self.sent.append(f"{event.name} {event.subject_id}")  # e.g. a message to the team

    @contextmanager
    def request_session(self) -> Iterator[Session]:
        """The request's session (a FastAPI dependency, a Flask ``before_request``)."""
        with self.sessions.begin() as session:  # commit on success, rollback on an exception
            yield session

    def desk(self, session: Session) -> salesflow.SalesDesk:
        """A desk whose commands join ``session``'s transaction."""
        return salesflow.SalesDesk(SqlStorage(session, create=False), plugin_manager=self.plugins)


def handle_request(app: App, form: dict[str, str]) -> dict[str, Any]:
    """A view: record an opportunity and a note of the CRM's own, or neither."""
    with app.request_session() as session:
        desk = app.desk(session)
        amount = Money.of(form["amount"], "CNY")
        opportunity = Opportunity(
            id=form["id"], owner=REP.id, team="east", amount=amount, stage="needs_analysis"
        )
        desk.add_opportunity(REP, opportunity)
        session.add(AuditNote(text=f"{REP.id} added {form['id']}"))
        if amount.amount > 1_000_000:
            raise ValueError("needs a director's sign-off")  # the whole request rolls back
        return {"status": 201, "id": form["id"]}


def main(url: str) -> dict[str, Any]:
    app = App(url)
    print(handle_request(app, {"id": "OPP-1", "amount": "50000"}))
    try:
        handle_request(app, {"id": "OPP-2", "amount": "5000000"})
    except ValueError as error:
        print({"status": 422, "error": str(error)})
    with app.sessions() as session:
        notes = session.scalar(select(func.count()).select_from(AuditNote))
        stored = [o.id for o in app.desk(session).opportunities()]
    print("opportunities:", stored, "notes:", notes, "events sent:", app.sent)
    app.engine.dispose()
    return {"opportunities": stored, "notes": notes, "events": app.sent}


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as folder:
            main(f"sqlite:///{Path(folder) / 'crm.db'}")
