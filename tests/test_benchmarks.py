"""Every benchmark still runs and prints its table, at a size that takes seconds.

The benchmarks print figures and never assert them (these machines are shared), so nothing else notices
when a change to the schema or a service breaks one: a column made required, a function renamed. Here each
script runs as a user runs it (`.venv/bin/python benchmarks/bench_….py`), in a benchmark database of the
test run's own, and its output is read for the figures it exists to print. The figures themselves are not
judged: only that they are there and sane (a rate above zero, a recall between 0 and 1).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
NUMBER = r"[\d,]+(?:\.\d+)?"


@pytest.fixture(scope="module")
def bench_env(django_db_blocker, tmp_path_factory) -> Iterator[dict[str, str]]:  # noqa: ANN001
    """The environment a benchmark runs in, as a user runs it (the application's settings), with a database
    (created here, dropped after), files and a task queue of this test run's own: no worker of the test run
    or of the application takes its tasks."""
    name = f"investigator_bench_tests_{os.getpid()}"
    scratch = tmp_path_factory.mktemp("bench")
    with django_db_blocker.unblock():
        params = {**connection.get_connection_params(), "dbname": "postgres"}
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    env = {key: value for key, value in os.environ.items() if key != "CELERY_BROKER_URL"}
    env.update({"DJANGO_SETTINGS_MODULE": "investigator.settings", "INVESTIGATOR_DB_NAME": name,
                "CELERY_QUEUE": name, "CELERY_BROKER_DIR": str(scratch / "broker"),
                **{key: str(scratch / key.lower()) for key in ("MEDIA_ROOT", "UPLOAD_ROOT", "EXPORT_ROOT")}})
    yield env
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(script: str, *args: str, env: dict[str, str], timeout: int = 240) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def figures(line: str) -> list[float]:
    return [float(n.replace(",", "")) for n in re.findall(NUMBER, line)]


def test_a_benchmark_refuses_to_empty_a_database_that_is_not_a_benchmarks(bench_env):
    """The benchmarks empty their database: one named like the application's is left alone."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_import.py"), "--sizes", "10"], cwd=ROOT,
                          env={**bench_env, "INVESTIGATOR_DB_NAME": "investigator"}, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode != 0
    assert "does not name a benchmark's" in done.stderr and "'investigator'" in done.stderr


def test_bench_import_prints_both_rates_their_ratio_and_the_halves(bench_env):
    out = run("bench_import.py", "--sizes", "3000", "--accounts", "200", "--halves", "--store-rows", "2000", env=bench_env)
    row = next(line for line in out.splitlines() if re.match(r"\s+3,000\s", line))
    seconds, rate, mib, their_seconds, their_rate, their_mib, ratio = figures(row)[1:8]
    assert min(rate, mib, their_rate, their_mib) > 0 and min(seconds, their_seconds) >= 0  # seconds: one decimal
    assert ratio == pytest.approx(rate / their_rate, abs=0.006)
    assert re.search(rf"reading alone {NUMBER} posts/s, storing alone {NUMBER} posts/s \(first [\d,]+ posts\)", out), out


def test_bench_coordination_prints_each_signal_beside_the_toolkits(bench_env):
    out = run("bench_coordination.py", "--tweets", "3000", "--accounts", "300", env=bench_env)
    rows = [line for line in out.splitlines() if re.match(r"(co_text|co_link|co_repost|co_similar_text)\s", line)]
    assert {row.split()[0] for row in rows} == {"co_text", "co_link", "co_repost", "co_similar_text"}, out
    assert all(row.rstrip().endswith(("yes", "NO")) for row in rows), out


def test_bench_lookup_prints_recall_and_latency_beside_the_exact_scan(bench_env):
    out = run("bench_lookup.py", "--rows", "20000", "--queries", "30", env=bench_env)
    lines = out.splitlines()
    header = next(n for n, line in enumerate(lines) if line.startswith("plan") and "recall" in line)
    table = lines[header + 1:lines.index("", header)]
    plans = {line[:28].strip(): figures(line[28:]) for line in table}
    assert len(plans) >= 3 and plans["numpy exact scan"][0] == 1.0, out
    assert plans["exact scan (media_analysis)"][0] == 1.0, out
    for name, (recall, p50, p95, *_) in plans.items():
        assert 0 <= recall <= 1 and 0 <= p50 <= p95, name


def test_bench_hashing_prints_each_decoding_against_the_plain_phash(bench_env):
    out = run("bench_hashing.py", "--images", "3", env=bench_env)
    assert re.search(rf"plain imagehash.phash\(open\)\s+{NUMBER}\s+1.0x", out), out
    every = next(line for line in out.splitlines() if line.startswith("every signature"))
    assert figures(every)[-1] > 0


def test_bench_media_clusters_in_memory_and_end_to_end_in_the_database(bench_env):
    out = run("bench_media_clusters.py", "--sizes", "1500", "--exact-up-to", "1500", env=bench_env)
    row = next(line for line in out.splitlines() if re.match(r"\s+1,500\s", line))
    same_centre, with_family_first = figures(row)[-2:]
    assert 0.9 <= same_centre <= 1 and 0.9 <= with_family_first <= 1, row

    out = run("bench_media_clusters.py", "--database", "--sizes", "1000,2000", env=bench_env)
    rows = {int(figures(line)[0]): figures(line) for line in out.splitlines() if re.match(r"\s+[12],000\s+\d", line)}
    assert set(rows) == {1000, 2000}, out
    clusters, with_copies = rows[2000][-2:]
    assert 0 < with_copies <= clusters < 2000
    assert "2× the pictures took" in out


def test_bench_matching_prints_recall_and_precision_per_alteration(bench_env):
    out = run("bench_matching.py", "--bases", "4", env=bench_env)
    assert out.startswith("4 bases, "), out
    rows = [line for line in out.splitlines() if line.rstrip().endswith((" ok", "MISSED"))]
    assert len(rows) == int(re.search(r"4 bases, (\d+) alterations", out).group(1)), out
    for row in rows:
        recall, precision = figures(row[40:])[:2]
        assert 0 <= recall <= 1 and 0 <= precision <= 1, row
    assert re.search(r"\d+ of \d+ alterations meet recall ≥ 0.95 at precision ≥ 0.99", out), out


def test_bench_web_prints_each_pages_latency_against_a_static_file(bench_env):
    out = run("bench_web.py", "--scale", "0.03", "--sessions", "2", "--rounds", "1", "--workers", "1", "--think", "0",
              "--skip-hashing", env=bench_env, timeout=400)
    for page in ("dashboard", "cluster list", "cluster page", "account page", "case page"):
        row = next((line for line in out.splitlines() if line.startswith(page)), None)
        assert row is not None and len(figures(row[len(page):])) >= 3, out


def test_bench_lookup_full_prints_whole_lookups_beside_the_numpy_scan(bench_env):
    out = run("bench_lookup_full.py", "--rows", "3000", "--queries", "20", env=bench_env)
    rows = {line[:44].strip(): figures(line[44:]) for line in out.splitlines()
            if line.startswith(("pHash-only", "candidates (", "whole lookup"))}
    assert len(rows) == 3 and rows["pHash-only exact NumPy scan"][2] == 1.0, out
    for name, (p50, p95, ratio) in rows.items():
        assert 0 <= p50 <= p95 and ratio >= 0, name
    recall = re.search(r"recall of the probes' stored families ([\d.]+) \(([\d,]+) of ([\d,]+)\)", out)
    assert recall and 0 < float(recall[1]) <= 1 and int(recall[3].replace(",", "")) > 0, out
    again = run("bench_lookup_full.py", "--rows", "3000", "--queries", "20", env=bench_env)
    assert "stored 3,000 pictures" in out and "stored 3,000" not in again  # kept between runs of the same size
