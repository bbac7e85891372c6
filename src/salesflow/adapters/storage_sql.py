"""The builtin plugin that offers the SQL backend for ``sqlite``, ``postgresql`` and ``mysql`` URLs.

The implementation lives in :mod:`salesflow.adapters.sql` and is imported only when a SQL URL is
opened, so registering the plugin costs nothing.
"""

from __future__ import annotations

from typing import Any

from salesflow.plugins.hookspecs import StorageBackend, hookimpl

__all__ = ["open_sql_storage", "salesflow_register_storage_backends"]


def open_sql_storage(url: str, **options: Any) -> Any:
    """Open :class:`salesflow.adapters.sql.storage.SqlStorage` for ``url``."""
    from salesflow.adapters.sql.storage import SqlStorage

    return SqlStorage(url, **options)


@hookimpl(trylast=True)
def salesflow_register_storage_backends() -> list[StorageBackend]:
    """The SQL backend."""
    return [
        StorageBackend(
            name="sql",
            schemes=("sqlite", "postgresql", "postgres", "mysql", "mariadb"),
            factory=open_sql_storage,
            description="SQLAlchemy Core: SQLite (embedded default), PostgreSQL, MySQL/MariaDB",
        )
    ]
