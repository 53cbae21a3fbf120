"""DATABASE_URL pointing at a PostgreSQL without pgvector is refused with a clear message."""

import os
import socket
import subprocess
import sys

import pytest
from django.conf import settings

SYSTEM_POSTGRES = os.environ.get("TEST_PLAIN_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _plain_postgres_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            pass
    except OSError:
        return False
    import psycopg

    try:
        with psycopg.connect(SYSTEM_POSTGRES, connect_timeout=3) as conn:
            row = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    except psycopg.Error:
        return False
    return row is None


@pytest.mark.skipif(not _plain_postgres_reachable(),
                    reason="needs a PostgreSQL without pgvector at 127.0.0.1:5432 (set TEST_PLAIN_POSTGRES_URL)")
def test_server_without_pgvector_is_refused_clearly():
    env = {**os.environ, "DATABASE_URL": SYSTEM_POSTGRES, "DJANGO_SETTINGS_MODULE": "investigator.settings"}
    env.pop("INVESTIGATOR_DB_NAME", None)
    result = subprocess.run([sys.executable, "manage.py", "check", "--database", "default"], cwd=settings.BASE_DIR,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "has no pgvector extension" in result.stderr + result.stdout
