"""The plugin system: loading, failing loudly, backends by scheme, authorization, event handlers."""

from __future__ import annotations

import inspect
import re
import textwrap
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import salesflow
from salesflow import Actor, Money, Opportunity, hookimpl
from salesflow.adapters.storage_memory import MemoryStorage
from salesflow.errors import (
    BackendNotFoundError,
    InvalidTypeError,
    NotAuthorizedError,
    NotFoundError,
    PluginError,
    ValidationError,
)
from salesflow.plugins import hookspecs
from salesflow.plugins.hookspecs import StorageBackend
from salesflow.plugins.manager import (
    AUTOLOAD_ENV,
    PluginRates,
    find_storage_backend,
    get_plugin_manager,
    storage_backend_problems,
    storage_backends,
)

ROOT = Path(__file__).resolve().parent.parent
ADMIN = Actor("root", roles={"admin"})


def opp(
    i: int, owner: str = "ann", team: str | None = "east", stage: str = "quotation"
) -> Opportunity:
    return Opportunity(
        id=f"op-{i}",
        owner=owner,
        team=team,
        amount=Money.of("100", "CNY"),
        stage=stage,
        expected_close=date(2026, 12, 1),
    )


def make_distribution(site: Path, name: str, entry: str, module_source: str) -> None:
    """Install a fake distribution (dist-info with an entry point, and its module) in ``site``."""
    module = entry.split(":")[0]
    (site / f"{module}.py").write_text(textwrap.dedent(module_source))
    info = site / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[salesflow]\n{name} = {entry}\n")


# -- the manager ---------------------------------------------------------------------------------


def test_builtin_backends_are_registered_by_scheme() -> None:
    manager = get_plugin_manager(load_entrypoints=False)
    backends = storage_backends(manager)
    assert {"memory", "sqlite", "postgresql", "mysql", "mariadb"} <= set(backends)
    assert find_storage_backend(manager, "postgresql+psycopg://u@h/db").name == "sql"
    assert find_storage_backend(manager, "memory://").name == "memory"


def test_an_unknown_scheme_lists_the_registered_ones() -> None:
    manager = get_plugin_manager(load_entrypoints=False)
    with pytest.raises(BackendNotFoundError) as info:
        find_storage_backend(manager, "redis://localhost")
    assert info.value.requested == "redis"
    assert "sqlite" in info.value.available
    assert "memory" in str(info.value)
    with pytest.raises(ValidationError, match="storage URL"):
        find_storage_backend(manager, "salesflow.db")


def test_a_plugin_backend_is_picked_by_its_scheme() -> None:
    class Plugin:
        @hookimpl
        def salesflow_register_storage_backends(self) -> list[StorageBackend]:
            return [
                StorageBackend(
                    name="scratch", schemes="scratch", factory=lambda url, **kw: MemoryStorage(**kw)
                )
            ]

    desk = salesflow.open("scratch://", plugins=[Plugin()], load_entrypoints=False)
    assert isinstance(desk.storage, MemoryStorage)


def test_two_backends_claiming_one_scheme_is_an_error() -> None:
    class Plugin:
        @hookimpl
        def salesflow_register_storage_backends(self) -> list[StorageBackend]:
            return [StorageBackend(name="other", schemes="sqlite", factory=MemoryStorage)]

    manager = get_plugin_manager(load_entrypoints=False, plugins=[Plugin()])
    with pytest.raises(PluginError, match="both claim 'sqlite'"):
        storage_backends(manager)


class BrokenRegistration:
    """A backend plugin whose registration hook fails (a bug of its own)."""

    @hookimpl
    def salesflow_register_storage_backends(self) -> list[StorageBackend]:
        settings: dict[str, str] = {}
        return [StorageBackend(name="broken", schemes=settings["scheme"], factory=MemoryStorage)]


class Claims:
    """A backend plugin that claims ``scheme``."""

    def __init__(self, name: str, scheme: str) -> None:
        self.name, self.scheme = name, scheme

    @hookimpl
    def salesflow_register_storage_backends(self) -> list[StorageBackend]:
        return [
            StorageBackend(
                name=self.name, schemes=self.scheme, factory=lambda url, **kw: MemoryStorage(**kw)
            )
        ]


