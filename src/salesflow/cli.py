"""The ``salesflow`` command: the desk from a shell (``salesflow --help``, ``python -m salesflow``).

The database comes from ``--db URL``, else the environment variable ``SALESFLOW_DATABASE_URL``,
else ``sqlite:///salesflow.db``. Settings (stage plan, currency, teams, targets, the target funnel,
how import files map to fields) come from a TOML file given with ``--config``; who may act comes
from a TOML users file given with ``--users`` (roles and teams per user id), and a command that acts
names its actor with ``--as USER``. Commands go through the same desk, so the same authorization,
units of work and audit events apply as in Python.

Exit codes: 0 done; 1 refused or invalid input (a :mod:`salesflow.errors` error, printed as one
line naming what is wrong, never a traceback); 2 a usage error (an unknown option, a missing
argument). Listings take ``--format table|csv|json``; CSV cells of text that start with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return get a leading ``'`` so that a spreadsheet never runs
them as a formula; JSON writes exact decimals as strings.

click is imported here only, so ``import salesflow`` stays fast.
"""

from __future__ import annotations

import csv
import importlib.metadata
import io
import json
import os
import sys
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

import attrs
import click

import salesflow
from salesflow._version import __version__
from salesflow.errors import SalesflowError, ValidationError

if TYPE_CHECKING:
    from salesflow import Actor, SalesDesk, StagePlan, Target

__all__ = ["DATABASE_ENV", "DEFAULT_DATABASE", "cli", "main", "neutralise"]

DATABASE_ENV = "SALESFLOW_DATABASE_URL"
"""The environment variable naming the database when ``--db`` is not given."""

DEFAULT_DATABASE = "sqlite:///salesflow.db"
"""The database when neither ``--db`` nor :data:`DATABASE_ENV` names one."""

FORMATS = ("table", "csv", "json")

_CONFIG_KEYS = frozenset(
    {
        "currency",
        "timezone",
        "as_of",
        "plan",
        "phones",
        "teams",
        "targets",
        "funnel",
        "import",
        "report",
    }
)


# -- output ------------------------------------------------------------------------------------------


def neutralise(text: str) -> str:
    """``text`` safe for a spreadsheet cell (:func:`salesflow.cells.neutralise_cell`: a leading
    ``'`` when it starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return)."""
    from salesflow.cells import neutralise_cell

    return neutralise_cell(text)


