"""Shared fixtures: the cast of users, and real Celery workers on the test database."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

from investigator.roles import ROLES

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def make_user(db):  # noqa: ANN001, ANN201
    from investigator.services import user_create

    def make(role: str | None, username: str | None = None):  # noqa: ANN202
        from django.contrib.auth import get_user_model

        name = username or (role or "outsider")
        if role is None:
            return get_user_model().objects.create_user(username=name, password="outsider-pass-123")
        return user_create(username=name, password=f"{name}-pass-123", role=role, validate=False)

    return make


@pytest.fixture
def cast(make_user):  # noqa: ANN001, ANN201
    """One user per role, plus an outsider with no role."""
    users = {role: make_user(role) for role in ROLES}
    users["outsider"] = make_user(None)
    return users


def redis_available(url: str = REDIS_URL) -> bool:
    from urllib.parse import urlparse

    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class Worker:
    broker_url: str
    queue: str
    process: subprocess.Popen
    log: Path


def start_worker(broker: str, log_dir: Path) -> Worker:
    """A real `celery worker` process on the test database, listening on a private queue."""
    database = settings.DATABASES["default"]["TEST"]["NAME"]
    # The default queue: tasks queued by the code under test (on commit) reach this worker.
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "INVESTIGATOR_DB_NAME": database,
        "CELERY_QUEUE": queue,
    }
    broker_url = "filesystem://localhost/" if broker == "filesystem" else REDIS_URL
    if broker == "redis":
        env["CELERY_BROKER_URL"] = REDIS_URL
    else:
        env.pop("CELERY_BROKER_URL", None)
    log = log_dir / f"worker-{broker}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "investigator", "worker", "--loglevel=INFO", "--concurrency=2",
         "-Q", queue, "-n", f"test-{broker}-{os.getpid()}@%h", "--without-gossip", "--without-mingle"],
        cwd=settings.BASE_DIR, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"worker exited early:\n{log.read_text()}")
        if "ready." in log.read_text():
            return Worker(broker_url, queue, process, log)
        time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"worker did not become ready:\n{log.read_text()}")


def stop_worker(worker: Worker) -> None:
    worker.process.terminate()
    try:
        worker.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.process.kill()


@pytest.fixture(scope="session", params=["filesystem", "redis"])
def celery_worker_process(request, django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[Worker]:  # noqa: ANN001
    """Real workers for both brokers. Redis must be there on CI; on a laptop without it that case is skipped."""
    broker = request.param
    if broker == "redis" and not redis_available():
        if os.environ.get("CI"):
            pytest.fail(f"Redis is required on CI and is not reachable at {REDIS_URL}")
        pytest.skip(f"no Redis server at {REDIS_URL} (start one, or set TEST_REDIS_URL, to test the Redis broker)")
    worker = start_worker(broker, tmp_path_factory.mktemp(f"worker-{broker}"))
    yield worker
    stop_worker(worker)


@pytest.fixture(scope="session", autouse=True)
def _test_run_lifecycle() -> Iterator[None]:
    """Stop the embedded PostgreSQL at the end if this run started it; remove the run's folders."""
    from django.db import connections

    from investigator import embedded_db

    embedded = settings.DATABASES["default"]["ENGINE"] == "investigator.db_embedded"
    pgdata = Path(settings.EMBEDDED_POSTGRES_DIR)
    was_running = embedded and embedded_db.is_running(pgdata)
    yield
    if embedded and not was_running:
        connections.close_all()
        embedded_db.stop(pgdata)
    shutil.rmtree(os.environ["INVESTIGATOR_TEST_RUN_DIR"], ignore_errors=True)


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory) -> tuple[Path, dict]:  # noqa: ANN001
    """A small demo campaign (the full core, a reduced background), generated once per test run."""
    from accounts.demo import DemoSpec, generate_demo

    outdir = tmp_path_factory.mktemp("demo") / "campaign"
    truth = generate_demo(outdir, DemoSpec(seed=11, scale=0.03), processes=2)
    return outdir, truth
