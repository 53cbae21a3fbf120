"""Tasks round-trip through real worker processes, with the default broker and with Redis."""

import pytest
from kombu import Connection

from investigator.tasks import ping

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_task_round_trips_through_a_real_worker(celery_worker_process, settings):
    transport_options = settings.CELERY_BROKER_TRANSPORT_OPTIONS if celery_worker_process.broker_url.startswith(
        "filesystem") else {}
    with Connection(celery_worker_process.broker_url, transport_options=transport_options) as conn:
        result = ping.apply_async(args=["hello"], connection=conn, queue=celery_worker_process.queue)
        reply = result.get(timeout=60)
    import os

    assert reply["echo"] == "hello"
    assert reply["worker_pid"] != os.getpid()  # ran in another process
    assert reply["worker_pid"] != celery_worker_process.process.pid  # in a pool child of the worker
    assert reply["database"] == settings.DATABASES["default"]["TEST"]["NAME"]