def _plain(value: Any) -> Any:
    """A JSON-ready value: exact decimals and dates as strings, collections as lists."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(_plain(v) for v in value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    enum_value = getattr(value, "value", None)
    if isinstance(enum_value, str):
        return enum_value
    return str(value)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:,}" if abs(value) >= 1000 else str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}" if abs(value) >= 10000 else str(value)
    if isinstance(value, tuple | list | set | frozenset):
        return ", ".join(_cell(v) for v in value)
    plain = _plain(value)
    return plain if isinstance(plain, str) else str(plain)


def _text_table(records: Sequence[Mapping[str, Any]], caption: str = "") -> str:
    """``records`` as an aligned text table (numbers right-aligned, thousands grouped)."""
    columns: list[str] = []
    for record in records:
        columns += [c for c in record if c not in columns]
    lines = [caption] if caption else []
    if not columns:
        return "\n".join([*lines, "(no rows)"])
    cells = [[_cell(r.get(c)) for c in columns] for r in records]
    numeric = [
        any(isinstance(r.get(c), int | Decimal) and not isinstance(r.get(c), bool) for r in records)
        for c in columns
    ]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric, strict=True)
        ).rstrip()

    lines += [line(columns), "  ".join("-" * w for w in widths), *(line(row) for row in cells)]
    return "\n".join(lines)


def _write_csv(records: Sequence[Mapping[str, Any]], out: IO[str]) -> None:
    columns: list[str] = []
    for record in records:
        columns += [c for c in record if c not in columns]
    # RFC 4180 line ends: a cell holding a carriage return or a newline is then quoted.
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([neutralise(c) for c in columns])
    for record in records:
        row = []
        for column in columns:
            value = record.get(column)
            plain = _plain(value)
            text = "" if plain is None else plain if isinstance(plain, str) else json.dumps(plain)
            # Text from the data is neutralised; numbers we write ourselves are left as numbers.
            is_number = isinstance(value, int | Decimal) and not isinstance(value, bool)
            row.append(text if is_number else neutralise(text))
        writer.writerow(row)


def _emit(
    records: Sequence[Mapping[str, Any]], fmt: str, *, text: str | None = None, caption: str = ""
) -> None:
    """Print a listing: ``text`` (or the records as a table), CSV or JSON."""
    if fmt == "json":
        click.echo(json.dumps([_plain(r) for r in records], indent=2, ensure_ascii=False))
    elif fmt == "csv":
        buffer = io.StringIO()
        _write_csv(records, buffer)
        click.echo(buffer.getvalue(), nl=False)
    else:
        click.echo(text if text is not None else _text_table(records, caption))


def _format_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="table for people, csv or json for programs.",
    )(function)


def _as_option(required: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    help_text = (
        "The user who acts (roles and teams from --users)."
        if required
        else "Read as this user (only what they may see; roles and teams from --users)."
    )
    return click.option("--as", "as_user", metavar="USER", required=required, help=help_text)


def _as_of_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--as-of",
        type=click.DateTime(formats=["%Y-%m-%d"]),
        help="The day to report for (YYYY-MM-DD; default: as_of in --config, else today).",
    )(function)


# -- settings ------------------------------------------------------------------------------------------


def _read_toml(path: str | Path, what: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(what, str(path), f"a valid TOML file ({exc})") from None
    except OSError as exc:
        raise ValidationError(what, str(path), f"a readable file ({exc.strerror})") from None


def _section(data: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ValidationError(key, value, "a table", where=where)
    return dict(value)


class Settings:
    """What ``--config FILE`` says (every part optional)."""

    def __init__(self, data: Mapping[str, Any] | None = None, source: str = "") -> None:
        data = dict(data or {})
        self.source = source or "settings"
        where = self.source
        unknown = sorted(set(data) - _CONFIG_KEYS)
        if unknown:
            raise ValidationError(
                "keys", unknown, f"keys among {sorted(_CONFIG_KEYS)}", where=where
            )
        self.data = data
        self.currency: str = str(data.get("currency", "CNY"))
        zone = data.get("timezone")
        self.timezone: tzinfo | None = None if zone is None else _zone(zone, where)
        as_of = data.get("as_of")
        if as_of is not None and (not isinstance(as_of, date) or isinstance(as_of, datetime)):
            raise ValidationError("as_of", as_of, "a date such as 2026-11-26", where=where)
        self.as_of: date | None = as_of
        plan = data.get("plan")
        self.plan: StagePlan | None = None
        if plan is not None:
            self.plan = salesflow.StagePlan.from_dict(plan)
        self.phones = _section(data, "phones", where)
        self.teams: dict[str, list[str]] | None = None
        if "teams" in data:
            self.teams = {
                str(team): [str(r) for r in reps]
                for team, reps in _section(data, "teams", where).items()
            }
        self.targets = _section(data, "targets", where)
        self.funnel = _section(data, "funnel", where)
        self.imports = _section(data, "import", where)
        self.report = _section(data, "report", where)

    @classmethod
    def load(cls, path: str | None) -> Settings:
        if path is None:
            return cls()
        return cls(_read_toml(path, "config"), source=str(path))

    def import_options(self, kind: str) -> dict[str, Any]:
        return _section(self.imports, kind, f"{self.source} [import]")

    def funnel_target(self) -> dict[str, Decimal] | None:
        target = self.funnel.get("target")
        if target is None:
            return None
        if not isinstance(target, Mapping):
            raise ValidationError("funnel.target", target, "a table of stage = percent")
        return {str(k): _decimal(v, f"funnel.target.{k}") for k, v in target.items()}

    def target_list(self, periods: Iterable[salesflow.Period]) -> list[Target]:
        """The targets of ``periods``: an explicit ``[targets."<period>"]`` table, else
        ``[targets.monthly]`` times the period's months."""
        result = []
        monthly = self.targets.get("monthly", {})
        for period in periods:
            explicit = self.targets.get(period.label)
            amounts = (
                {k: _decimal(v, f"targets.{period.label}.{k}") for k, v in explicit.items()}
                if isinstance(explicit, Mapping)
                else {
                    k: _decimal(v, f"targets.monthly.{k}") * period.length
                    for k, v in monthly.items()
                }
            )
            for owner, amount in sorted(amounts.items()):
                result.append(
                    salesflow.Target(
                        owner=owner,
                        period=period,
                        amount=salesflow.Money.of(amount, self.currency),
                    )
                )
        return result


def _decimal(value: Any, field: str) -> Decimal:
    if isinstance(value, bool):
        raise ValidationError(field, value, "a number")
    if isinstance(value, Decimal | int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value.replace(",", "").replace("_", ""))
        except ArithmeticError:
            pass
    raise ValidationError(field, value, 'a number such as 250000 or "250000.00"')


def _zone(name: Any, where: str) -> tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if name in ("UTC", "utc"):
        return UTC
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            "timezone", name, "an IANA zone such as 'Asia/Shanghai'", where=where
        ) from None


def load_users(path: str | Path) -> dict[str, Actor]:
    """The users of a TOML users file: ``[users.<id>]`` tables with ``roles`` and ``teams``."""
    data = _read_toml(path, "users")
    users = data.get("users")
    if not isinstance(users, Mapping) or not users:
        raise ValidationError("users", str(path), "a file with [users.<id>] tables")
    actors = {}
    for user, entry in users.items():
        where = f"{path}: users.{user}"
        if not isinstance(entry, Mapping):
            raise ValidationError("user", entry, "a table with roles and teams", where=where)
        unknown = sorted(set(entry) - {"roles", "teams", "name"})
        if unknown:
            raise ValidationError("keys", unknown, "roles, teams and name", where=where)
        try:
            actors[str(user)] = salesflow.Actor(
                str(user), roles=entry.get("roles", ()), teams=entry.get("teams", ())
            )
        except ValidationError as exc:
            raise exc.located(where) from None
    return actors


