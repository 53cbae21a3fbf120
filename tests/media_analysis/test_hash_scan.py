"""The in-memory exact scan behind image lookups: the same answer as a brute-force count of differing bits,
and every row written after it was loaded is seen, whatever order the writing transactions end in."""

from __future__ import annotations

import os
import random
import threading

import numpy as np
import pytest
from django.db import connection

from media_analysis.hash_scan import HashScan, parse_binary_bigints
from tests.connections import another_connection

TABLE = "scan_probe"


def _create(cursor, *, temporary: bool = True) -> None:  # noqa: ANN001
    cursor.execute(f"CREATE {'TEMP ' if temporary else ''}TABLE {TABLE} (id bigint, v bit(128), "
                   "hash_xid bigint NOT NULL DEFAULT pg_current_xact_id()::text::bigint)")


def _insert(cursor, rows: list[tuple[int, int]]) -> None:  # noqa: ANN001
    cursor.executemany(f"INSERT INTO {TABLE} (id, v) VALUES (%s, %s::bit(128))",  # noqa: S608
                       [(i, format(v, "0128b")) for i, v in rows])


def _family(rng: random.Random, base: int, count: int, start: int, most: int = 30) -> list[tuple[int, int]]:
    rows = []
    for i in range(count):
        value = base
        for bit in rng.sample(range(128), rng.randrange(most)):
            value ^= 1 << bit
        rows.append((start + i, value))
    return rows


def _distance(a: int, b: int) -> int:
    return (a ^ b).bit_count()


@pytest.mark.django_db
def test_scan_matches_a_brute_force_count_within_the_threshold_and_for_the_k_nearest():
    rng = random.Random(11)
    probe = rng.getrandbits(128)
    rows = _family(rng, probe, 300, 0) + [(300 + i, rng.getrandbits(128)) for i in range(2000)]
    rows.append((5000, probe ^ ((1 << 128) - 1)))  # every bit differs
    with connection.cursor() as cursor:
        _create(cursor)
        _insert(cursor, rows)
        cursor.execute(f"INSERT INTO {TABLE} (id, v) VALUES (9999, NULL)")  # noqa: S608 (a picture not hashed: skipped)
        scan = HashScan(table=TABLE, column="v", bits=128)
        scan.refresh(cursor)
    assert len(scan) == len(rows)
    vector = format(probe, "0128b")
    for threshold in (0, 10, 26, 40):
        exact = {i for i, v in rows if _distance(v, probe) <= threshold}
        assert set(scan.near(vector, max_distance=threshold).tolist()) == exact
    # Fewer than k within the threshold: the k nearest, ties cut at the k-th distance.
    found = scan.near(vector, max_distance=5, k=400).tolist()
    distances = sorted(_distance(v, probe) for _, v in rows)
    by_id = dict(rows)
    assert len(found) == len(set(found)) == 400
    assert sorted(_distance(by_id[i], probe) for i in found) == distances[:400]
    # More than k within the threshold: all of them.
    assert len(scan.near(vector, max_distance=40, k=10)) == sum(d <= 40 for d in distances) > 10
    # Far away, the sum of 128 differing bits is still counted (no 8-bit overflow).
    assert 5000 not in scan.near(vector, max_distance=127).tolist()
    with pytest.raises(ValueError, match="expected 128 bits"):
        scan.near(vector[:64], max_distance=5)


@pytest.mark.django_db
def test_rows_written_after_the_load_are_read_once():
    rng = random.Random(5)
    probe = rng.getrandbits(128)
    with connection.cursor() as cursor:
        _create(cursor)
        _insert(cursor, [(i, rng.getrandbits(128)) for i in range(50)])
        scan = HashScan(table=TABLE, column="v", bits=128)
        scan.refresh(cursor)
        assert len(scan) == 50 and scan.near(format(probe, "0128b"), max_distance=3).size == 0
        held = scan.rows  # what a search in another thread would be reading during the refresh
        _insert(cursor, [(100, probe ^ 0b101)])
        for _ in range(3):  # read again and again in this same open transaction: still one entry
            scan.refresh(cursor)
        assert len(scan) == 51
        # A refresh replaces the ids and the hashes together and changes neither in place.
        assert len(held[0]) == len(held[1]) == 50 and 100 not in held[0].tolist() and scan.codes.shape == (51, 2)
        assert scan.near(format(probe, "0128b"), max_distance=3).tolist() == [100]


