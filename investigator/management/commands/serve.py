"""`make run`: database, migrations, demo users and data, a Celery worker and the web server."""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import IO

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, connections
from tqdm import tqdm

from investigator import embedded_db
from investigator.roles import ROLES

DEMO_DATASET = "demo"


class Command(BaseCommand):
    help = "Start Investigator: PostgreSQL, migrations, demo data, a Celery worker and gunicorn. Ctrl-C stops it all."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default=settings.SERVE_BIND)
        parser.add_argument("--no-demo", action="store_true", help="skip demo users and the demo campaign")
        parser.add_argument("--demo-scale", type=float, default=1.0)

    def handle(self, *args: object, **options: object) -> None:
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.stopping = False
        self.take_lock()
        self.check_bind_free(str(options["bind"]))
        embedded = settings.DATABASES["default"]["ENGINE"] == "investigator.db_embedded"
        self.step("Starting PostgreSQL" + (" (embedded, var/pgdata)" if embedded else " (DATABASE_URL)"))
        connection.ensure_connection()
        self.step("Applying migrations")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        self.resume_jobs()
        # Before the demo import: its pictures are queued by the import itself, not a second time here.
        self.prepare_queue()
        if not options["no_demo"]:
            self.ensure_demo_users()
            self.ensure_demo_data(float(options["demo_scale"]))  # type: ignore[arg-type]
        connections.close_all()  # children open their own connections
        signal.signal(signal.SIGINT, self.on_signal)
        signal.signal(signal.SIGTERM, self.on_signal)
        try:
            self.start_children(str(options["bind"]))
            self.wait_for_web(str(options["bind"]))
            self.stdout.write(self.style.SUCCESS(
                f"\nInvestigator is running at http://{options['bind']}/  (Ctrl-C stops it)\n"
            ))
            self.supervise()
        finally:
            self.lock_state("stopping")
            self.stop_children()
            if embedded:
                self.step("Stopping PostgreSQL")
                embedded_db.stop(Path(settings.EMBEDDED_POSTGRES_DIR))
            self.stdout.write("Stopped.")

    def take_lock(self) -> None:
        """One serve per data folder, held until it has stopped everything: a second one would share the
        database and stop it when it exits (for example on finding the address taken), under the first.
        A serve still stopping is waited for, so Ctrl-C and an immediate restart work."""
        path = settings.VAR_DIR / "serve.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid, _, state = handle.read().strip().partition(" ")
            if state != "stopping":
                handle.close()
                raise CommandError(f"Investigator is already running from {settings.VAR_DIR} (process {pid or '?'}); "
                                   "stop it first (Ctrl-C where it runs). Two would share one database.") from None
            self.step(f"Waiting for the Investigator that is stopping (process {pid})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        self.lock: IO[str] = handle
        self.lock_state("running")

    def lock_state(self, state: str) -> None:
        self.lock.seek(0)
        self.lock.truncate()
        self.lock.write(f"{os.getpid()} {state}\n")
        self.lock.flush()

    def check_bind_free(self, bind: str) -> None:
        """Say at once when the address is taken, before minutes of set-up end in the web server's exit."""
        if bind.startswith(("unix:", "fd://")):
            return
        host, port = _host_port(bind)
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
            try:
                probe.bind((host, int(port)))
            except (OSError, ValueError) as exc:
                raise CommandError(f"cannot listen on {bind} ({getattr(exc, 'strerror', None) or exc}): another "
                                   "program may be using it; choose another address with --bind or "
                                   "INVESTIGATOR_BIND") from exc

    def step(self, message: str) -> None:
        self.stdout.write(f"• {message}…")
        self.stdout.flush()

    def ensure_demo_users(self) -> None:
        from investigator.services import user_create

        user_model = get_user_model()
        credentials = settings.VAR_DIR / "demo_credentials.txt"
        missing = [role for role in ROLES if not user_model.objects.filter(username=role).exists()]
        if not missing:
            self.stdout.write(f"• Demo users exist (credentials in {credentials})")
            return
        shared_password = os.environ.get("DEMO_PASSWORD", "")
        lines = []
        for role in missing:
            password = shared_password or secrets.token_urlsafe(12)
            user_create(username=role, password=password, role=role, validate=not shared_password)
            lines.append(f"{role:<13} {password}")
        credentials.touch(mode=0o600)
        with credentials.open("a") as handle:
            handle.write("\n".join(lines) + "\n")
        self.stdout.write(self.style.WARNING("Demo users (shown once; also saved to var/demo_credentials.txt):"))
        for line in lines:
            self.stdout.write(f"    {line}")

    def ensure_demo_data(self, scale: float) -> None:
        from accounts.coordination.services import detection_run_create
        from accounts.demo import DemoSpec, generate_demo
        from accounts.demo.generator import plan_demo
        from accounts.models import ImportRun, JobStatus
        from accounts.services import import_paths

        if ImportRun.objects.filter(dataset__name=DEMO_DATASET, status=JobStatus.SUCCEEDED).exists():
            self.stdout.write("• Demo campaign already imported")
            return
        demo_dir = settings.VAR_DIR / "demo"
        if not (demo_dir / "ground_truth.json").exists():
            shutil.rmtree(demo_dir, ignore_errors=True)  # an interrupted earlier run
            spec = DemoSpec(seed=7, scale=scale)
            with tqdm(total=len(plan_demo(spec)[0]), unit="account", desc="Generating demo campaign") as bar:
                generate_demo(demo_dir / "tmp", spec, progress=bar.update)
            (demo_dir / "tmp").rename(demo_dir / "instaloader")
            shutil.move(str(demo_dir / "instaloader" / "ground_truth.json"), demo_dir / "ground_truth.json")
        source = [demo_dir / "instaloader"]
        with tqdm(unit="item", desc="Importing demo campaign") as bar:
            run = import_paths(dataset_name=DEMO_DATASET, format="instaloader", paths=source, user=None,
                               progress_total=lambda total: setattr(bar, "total", total), progress=bar.update)
        self.stdout.write(f"• Imported {run.created_count} accounts and posts; images are hashed in the background")
        # Its clusters are what a newcomer comes to see: a worker finds them once the pictures are hashed.
        detection = detection_run_create(dataset=run.dataset)
        self.stdout.write(f"• Queued detection run {detection.pk} on the demo campaign: its clusters appear on the"
                          " dashboard once the pictures are hashed")

    def resume_jobs(self) -> None:
        """Detection runs and case file builds the last start left unfinished: their messages, or their worker,
        may be gone with it (investigator.jobs)."""
        from accounts.coordination.services import detection_runs_resume
        from investigator.services import case_exports_resume

        if resumed := detection_runs_resume():
            self.step(f"Resuming {resumed} unfinished detection run{'s' if resumed != 1 else ''}")
        if resumed := case_exports_resume():
            self.step(f"Resuming {resumed} unfinished case file build{'s' if resumed != 1 else ''}")

    def prepare_queue(self) -> None:
        from accounts.services import import_runs_fail_stale
        from media_analysis.selectors import media_hash_counts
        from media_analysis.services import media_hash_requeue_stale, media_hashing_schedule

        if settings.CELERY_BROKER_URL.startswith("filesystem://"):
            cutoff = time.time() - 24 * 3600
            for message in (settings.CELERY_BROKER_DIR / "processed").glob("*.msg"):
                if message.stat().st_mtime < cutoff:
                    message.unlink(missing_ok=True)
        media_hash_requeue_stale()
        import_runs_fail_stale()
        counts = media_hash_counts()  # new pictures, and pictures hashed with an older signature
        if waiting := counts.pending + counts.outdated:
            media_hashing_schedule(count=waiting)
            parts = [f"{n:,} {what}" for n, what in ((counts.pending, "new"), (counts.outdated, "to hash again with the "
                                                                                  "newer signature")) if n]
            self.step(f"Queued hashing for {waiting:,} picture{'s' if waiting != 1 else ''} ({', '.join(parts)})")

    def start_children(self, bind: str) -> None:
        python = sys.executable
        worker = [python, "-m", "celery", "-A", "investigator", "worker", "--loglevel=INFO",
                  f"--concurrency={settings.SERVE_CELERY_CONCURRENCY}", "-Q", settings.CELERY_TASK_DEFAULT_QUEUE,
                  "-n", f"worker-{os.getpid()}@%h"]
        web = [python, "-m", "gunicorn", "-c", "python:investigator.gunicorn", "investigator.wsgi:application",
               "--bind", bind, "--workers", str(settings.SERVE_WEB_WORKERS), "--access-logfile", "-", "--graceful-timeout", "10"]
        env = {**os.environ, "INVESTIGATOR_EMBEDDED_AUTOSTART": "0"}
        for name, command in (("worker", worker), ("web", web)):
            self.step(f"Starting {name}")
            # Own session: Ctrl-C reaches only this process, which stops the children in order.
            self.children.append((name, subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, start_new_session=True)))

    def wait_for_web(self, bind: str, timeout: float = 60) -> None:
        """Announce the address only once the web server accepts connections."""
        host, port = _host_port(bind)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping:
            for name, child in self.children:
                if child.poll() is not None:
                    raise CommandError(f"the {name} process exited with code {child.returncode}")
            try:
                with socket.create_connection((host, int(port)), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        if not self.stopping:
            raise CommandError(f"the web server did not start listening on {bind} within {timeout:.0f} s")

    def supervise(self) -> None:
        while not self.stopping:
            for name, child in self.children:
                if child.poll() is not None:
                    raise CommandError(f"the {name} process exited with code {child.returncode}")
            time.sleep(0.5)

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def stop_children(self) -> None:
        for name, child in reversed(self.children):
            if child.poll() is None:
                self.step(f"Stopping {name}")
                child.send_signal(signal.SIGTERM)
        # A worker finishes the batch in hand (its message is re-delivered if it cannot).
        deadline = time.monotonic() + 60
        for _, child in self.children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # The whole process group: pool processes of a worker that was killed must not linger.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def _host_port(bind: str) -> tuple[str, str]:
    """gunicorn's HOST:PORT ([::1]:8000 for IPv6; :8000 for every address, reached here on the loopback)."""
    host, _, port = bind.rpartition(":")
    return host.strip("[]") or "127.0.0.1", port