class State:
    """What the group's options chose, and the desk opened for them (once)."""

    def __init__(self, db: str, config: str | None, users: str | None) -> None:
        self.db = db
        self.config_path = config
        self.users_path = users
        self._settings: Settings | None = None
        self._users: dict[str, Actor] | None = None
        self._desk: SalesDesk | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.load(self.config_path)
        return self._settings

    @property
    def users(self) -> dict[str, Actor]:
        if self._users is None:
            if self.users_path is None:
                raise click.UsageError("--as needs a users file: --users FILE (or SALESFLOW_USERS)")
            self._users = load_users(self.users_path)
        return self._users

    def actor(self, user: str | None) -> Actor | None:
        if user is None:
            return None
        known = self.users
        if user not in known:
            raise ValidationError(
                "--as", user, f"a user of {self.users_path} ({', '.join(sorted(known))})"
            )
        return known[user]

    def desk(self) -> SalesDesk:
        if self._desk is None:
            settings = self.settings
            phones = None
            if settings.phones:
                phones = salesflow.PhoneSettings(**settings.phones)
            self._desk = salesflow.open(
                self.db,
                plan=settings.plan,
                currency=settings.currency,
                timezone=settings.timezone,
                phones=phones,
            )
        return self._desk

    def as_of(self, given: datetime | None) -> date:
        if given is not None:
            return given.date()
        if self.settings.as_of is not None:
            return self.settings.as_of
        return date.today()

    def teams(self) -> dict[str, list[str]] | None:
        if self.settings.teams is not None:
            return self.settings.teams
        if self.users_path is None:
            return None
        teams: dict[str, list[str]] = {}
        for actor in self.users.values():
            if actor.has_role("sales_rep"):
                for team in actor.teams:
                    teams.setdefault(team, []).append(actor.id)
        return {team: sorted(reps) for team, reps in sorted(teams.items())} or None

    def close(self) -> None:
        if self._desk is not None:
            self._desk.close()
            self._desk = None


def _state() -> State:
    state = click.get_current_context().find_object(State)
    assert state is not None
    return state


# -- the group ---------------------------------------------------------------------------------------------


class _Group(click.Group):
    """A group that prints salesflow's errors (and file errors) as one line and exits 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SalesflowError as error:
            raise click.ClickException(f"{type(error).__name__}: {error}") from None
        except OSError as error:  # a file that cannot be written or read
            raise click.ClickException(f"{type(error).__name__}: {error}") from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    metavar="URL",
    envvar=DATABASE_ENV,
    default=DEFAULT_DATABASE,
    show_default=True,
    help=f"The database (memory://, sqlite:///FILE, postgresql://..., mysql://...); "
    f"else ${DATABASE_ENV}.",
)
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False),
    envvar="SALESFLOW_CONFIG",
    help="Settings (TOML): plan, currency, teams, targets, funnel target, import mappings.",
)
@click.option(
    "--users",
    type=click.Path(exists=True, dir_okay=False),
    envvar="SALESFLOW_USERS",
    help="Who may act (TOML): [users.<id>] with roles and teams.",
)
@click.version_option(__version__, prog_name="salesflow")
@click.pass_context
def cli(ctx: click.Context, db: str, config: str | None, users: str | None) -> None:
    """salesflow: forecasts, funnels, approvals, contracts and collections from a shell.

    Try `salesflow demo`: it builds a sample company into a fresh SQLite file and writes an HTML
    report of it.
    """
    state = State(db, config, users)
    ctx.obj = state
    ctx.call_on_close(state.close)


def main(argv: Sequence[str] | None = None) -> None:
    """The console script (``salesflow``)."""
    cli.main(args=None if argv is None else list(argv), prog_name="salesflow")


# -- init --------------------------------------------------------------------------------------------------


@cli.command()
def init() -> None:
    """Create the database's tables (or upgrade an older schema)."""
    state = _state()
    desk = state.desk()
    click.echo(f"salesflow database ready at {desk.storage.url}")


# -- import ------------------------------------------------------------------------------------------------


class _Progress:
    """A text file that moves a progress bar as it is read (by bytes, every few hundred lines)."""

    def __init__(self, handle: IO[str], bar: Any, name: str) -> None:
        self._handle = handle
        self._bar = bar
        self._done = 0
        self._lines = 0
        self.name = name

    def _update(self) -> None:
        position = self._handle.buffer.tell() if hasattr(self._handle, "buffer") else 0
        if position > self._done:
            self._bar.update(position - self._done)
            self._done = position

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = self._handle.readline()
        if not line:
            self._update()
            raise StopIteration
        self._lines += 1
        if self._lines % 512 == 0:
            self._update()
        return line

    def read(self, size: int = -1) -> str:
        text = self._handle.read(size)
        self._update()
        return text

    def readline(self, size: int = -1) -> str:
        return next(self, "") if size < 0 else self._handle.readline(size)


def _show_progress(choice: bool | None) -> bool:
    if choice is not None:
        return choice
    return sys.stderr.isatty()


def _progress_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--progress/--no-progress",
        default=None,
        help="Show a progress bar on stderr (default: only on a terminal).",
    )(function)


def _located(error: ValidationError, path: str) -> ValidationError:
    where = error.where or ""
    return error if where.startswith(path) else error.located(path)


@contextmanager
def _opened(path: str, progress: bool, label: str) -> Iterator[Any]:
    """``path`` opened for CSV reading, moving a progress bar on stderr when ``progress``."""
    size = os.path.getsize(path)
    with open(path, encoding="utf-8-sig", newline="") as handle:
        if not progress:
            yield handle
            return
        with click.progressbar(length=size, label=label, file=sys.stderr) as bar:
            yield _Progress(handle, bar, path)


@cli.group(name="import")
def import_() -> None:
    """Import a file: all of it in one transaction, or nothing (errors name file, line and
    field)."""


