"""Exact Hamming search over every stored picture, from a copy of the hash columns kept in memory.

"Every stored picture within T bits" is not a k-nearest query, and pgvector's HNSW graph answers it badly:
a picture with hundreds of near-equal copies needs a wide search, and the graph still misses some of them
(benchmarks/bench_lookup.py at 1M hashes: recall 0.97, p95 about 50 ms). A linear scan takes about a
millisecond per million 64-bit hashes and misses nothing, so lookups scan a copy of each hash column held by
the process (8 bytes per picture per 64 bits, plus 8 for its id), counting differing bits with faiss.

The copy is read once, by binary COPY, and brought up to date before every search with the rows written
since. The trigger of migration 0006 stamps each row's hash_xid with the id of the transaction that wrote
its hashes, and every row a snapshot cannot see was written by a transaction whose id is at or above that
snapshot's xmin, so reading `hash_xid >= xmin` (an index scan, usually of nothing) catches every commit,
in whatever order transactions end, without polling by time. A picture hashed again keeps its old entry
beside the new one and a deleted one stays: both only add candidates, and callers check every candidate
against the row as stored.

Above settings.MEDIA_SCAN_MAX_ROWS pictures the copy would cost too much memory in every process and
callers use the HNSW index instead (media_analysis.selectors.media_candidates).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from django.db import connection

COPY_HEADER = b"PGCOPY\n\xff\r\n\x00"


class HashScan:
    """One bit column of one table: its ids, and its hashes as rows of 64-bit words (most significant first)."""

    def __init__(self, *, table: str, column: str, bits: int, where: str = "TRUE") -> None:
        if bits <= 0 or bits % 64:
            raise ValueError("hash length must be a positive multiple of 64 bits")
        self.table, self.column, self.bits, self.where = table, column, bits, where
        self.words = bits // 64
        # Replaced whole by refresh(), never changed in place, so a search in another thread (a web worker's warm-up
        # thread beside a request) holds the ids and the hashes of one moment.
        self.rows: tuple[np.ndarray, np.ndarray] = (np.empty(0, dtype=np.int64),
                                                     np.empty((0, self.words), dtype=np.uint64))
        self.xmin: int | None = None
        self.recent: set[tuple[int, int]] = set()  # (id, xid) of rows read whose transaction is not below xmin
        self.lock = threading.Lock()

    @property
    def ids(self) -> np.ndarray:
        return self.rows[0]

    @property
    def codes(self) -> np.ndarray:
        return self.rows[1]

    def __len__(self) -> int:
        return len(self.rows[0])

    def refresh(self, cursor) -> None:  # noqa: ANN001
        """Read the whole column the first time, then the rows written since the last read."""
        with self.lock:
            # The xmin comes from a snapshot taken before the read's own, so it can only be lower: rows
            # read twice are told apart by `recent`, and none can be missed.
            cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            xmin = cursor.fetchone()[0]
            since = self.xmin
            ids, xids, words = self._read(cursor, since)
            fresh = np.ones(len(ids), dtype=bool)
            # Only rows at or above an xmin can be read twice; a first read has nothing to skip.
            for i in np.flatnonzero(xids >= (xmin if since is None else min(since, xmin))).tolist():
                key = (int(ids[i]), int(xids[i]))
                if key in self.recent:
                    fresh[i] = False
                elif key[1] >= xmin:
                    self.recent.add(key)
            self.recent = {key for key in self.recent if key[1] >= xmin}
            if fresh.any():
                self.rows = (np.concatenate([self.ids, ids[fresh]]),
                             np.concatenate([self.codes, np.column_stack(words)[fresh]]))
            self.xmin = xmin

    def _read(self, cursor, since: int | None) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:  # noqa: ANN001
        words = ", ".join(f"substring({self.column} from {64 * i + 1} for 64)::bit(64)::bigint" for i in range(self.words))
        condition = "TRUE" if since is None else f"hash_xid >= {int(since)}"
        query = (f"COPY (SELECT id::bigint, hash_xid::bigint, {words} FROM {self.table} "  # noqa: S608 (trusted identifiers)
                 f"WHERE {self.where} AND {self.column} IS NOT NULL AND {condition}) TO STDOUT (FORMAT binary)")
        chunks = []
        with cursor.copy(query) as copy:
            chunks.extend(bytes(block) for block in copy)
        return parse_binary_bigints(b"".join(chunks), fields=2 + self.words)

    def near(self, vector: str, *, max_distance: int, k: int = 0) -> np.ndarray:
        """Ids of every stored hash within max_distance bits of a bit string, and at least the k nearest
        whatever their distance (candidates for checks that use other signatures)."""
        return self.near_any([vector], max_distance=max_distance, k=k)

    def near_any(self, vectors: Sequence[str], *, max_distance: int, k: int = 0) -> np.ndarray:
        """Ids of every stored hash within max_distance bits of any of these bit strings, and for each of them at
        least its k nearest whatever their distance (near() of each, joined), in no particular order.

        Counted by faiss (hamming_range_search and knn_hamming straight over the copy's memory, without building
        an index): every query against every row, exactly, without Python's lock, the rows split between the
        cores (_split). At a million 128-bit hashes a lookup's fifty-odd probes take about 14 ms on two cores
        (26 on one) where NumPy takes 46, and one 64-bit probe 0.3 ms where NumPy takes 0.4."""
        ids, codes = self.rows
        queries = np.array([self._words(vector) for vector in vectors], dtype=np.uint64).reshape(-1, self.words)
        if not len(ids) or not len(queries):
            return np.empty(0, dtype=np.int64)
        rows, probes = codes.view(np.uint8), queries.view(np.uint8)
        parts = _split(len(rows), len(probes))
        counts, hits = np.zeros(len(probes), dtype=np.int64), []
        for start, (found, labels) in zip(parts, _pool().map(lambda p: _within(rows[p], probes, max_distance), parts),
                                          strict=True):
            counts += found
            hits.append(labels + start.start)
        short = np.flatnonzero(counts < k)  # probes with fewer than k within the threshold: their k nearest too
        if len(short):
            nearest = list(_pool().map(lambda p: _nearest(rows[p], probes[short], k), parts))
            distances = np.concatenate([d for d, _ in nearest], axis=1)
            labels = np.concatenate([i + p.start for p, (_, i) in zip(parts, nearest, strict=True)], axis=1)
            order = np.argsort(distances, axis=1, kind="stable")[:, :k]
            hits.append(np.take_along_axis(labels, order, axis=1).ravel())
        return ids[np.unique(np.concatenate(hits))]

    def _words(self, vector: str) -> list[int]:
        """A bit string as the copy holds hashes: 64-bit words, most significant first."""
        if len(vector) != self.bits:
            raise ValueError(f"expected {self.bits} bits, got {len(vector)}")
        if not set(vector) <= {"0", "1"}:
            raise ValueError("not a bit string")
        return [int(vector[64 * i:64 * (i + 1)], 2) for i in range(self.words)]


# Work below this many row-probe pairs (a quarter of a millisecond or so) is not worth sharing out between threads:
# at a million pictures, a lookup's candidates took 22 ms with 2**19, 26 ms with 2**21, and 22 ms with 2**17.
SPLIT_WORK = 1 << 19
_pools: dict[int, ThreadPoolExecutor] = {}  # one per process: a forked process inherits the pool but not its threads
_pools_lock = threading.Lock()


def _split(rows: int, probes: int) -> list[slice]:
    """The rows (at least one) in as many parts as there are cores to count them, one for small work."""
    parts = max(1, min(len(os.sched_getaffinity(0)), rows, rows * probes // SPLIT_WORK))
    bounds = np.linspace(0, rows, parts + 1).astype(int)
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _pool() -> ThreadPoolExecutor:
    """This process's threads for counting bits, one per core, each running faiss on itself alone.

    Lookups run beside the database, other requests and workers. Threads of their own degrade gracefully when
    another core is busy: at a million 128-bit hashes, fifty-odd probes took 14 ms split over two threads on an
    idle machine and 27-29 ms with one or both cores busy, as on one thread; faiss spreading the same search over
    its OpenMP threads took 13 ms idle but 39-48 ms busy (its threads wait for each other at a barrier)."""
    with _pools_lock:
        pool = _pools.get(os.getpid())
        if pool is None:
            pool = _pools[os.getpid()] = ThreadPoolExecutor(len(os.sched_getaffinity(0)), "hash-scan",
                                                              initializer=_one_openmp_thread)
        return pool


def _one_openmp_thread() -> None:
    import faiss

    faiss.omp_set_num_threads(1)  # OpenMP keeps the count per thread: other threads' faiss calls keep theirs


def _within(rows: np.ndarray, probes: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray]:
    """Per probe, how many rows are within max_distance bits, and the positions of all those rows."""
    import faiss

    found = faiss.RangeSearchResult(len(probes))
    # A Hamming range search keeps what is strictly nearer than its radius.
    faiss.hamming_range_search(faiss.swig_ptr(probes), faiss.swig_ptr(rows), len(probes), len(rows),
                               max_distance + 1, rows.shape[1], found)
    lims = faiss.rev_swig_ptr(found.lims, len(probes) + 1).astype(np.int64)
    return np.diff(lims), faiss.rev_swig_ptr(found.labels, int(lims[-1])).astype(np.int64)


def _nearest(rows: np.ndarray, probes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per probe, the distances and positions of its k nearest rows (all of them when there are fewer)."""
    import faiss

    return faiss.knn_hamming(probes, rows, min(k, len(rows)))


