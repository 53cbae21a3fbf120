"""Near-duplicate lookup over ≥ 1,000,000 stored 64-bit pHashes, clustered like real data: media_analysis's
exact scan of an in-memory copy kept up to date from the database, and plans inside PostgreSQL (pgvector
HNSW, bit_hamming_ops, m=16, ef_construction=64 as in media_analysis), beside a bare exact NumPy scan
(np.bitwise_count over uint64) in the same run.

    .venv/bin/python benchmarks/bench_lookup.py [--rows 1000000] [--queries 400] [--threshold 10]

The rows: picture "families" (a random base and near-copies of it, 0–6 bits flipped; 30% of families
have 2 to 500 members, heavy-tailed as with viral pictures) and unrelated singletons. The probes: altered
copies of stored pictures, and unrelated pictures. For each plan the script prints recall against the
exact answer (every stored hash within the threshold), p50 and p95 milliseconds per lookup, and p95 as a
ratio to the NumPy scan. Figures, never assertions. The table lives in the benchmark database and is
kept between runs of the same size (the index takes minutes to build).

Plans:
* exact scan (media_analysis.hash_scan, what image lookups use up to MEDIA_SCAN_MAX_ROWS pictures): the
  exact count (faiss) over a copy of the column, plus the query that reads rows written since (here none), timed
  together; the copy's first load is printed;
* where-limit: `WHERE v <~> q <= T ORDER BY v <~> q LIMIT 50` (the index keeps scanning when fewer than
  LIMIT rows qualify);
* knn-k: the k nearest by the index in a subquery, filtered on the threshold outside;
* adaptive (what lookups use beyond MEDIA_SCAN_MAX_ROWS, media_analysis.selectors.knn_within): k nearest, doubled while
  the k-th is still within the threshold, so a picture with hundreds of copies is complete too.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "investigator.settings")
from benchmarks import own_database  # noqa: E402

own_database("investigator_bench")

import numpy as np  # noqa: E402

TABLE = "bench_lookup_phash"
XID_COLUMN = "hash_xid bigint NOT NULL DEFAULT 0"  # as media_analysis_mediaasset has (media_analysis.hash_scan)


def make_rows(rows: int, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hashes = np.empty(rows, dtype=np.uint64)
    filled = 0
    bits = np.uint64(1) << np.arange(64, dtype=np.uint64)
    while filled < rows:
        base = rng.integers(0, 2**64, dtype=np.uint64)
        size = min(1 + int(rng.zipf(2.0)) if rng.random() < 0.3 else 1, 500, rows - filled)
        family = np.full(size, base, dtype=np.uint64)
        flips = rng.integers(0, 7, size=size)
        flips[0] = 0
        for i in np.nonzero(flips)[0]:
            family[i] ^= np.bitwise_or.reduce(bits[rng.choice(64, flips[i], replace=False)])
        hashes[filled:filled + size] = family
        filled += size
    return hashes


def make_queries(stored: np.ndarray, count: int, seed: int = 9) -> np.ndarray:
    """Altered copies of stored pictures, one picture drawn per family (not per row: an investigator looks
    up a picture, whatever its number of copies), and 20% unrelated pictures."""
    rng = np.random.default_rng(seed)
    bits = np.uint64(1) << np.arange(64, dtype=np.uint64)
    distinct = np.unique(stored)
    picks = distinct[rng.integers(0, len(distinct), size=count)]
    queries = picks.copy()
    for i in range(count):
        flips = int(rng.integers(0, 7))
        if flips:
            queries[i] ^= np.bitwise_or.reduce(bits[rng.choice(64, flips, replace=False)])
    unrelated = rng.random(count) < 0.2
    queries[unrelated] = rng.integers(0, 2**64, size=int(unrelated.sum()), dtype=np.uint64)
    return queries


def as_bits(value: np.uint64) -> str:
    return format(int(value), "064b")


def load(cursor, hashes: np.ndarray) -> None:  # noqa: ANN001
    cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
    cursor.execute(f"CREATE TABLE {TABLE} (id integer PRIMARY KEY, v bit(64) NOT NULL, {XID_COLUMN})")
    buffer = io.StringIO()
    for i, value in enumerate(hashes):
        buffer.write(f"{i}\t{int(value):064b}\n")
    buffer.seek(0)
    with cursor.copy(f"COPY {TABLE} (id, v) FROM STDIN") as copy:
        while chunk := buffer.read(1 << 20):
            copy.write(chunk)
    started = time.perf_counter()
    cursor.execute("SET maintenance_work_mem = '1GB'")
    cursor.execute(f"CREATE INDEX {TABLE}_hnsw ON {TABLE} USING hnsw (v bit_hamming_ops) WITH (m = 16, ef_construction = 64)")
    cursor.execute(f"ANALYZE {TABLE}")
    print(f"built the HNSW index over {len(hashes):,} rows in {time.perf_counter() - started:.0f} s", flush=True)


def _checksum(hashes: np.ndarray) -> int:
    """What PostgreSQL's sum(hashtext(v::text)) gives for these rows, to know a stored table is this one."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(sum(hashtext(t)::bigint), 0) FROM unnest(%s::text[]) t",
                       [[format(int(v), "064b") for v in hashes]])
        return cursor.fetchone()[0]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--threshold", type=int, default=None, help="default: PHASH_MATCH_DISTANCE from settings")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from media_analysis.hash_scan import HashScan
    from media_analysis.selectors import knn_within

    threshold = settings.PHASH_MATCH_DISTANCE if args.threshold is None else args.threshold
    hashes = make_rows(args.rows)
    queries = make_queries(hashes, args.queries)
    families = len(np.unique(hashes))
    print(f"{args.rows:,} stored hashes ({families:,} distinct), {args.queries} probes, threshold {threshold} bits", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS vector")
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE indexname = %s", [f"{TABLE}_hnsw"])
        present = cursor.fetchone()[0] == 1
        if present:
            cursor.execute(f"SELECT count(*), coalesce(sum(hashtext(v::text)::bigint), 0) FROM {TABLE}")  # noqa: S608
            count, checksum = cursor.fetchone()
            present = count == args.rows and checksum == _checksum(hashes)
        if not present:
            print("loading …", flush=True)
            load(cursor, hashes)
        cursor.execute(f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS {XID_COLUMN}")
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_xid ON {TABLE} (hash_xid)")

    # Exact answers and the NumPy baseline.
    exact, numpy_ms = [], []
    for q in queries:
        started = time.perf_counter()
        found = np.nonzero(np.bitwise_count(hashes ^ q) <= threshold)[0]
        numpy_ms.append((time.perf_counter() - started) * 1000)
        exact.append(set(found.tolist()))
    base_p95 = percentile(numpy_ms, 95)
    sizes = [len(e) for e in exact]
    print(f"exact answers: median {statistics.median(sizes):.0f}, max {max(sizes)} matches per probe")

    def run_plan(name: str, lookup, subset: int | None = None) -> None:  # noqa: ANN001
        timings, hits, wanted = [], 0, 0
        chosen = range(len(queries) if subset is None else min(subset, len(queries)))
        with connection.cursor() as cursor:
            for i in chosen:
                started = time.perf_counter()
                found = lookup(cursor, as_bits(queries[i]))
                timings.append((time.perf_counter() - started) * 1000)
                hits += len(found & exact[i])
                wanted += len(exact[i])
        recall = hits / wanted if wanted else 1.0
        p50, p95 = percentile(timings, 50), percentile(timings, 95)
        met = "yes" if recall >= 0.99 and p95 <= 5 else "no"
        print(f"{name:<28}{recall:>8.4f}{p50:>9.2f}{p95:>9.2f}{p95 / base_p95:>12.1f}×{met:>8}", flush=True)

    print(f"\n{'plan':<28}{'recall':>8}{'p50 ms':>9}{'p95 ms':>9}{'p95/NumPy':>13}{'target':>8}")
    print(f"{'numpy exact scan':<28}{1.0:>8.4f}{percentile(numpy_ms, 50):>9.2f}{base_p95:>9.2f}{1.0:>12.1f}×{'':>8}")

    def where_limit(cursor, q: str) -> set[int]:  # noqa: ANN001
        cursor.execute("SET hnsw.ef_search = 100")
        cursor.execute(f"SELECT id FROM {TABLE} WHERE v <~> %s::bit(64) <= %s ORDER BY v <~> %s::bit(64) LIMIT 50",  # noqa: S608
                       [q, threshold, q])
        return {r[0] for r in cursor.fetchall()}

    def knn(k: int, ef: int):  # noqa: ANN202
        def lookup(cursor, q: str) -> set[int]:  # noqa: ANN001
            cursor.execute(f"SET hnsw.ef_search = {ef}")
            cursor.execute(f"SELECT id FROM (SELECT id, v <~> %s::bit(64) AS d FROM {TABLE} ORDER BY v <~> %s::bit(64) "  # noqa: S608
                           f"LIMIT %s) near WHERE d <= %s", [q, q, k, threshold])
            return {r[0] for r in cursor.fetchall()}
        return lookup

    def adaptive(cursor, q: str) -> set[int]:  # noqa: ANN001
        return {i for i, _ in knn_within(cursor, table=TABLE, column="v", length=64, vector=q, max_distance=threshold)}

    scan = HashScan(table=TABLE, column="v", bits=64)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        scan.refresh(cursor)
    load_seconds = time.perf_counter() - started

    def exact_scan(cursor, q: str) -> set[int]:  # noqa: ANN001
        scan.refresh(cursor)
        return set(scan.near(q, max_distance=threshold).tolist())

    run_plan("exact scan (media_analysis)", exact_scan)
    run_plan("where-limit 50 (ef 100)", where_limit, subset=60)
    for k, ef in ((40, 40), (40, 100), (100, 100)):
        run_plan(f"knn-{k} (ef {ef})", knn(k, ef))
    run_plan("adaptive (beyond the scan)", adaptive)
    print(f"\nthe exact scan's copy of {len(scan):,} hashes was read in {load_seconds:.1f} s "
          f"({(scan.ids.nbytes + scan.codes.nbytes) / 2**20:.0f} MB)")


if __name__ == "__main__":
    main()