@import_.command(name="opportunities")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@_as_option(required=True)
@click.option("--currency", help="The currency of amounts when the file has no currency column.")
@click.option("--dayfirst/--monthfirst", default=None, help="Read 03/04/2026 as 3 April.")
@_progress_option
def import_opportunities(
    file: str, as_user: str, currency: str | None, dayfirst: bool | None, progress: bool | None
) -> None:
    """Import new opportunities from a CSV FILE (mapping from [import.opportunities])."""
    state = _state()
    actor = state.actor(as_user)
    assert actor is not None
    options = state.settings.import_options("opportunities")
    mapping = _mapping(options.get("mapping"), "import.opportunities.mapping")
    desk = state.desk()
    chosen_currency = currency or options.get("currency")
    chosen_dayfirst = bool(options.get("dayfirst", False)) if dayfirst is None else dayfirst
    with _opened(file, _show_progress(progress), f"Importing {Path(file).name}") as handle:
        try:
            result = desk.import_opportunities(
                actor,
                handle,
                mapping=mapping,
                currency=chosen_currency,
                dayfirst=chosen_dayfirst,
                batch_size=int(options.get("batch_size", 10_000)),
            )
        except ValidationError as error:
            raise _located(error, file) from None
    click.echo(f"Imported {result.value:,} opportunities from {file}")


def _mapping(value: Any, field: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        raise ValidationError(field, value, 'a table of field = "column name"')
    return {str(k): v for k, v in value.items()}


def _rows(
    handle: Any, mapping: Mapping[str, str] | None, path: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(handle)
    header = list(reader.fieldnames or [])
    if not header:
        raise ValidationError("header", None, "a CSV header row", where=f"{path}: line 1")
    for field, column in (mapping or {}).items():
        if column not in header:
            raise ValidationError(
                f"mapping[{field!r}]", column, f"a column of the file, one of {header}", where=path
            )
    for row in reader:
        where = f"{path}: line {reader.line_num}"
        if None in row:
            raise ValidationError("row", row[None], f"at most {len(header)} cells", where=where)
        record: dict[str, Any] = dict(row)
        for field, column in (mapping or {}).items():
            record[field] = row[column]
        yield where, record


@import_.command(name="contacts")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@_as_option(required=True)
@_progress_option
def import_contacts(file: str, as_user: str, progress: bool | None) -> None:
    """Import new contacts from a CSV FILE: id, name, account, owner, industry, region and phones
    (several separated by ';'); other column names through [import.contacts] mapping."""
    state = _state()
    actor = state.actor(as_user)
    assert actor is not None
    options = state.settings.import_options("contacts")
    mapping = _mapping(options.get("mapping"), "import.contacts.mapping")
    desk = state.desk()
    contacts = []
    seen: dict[str, str] = {}
    with _opened(file, _show_progress(progress), f"Reading {Path(file).name}") as handle:
        for where, record in _rows(handle, mapping, file):
            try:
                contact = salesflow.Contact.from_record({**record, "version": 0})
            except ValidationError as error:
                raise error.located(where) from None
            if contact.id in seen:
                raise ValidationError(
                    "id", contact.id, f"an id not used before ({seen[contact.id]})", where=where
                )
            seen[contact.id] = where
            desk.authorize(actor, "contact.create", contact)
            contacts.append((where, contact))

    def work(uow: Any, events: list[Any]) -> int:
        for where, contact in contacts:
            if uow.contacts.find(contact.id) is not None:
                raise ValidationError("id", contact.id, "a contact id not stored yet", where=where)
        uow.contacts.add_many(attrs.evolve(c, version=1) for _w, c in contacts)
        for _where, contact in contacts:
            events.append(desk.event("contact_created", "contact", contact.id, actor))
        return len(contacts)

    count = desk.run(work).value
    click.echo(f"Imported {count:,} contacts from {file}")


@import_.command(name="products")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@_as_option(required=True)
@click.option("--currency", help="The currency of prices when the file has no currency column.")
def import_products(file: str, as_user: str, currency: str | None) -> None:
    """Add or replace products of the catalog from a CSV FILE (sku, name, list_price, category,
    floor_price, tiers...; other column names through [import.products] mapping)."""
    state = _state()
    actor = state.actor(as_user)
    assert actor is not None
    options = state.settings.import_options("products")
    mapping = _mapping(options.get("mapping"), "import.products.mapping")
    desk = state.desk()
    with open(file, encoding="utf-8-sig", newline="") as handle:
        try:
            incoming = salesflow.Catalog.from_csv(
                handle, mapping=mapping, currency=currency or options.get("currency")
            )
        except ValidationError as error:
            raise _located(error, file) from None
    current = desk.catalog()
    products = {p.sku: p for p in current.products}
    products.update({p.sku: p for p in incoming.products})
    categories = {c.id: c for c in current.categories}
    for category in incoming.categories:
        categories.setdefault(category.id, category)
    merged = salesflow.Catalog(
        categories=list(categories.values()),
        products=list(products.values()),
        bundles=current.bundles,
        version=current.version,
    )
    desk.update_catalog(actor, merged)
    click.echo(
        f"Imported {len(incoming.products):,} products from {file} "
        f"(the catalog has {len(products):,})"
    )


_FILE_OPTION = {"asterisk-csv": "path", "twilio-json": "directory"}


@import_.command(name="calls")
@click.argument("file", type=click.Path(exists=True))
@_as_option(required=True)
@click.option("--source", help="The call source (asterisk-csv, twilio-json, or a plugin's).")
@click.option(
    "--on-error",
    type=click.Choice(["raise", "skip"]),
    help="raise: a malformed row rejects the file; skip: import the rest and list it.",
)
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), help="First day to import.")
@click.option("--until", type=click.DateTime(formats=["%Y-%m-%d"]), help="Day to stop before.")
def import_calls(
    file: str,
    as_user: str,
    source: str | None,
    on_error: str | None,
    since: datetime | None,
    until: datetime | None,
) -> None:
    """Import calls from FILE (an Asterisk Master.csv, a folder of Twilio JSON pages...) and
    link them to contacts; options from [import.calls] (source, options, on_error)."""
    state = _state()
    actor = state.actor(as_user)
    assert actor is not None
    settings = state.settings
    options = settings.import_options("calls")
    name = source or str(options.get("source", "asterisk-csv"))
    extra = dict(options.get("options", {}))
    extra[str(options.get("file_option", _FILE_OPTION.get(name, "path")))] = file
    if name == "asterisk-csv" and "timezone" not in extra:
        zone = settings.data.get("timezone")
        if zone is None:
            raise ValidationError(
                "timezone",
                None,
                'the PBX\'s zone: timezone = "Asia/Shanghai" in --config (or in '
                "[import.calls.options])",
            )
        extra["timezone"] = zone
    desk = state.desk()
    try:
        calls = desk.call_source(name, **extra)
    except TypeError as error:
        raise ValidationError(
            "import.calls.options", extra, f"options {name} accepts ({error})"
        ) from None
    zone = settings.timezone or UTC
    window = [None if d is None else d.replace(tzinfo=zone) for d in (since, until)]
    mode = on_error or str(options.get("on_error", "raise"))
    try:
        result = desk.import_calls(actor, calls, since=window[0], until=window[1], on_error=mode)  # type: ignore[arg-type]
    except ValidationError as error:
        raise _located(error, file) from None
    report = result.value
    click.echo(
        f"Imported {report.imported:,} calls from {file} ({report.duplicates:,} already stored, "
        f"{report.counted:,} to known contacts, {report.uncounted:,} to unknown numbers, "
        f"{len(report.tasks_created):,} follow-up tasks)"
    )
    for row in report.errors:
        click.echo(f"skipped: {row}", err=True)