def test_a_failing_registration_hook_raises_a_plugin_error_naming_the_plugin() -> None:
    broken = BrokenRegistration()
    manager = get_plugin_manager(load_entrypoints=False, plugins=[broken])
    (problem,) = storage_backend_problems(manager)
    assert isinstance(problem, PluginError)
    assert isinstance(problem.__cause__, KeyError)
    (plugin,) = problem.plugins
    assert "BrokenRegistration" in plugin
    assert plugin in str(problem)
    with pytest.raises(PluginError) as info:
        storage_backends(manager)  # the strict listing reports it
    assert (str(info.value), info.value.plugins) == (str(problem), problem.plugins)
    # A scheme nobody healthy serves may be the broken plugin's: its error, not a raw KeyError
    # and not "no backend".
    with pytest.raises(PluginError) as info:
        salesflow.open("broken://", plugins=[broken], load_entrypoints=False)
    assert not isinstance(info.value, BackendNotFoundError)
    assert info.value.plugins == (plugin,)
    assert info.value.scheme == "broken"
    assert isinstance(info.value.__cause__, KeyError)


def test_the_other_backends_stay_usable_when_a_plugin_is_broken(tmp_path: Path) -> None:
    broken = [BrokenRegistration(), Claims("one", "dup"), Claims("two", "dup")]
    desk = salesflow.open("memory://", plugins=broken, load_entrypoints=False)
    desk.add_opportunity(ADMIN, opp(1))
    assert [o.id for o in desk.opportunities()] == ["op-1"]
    desk = salesflow.open(f"sqlite:///{tmp_path / 'ok.db'}", plugins=broken, load_entrypoints=False)
    assert desk.opportunities() == []
    desk.storage.close()
    manager = get_plugin_manager(load_entrypoints=False, plugins=broken)
    assert find_storage_backend(manager, "memory://").name == "memory"
    assert len(storage_backend_problems(manager)) == 2  # the broken plugin and the contested scheme


def test_two_plugins_claiming_one_scheme_are_named_with_the_scheme() -> None:
    plugins = [Claims("first", "crm"), Claims("second", "crm")]
    manager = get_plugin_manager(load_entrypoints=False, plugins=plugins)
    with pytest.raises(PluginError) as info:
        find_storage_backend(manager, "crm://host/db")
    error = info.value
    assert error.scheme == "crm"
    assert len(error.plugins) == 2
    assert all("Claims" in name and name in str(error) for name in error.plugins)
    assert "'first'" in str(error)
    assert "'second'" in str(error)
    assert "'crm'" in str(error)
    assert [str(p) for p in storage_backend_problems(manager)] == [str(error)]
    # Opening it fails the same way, and memory:// opens all the same.
    with pytest.raises(PluginError) as again:
        salesflow.open("crm://host/db", plugins=plugins, load_entrypoints=False)
    assert again.value.scheme == "crm"
    assert (
        salesflow.open("memory://", plugins=plugins, load_entrypoints=False).opportunities() == []
    )


def test_a_registration_hook_returning_something_else_is_a_plugin_error() -> None:
    class NotAList:
        @hookimpl
        def salesflow_register_storage_backends(self) -> object:
            return "memory"

    class NotABackend:
        @hookimpl
        def salesflow_register_storage_backends(self) -> object:
            return [("fake", MemoryStorage)]

    manager = get_plugin_manager(load_entrypoints=False, plugins=[NotAList(), NotABackend()])
    problems = storage_backend_problems(manager)
    assert sorted(p.plugins[0].split(" ")[-1] for p in problems) == ["(NotABackend)", "(NotAList)"]
    assert all(isinstance(p.__cause__, TypeError) for p in problems)
    assert find_storage_backend(manager, "memory://").name == "memory"


def test_no_problems_without_broken_plugins() -> None:
    assert storage_backend_problems(get_plugin_manager(load_entrypoints=False)) == []


def test_a_plugin_with_an_unknown_hook_is_refused() -> None:
    class Plugin:
        @hookimpl
        def salesflow_handle_evnt(self, event: Any) -> None:  # a typo
            """Never called."""

    with pytest.raises(PluginError, match="unknown hook"):
        get_plugin_manager(load_entrypoints=False, plugins=[Plugin()])


