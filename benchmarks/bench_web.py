"""Page latency under load: 20 concurrent sessions against the production server (gunicorn) on the
`generate_demo --scale 10` campaign (≥ 100,000 posts).

    .venv/bin/python benchmarks/bench_web.py [--scale 10] [--sessions 20] [--rounds 10] [--workers 3] [--think 1]

Loads the campaign into the benchmark database (once: the data is kept in var/bench/web-<scale> and
reused while the database still holds it), runs a detection, builds a case, starts gunicorn, logs in one
user per session and has every session open the dashboard, the cluster list, the top cluster, an
account and the case, round after round, pausing about --think seconds between pages as a reader does
(--think 0 turns it into a stress test: every session fires its next request the moment one returns).
Prints p50 and p95 per page, and each page's p95 as a ratio to a static file served by the same gunicorn
workers under the same load in the same run (the baseline: a request with no page or data work).
Figures, never assertions: these machines are shared. The target is p95 ≤ 300 ms.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "investigator.settings")
from benchmarks import own_database  # noqa: E402

own_database("investigator_bench_web")
# Its own task queue: hashing tasks queued by the import must not reach the application's workers.
os.environ.setdefault("CELERY_BROKER_DIR", str(ROOT / "var" / "bench" / "broker"))
# The benchmark's users get a fresh random password each run: nothing to keep secret in the code.
PASSWORD = secrets.token_urlsafe(18)


# Building media clusters over ~150,000 pictures takes far longer than the pages need (an open item of
# media analysis), so the benchmark's detection leaves the picture signals out; the pages still show the
# posts' pictures.
SIGNALS = ["co_text", "co_similar_text", "co_link", "co_repost", "co_hashtag_sequence", "creation_burst",
           "look_alike_names", "synchronised_activity", "engagement_anomalies"]


def _setup(scale: float, hash_pictures: bool) -> dict[str, str]:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from accounts.coordination.services import detection_run_create, detection_run_execute
    from accounts.models import Cluster, Dataset, DetectionRun, ImportRun, Post
    from investigator.models import Case
    from investigator.roles import INVESTIGATOR, LEAD
    from investigator.services import case_create, case_items_add, user_create
    from media_analysis.models import MediaAsset
    from media_analysis.services import media_hash_requeue_stale

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    name = f"demo-x{scale:g}"
    # Each step is done once and skipped on later runs while the database keeps its result.
    if not ImportRun.objects.filter(dataset__name=name, status="succeeded").exists():
        folder = ROOT / "var" / "bench" / f"web-{scale:g}"
        if not (folder / "ground_truth.json").exists():
            shutil.rmtree(folder, ignore_errors=True)
            print(f"generating the demo campaign at scale {scale:g} into {folder} …", flush=True)
            call_command("generate_demo", str(folder), scale=scale)
        print("importing …", flush=True)
        call_command("import_data", str(folder), format="instaloader", dataset=name)
    media_hash_requeue_stale(older_than=timedelta(0))  # claims of an interrupted run
    pending = MediaAsset.objects.filter(hash_state="pending").count()
    if pending and hash_pictures:
        print(f"hashing {pending:,} pictures with {HASHERS} processes …", flush=True)
        connection.close()
        with multiprocessing.get_context("fork").Pool(HASHERS) as pool:
            pool.map(_hash_until_done, range(HASHERS))
    dataset = Dataset.objects.get(name=name)
    if not DetectionRun.objects.filter(dataset=dataset, status="succeeded").exists():
        print("detecting …", flush=True)
        detection_run_execute(run=detection_run_create(dataset=dataset, signals=SIGNALS, enqueue=False))
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    for username, role in (("bench-investigator", INVESTIGATOR), ("bench-lead", LEAD)):
        if not users.filter(username=username).exists():
            user_create(username=username, password=PASSWORD, role=role, validate=False)
        else:
            user = users.get(username=username)
            user.set_password(PASSWORD)
            user.save(update_fields=["password"])
    lead = users.get(username="bench-lead")
    cluster = Cluster.objects.filter(detection_run__dataset=dataset, detection_run__status="succeeded").order_by("-score").first()
    if cluster is None:
        raise SystemExit("the detection found no cluster; nothing to measure")
    case = Case.objects.filter(title="bench case").first()
    if case is None:
        case = case_create(user=lead, title="bench case")
        case_items_add(case=case, user=lead, kind="cluster", ids=[cluster.pk])
        case_items_add(case=case, user=lead, kind="account", ids=list(cluster.members.values_list("pk", flat=True)))
    account = cluster.members.order_by("-clustermember__centrality").first()
    print(f"{Post.objects.filter(datasets=dataset).count():,} posts in {name}; top cluster has {cluster.size} accounts")
    return {
        "baseline": "/static/investigator/favicon.svg",
        "dashboard": "/",
        "cluster list": "/clusters/",
        "cluster page": f"/clusters/{cluster.pk}/",
        "account page": f"/accounts/{account.pk}/",
        "case page": f"/cases/{case.pk}/",
    }


HASHERS = 2


def _hash_until_done(_: int) -> None:
    from django.db import connection

    from media_analysis.services import media_hash_batch, media_hash_claim

    connection.close()  # a forked child opens its own connection
    while ids := media_hash_claim(limit=200):
        media_hash_batch(asset_ids=ids)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _login(base: str):  # noqa: ANN202 - a requests.Session
    import requests

    session = requests.Session()
    page = session.get(f"{base}/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = session.post(f"{base}/login/", data={"username": "bench-lead", "password": PASSWORD,
                                                    "csrfmiddlewaretoken": token}, headers={"Referer": f"{base}/login/"})
    response.raise_for_status()
    return session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=10.0)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--think", type=float, default=1.0,
                        help="seconds each session waits between pages, as a person reading does (0: a stress test)")
    parser.add_argument("--skip-hashing", action="store_true", help="leave pictures unhashed (pages show them as pending)")
    args = parser.parse_args()
    pages = _setup(args.scale, hash_pictures=not args.skip_hashing)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:investigator.gunicorn", "investigator.wsgi:application",
         "--bind", f"127.0.0.1:{port}",
         "--workers", str(args.workers), "--log-level", "warning"], cwd=ROOT, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("gunicorn did not start") from None
                time.sleep(0.3)
        sessions = [_login(base) for _ in range(args.sessions)]
        for session in sessions[:2]:  # warm every worker's caches once
            for url in pages.values():
                session.get(base + url)
        timings: dict[str, list[float]] = {name: [] for name in pages}

        def visit(session) -> list[tuple[str, float]]:  # noqa: ANN001
            seen = []
            for _ in range(args.rounds):
                for name, url in pages.items():
                    started = time.perf_counter()
                    response = session.get(base + url)
                    seen.append((name, time.perf_counter() - started))
                    if response.status_code != 200:
                        raise SystemExit(f"{url} answered {response.status_code}")
                    time.sleep(args.think * (0.5 + random.random()))  # spread, so sessions do not march in step
            return seen

        with ThreadPoolExecutor(args.sessions) as pool:
            for seen in pool.map(visit, sessions):
                for name, seconds in seen:
                    timings[name].append(seconds * 1000)
    finally:
        server.terminate()
        server.wait(timeout=30)
    baseline = statistics.quantiles(timings["baseline"], n=20)[18]
    print(f"\n{args.sessions} concurrent sessions × {args.rounds} rounds, {args.think:g} s thinking between pages "
          f"(0.5–1.5×), gunicorn with {args.workers} workers")
    print(f"{'page':<18}{'p50 ms':>9}{'p95 ms':>9}{'p95 / baseline':>16}{'≤ 300 ms':>10}")
    for name, values in timings.items():
        p50 = statistics.median(values)
        p95 = statistics.quantiles(values, n=20)[18]
        print(f"{name:<18}{p50:>9.0f}{p95:>9.0f}{p95 / baseline:>15.1f}×{'yes' if p95 <= 300 else 'no':>10}")


if __name__ == "__main__":
    main()