# -- listings ---------------------------------------------------------------------------------------------


@cli.command()
@_as_of_option
@click.option(
    "--by",
    multiple=True,
    default=("owner",),
    show_default=True,
    help="Group by these attributes (repeat: --by team --by owner).",
)
@click.option("--threshold", help="Count stages of at least this probability (percent).")
@click.option("--quarterly", is_flag=True, help="Quarters instead of months.")
@click.option(
    "--categories", is_flag=True, help="Pipeline, best case, commit and closed beside weighted."
)
@click.option("--range", "show_range", is_flag=True, help="P10 / P50 / P90 of what is signed.")
@click.option("--period", help="With --range: deals closing in this period (2026-11, 2026-Q4).")
@click.option("--target", help="With --range: the chance of signing at least this amount.")
@click.option("--learned", is_flag=True, help="With --range: probabilities learned from history.")
@click.option("--seed", type=int, default=0, show_default=True, help="With --range: the seed.")
@_as_option(required=False)
@_format_option
def forecast(
    as_of: datetime | None,
    by: tuple[str, ...],
    threshold: str | None,
    quarterly: bool,
    categories: bool,
    show_range: bool,
    period: str | None,
    target: str | None,
    learned: bool,
    seed: int,
    as_user: str | None,
    fmt: str,
) -> None:
    """Expected signing amount per group and month (R2, R3), with overdue and undated; by
    category (--categories) or as a range (--range)."""
    state = _state()
    actor = state.actor(as_user)
    day = state.as_of(as_of)
    desk = state.desk()
    if categories:
        kind: Literal["month", "quarter"] = "quarter" if quarterly else "month"
        cats = desk.forecast_categories(as_of=day, by=by, kind=kind, actor=actor)
        _emit([*cats.to_records(), *cats.total_records()], fmt, text=str(cats))
        return
    if show_range:
        goal = None if target is None else salesflow.Money.of(target, desk.currency)
        spread = desk.forecast_range(
            period=period,
            by=by,
            learned=learned,
            target=goal,
            seed=seed,
            as_of=day,
            actor=actor,
        )
        _emit(spread.to_records(), fmt, text=str(spread))
        return
    fc = desk.forecast(as_of=day, by=by, threshold=threshold, actor=actor)
    if not quarterly:
        _emit(fc.to_records(), fmt, text=str(fc))
        return
    records: list[dict[str, Any]] = []
    pivot: list[dict[str, Any]] = []
    table = fc.table("quarter")
    buckets = sorted({b for cells in table.values() for b in cells}, key=_bucket_order)
    for group, cells in table.items():
        fields = dict(zip(by, group if len(by) > 1 else (group,), strict=True))
        currencies = {money.currency for money in cells.values()}
        row: dict[str, Any] = {**fields, "currency": ", ".join(sorted(currencies))}
        for bucket in buckets:
            money = cells.get(bucket)
            row[str(bucket)] = None if money is None else money.amount
            if money is not None:
                records.append(
                    {
                        "bucket": str(bucket),
                        **fields,
                        "currency": money.currency,
                        "expected": money.amount,
                    }
                )
        if len(currencies) == 1:
            row["total"] = sum((m.amount for m in cells.values()), Decimal(0))
        pivot.append(row)
    caption = fc.caption.replace("Expected signing amount", "Expected signing amount by quarter")
    _emit(records, fmt, text=_text_table(pivot, caption))


