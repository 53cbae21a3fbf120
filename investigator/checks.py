"""System checks: the database must be PostgreSQL with a recent enough pgvector."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register
from django.db import DatabaseError, connections


def pgvector_version(connection_alias: str = "default") -> tuple[int, ...] | None:
    """The newest pgvector the server offers, or None when it has none."""
    with connections[connection_alias].cursor() as cursor:
        cursor.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
        row = cursor.fetchone()
    if row is None or row[0] is None:
        return None
    return tuple(int(part) for part in str(row[0]).split(".") if part.isdigit())


def pgvector_problem(connection_alias: str = "default") -> str | None:
    version = pgvector_version(connection_alias)
    wanted = ".".join(map(str, settings.PGVECTOR_MIN_VERSION))
    if version is None:
        return (
            "The PostgreSQL server has no pgvector extension. Install pgvector >= "
            f"{wanted} on it (https://github.com/pgvector/pgvector), or unset DATABASE_URL "
            "to use the embedded server, which ships it."
        )
    if version < settings.PGVECTOR_MIN_VERSION:
        found = ".".join(map(str, version))
        return f"pgvector {found} is too old; Investigator needs pgvector >= {wanted} (bit_hamming_ops HNSW indexes)."
    return None


@register("database")
def check_pgvector(app_configs, databases=None, **kwargs):  # noqa: ANN001, ANN201 - Django check signature
    if not databases or "default" not in databases:
        return []
    try:
        problem = pgvector_problem()
    except DatabaseError as exc:
        return [Error(f"Cannot reach the database: {exc}", id="investigator.E001")]
    return [Error(problem, id="investigator.E002")] if problem else []
