"""`make run` end to end: a fresh data folder, demo users and data, worker and web server, Ctrl-C."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests
from django.conf import settings

from investigator import embedded_db

pytestmark = pytest.mark.worker


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(var_dir: Path, port: int, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in {"CELERY_BROKER_DIR", "MEDIA_ROOT", "CELERY_QUEUE",
                                                              "INVESTIGATOR_DB_NAME", "CELERY_BROKER_URL"}}
    env.update({"DJANGO_SETTINGS_MODULE": "investigator.settings", "INVESTIGATOR_VAR_DIR": str(var_dir),
                "WEB_CONCURRENCY": "1", "CELERY_CONCURRENCY": "1"})
    env.pop("DATABASE_URL", None)
    return subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--bind", f"127.0.0.1:{port}", "--demo-scale", "0.01"],
        cwd=settings.BASE_DIR, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )


def _wait_ready(process: subprocess.Popen, log: Path, timeout: float = 240) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text()
        if "Investigator is running at" in text:
            return text
        assert process.poll() is None, text
        time.sleep(0.5)
    process.kill()
    raise AssertionError(log.read_text())


def _stop(process: subprocess.Popen) -> list[psutil.Process]:
    children = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    assert process.wait(timeout=90) == 0
    return children


def test_serve_starts_everything_with_demo_and_stops_cleanly(tmp_path):
    var_dir = tmp_path / "var"
    port = _free_port()
    log = tmp_path / "serve.log"
    process = _start(var_dir, port, log)
    try:
        output = _wait_ready(process, log)
        assert "Demo users" in output
        # The demo's clusters are found by a detection queued with the import, which waits for the hashing.
        assert re.search(r"Queued detection run \d+ on the demo campaign", output), output
        # The import queues its pictures' hashing; the start does not queue them a second time.
        assert "Queued hashing for" not in output
        password = re.search(r"^\s+investigator\s+(\S+)$", output, re.MULTILINE).group(1)
        assert (var_dir / "demo_credentials.txt").stat().st_mode & 0o077 == 0
        session = requests.Session()
        base = f"http://127.0.0.1:{port}"
        login_page = session.get(f"{base}/login/", timeout=10)
        assert login_page.status_code == 200
        response = session.post(
            f"{base}/login/",
            data={"username": "investigator", "password": password, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
            headers={"Referer": f"{base}/login/"}, timeout=10,
        )
        assert response.status_code == 200 and "Datasets" in response.text
        assert re.search(r"<td>demo</td><td class=\"num\">\d{2,}</td>", response.text), response.text
        assert session.get(f"{base}/static/vendor/htmx/htmx.min.js", timeout=10).status_code == 200
        processes = psutil.Process(process.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in processes)
        assert "celery" in names and "worker" in names and "gunicorn" in names
        # The web worker reads the hashes image lookups scan as it starts, not in the first lookup's request.
        deadline = time.monotonic() + 60
        while "Image lookups ready:" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert re.search(r"Image lookups ready: \d+ pictures in memory", log.read_text()), log.read_text()
    finally:
        children = _stop(process)
    time.sleep(1)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not embedded_db.is_running(var_dir / "pgdata")

    # A second start reuses the data: no generation, no import.
    log2 = tmp_path / "serve2.log"
    process = _start(var_dir, port, log2)
    try:
        started = time.monotonic()
        output = _wait_ready(process, log2)
        assert "Demo campaign already imported" in output and "Demo users exist" in output
        assert "Queued detection run" not in output
        assert time.monotonic() - started < 120
        # Another start from the same folder refuses at once, and leaves the running one (and its database) be.
        log3 = tmp_path / "serve3.log"
        third = _start(var_dir, _free_port(), log3)
        assert third.wait(timeout=60) != 0
        assert "Investigator is already running from" in log3.read_text() and str(process.pid) in log3.read_text()
        assert requests.get(f"http://127.0.0.1:{port}/login/", timeout=10).status_code == 200
        assert embedded_db.is_running(var_dir / "pgdata")
        # Ctrl-C and an immediate restart: the new one waits for the old one to have stopped everything.
        process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 30
        while "stopping" not in (var_dir / "serve.lock").read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        log4 = tmp_path / "serve4.log"
        fourth = _start(var_dir, port, log4)
        assert process.wait(timeout=90) == 0
        try:
            assert "Waiting for the Investigator that is stopping" in _wait_ready(fourth, log4)
        finally:
            _stop(fourth)
    finally:
        if process.poll() is None:
            _stop(process)
    assert not embedded_db.is_running(var_dir / "pgdata")

    # An address another program holds is reported before anything starts.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        log5 = tmp_path / "serve5.log"
        fifth = _start(var_dir, taken.getsockname()[1], log5)
        assert fifth.wait(timeout=60) != 0
    assert "cannot listen on 127.0.0.1:" in log5.read_text()
    assert not embedded_db.is_running(var_dir / "pgdata")
