from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.backends.postgresql.base import DatabaseWrapper as PostgresDatabaseWrapper

from investigator import embedded_db

_ensured: set[tuple[int, str]] = set()


class DatabaseWrapper(PostgresDatabaseWrapper):
    """The stock PostgreSQL backend, pointed at the embedded server's socket.

    The server is started lazily by the first connection of any process (web,
    worker, management command, test run), so every entry point behaves alike.
    """

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        server = embedded_db.ensure_running(Path(settings.EMBEDDED_POSTGRES_DIR))
        database = params.get("dbname")
        if database and database != "postgres" and (server.pid, database) not in _ensured:
            embedded_db.ensure_database(server, database)
            _ensured.add((server.pid, database))
        params["host"] = server.socket_dir
        params["port"] = server.port
        params.setdefault("user", "postgres")
        return params
