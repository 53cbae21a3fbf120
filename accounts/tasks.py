"""Celery tasks of the social-media side: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task

from accounts.models import ImportRun
from accounts.services import import_run_claim, import_run_process, import_runs_fail_stale


@shared_task(acks_late=True)
def run_import(run_id: int) -> str:
    """Import a queued run; a second delivery of the same message finds it claimed and does nothing."""
    import_runs_fail_stale()  # a run another worker died in must not look alive forever
    if not import_run_claim(run_id=run_id):
        return "already taken"
    run = import_run_process(run=ImportRun.objects.get(pk=run_id))
    return run.status


@shared_task(acks_late=True)
def run_detection(run_id: int) -> str:
    """Run a queued detection; a second delivery finds it claimed and does nothing."""
    from accounts.coordination.services import detection_run_claim, detection_run_execute
    from accounts.models import DetectionRun

    if not detection_run_claim(run_id=run_id):
        return "already taken"
    run = detection_run_execute(run=DetectionRun.objects.get(pk=run_id))
    return run.status
