"""salesflow's pytest plugin makes a failing conformance-kit case say what differs (issue 12)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]

# A plugin author's test module: the kit against a backend that keeps amounts as floats.
FLOAT_BACKEND = """
from contextlib import contextmanager
from decimal import Decimal

import attrs
import pytest

from salesflow.adapters.storage_memory import MemoryStorage
from salesflow.domain.money import Money
from salesflow.testing.storage import StorageContract


class Floaty:
    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def get(self, id):
        o = self._inner.get(id)
        return attrs.evolve(o, amount=Money(Decimal(str(float(o.amount.amount))), o.amount.currency))


class FloatStorage:
    def __init__(self, clock):
        self.inner = MemoryStorage(clock=clock)
        self.url = "floats://"

    @contextmanager
    def transaction(self):
        with self.inner.transaction() as uow:
            uow.opportunities = Floaty(uow.opportunities)
            yield uow

    def close(self):
        self.inner.close()


class TestFloats(StorageContract):
    @pytest.fixture
    def storage(self, clock):
        return FloatStorage(clock)

    @pytest.fixture
    def reopen(self):
        return None
"""

CASE = "documented_bounds and 123456789012345"
DIFF = [
    "*AssertionError: assert [[]Money(*)[]] == [[]Money(*)[]]",
    "*At index 0 diff: Money('123456789012345.67', 'CNY') != "
    "Money('123456789012345.6789012345', 'CNY')*",
]


@pytest.fixture
def no_autoload(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs without entry-point plugins: pytest then neither loads salesflow's plugin nor marks
    the modules of the distributions that have one for rewriting (which it does when salesflow is
    installed with its entry point)."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


def _run(pytester: pytest.Pytester, *options: str) -> pytest.RunResult:
    pytester.makepyfile(test_floats=FLOAT_BACKEND)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", CASE, *options)
    result.assert_outcomes(failed=1)
    return result


@pytest.mark.usefixtures("no_autoload")
def test_a_failing_kit_case_shows_what_differs(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "-p", "salesflow.testing.plugin")
    result.stdout.fnmatch_lines(DIFF)  # pytest's report: the values compared and how they differ


@pytest.mark.usefixtures("no_autoload")
def test_without_the_plugin_the_same_failure_is_a_bare_assertion_error(
    pytester: pytest.Pytester,
) -> None:
    result = _run(pytester)
    output = result.stdout.str()
    assert "At index 0 diff" not in output
    assert "AssertionError: assert" not in output
    result.stdout.fnmatch_lines(["E*AssertionError"])


@pytest.mark.usefixtures("no_autoload")
def test_loading_the_plugin_twice_under_warnings_as_errors_is_harmless(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest('pytest_plugins = ["salesflow.testing.plugin"]\n')
    result = _run(pytester, "-p", "salesflow.testing.plugin", "-W", "error")
    result.stdout.fnmatch_lines(DIFF)


def test_the_installed_entry_point_enables_it(pytester: pytest.Pytester) -> None:
    import importlib.metadata

    installed = {e.name for e in importlib.metadata.entry_points(group="pytest11")}
    if "salesflow.testing.plugin" not in installed:
        pytest.skip("salesflow is installed without its pytest11 entry point (reinstall it)")
    _run(pytester).stdout.fnmatch_lines(DIFF)


def test_the_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {
        "salesflow.testing.plugin": "salesflow.testing.plugin"
    }