@cli.command()
@click.option(
    "--target",
    "target_file",
    type=click.Path(exists=True, dir_okay=False),
    help="A TOML file with the target funnel ([funnel.target] or stage = percent); "
    "default: [funnel.target] of --config.",
)
@click.option("--tolerance", help="Accepted relative deviation (default 0.5: half to 1.5 times).")
@click.option("--min-opportunities", type=int, help="Reps with fewer are not checked (default 10).")
@click.option("--by", default="owner", show_default=True, help="Group by this attribute.")
@click.option("--include-lost", is_flag=True, help="Count lost opportunities in the funnel.")
@_as_option(required=False)
@_format_option
def funnel(
    target_file: str | None,
    tolerance: str | None,
    min_opportunities: int | None,
    by: str,
    include_lost: bool,
    as_user: str | None,
    fmt: str,
) -> None:
    """Each rep's share of opportunities per stage (R4), and where it is off the target."""
    state = _state()
    actor = state.actor(as_user)
    settings = state.settings
    result = state.desk().funnel(by=by, include_lost=include_lost, actor=actor)
    target = settings.funnel_target()
    if target_file is not None:
        target = _target_file(target_file)
    records = [*result.to_records(), *result.total_records()]  # the team's rows last
    if target is None:
        _emit(records, fmt, text=str(result))
        return
    deviations = result.deviations(
        target,
        tolerance=tolerance or settings.funnel.get("tolerance", Decimal("0.5")),
        min_opportunities=(
            min_opportunities
            if min_opportunities is not None
            else int(settings.funnel.get("min_opportunities", 10))
        ),
    )
    flagged = {(d.group, d.stage): d.direction for d in deviations}
    for record in records:
        record["target_share"] = target.get(record["stage"], Decimal(0))
        record["deviation"] = flagged.get((record.get(by), record["stage"]), "")
    _emit(records, fmt, text=f"{result}\n\n{deviations}")


def _bucket_order(bucket: Any) -> tuple[int, Any]:
    """Overdue first, then the periods in time order, undated last."""
    if isinstance(bucket, salesflow.Period):
        return (1, (bucket.first, bucket.length))
    return (0 if bucket == salesflow.OVERDUE else 2, 0)


def _target_file(path: str) -> dict[str, Decimal]:
    """The target funnel of a TOML file: ``[funnel.target]``, ``[target]`` or stage = percent."""
    data = _read_toml(path, "target")
    table: Any = data
    if isinstance(data.get("funnel"), Mapping) and "target" in data["funnel"]:
        table = data["funnel"]["target"]
    elif "target" in data:
        table = data["target"]
    if not isinstance(table, Mapping):
        raise ValidationError("target", table, "a table of stage = percent", where=path)
    return {str(k): _decimal(v, f"target.{k}") for k, v in table.items()}


@cli.command()
@click.option("--period", help="A month (2026-11), quarter (2026-Q4) or year (default: the month).")
@_as_of_option
@_as_option(required=False)
@_format_option
def attainment(period: str | None, as_of: datetime | None, as_user: str | None, fmt: str) -> None:
    """Target, signed, gap, expected and projected per rep and team (R15); targets from
    [targets] of --config."""
    state = _state()
    actor = state.actor(as_user)
    day = state.as_of(as_of)
    chosen = salesflow.Period.parse(period) if period else salesflow.Period.containing(day)
    result = state.desk().attainment(
        state.settings.target_list([chosen]),
        period=chosen,
        teams=state.teams(),
        as_of=day,
        actor=actor,
    )
    # Reps, each team after its members, then everyone: as printed.
    _emit([*result.display_records(), *result.display_totals()], fmt, text=str(result))


@cli.command()
@click.option("--period", "periods", multiple=True, required=True, help="A closed period.")
@click.option(
    "--lead",
    "leads",
    multiple=True,
    type=int,
    default=(30, 60, 90),
    show_default=True,
    help="Days before the period's end (repeat).",
)
@click.option("--by", default="owner", show_default=True, help="owner or team.")
@click.option("--calibration", is_flag=True, help="Also the Brier score and calibration table.")
@_as_of_option
@_as_option(required=False)
@_format_option
def accuracy(
    periods: tuple[str, ...],
    leads: tuple[int, ...],
    by: str,
    calibration: bool,
    as_of: datetime | None,
    as_user: str | None,
    fmt: str,
) -> None:
    """The forecast at each lead time against what was signed: error, APE and bias per rep (who
    is optimistic, who sandbags); --calibration adds the Brier score of the stage probabilities."""
    state = _state()
    actor = state.actor(as_user)
    desk = state.desk()
    result = desk.forecast_accuracy(list(periods), lead_times=leads, by=by, actor=actor)
    text = f"{result}\n\n{_text_table(result.summary_records(), 'Bias per ' + by)}"
    records = [*result.to_records(), *result.total_records()]
    if calibration:
        scores = desk.forecast_calibration(as_of=state.as_of(as_of), actor=actor)
        text += f"\n\n{scores}"
    _emit(records, fmt, text=text)


