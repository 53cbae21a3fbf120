"""Exact Hamming search over every stored picture, from a copy of the hash columns kept in memory.

"Every stored picture within T bits" is not a k-nearest query, and pgvector's HNSW graph answers it badly:
a picture with hundreds of near-equal copies needs a wide search, and the graph still misses some of them
(benchmarks/bench_lookup.py at 1M hashes: recall 0.97, p95 about 50 ms). A linear scan with
np.bitwise_count takes under a millisecond per million 64-bit hashes and misses nothing, so lookups scan
a copy of each hash column held by the process (8 bytes per picture per 64 bits, plus 8 for its id).

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

import threading
from collections.abc import Sequence

import numpy as np
from django.db import connection

COPY_HEADER = b"PGCOPY\n\xff\r\n\x00"


class HashScan:
    """One bit column of one table: ids and hashes as 64-bit words, one NumPy array per word."""

    def __init__(self, *, table: str, column: str, bits: int, where: str = "TRUE") -> None:
        if bits % 64:
            raise ValueError("hash length must be a multiple of 64 bits")
        self.table, self.column, self.bits, self.where = table, column, bits, where
        self.words = bits // 64
        self.ids = np.empty(0, dtype=np.int64)
        self.hashes = [np.empty(0, dtype=np.uint64) for _ in range(self.words)]
        self.xmin: int | None = None
        self.recent: set[tuple[int, int]] = set()  # (id, xid) of rows read whose transaction is not below xmin
        self.lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.ids)

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
                self.ids = np.concatenate([self.ids, ids[fresh]])
                self.hashes = [np.concatenate([old, new[fresh]]) for old, new in zip(self.hashes, words, strict=True)]
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
        query = self._words(vector)
        ids, hashes = self._rows()
        distance = np.bitwise_count(hashes[0] ^ query[0]).astype(self._distance_type, copy=False)
        for word, q in zip(hashes[1:], query[1:], strict=True):
            distance += np.bitwise_count(word ^ q)
        within = distance <= max_distance
        if k <= 0 or np.count_nonzero(within) >= k:
            return ids[within]
        if len(distance) <= k:
            return ids.copy()
        # The k nearest: every hash closer than the k-th's distance, and enough at that distance.
        cumulative = np.cumsum(np.bincount(distance, minlength=self.bits + 1))
        cut = int(np.searchsorted(cumulative, k))
        closer = np.flatnonzero(distance < cut)
        at_cut = np.flatnonzero(distance == cut)[: k - len(closer)]
        return ids[np.concatenate([closer, at_cut])]

    BLOCK = 32_768  # rows compared with every vector of near_any at once: a block's words stay in the CPU's cache

    def near_any(self, vectors: Sequence[str], *, max_distance: int) -> np.ndarray:
        """Ids of every stored hash within max_distance bits of any of these bit strings (near() of each, joined).
        One pass over the copy, a block of rows at a time for all the vectors: a lookup's dozens of probes of the
        central region held to one threshold scan a million pictures in about half the time of a pass each."""
        queries = [self._words(vector) for vector in vectors]
        ids, hashes = self._rows()
        found = np.zeros(len(ids), dtype=bool)
        size = min(self.BLOCK, len(ids))
        xor = np.empty(size, dtype=np.uint64)
        distance, part = np.empty(size, dtype=self._distance_type), np.empty(size, dtype=self._distance_type)
        near = np.empty(size, dtype=bool)
        for start in range(0, len(ids), self.BLOCK):
            block = [word[start:start + self.BLOCK] for word in hashes]
            n = len(block[0])
            x, d, p, m, hit = xor[:n], distance[:n], part[:n], near[:n], found[start:start + n]
            for query in queries:
                np.bitwise_count(np.bitwise_xor(block[0], query[0], out=x), out=d)
                for word, q in zip(block[1:], query[1:], strict=True):
                    np.add(d, np.bitwise_count(np.bitwise_xor(word, q, out=x), out=p), out=d)
                np.logical_or(hit, np.less_equal(d, max_distance, out=m), out=hit)
        return ids[found]

    @property
    def _distance_type(self) -> type:
        return np.uint16 if self.words > 2 else np.uint8  # 256 differing bits would not fit in uint8

    def _words(self, vector: str) -> list[np.uint64]:
        """A bit string as the copy holds hashes: 64-bit words, most significant first."""
        if len(vector) != self.bits:
            raise ValueError(f"expected {self.bits} bits, got {len(vector)}")
        return [np.uint64(int(vector[64 * i:64 * (i + 1)], 2)) for i in range(self.words)]

    def _rows(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """The ids and their hashes' words as they are now. refresh() replaces the two one after the other while a
        search may run in another thread (a web worker's warm-up thread beside a request): rows are only ever
        added at the end, so the rows both hold are the same whichever one a search catches first."""
        ids, hashes = self.ids, self.hashes
        rows = min(len(ids), *(len(word) for word in hashes))
        return ids[:rows], [word[:rows] for word in hashes]


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
