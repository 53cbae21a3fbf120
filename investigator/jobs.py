"""Signs of life of long background jobs (detection runs, case file builds). The worker running one says it is
alive every HEARTBEAT_EVERY from a thread of its own; a job silent for SILENT_AFTER lost its worker (killed, out
of memory, its machine restarted) and may be claimed again and started from the beginning, instead of staying
"running" for ever."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

if TYPE_CHECKING:
    from celery import Task

HEARTBEAT_EVERY = timedelta(seconds=20)
SILENT_AFTER = timedelta(minutes=2)


class HeartbeatJob(models.Model):
    """A job row with `status` (pending, running, …), when its current claim started, and its last heartbeat."""

    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life of the worker running it")

    class Meta:
        abstract = True

    @property
    def silent(self) -> bool:
        """Running, but its worker has not been heard from for SILENT_AFTER."""
        last = self.heartbeat_at or self.started_at
        return self.status == "running" and last is not None and last < timezone.now() - SILENT_AFTER


def claimable() -> Q:
    """Jobs a worker may take: queued ones, and running ones whose worker fell silent."""
    silent = timezone.now() - SILENT_AFTER
    return (Q(status="pending") | Q(status="running", heartbeat_at__lt=silent)
            | Q(status="running", heartbeat_at__isnull=True, started_at__lt=silent))


def resume(model: type[HeartbeatJob], task: Task) -> int:
    """Queue `task` (which takes a job's id) for every job of `model` not finished: at start-up, a queued job's
    message, or a running one's worker, may be gone. Returns how many were queued."""
    unfinished = list(model.objects.filter(status__in=["pending", "running"]).values_list("pk", flat=True))
    for pk in unfinished:
        transaction.on_commit(lambda pk=pk: task.delay(pk))
    return len(unfinished)


def not_to_take(job: HeartbeatJob | None, task: Task) -> str | None:
    """Why a task delivered for `job` must leave it alone, or None to go on (and claim it): it is gone or
    finished, or a live worker has it. In that last case the task looks again once that worker would have
    fallen silent; if it has by then, that delivery takes the job over."""
    if job is None or job.status in ("succeeded", "failed"):
        return "already done"
    if job.status == "running" and not job.silent:
        task.apply_async((job.pk,), countdown=SILENT_AFTER.total_seconds())
        return "running on another worker"
    return None


@contextmanager
def heartbeat(model: type[HeartbeatJob], pk: int, every: float = HEARTBEAT_EVERY.total_seconds()) -> Iterator[None]:
    """Say every `every` seconds, from a thread with its own database connection, that the job's worker is alive."""
    from django.db import connections

    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(every):
                model.objects.filter(pk=pk, status="running").update(heartbeat_at=timezone.now())
        finally:
            connections.close_all()  # this thread's own connection

    thread = threading.Thread(target=beat, name=f"{model.__name__.lower()}-{pk}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
