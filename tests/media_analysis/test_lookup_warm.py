"""Web workers read the hashes image lookups scan as they start, not in the first lookup's request."""

from __future__ import annotations

import random
import threading
import time

import pytest
from django.db import connection

from investigator import gunicorn
from media_analysis import hash_scan
from media_analysis.matching import Signature
from media_analysis.models import MediaAsset
from media_analysis.selectors import media_candidates


def _bits(rng: random.Random, n: int) -> str:
    return format(rng.getrandbits(n), f"0{n}b")


def _warm_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "lookups-warm"]


def _connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_web_worker_reads_the_lookup_hashes_as_it_starts_on_a_connection_it_closes(monkeypatch, settings):
    monkeypatch.setattr(hash_scan, "_scans", {})  # this process's copies, as a fresh worker has none
    settings.MEDIA_SCAN_MAX_ROWS = 1000
    rng = random.Random(5)
    MediaAsset.objects.bulk_create(
        [MediaAsset(sha256=f"{i:064x}", file=f"t/{i}.jpg", size_bytes=1, hash_state="done", phash=_bits(rng, 64),
                    centre=_bits(rng, 128), pdq=_bits(rng, 256) if i % 2 else None) for i in range(30)]
        + [MediaAsset(sha256="f" * 64, file="t/pending.jpg", size_bytes=1)])  # not hashed yet: not in the copy
    before = _connections()

    gunicorn.post_worker_init(worker=None)
    (thread,) = _warm_threads()
    thread.join(timeout=60)

    assert not thread.is_alive()
    assert {scan.column: len(scan) for scan in hash_scan._scans.values()} == {"phash": 30, "centre": 30, "pdq": 15}
    deadline = time.monotonic() + 10
    while _connections() > before and time.monotonic() < deadline:  # a closed backend takes a moment to go
        time.sleep(0.05)
    assert _connections() == before

    # The first lookup uses the copies read ahead: it only reads rows written since.
    first = MediaAsset.objects.filter(hash_state="done").order_by("id").first()
    reads = []
    read = hash_scan.HashScan._read
    monkeypatch.setattr(hash_scan.HashScan, "_read", lambda self, cursor, since: reads.append(since) or read(self, cursor, since))
    other = _bits(rng, 128)
    probe = Signature(phash=first.phash, phash_flip=_bits(rng, 64), centre=(other,) * 5, centre_flip=other,
                      trimmed=(other,) * 5, trimmed_flip=other, pdq=_bits(rng, 256), pdq_flip=_bits(rng, 256),
                      pdq_quality=0)
    with connection.cursor() as cursor:
        found = media_candidates(cursor, probe, neighbours=3)
    assert first.id in found
    assert reads and None not in reads


@pytest.mark.django_db
def test_no_reading_ahead_when_switched_off(monkeypatch, settings):
    monkeypatch.setattr(hash_scan, "_scans", {})
    settings.MEDIA_LOOKUP_WARM = False
    gunicorn.post_worker_init(worker=None)
    assert not _warm_threads()
    assert hash_scan._scans == {}