@cli.command()
@_as_of_option
@click.option("--not-invoiced", is_flag=True, help="Only contracts with something to invoice.")
@click.option("--not-paid", is_flag=True, help="Only contracts with invoices not paid.")
@_as_option(required=False)
@_format_option
def receivables(
    as_of: datetime | None, not_invoiced: bool, not_paid: bool, as_user: str | None, fmt: str
) -> None:
    """Signed contracts with what is not invoiced and not paid, oldest signing first (R16)."""
    state = _state()
    result = state.desk().receivables(
        as_of=state.as_of(as_of),
        not_invoiced=not_invoiced,
        not_paid=not_paid,
        actor=state.actor(as_user),
    )
    _emit(result.to_records(), fmt, text=str(result))


@cli.group()
def calls() -> None:
    """Call statistics."""


@calls.command(name="stats")
@click.option("--by", default="owner", show_default=True, help="Group by this attribute.")
@click.option("--period", type=click.Choice(["month", "quarter", "year"]), help="Per period too.")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), help="First day counted.")
@click.option("--until", type=click.DateTime(formats=["%Y-%m-%d"]), help="Day to stop before.")
@_as_option(required=False)
@_format_option
def calls_stats(
    by: str,
    period: str | None,
    since: datetime | None,
    until: datetime | None,
    as_user: str | None,
    fmt: str,
) -> None:
    """Calls, answered, talk time per rep; calls to unknown numbers shown apart (R7)."""
    state = _state()
    zone = state.settings.timezone or UTC
    window = [None if d is None else d.replace(tzinfo=zone) for d in (since, until)]
    result = state.desk().call_stats(
        by=by,
        period=period,  # type: ignore[arg-type]
        since=window[0],
        until=window[1],
        actor=state.actor(as_user),
    )
    _emit(result.to_records(), fmt, text=str(result))


@cli.group()
def approvals() -> None:
    """Approval requests."""


@approvals.command(name="pending")
@click.option("--role", help="Requests whose current step awaits this role.")
@_as_option(required=False)
@_format_option
def approvals_pending(role: str | None, as_user: str | None, fmt: str) -> None:
    """Pending requests, longest waiting first: for a role, for a user (--as: what they may
    decide now), or all of them."""
    state = _state()
    desk = state.desk()
    actor = state.actor(as_user)
    if actor is not None and role is not None:
        raise click.UsageError("give --role or --as, not both")
    if actor is not None:
        found: Iterable[Any] = desk.waiting_for(actor)
    elif role is not None:
        found = desk.waiting_for(role)
    else:
        found = desk.approvals(state="pending")
    records = [
        {
            "request": r.id,
            "kind": r.subject_kind,
            "subject": r.subject_id,
            "owner": r.owner,
            "submitter": r.submitter,
            "awaiting": ", ".join(r.awaiting_roles),
            "waiting_since": r.waiting_since,
            "version": r.version,
        }
        for r in found
    ]
    _emit(records, fmt, caption=f"{len(records)} pending approval requests")


# -- the sales rules ---------------------------------------------------------------------------------------


@cli.group()
def rules() -> None:
    """The stored sales rules (stage plan, discount policy, contract workflow, team roles and
    members)."""


@rules.command(name="export")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
def rules_export(file: str | None) -> None:
    """Write the current rules as TOML to FILE (standard output without one)."""
    text = _state().desk().rules().to_toml()
    if file is None:
        click.echo(text, nl=False)
    else:
        Path(file).write_text(text, encoding="utf-8")
        click.echo(f"wrote the rules to {file}")


@rules.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@_as_option(required=True)
@click.option("--comment", help="Why the rules change (kept with the new version).")
def rules_import(file: str, as_user: str, comment: str | None) -> None:
    """Store the rules in FILE as the next version; parts the file leaves out stay as they are."""
    state = _state()
    desk = state.desk()
    actor = state.actor(as_user)
    assert actor is not None
    current = desk.rules()
    wanted = salesflow.Rules.from_toml(Path(file).read_text(encoding="utf-8"), base=current)
    result = desk.change_rules(actor, wanted, version=current.version, comment=comment)
    if not result.events:
        click.echo(f"the rules in {file} are version {current.version}: nothing changed")
        return
    click.echo(f"stored the rules as version {result.value.version}:")
    for line in result.events[0].data["changes"]:
        click.echo(f"  {line}")


# -- plugins -----------------------------------------------------------------------------------------------


def _plugin_record(manager: Any, plugin: Any, name: str, dist: str, version: str) -> dict[str, Any]:
    hooks = sorted(caller.name for caller in manager.get_hookcallers(plugin) or ())
    schemes: list[str] = []
    sources: list[str] = []
    for impl in manager.hook.salesflow_register_storage_backends.get_hookimpls():
        if impl.plugin is plugin:
            for backend in impl.function():
                schemes += list(backend.schemes)
    for impl in manager.hook.salesflow_register_call_sources.get_hookimpls():
        if impl.plugin is plugin:
            sources += [source.name for source in impl.function()]
    return {
        "plugin": name,
        "distribution": dist,
        "version": version,
        "hooks": ", ".join(hooks),
        "storage_schemes": ", ".join(schemes),
        "call_sources": ", ".join(sources),
        "status": "ok",
    }


