"""Operational tasks of the project itself."""

from __future__ import annotations

import os
import socket

from celery import shared_task
from django.db import connection


@shared_task
def ping(payload: str) -> dict[str, object]:
    """Round-trip check: proves a worker process took the task and reached the database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        (database,) = cursor.fetchone()
    return {"echo": payload, "worker_pid": os.getpid(), "host": socket.gethostname(), "database": database}


@shared_task(acks_late=True)
def run_case_export(export_id: int) -> str:
    from investigator.services import case_export_run

    export = case_export_run(export_id=export_id)
    return export.status if export else "already taken"
