"""Shared fixtures: where the real data sets live, hypothesis profiles, the database servers, and
a desk on every backend."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from salesflow.domain.stages import StagePlan

ROOT = Path(__file__).resolve().parent.parent

# CI runs more examples; a developer's run stays quick. Neither has a deadline: timing is measured
# in benchmarks/, never asserted in tests.
settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def data_dir() -> Path:
    """The public data sets: $SALESFLOW_DATA_DIR, or ../shared/data beside the checkout."""
    configured = os.environ.get("SALESFLOW_DATA_DIR")
    return Path(configured) if configured else ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of the real data sets; skips the test (with the reason) where it is absent."""
    folder = data_dir()
    if not folder.is_dir():
        pytest.skip(f"real data not found at {folder} (set SALESFLOW_DATA_DIR)")
    return folder


@pytest.fixture(scope="session")
def maven(shared_data: Path) -> Path:
    """The Maven Analytics CRM data set (sales_pipeline.csv, accounts.csv, ...)."""
    folder = shared_data / "maven-crm"
    if not (folder / "sales_pipeline.csv").is_file():
        pytest.skip(f"Maven CRM data not found in {folder}")
    return folder


@pytest.fixture(scope="session")
def maven_plan() -> StagePlan:
    """The Maven data's stages (Prospecting / Engaging / Won / Lost) as a plan: Engaging at 60 %
    counts at a 50 % threshold, Prospecting at 20 % does not."""
    return StagePlan.from_dict(
        {
            "threshold": 50,
            "stages": [
                {"key": "prospecting", "name": "Prospecting", "probability": 20},
                {"key": "engaging", "name": "Engaging", "probability": 60},
                {"key": "won", "name": "Won", "probability": 100, "outcome": "won"},
                {"key": "lost", "name": "Lost", "probability": 0, "outcome": "lost"},
            ],
        }
    )


@pytest.fixture(scope="session")
def northwind(shared_data: Path) -> Path:
    """The Northwind Traders data set (products.csv, order-details.csv, ...)."""
    folder = shared_data / "northwind"
    if not (folder / "products.csv").is_file():
        pytest.skip(f"Northwind data not found in {folder}")
    return folder


@pytest.fixture(scope="session")
def twilio_calls(shared_data: Path) -> Path:
    """Twilio Call resource JSON pages."""
    folder = shared_data / "twilio-calls"
    if not (folder / "call_read_full_page1.json").is_file():
        pytest.skip(f"Twilio call samples not found in {folder}")
    return folder


# -- database servers ----------------------------------------------------------------------------
# PostgreSQL (127.0.0.1:5432, user postgres) and MariaDB/MySQL (127.0.0.1:3306, root) are used for
# real, each run in databases of its own, dropped afterwards. Where a server is unreachable the tests
# skip with the reason, except under CI=true, where they must run and an unreachable server fails.

PG_ADMIN = os.environ.get("SALESFLOW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_HOST = os.environ.get("SALESFLOW_TEST_MYSQL_HOST", "127.0.0.1")


def unavailable(server: str, error: Exception) -> None:
    """Skip (or, in CI, fail) because ``server`` cannot be reached."""
    message = f"{server} is not reachable ({error.__class__.__name__}: {error})"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message}; in CI the storage tests must run against it")
    pytest.skip(message)


def unique_name() -> str:
    """A database name no other run uses (CI shares the servers with developer sessions)."""
    return f"sf_test_{os.getpid()}_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, dropped at the end."""
    import psycopg

    name = unique_name()
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as error:
        unavailable("PostgreSQL", error)
    base = PG_ADMIN.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def mysql_url() -> Iterator[str]:
    """A fresh MariaDB/MySQL database for this run, dropped at the end."""
    import pymysql

    name = unique_name()
    try:
        admin = pymysql.connect(
            host=MYSQL_HOST, user="root", password="", connect_timeout=5, autocommit=True
        )
    except pymysql.err.OperationalError as error:
        unavailable("MariaDB/MySQL", error)
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    yield f"mysql://root@{MYSQL_HOST}:3306/{name}"
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    admin.close()


BACKENDS = ("memory", "sqlite", "postgres", "mysql")
"""Every builtin backend: a desk test that takes ``open_desk`` runs on each."""

OpenDesk = Callable[..., Any]


@pytest.fixture(params=BACKENDS)
def open_desk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenDesk]:
    """``open_desk(**options)`` opens a :class:`~salesflow.SalesDesk` on an empty storage of this
    backend (``salesflow.open`` options; ``load_entrypoints=False`` unless given). PostgreSQL and
    MariaDB desks share this run's database (``postgres_url``, ``mysql_url``) under a table prefix
    of their own, dropped afterwards; a second call opens a second desk on the same storage."""
    import salesflow
    from salesflow.adapters.sql.storage import SqlStorage

    backend = request.param
    if backend == "memory":
        url = "memory://"
    elif backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'desk.db'}"
    else:
        url = request.getfixturevalue("postgres_url" if backend == "postgres" else "mysql_url")
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    opened: list[Any] = []
    shared_memory: list[Any] = []

    def open_desk(**options: Any) -> Any:
        options.setdefault("load_entrypoints", False)
        if backend == "memory":
            if shared_memory:  # a second desk on the same in-memory storage
                desk = salesflow.SalesDesk(shared_memory[0], **_desk_options(options))
            else:
                desk = salesflow.open(url, **options)
                shared_memory.append(desk.storage)
        else:
            if backend != "sqlite":
                options.setdefault("table_prefix", prefix)
            desk = salesflow.open(url, **options)
        opened.append(desk)
        return desk

    yield open_desk
    for desk in reversed(opened):  # the first desk last: it drops the tables
        if desk is opened[0] and isinstance(desk.storage, SqlStorage) and backend != "sqlite":
            desk.storage.destroy()
        desk.storage.close()


def _desk_options(options: dict[str, Any]) -> dict[str, Any]:
    from salesflow import get_plugin_manager

    manager = get_plugin_manager(
        load_entrypoints=options.pop("load_entrypoints"), plugins=options.pop("plugins", ())
    )
    return {"plugin_manager": manager, **options}