@pytest.mark.django_db(transaction=True)
def test_a_transaction_that_commits_after_the_load_is_seen_even_if_it_began_before():
    """A writer takes its transaction id, the scan loads (and cannot see its uncommitted row), then the writer
    commits. Polling by time or by id order would miss that row; the xmin rule does not."""
    rng = random.Random(8)
    probe = rng.getrandbits(128)
    with connection.cursor() as cursor:
        _create(cursor, temporary=False)
    try:
        with another_connection() as writer:
            writer.execute(f"INSERT INTO {TABLE} (id, v) VALUES (1, %s::bit(128))", [format(probe, "0128b")])  # noqa: S608
            with connection.cursor() as cursor:
                _insert(cursor, [(2, probe ^ 1)])  # a later transaction, committed at once
                scan = HashScan(table=TABLE, column="v", bits=128)
                scan.refresh(cursor)
                assert scan.near(format(probe, "0128b"), max_distance=2).tolist() == [2]
                writer.commit()
                scan.refresh(cursor)
                assert sorted(scan.near(format(probe, "0128b"), max_distance=2).tolist()) == [1, 2]
                scan.refresh(cursor)
                assert len(scan) == 2
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {TABLE}")


def test_binary_copy_parser_refuses_what_it_cannot_read():
    with pytest.raises(ValueError, match="not PostgreSQL binary COPY"):
        parse_binary_bigints(b"id,v\n1,2\n", fields=2)
    header = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
    row = (3).to_bytes(2, "big") + b"".join((8).to_bytes(4, "big") + (i).to_bytes(8, "big") for i in (7, 1, 2))
    ids, xids, words = parse_binary_bigints(header + row + b"\xff\xff", fields=3)
    assert ids.tolist() == [7] and xids.tolist() == [1] and words[0].tolist() == [2]
    assert words[0].dtype == np.uint64
    with pytest.raises(ValueError, match="unexpected row layout"):
        parse_binary_bigints(header + row + b"\xff\xff", fields=2)


