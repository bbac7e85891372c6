"""Building the plugin manager: builtin plugins first, then entry points, then the caller's.

There is no import-time global manager: every :func:`get_plugin_manager` call builds a fresh one, so
two desks in one process may run with different plugins. A plugin that fails to import or to
validate raises :class:`~salesflow.errors.PluginError` naming the entry point, its distribution and
the original error; it is never skipped silently.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
from collections.abc import Iterable
from datetime import date
from decimal import Decimal

import pluggy

from salesflow.errors import BackendNotFoundError, NotFoundError, PluginError, ValidationError
from salesflow.plugins import hookspecs
from salesflow.plugins.hookspecs import PROJECT, CallSourceType, StorageBackend

__all__ = [
    "AUTOLOAD_ENV",
    "BUILTIN_PLUGINS",
    "PluginRates",
    "call_source_types",
    "find_storage_backend",
    "get_plugin_manager",
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


def storage_backends(manager: pluggy.PluginManager) -> dict[str, StorageBackend]:
    """Every registered storage backend, by scheme. Two backends claiming one scheme raise
    :class:`~salesflow.errors.PluginError`."""
    by_scheme: dict[str, StorageBackend] = {}
    for backends in manager.hook.salesflow_register_storage_backends():
        for backend in backends:
            if not isinstance(backend, StorageBackend):
                raise PluginError(
                    f"salesflow_register_storage_backends returned {backend!r}, not a StorageBackend"
                )
            for scheme in backend.schemes:
                other = by_scheme.get(scheme)
                if other is not None and other is not backend:
                    raise PluginError(
                        f"storage backends {other.name!r} and {backend.name!r} both claim {scheme!r}://"
                    )
                by_scheme[scheme] = backend
    return by_scheme


def find_storage_backend(manager: pluggy.PluginManager, url: str) -> StorageBackend:
    """The backend for ``url``'s scheme; :class:`~salesflow.errors.BackendNotFoundError` lists the
    registered schemes when none matches."""
    if not isinstance(url, str) or "://" not in url:
        raise ValidationError(
            "url", url, "a storage URL such as 'sqlite:///salesflow.db' or 'memory://'"
        )
    scheme = url.split("://", 1)[0].lower()
    backends = storage_backends(manager)
    backend = backends.get(scheme) or backends.get(scheme.split("+", 1)[0])
    if backend is None:
        raise BackendNotFoundError(scheme, list(backends))
    return backend


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
