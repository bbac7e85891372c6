"""Building the plugin manager: builtin plugins first, then entry points, then the caller's.

There is no import-time global manager: every :func:`get_plugin_manager` call builds a fresh one, so
two desks in one process may run with different plugins. A plugin that fails to import or to
validate raises :class:`~salesflow.errors.PluginError` naming the entry point, its distribution and
the original error; it is never skipped silently.

Storage backends are collected plugin by plugin (:func:`storage_backend_registry`), so that one
broken plugin does not take the others down: a plugin whose ``salesflow_register_storage_backends``
raises or returns something other than backends, and a scheme two plugins claim, are *problems*.
Opening a URL whose scheme a healthy backend alone serves works whatever else is broken; opening a
contested scheme raises the :class:`~salesflow.errors.PluginError` naming both plugins and the
scheme; opening a scheme no healthy backend serves while some plugin is broken raises that plugin's
``PluginError`` (its schemes are unknown: it may have been the one to serve it), the original error
chained. :func:`storage_backend_problems` lists every problem, for diagnostics.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from types import ModuleType

import attrs
import pluggy

from salesflow.errors import BackendNotFoundError, NotFoundError, PluginError, ValidationError
from salesflow.plugins import hookspecs
from salesflow.plugins.hookspecs import PROJECT, CallSourceType, StorageBackend

__all__ = [
    "AUTOLOAD_ENV",
    "BUILTIN_PLUGINS",
    "BackendRegistry",
    "PluginRates",
    "call_source_types",
    "find_storage_backend",
    "get_plugin_manager",
    "storage_backend_problems",
    "storage_backend_registry",
    "storage_backends",
]

log = logging.getLogger("salesflow.plugins")

AUTOLOAD_ENV = "SALESFLOW_DISABLE_PLUGIN_AUTOLOAD"
"""Set this environment variable (to anything but empty or ``0``) to skip entry-point plugins."""

BUILTIN_PLUGINS = (
    "salesflow.adapters.authorization",
    "salesflow.adapters.storage_memory",
    "salesflow.adapters.storage_sql",
    "salesflow.adapters.telephony_plugin",
)
"""Modules registered as plugins before any other, in this order."""


def get_plugin_manager(
    load_entrypoints: bool = True, plugins: Iterable[object] = ()
) -> pluggy.PluginManager:
    """A new plugin manager with the builtin plugins, the ``salesflow`` entry points (unless
    ``load_entrypoints`` is false or :data:`AUTOLOAD_ENV` is set) and ``plugins``, validated."""
    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(hookspecs)
    for name in BUILTIN_PLUGINS:
        manager.register(importlib.import_module(name), name=name)
    if load_entrypoints and os.environ.get(AUTOLOAD_ENV, "") in ("", "0"):
        _load_entrypoints(manager)
    for plugin in plugins:
        try:
            manager.register(plugin)
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise PluginError(f"plugin {plugin!r} cannot be registered: {exc}") from exc
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {exc.plugin!r} implements an unknown hook: {exc}") from exc
    return manager


def _load_entrypoints(manager: pluggy.PluginManager) -> None:
    for entry in importlib.metadata.entry_points(group=PROJECT):
        distribution = entry.dist.name if entry.dist is not None else "an unknown distribution"
        where = f"entry point {entry.name!r} ({entry.value}) of {distribution}"
        if manager.has_plugin(entry.name):
            continue  # the same distribution seen twice on sys.path
        try:
            plugin = entry.load()
        except Exception as exc:
            raise PluginError(f"{where} failed to load: {exc!r}") from exc
        try:
            manager.register(plugin, name=entry.name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise PluginError(f"{where} is not a valid plugin: {exc}") from exc
        log.debug("loaded %s", where)


@attrs.frozen
class BackendRegistry:
    """The storage backends the plugins registered, and what went wrong registering them."""

    backends: dict[str, StorageBackend]
    """The usable backend of every scheme exactly one plugin claims."""
    plugins: dict[str, str]
    """The plugin (as registered) that offers each scheme of :attr:`backends`."""
    conflicts: dict[str, PluginError]
    """The schemes two or more plugins claim, each with the error naming them."""
    failures: tuple[PluginError, ...]
    """One error per plugin whose registration hook raised or returned something else than
    :class:`~salesflow.plugins.hookspecs.StorageBackend` objects (the cause chained)."""

    @property
    def problems(self) -> list[PluginError]:
        """Every failure, then every conflict (by scheme)."""
        return [*self.failures, *(self.conflicts[s] for s in sorted(self.conflicts))]


def _plugin_label(manager: pluggy.PluginManager, plugin: object) -> str:
    name = manager.get_name(plugin) or "?"
    if isinstance(plugin, ModuleType) or name == getattr(plugin, "__name__", None):
        return name
    return f"{name} ({type(plugin).__name__})"


def storage_backend_registry(manager: pluggy.PluginManager) -> BackendRegistry:
    """Ask every plugin for its storage backends, one plugin at a time, and sort the answers into
    usable backends, contested schemes and failed plugins (never raises for a plugin's fault)."""
    hook = manager.hook.salesflow_register_storage_backends
    claims: dict[str, list[tuple[str, StorageBackend]]] = {}
    failures: list[PluginError] = []
    for impl in reversed(hook.get_hookimpls()):  # the order pluggy calls them in
        label = _plugin_label(manager, impl.plugin)
        try:
            backends = impl.function()
            if not isinstance(backends, list | tuple):
                raise TypeError(f"returned {backends!r}, not a list of StorageBackend")
            for backend in backends:
                if not isinstance(backend, StorageBackend):
                    raise TypeError(f"returned {backend!r}, not a StorageBackend")
        except Exception as exc:
            error = PluginError(
                f"plugin {label!r} failed to register its storage backends "
                f"(salesflow_register_storage_backends): {exc!r}; its URL schemes are unavailable "
                "until it is fixed or removed",
                plugins=(label,),
            )
            error.__cause__ = exc
            failures.append(error)
            continue
        for backend in backends:
            for scheme in dict.fromkeys(backend.schemes):
                claimants = claims.setdefault(scheme, [])
                if all(backend is not other for _, other in claimants):
                    claimants.append((label, backend))
    usable: dict[str, StorageBackend] = {}
    plugins: dict[str, str] = {}
    conflicts: dict[str, PluginError] = {}
    for scheme, claimants in claims.items():
        if len(claimants) == 1:
            plugins[scheme], usable[scheme] = claimants[0]
            continue
        names = tuple(label for label, _ in claimants)
        described = " and ".join(
            f"{backend.name!r} of plugin {label!r}" for label, backend in claimants
        )
        conflicts[scheme] = PluginError(
            f"storage backends {described} both claim {scheme!r}://: the scheme is unavailable "
            "until one of the plugins is removed (or given another scheme)",
            plugins=names,
            scheme=scheme,
        )
    return BackendRegistry(usable, plugins, conflicts, tuple(failures))


def storage_backends(manager: pluggy.PluginManager) -> dict[str, StorageBackend]:
    """Every registered storage backend, by scheme. Strict: a plugin whose registration failed,
    or two backends claiming one scheme, raise :class:`~salesflow.errors.PluginError` (the first
    of :func:`storage_backend_problems`)."""
    registry = storage_backend_registry(manager)
    if registry.problems:
        raise registry.problems[0]
    return registry.backends


def storage_backend_problems(manager: pluggy.PluginManager) -> list[PluginError]:
    """Diagnostics: every plugin whose storage backends could not be registered and every scheme
    two plugins claim, each as the :class:`~salesflow.errors.PluginError` that opening an affected
    URL raises (``plugins`` and ``scheme`` name them); empty when all is well."""
    return storage_backend_registry(manager).problems


def find_storage_backend(manager: pluggy.PluginManager, url: str) -> StorageBackend:
    """The backend for ``url``'s scheme; :class:`~salesflow.errors.BackendNotFoundError` lists the
    registered schemes when none matches. A scheme two plugins claim raises the
    :class:`~salesflow.errors.PluginError` naming both; a scheme no healthy backend serves while a
    plugin failed to register its backends raises that plugin's error (see the module docs)."""
    if not isinstance(url, str) or "://" not in url:
        raise ValidationError(
            "url", url, "a storage URL such as 'sqlite:///salesflow.db' or 'memory://'"
        )
    scheme = url.split("://", 1)[0].lower()
    registry = storage_backend_registry(manager)
    for candidate in dict.fromkeys((scheme, scheme.split("+", 1)[0])):
        if candidate in registry.conflicts:
            raise registry.conflicts[candidate]
        backend = registry.backends.get(candidate)
        if backend is not None:
            return backend
    if registry.failures:
        first = registry.failures[0]
        others = "".join(f"; also: {error}" for error in registry.failures[1:])
        raise PluginError(
            f"no storage backend serves {scheme!r}://, and it may be one of the schemes of a "
            f"broken plugin: {first}{others}",
            plugins=tuple(label for error in registry.failures for label in error.plugins),
            scheme=scheme,
        ) from first.__cause__
    raise BackendNotFoundError(scheme, list(registry.backends))


def call_source_types(manager: pluggy.PluginManager) -> dict[str, CallSourceType]:
    """Every registered call source type, by name (names must be unique)."""
    by_name: dict[str, CallSourceType] = {}
    for types in manager.hook.salesflow_register_call_sources():
        for source in types:
            if not isinstance(source, CallSourceType):
                raise PluginError(
                    f"salesflow_register_call_sources returned {source!r}, not a CallSourceType"
                )
            if source.name in by_name:
                raise PluginError(f"two plugins offer the call source {source.name!r}")
            by_name[source.name] = source
    return by_name


class PluginRates:
    """A :class:`~salesflow.domain.money.RateSource` that asks the ``salesflow_get_exchange_rate``
    hook."""

    def __init__(self, manager: pluggy.PluginManager) -> None:
        self._hook = manager.hook.salesflow_get_exchange_rate

    def rate(self, source: str, target: str, on: date) -> Decimal:
        """The rate from the first plugin that has one; :class:`~salesflow.errors.NotFoundError`
        when none has."""
        rate = self._hook(source=source, target=target, on=on)
        if rate is None:
            raise NotFoundError(
                "exchange rate", f"{source}->{target} on {on.isoformat()}", "no plugin has it"
            )
        if not isinstance(rate, Decimal):
            raise PluginError(f"salesflow_get_exchange_rate returned {rate!r}, not a Decimal")
        return rate