def _scan_of(bits: int, values: list[int]) -> HashScan:
    scan = HashScan(table=TABLE, column="v", bits=bits)
    scan.rows = (np.arange(1000, 1000 + len(values), dtype=np.int64),
                 np.array([[(v >> (bits - 64 * (i + 1))) & (2**64 - 1) for i in range(bits // 64)] for v in values],
                          dtype=np.uint64).reshape(-1, bits // 64))
    return scan


@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize("bits", [64, 128, 256])
def test_near_any_is_near_of_each_vector_joined(bits, split, monkeypatch):
    """A lookup's probes are scanned in one pass: the same ids as a brute-force count for each, joined; with k, each
    probe also brings its k nearest when fewer than k are within the threshold, and only then. The same with the
    rows split between threads however small the work."""
    from media_analysis import hash_scan

    if split:
        monkeypatch.setattr(hash_scan, "SPLIT_WORK", 1)
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2})
    rng = random.Random(bits)
    probes = [rng.getrandbits(bits) for _ in range(5)]
    values = [p ^ sum(1 << b for b in rng.sample(range(bits), rng.randrange(bits // 3))) for p in probes for _ in range(40)]
    values += [rng.getrandbits(bits) for _ in range(300)]
    values += [probes[0] ^ (2**bits - 1)]  # every bit differs: the largest count, which must not overflow
    scan = _scan_of(bits, values)
    vectors = [format(p, f"0{bits}b") for p in probes]
    for threshold in (0, bits // 8, bits // 4, bits - 1, bits):
        within = [{1000 + i for i, v in enumerate(values) if _distance(v, p) <= threshold} for p in probes]
        assert sorted(scan.near_any(vectors, max_distance=threshold).tolist()) == sorted(set().union(*within))
        for vector, expected in zip(vectors, within, strict=True):
            assert sorted(scan.near(vector, max_distance=threshold).tolist()) == sorted(expected)
        for k in (1, 30, 60, len(values) + 5):
            found = set(scan.near_any(vectors, max_distance=threshold, k=k).tolist())
            assert found >= set().union(*within)
            for probe, near in zip(probes, within, strict=True):
                # The k nearest of a probe with fewer than k within: every value nearer than the k-th distance.
                kth = sorted(_distance(v, probe) for v in values)[min(k, len(values)) - 1]
                nearer = {1000 + i for i, v in enumerate(values) if _distance(v, probe) < kth}
                assert found >= (near if len(near) >= k else near | nearer)
            one_by_one = set().union(*(scan.near(v, max_distance=threshold, k=k).tolist() for v in vectors))
            assert len(found) == len(one_by_one) <= len(values)
            # No probe brings more than its share: each has its within-threshold set or exactly its k nearest.
            assert len(found) <= sum(max(len(near), min(k, len(values))) for near in within)
    assert scan.near_any([], max_distance=bits).size == 0
    assert _scan_of(bits, []).near_any(vectors, max_distance=bits, k=5).size == 0
    with pytest.raises(ValueError, match="bits"):
        scan.near_any([vectors[0][:-1]], max_distance=3)
    with pytest.raises(ValueError, match="not a bit string"):
        scan.near_any(["2" * bits], max_distance=3)
    with pytest.raises(ValueError, match="positive multiple of 64"):
        HashScan(table=TABLE, column="v", bits=0)


@pytest.mark.parametrize("work", [1, 1 << 40])
def test_searches_split_between_cores_give_the_same_answer_on_threads_that_keep_faiss_to_themselves(work, monkeypatch):
    """The rows are shared out between threads of the scan's own, each running faiss on itself alone (a search spread
    over faiss's OpenMP threads waits for a busy core: see hash_scan._pool), and the parts' answers are joined: the
    same ids whether the rows are counted in one part or in one per core, the k nearest taken over all the parts."""
    import faiss

    from media_analysis import hash_scan

    seen = []
    for name in ("hamming_range_search", "knn_hamming"):
        original = getattr(faiss, name)
        monkeypatch.setattr(faiss, name, lambda *a, _original=original, _name=name, **kw: seen.append(
            (_name, threading.current_thread().name, faiss.omp_get_max_threads())) or _original(*a, **kw))
    monkeypatch.setattr(hash_scan, "SPLIT_WORK", work)  # 1: split whatever the size; 2**40: never split
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2})  # three parts even on a machine with fewer cores
    rng = random.Random(3)
    probe = rng.getrandbits(128)
    # The probe's 20 near copies sit in the last part, so its 20 nearest must come from beyond the first.
    values = [rng.getrandbits(128) for _ in range(200)] + _family_values(rng, probe, 20)
    scan = _scan_of(128, values)
    assert sorted(scan.near(format(probe, "0128b"), max_distance=0, k=20).tolist()) == list(range(1200, 1220))
    # One range search and one k-nearest search per part, on the scan's threads, each with one OpenMP thread.
    assert sorted(name for name, _, _ in seen) == ["hamming_range_search"] * (3 if work == 1 else 1) + \
        ["knn_hamming"] * (3 if work == 1 else 1)
    assert all(thread.startswith("hash-scan") and threads == 1 for _, thread, threads in seen)


def _family_values(rng: random.Random, base: int, count: int) -> list[int]:
    return [value for _, value in _family(rng, base, count, 0, most=6)]
