"""A second connection to the test database, as another process would hold one."""

from __future__ import annotations

import psycopg
from django.db import connection


def another_connection(**options: object) -> psycopg.Connection:
    """A psycopg connection beside Django's, to the same database (options as psycopg.connect takes them)."""
    connection.ensure_connection()
    info = connection.connection.info
    return psycopg.connect(host=info.host, port=info.port, dbname=info.dbname, user=info.user, password=info.password,
                           **options)
