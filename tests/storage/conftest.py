"""Database servers for the storage tests: each run gets databases of its own, dropped afterwards.

PostgreSQL (127.0.0.1:5432, user postgres) and MariaDB/MySQL (127.0.0.1:3306, root) are used for
real. Where a server is unreachable the tests skip with the reason, except under ``CI=true``, where
they must run and an unreachable server fails them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator

import pytest

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


@pytest.fixture
def race() -> Callable[[str, list[list[str]], str], list[str]]:
    """:func:`run_race`, for tests that start processes at the same time."""
    return run_race


def run_race(script: str, runs: list[list[str]], ready: str) -> list[str]:
    """Run ``script`` once per argument list in ``runs``, at the same time: wait until every child
    has printed ``ready`` (it holds what it read), release them all together, and return the last
    line each printed, in ``runs`` order. No sleeps: the children say when they are ready."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in runs
    ]
    outcomes = []
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == ready
        for child in children:
            out, err = child.communicate("go\n", timeout=120)
            assert child.returncode == 0, err
            outcomes.append(out.strip())
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
            for stream in (child.stdin, child.stdout, child.stderr):
                if stream is not None:
                    stream.close()
            child.wait()
    return outcomes
