"""The SQL storage backend on SQLAlchemy Core: SQLite (embedded default), PostgreSQL, MySQL/MariaDB."""