def parse_binary_bigints(data: bytes, *, fields: int) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Rows of COPY … (FORMAT binary) whose fields are all non-null bigints, as (first column, second column,
    the rest as uint64 words)."""
    if not data.startswith(COPY_HEADER):
        raise ValueError("not PostgreSQL binary COPY output")
    extension = int.from_bytes(data[15:19], "big")
    body = data[19 + extension:-2]  # the trailer is a field count of -1
    layout = [("count", ">i2")]
    for i in range(fields):
        layout += [(f"length{i}", ">i4"), (f"value{i}", ">i8")]
    layout = np.dtype(layout)
    if len(body) % layout.itemsize:
        raise ValueError("unexpected row layout in binary COPY output")
    rows = np.frombuffer(body, dtype=layout)
    if len(rows) and (np.any(rows["count"] != fields) or any(np.any(rows[f"length{i}"] != 8) for i in range(fields))):
        raise ValueError("unexpected row layout in binary COPY output")
    columns = [rows[f"value{i}"].astype(np.int64) for i in range(fields)]
    return columns[0], columns[1], [c.view(np.uint64) for c in columns[2:]]


_scans: dict[tuple, HashScan] = {}
_scans_lock = threading.Lock()


def hash_scan(cursor, *, table: str, column: str, bits: int, where: str = "TRUE") -> HashScan:  # noqa: ANN001
    """This process's copy of a column in the default database, brought up to date with a cursor on it."""
    database = connection.settings_dict
    key = (database["NAME"], database.get("HOST"), database.get("PORT"), table, column, where)
    with _scans_lock:
        scan = _scans.get(key)
        if scan is None:
            scan = _scans[key] = HashScan(table=table, column=column, bits=bits, where=where)
    scan.refresh(cursor)
    return scan