def test_entry_point_plugins_load_and_can_be_disabled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_distribution(
        tmp_path,
        "sf-audit-printer",
        "sf_audit_printer",
        """
        import salesflow
        seen = []

        @salesflow.hookimpl
        def salesflow_handle_event(event):
            seen.append(event.name)
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    manager = get_plugin_manager()
    assert manager.has_plugin("sf-audit-printer")
    monkeypatch.setenv(AUTOLOAD_ENV, "1")
    assert not get_plugin_manager().has_plugin("sf-audit-printer")


def test_a_broken_entry_point_names_itself_its_distribution_and_the_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_distribution(tmp_path, "sf-broken", "sf_broken", "import not_a_module_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError) as info:
        get_plugin_manager()
    message = str(info.value)
    assert "'sf-broken'" in message
    assert "sf_broken" in message
    assert "of sf-broken" in message
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_rates_come_from_the_hook() -> None:
    class Rates:
        @hookimpl
        def salesflow_get_exchange_rate(self, source: str, target: str, on: date) -> Decimal | None:
            return Decimal("7.10") if (source, target) == ("USD", "CNY") else None

    manager = get_plugin_manager(load_entrypoints=False, plugins=[Rates()])
    rates = PluginRates(manager)
    assert rates.rate("USD", "CNY", date(2026, 1, 1)) == Decimal("7.10")
    with pytest.raises(NotFoundError, match="EUR->CNY"):
        rates.rate("EUR", "CNY", date(2026, 1, 1))
    desk = salesflow.open("memory://", plugins=[Rates()], load_entrypoints=False)
    usd = Opportunity(
        id="u",
        owner="ann",
        amount=Money.of("10", "USD"),
        stage="quotation",
        expected_close=date(2026, 12, 1),
    )
    desk.add_opportunity(ADMIN, usd)
    desk.add_opportunity(ADMIN, opp(1))
    fc = desk.forecast(as_of=date(2026, 11, 26), currency="CNY", convert=True)
    assert fc.total == Money.of("119.70", "CNY")  # 7.00 USD -> 49.70 CNY, plus 70.00 CNY


# -- authorization ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actor", "subject", "allowed"),
    [
        (Actor("ann", roles={"sales_rep"}, teams={"east"}), opp(1, owner="ann"), True),
        (Actor("ann", roles={"sales_rep"}), opp(1, owner="ann", team=None), True),
        (Actor("ann", roles={"sales_rep"}), opp(1, owner="ann"), False),  # not her team
        (Actor("ann", roles={"sales_rep"}, teams={"west"}), opp(1, owner="ann"), False),
        (Actor("ann", roles={"sales_rep"}, teams={"east"}), opp(1, owner="bob"), False),
        (Actor("ann", teams={"east"}), opp(1, owner="ann"), False),  # no role, no action
        (Actor("dan", roles={"sales_director"}), opp(1, owner="bob", team="west"), True),
        (Actor("fay", roles={"finance"}), opp(1, owner="bob", team="west"), False),
        (
            Actor("mia", roles={"sales_manager"}, teams={"east"}),
            opp(1, owner="bob", team="east"),
            True,
        ),
        (
            Actor("mia", roles={"sales_manager"}, teams={"east"}),
            opp(1, owner="bob", team="west"),
            False,
        ),
        (
            Actor("mia", roles={"sales_manager"}, teams={"east"}),
            opp(1, owner="bob", team=None),
            False,
        ),
        (Actor("root", roles={"admin"}), opp(1, owner="bob", team="west"), True),
    ],
)
def test_the_builtin_policy(actor: Actor, subject: Opportunity, allowed: bool) -> None:
    desk = salesflow.open("memory://", load_entrypoints=False)
    if allowed:
        assert desk.add_opportunity(actor, subject).value.version == 1
    else:
        with pytest.raises(NotAuthorizedError) as info:
            desk.add_opportunity(actor, subject)
        assert info.value.actor == actor.id
        assert info.value.action == "opportunity.create"
        assert "op-1" in info.value.subject
        assert desk.opportunities() == []


def test_a_record_without_a_team_is_in_its_owners_teams() -> None:
    from types import SimpleNamespace

    from salesflow.adapters.authorization import TeamScope

    scope = TeamScope(team_members={"east": ["ann", "bob"], "west": ("wes",)})
    mia = Actor("mia", roles={"sales_manager"}, teams={"east"})
    bobs, wess = SimpleNamespace(owner="bob", team=None), SimpleNamespace(owner="wes", team=None)
    assert scope.allows(mia, "call.read", bobs)
    assert scope.allows(mia, "task.complete", bobs)
    assert not scope.allows(mia, "call.read", wess)
    assert not scope.allows(mia, "task.complete", wess)
    # A record that names its team is that team's, whoever its owner is a member of.
    assert not scope.allows(mia, "opportunity.read", SimpleNamespace(owner="bob", team="west"))
    # A rep is not a manager: members do not read each other's records.
    ann = Actor("ann", roles={"sales_rep"}, teams={"east"})
    assert not scope.allows(ann, "call.read", bobs)
    # Deciding a step in a team-bound role: the owner's teams, else (owner in none) anyone.
    wil = Actor("wil", roles={"sales_manager"}, teams={"west"})
    assert scope.allows(mia, "quote.approve", bobs, role="sales_manager")
    assert not scope.allows(wil, "quote.approve", bobs, role="sales_manager")
    assert scope.allows(
        wil, "quote.approve", SimpleNamespace(owner="zed", team=None), "sales_manager"
    )
    west_deal = SimpleNamespace(owner="bob", team="west")
    assert not scope.allows(mia, "quote.approve", west_deal, role="sales_manager")
    assert scope.allows(mia, "quote.approve", west_deal, role="finance")  # not team-bound
    assert scope.team_members == {"east": {"ann", "bob"}, "west": {"wes"}}
    with pytest.raises(InvalidTypeError) as refused:
        TeamScope(team_members={"east": "ann"})
    assert refused.value.field == "team_members.east"


def test_an_embedding_crm_replaces_the_policy() -> None:
    class OnlyInterns:
        @hookimpl
        def salesflow_authorize(self, actor: Actor, action: str) -> bool:
            return actor.has_role("intern") or action == "opportunity.move"

    desk = salesflow.open("memory://", plugins=[OnlyInterns()], load_entrypoints=False)
    with pytest.raises(NotAuthorizedError):
        desk.add_opportunity(ADMIN, opp(1))
    desk.add_opportunity(Actor("tim", roles={"intern"}), opp(1, owner="somebody"))
    assert [o.id for o in desk.opportunities()] == ["op-1"]


# -- event handlers ---------------------------------------------------------------------------------


def test_events_reach_every_handler_after_commit_and_a_failing_one_undoes_nothing() -> None:
    seen: list[tuple[str, str, int | None]] = []

    class Broken:
        @hookimpl
        def salesflow_handle_event(self) -> None:
            raise RuntimeError("mail server down")

    class Recorder:
        @hookimpl
        def salesflow_handle_event(self, event: salesflow.Event, storage_url: str) -> None:
            # The change is committed before handlers run: a fresh unit of work sees it.
            with desk.storage.transaction() as uow:
                assert uow.opportunities.find(event.subject_id) is not None
            seen.append((event.name, storage_url, event.seq))

    desk = salesflow.open("memory://", plugins=[Broken(), Recorder()], load_entrypoints=False)
    result = desk.add_opportunity(ADMIN, opp(1))
    assert result.value.version == 1
    assert seen == [("opportunity_created", "memory://", result.events[0].seq)]
    (error,) = result.handler_errors
    assert isinstance(error.error, RuntimeError)
    assert error.event == result.events[0]
    assert "Broken" in error.plugin or error.plugin.isdigit()
    assert desk.opportunity("op-1").version == 1


def test_no_event_is_dispatched_for_a_failed_command() -> None:
    seen: list[str] = []

    class Recorder:
        @hookimpl
        def salesflow_handle_event(self, event: salesflow.Event) -> None:
            seen.append(event.name)

    desk = salesflow.open("memory://", plugins=[Recorder()], load_entrypoints=False)
    desk.add_opportunity(ADMIN, opp(1))
    with pytest.raises(salesflow.errors.ConcurrencyError):
        desk.add_opportunity(ADMIN, opp(1))
    assert seen == ["opportunity_created"]
    assert [e.name for e in desk.events()] == ["opportunity_created"]


# -- the hook reference ------------------------------------------------------------------------------


def test_every_hook_is_documented_with_its_full_signature() -> None:
    text = (ROOT / "docs" / "plugins.md").read_text()
    hooks = [name for name in dir(hookspecs) if name.startswith("salesflow_")]
    assert len(hooks) >= 5
    for name in hooks:
        function = getattr(hookspecs, name)
        signature = f"{name}{inspect.signature(function)}".replace("'", "")
        assert re.search(rf"^### `{name}`$", text, flags=re.M), (
            f"no section for {name} in docs/plugins.md"
        )
        assert signature in text, f"docs/plugins.md lacks the signature {signature}"


def test_hooks_follow_the_naming_rule() -> None:
    # salesflow_<verb>_<noun>; issue 3 names salesflow_authorize itself, the one verb-only hook.
    for name in dir(hookspecs):
        value = getattr(hookspecs, name)
        if callable(value) and hasattr(value, "salesflow_spec"):
            assert name == "salesflow_authorize" or re.fullmatch(r"salesflow_[a-z]+_[a-z_]+", name)
            assert inspect.getdoc(value)


def test_event_data_must_be_json() -> None:
    with pytest.raises(salesflow.errors.InvalidTypeError, match="JSON"):
        salesflow.Event(
            name="x",
            subject_kind="y",
            subject_id="z",
            at=datetime.now(UTC),
            data={"amount": Decimal("1")},
        )
