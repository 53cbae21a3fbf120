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
def run_detection(run_id: int, waited: dict | None = None) -> str:
    """Run a queued detection, or one whose worker fell silent; a second delivery while its worker is alive
    looks again later. While an import into its dataset runs or its pictures are being hashed
    (detection_run_wait), it looks again later too, freeing this worker for that work meanwhile."""
    from django.conf import settings

    from accounts.coordination.services import detection_run_claim, detection_run_execute, detection_run_wait
    from accounts.models import DetectionRun, JobStatus
    from investigator import jobs

    run = DetectionRun.objects.filter(pk=run_id).first()
    if reason := jobs.not_to_take(run, run_detection):
        return reason
    if run.status == JobStatus.PENDING and (waited := detection_run_wait(run=run, waited=waited)) is not None:
        run_detection.apply_async((run_id,), {"waited": waited}, countdown=settings.DETECTION_WAIT_POLL_SECONDS)
        return "waiting for imports or hashing"
    if not detection_run_claim(run_id=run_id):
        return "already taken"
    run = detection_run_execute(run=DetectionRun.objects.get(pk=run_id))
    return run.status
