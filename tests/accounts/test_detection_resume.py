"""A detection whose worker dies (killed, out of memory, `make run` stopped mid-run) is started again rather than
left "running" for ever: its worker says it is alive, and a silent run may be claimed again."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.coordination.services import (
    detection_run_claim,
    detection_run_create,
    detection_run_execute,
    detection_runs_resume,
)
from accounts.models import DetectionRun
from accounts.tasks import run_detection
from investigator import jobs
from tests.workbench import build_investigation

LONG_AGO = timedelta(minutes=10)


def _running(run: DetectionRun, *, heard: timedelta | None, started: timedelta = LONG_AGO) -> DetectionRun:
    now = timezone.now()
    DetectionRun.objects.filter(pk=run.pk).update(
        status="running", started_at=now - started, heartbeat_at=None if heard is None else now - heard,
        progress_done=7, stage="Grouping copies of pictures: 2,000 of 145,575")
    run.refresh_from_db()
    return run


@pytest.mark.django_db(transaction=True)
def test_a_running_detection_says_it_is_alive_from_its_own_thread():
    inv = build_investigation()
    run = _running(detection_run_create(dataset=inv.dataset, enqueue=False), heard=LONG_AGO)
    assert run.silent
    with jobs.heartbeat(DetectionRun, run.pk, every=0.05):
        time.sleep(0.5)
        run.refresh_from_db()
        assert timezone.now() - run.heartbeat_at < timedelta(seconds=5) and not run.silent
    assert not [t for t in threading.enumerate() if t.name == f"detectionrun-{run.pk}-heartbeat"]

    fresh = detection_run_execute(run=detection_run_create(dataset=inv.dataset, signals=["co_text"], enqueue=False))
    assert fresh.status == "succeeded" and fresh.heartbeat_at is not None


@pytest.mark.django_db
def test_a_run_is_claimed_when_queued_or_when_its_worker_fell_silent():
    inv = build_investigation()

    def make() -> DetectionRun:
        return detection_run_create(dataset=inv.dataset, enqueue=False)

    assert detection_run_claim(run_id=make().pk)
    assert not detection_run_claim(run_id=_running(make(), heard=timedelta(seconds=5)).pk)  # alive
    assert not detection_run_claim(run_id=_running(make(), heard=None, started=timedelta(seconds=5)).pk)
    for silent in (_running(make(), heard=LONG_AGO), _running(make(), heard=None)):
        assert silent.silent and detection_run_claim(run_id=silent.pk)
        silent.refresh_from_db()
        assert (silent.status, silent.progress_done, silent.stage, silent.silent) == ("running", 0, "", False)
    done = make()
    DetectionRun.objects.filter(pk=done.pk).update(status="succeeded")
    assert not detection_run_claim(run_id=done.pk)


@pytest.mark.django_db
def test_a_second_delivery_leaves_a_live_run_to_its_worker(settings):
    inv = build_investigation()
    alive = _running(detection_run_create(dataset=inv.dataset, enqueue=False), heard=timedelta(seconds=1))
    assert run_detection.run(alive.pk) == "running on another worker"
    alive.refresh_from_db()
    assert alive.progress_done == 7  # untouched
    DetectionRun.objects.filter(pk=alive.pk).update(status="succeeded")
    assert run_detection.run(alive.pk) == "already done"


@pytest.mark.django_db
def test_the_page_says_when_a_runs_worker_fell_silent(client, cast):
    inv = build_investigation()
    run = _running(detection_run_create(dataset=inv.dataset, enqueue=False), heard=LONG_AGO)
    client.force_login(cast["investigator"])
    body = client.get(reverse("accounts:detection", args=[run.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "No word from its worker since" in body and "starts again from the beginning" in body
    _running(run, heard=timedelta(seconds=1))
    body = client.get(reverse("accounts:detection", args=[run.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "No word from its worker" not in body


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("celery_worker_process", ["filesystem"], indirect=True)
def test_a_run_whose_worker_died_is_run_again_when_resumed(celery_worker_process):
    """What `make run` does at start: the run a killed worker left "running", and one whose message was lost,
    are both queued again, and a worker finishes them."""
    inv = build_investigation()
    dead = _running(detection_run_create(dataset=inv.dataset, signals=["co_text", "creation_burst"], enqueue=False),
                    heard=LONG_AGO)
    lost = detection_run_create(dataset=inv.dataset, signals=["co_text", "creation_burst"], enqueue=False)
    assert detection_runs_resume() == 2
    deadline = time.monotonic() + 120
    while DetectionRun.objects.filter(pk__in=[dead.pk, lost.pk], status__in=["pending", "running"]).exists():
        assert time.monotonic() < deadline, celery_worker_process.log.read_text()[-3000:]
        time.sleep(0.3)
    for run in DetectionRun.objects.filter(pk__in=[dead.pk, lost.pk]):
        assert run.status == "succeeded" and run.progress_done == run.progress_total, run.error
        assert run.summary["clusters"] == 1


@pytest.mark.django_db
def test_a_worker_whose_run_was_claimed_again_while_it_was_silent_stores_nothing(caplog):
    """A worker kept silent past SILENT_AFTER (one long call holding the GIL) finds at its last step that
    another worker claimed the run again: only the latest claim stores edges and clusters, once."""
    inv = build_investigation()
    run = detection_run_create(dataset=inv.dataset, signals=["co_text", "creation_burst"], enqueue=False)

    def progress(label: str) -> None:
        if label == "communities":  # meanwhile, another worker found the run silent and claimed it
            DetectionRun.objects.filter(pk=run.pk).update(started_at=timezone.now() + timedelta(seconds=1))

    outcome = detection_run_execute(run=run, progress=progress)
    assert outcome.status == "running" and not outcome.clusters.exists() and not outcome.edges.exists()
    assert "claimed again by another worker" in caplog.text

    again = detection_run_execute(run=detection_run_create(dataset=inv.dataset, signals=["co_text", "creation_burst"],
                                                           enqueue=False))
    assert again.status == "succeeded" and again.clusters.count() == 1
