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
    """Build a queued case file, or one whose worker fell silent; a second delivery while its worker is alive
    looks again once that worker would have fallen silent (investigator.jobs)."""
    from investigator import jobs
    from investigator.models import CaseExport
    from investigator.services import case_export_run

    if reason := jobs.not_to_take(CaseExport.objects.filter(pk=export_id).first(), run_case_export):
        return reason
    export = case_export_run(export_id=export_id)
    return export.status if export else "already taken"