@cli.command()
@_format_option
def plugins(fmt: str) -> None:
    """Every plugin: the builtin ones and the "salesflow" entry points, with distribution,
    version, hooks, storage schemes and call sources. One that fails to load is listed with its
    entry point and error, and the command exits 1."""
    from salesflow.plugins.manager import AUTOLOAD_ENV

    manager = salesflow.get_plugin_manager(load_entrypoints=False)
    records = [
        _plugin_record(manager, plugin, name, "salesflow", __version__)
        for name, plugin in manager.list_name_plugin()
    ]
    failed = 0
    disabled = os.environ.get(AUTOLOAD_ENV, "") not in ("", "0")
    for entry in importlib.metadata.entry_points(group="salesflow"):
        dist = entry.dist.name if entry.dist is not None else "(unknown distribution)"
        version = entry.dist.version if entry.dist is not None else ""
        where = f"{entry.name} = {entry.value}"
        try:
            plugin = entry.load()
            if manager.has_plugin(entry.name):
                continue
            manager.register(plugin, name=entry.name)
            record = _plugin_record(manager, plugin, entry.name, dist, version)
            if disabled:
                record["status"] = f"not loaded by the desk ({AUTOLOAD_ENV} is set)"
        except Exception as exc:
            failed += 1
            record = {
                "plugin": where,
                "distribution": dist,
                "version": version,
                "hooks": "",
                "storage_schemes": "",
                "call_sources": "",
                "status": f"failed to load: {type(exc).__name__}: {exc}",
            }
        records.append(record)
    _emit(records, fmt, caption=f"{len(records)} plugins")
    if failed:
        raise click.ClickException(
            f"{failed} plugin{'s' if failed > 1 else ''} failed to load (see status)"
        )


# -- report and demo ---------------------------------------------------------------------------------------


def _report_options(state: State, day: date) -> dict[str, Any]:
    settings = state.settings
    month = salesflow.Period.containing(day)
    quarter = salesflow.Period.containing(day, "quarter")
    options: dict[str, Any] = {
        "as_of": day,
        "targets": settings.target_list([month, quarter]),
        "teams": state.teams(),
        "funnel_target": settings.funnel_target(),
        "title": str(settings.report.get("title", "Sales report")),
    }
    if "tolerance" in settings.funnel:
        options["tolerance"] = settings.funnel["tolerance"]
    if "min_opportunities" in settings.funnel:
        options["min_opportunities"] = int(settings.funnel["min_opportunities"])
    return options


@cli.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    required=True,
    help="The HTML file to write.",
)
@_as_of_option
@click.option("--title", help="The page title (default: [report] title of --config).")
def report(output: str, as_of: datetime | None, title: str | None) -> None:
    """Write one self-contained HTML report (charts inline; opens offline in any browser)."""
    from salesflow.report import write_report

    state = _state()
    options = _report_options(state, state.as_of(as_of))
    if title:
        options["title"] = title
    write_report(state.desk(), output, **options)
    click.echo(f"Wrote {output}")


@cli.command()
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False),
    default="salesflow-demo",
    show_default=True,
    help="Where to put the database, its settings, users and the report.",
)
@click.option(
    "--seed", type=int, default=7, show_default=True, help="The same seed, the same company."
)
@click.option("--size", type=click.Choice(["small", "medium"]), default="small", show_default=True)
def demo(folder: str, seed: int, size: str) -> None:
    """Build the sample company into a fresh SQLite file and write its HTML report.

    Leaves in DIR: salesflow.db, salesflow.toml (settings), users.toml and report.html, and prints
    the commands to explore them.
    """
    from salesflow.report import write_report
    from salesflow.sample import build_company

    started = time.perf_counter()
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    database = root / "salesflow.db"
    for stale in (database, root / "salesflow.db-journal", root / "salesflow.db-wal"):
        if stale.exists():
            stale.unlink()
    url = f"sqlite:///{database}"
    click.echo(f"Building the sample company (seed {seed}, {size}) into {database} ...")
    with build_company(url, seed=seed, size=size) as company:  # type: ignore[arg-type]
        (root / "salesflow.toml").write_text(company.config_toml(), encoding="utf-8")
        (root / "users.toml").write_text(company.users_toml(), encoding="utf-8")
        built = time.perf_counter()
        state = State(url, str(root / "salesflow.toml"), str(root / "users.toml"))
        state._desk = company.desk
        output = root / "report.html"
        write_report(company.desk, output, **_report_options(state, company.as_of))
        state._desk = None
        counts = ", ".join(
            f"{len(ids)} {s.replace('_', ' ')}" for s, ids in company.contracts.items()
        )
        click.echo(
            f"{len(company.opportunities)} opportunities, {len(company.quotes)} quotes, contracts: "
            f"{counts}; {len(company.invoices)} invoices, {len(company.payments)} payments, "
            f"{len(company.contacts)} contacts, {company.calls} calls "
            f"({company.commands} desk commands)"
        )
    finished = time.perf_counter()
    click.echo(
        f"Built in {built - started:.1f} s, report in {finished - built:.1f} s. "
        f"Open {output.resolve().as_uri()}"
    )
    prefix = (
        f"salesflow --db {url} --config {root / 'salesflow.toml'} --users {root / 'users.toml'}"
    )
    click.echo("Then try:")
    for command in (
        "forecast",
        "funnel",
        "attainment --period 2026-Q4",
        "receivables --not-paid",
        "approvals pending --as pat",
        "calls stats --format csv",
    ):
        click.echo(f"  {prefix} {command}")


if __name__ == "__main__":  # pragma: no cover
    main()
