"""An image lookup as investigators make it, over ≥ 1,000,000 stored pictures: media_similar (what
`find_similar`, the lookup page and the API call) with every probe a picture sends, not the pHash alone
that bench_lookup.py times.

    .venv/bin/python benchmarks/bench_lookup_full.py [--rows 1000000] [--queries 200]

The stored pictures are bench_media_clusters.py's synthetic signatures (families of copies of one picture,
a few bits apart on every hash, one in ten mirrored; every field a real signature stores), written as hashed
pictures with their indexed columns (pHash, its mirror, central region, PDQ) into a database of its own. The
probes are further copies of stored families, and one in five an unrelated picture. Per lookup the script
times the candidates (media_candidates: about seventy probes through the process's exact in-memory scan) and
the whole lookup as a picture's page makes it (the candidates read and checked with every signature, media_match;
the first page of sixty matches and the first-seen copy read with their posts), and prints p50 and p95
of each beside the pHash-only exact NumPy scan measured in the same run; recall is the share of each probe's
stored family that the lookup returns, and unrelated probes should return nothing. Synthetic signatures have
no pictures behind them, so the keypoint check never runs (bench_matching.py measures it).

The pictures are kept between runs of the same size. Lookups up to MEDIA_SCAN_MAX_ROWS pictures scan the
in-memory copy and never read the HNSW indexes, so this database stores the pictures without those indexes
(building them over a million rows would take most of an hour). Figures, never assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "investigator.settings")
from benchmarks import own_database  # noqa: E402

own_database("investigator_bench_lookup_full")

TABLE = "media_analysis_mediaasset"
HNSW_INDEXES = ("media_phash_hnsw", "media_dhash_hnsw", "media_pdq_hnsw", "media_centre_hnsw")
PROBES = "bench_lookup_full_probes"


def _marker(rows: int, seed: int) -> str:
    return f"bench_lookup_full rows={rows} seed={seed}"


def store(cursor, rows: int, queries: int, seed: int) -> None:  # noqa: ANN001
    """Write `rows` synthetic pictures (their family in original_name) and `queries` probes beside them."""
    from tqdm import tqdm

    from benchmarks.bench_media_clusters import synthetic
    from media_analysis.matching import SIGNATURE_VERSION

    # Copies always come after their family's first picture, so copies beyond the stored rows are copies of
    # stored families: the probes are drawn from there. Unrelated probes are singletons of another draw.
    signatures, labels = synthetic(rows + 3 * queries, seed=seed)
    stored_families = set(labels[:rows])
    copies = [(s, f) for s, f in zip(signatures[rows:], labels[rows:], strict=True) if f in stored_families]
    unrelated, _ = synthetic(queries // 5, seed=seed + 100, singletons=1.0)
    probes = [(s, f) for s, f in copies[:queries - len(unrelated)]] + [(s, -1) for s in unrelated]
    cursor.execute("TRUNCATE media_analysis_mediaasset RESTART IDENTITY CASCADE")
    for name in HNSW_INDEXES:
        cursor.execute(f"DROP INDEX IF EXISTS {name}")
    columns = ("sha256, file, size_bytes, original_name, source_url, format, hash_state, hash_error, phash, phash_flip, "
               "centre, pdq, pdq_flip, pdq_quality, signature, signature_version, created_at")
    with cursor.copy(f"COPY {TABLE} ({columns}) FROM STDIN") as copy:  # noqa: S608 - constant columns
        for n, (signature, family) in enumerate(tqdm(zip(signatures[:rows], labels[:rows], strict=True), total=rows,
                                                     desc="storing pictures", unit="pictures", leave=False)):
            copy.write_row((f"{n:064x}", f"bench/{n}.jpg", 0, f"family {family}", "", "JPEG", "done", "",
                            signature.phash, signature.phash_flip, signature.centre[0], signature.pdq,
                            signature.pdq_flip, signature.pdq_quality, json.dumps(asdict(signature)),
                            SIGNATURE_VERSION, "2026-01-01T00:00:00Z"))
    cursor.execute(f"DROP TABLE IF EXISTS {PROBES}")
    cursor.execute(f"CREATE TABLE {PROBES} (n integer PRIMARY KEY, family integer NOT NULL, signature text NOT NULL)")
    with cursor.copy(f"COPY {PROBES} (n, family, signature) FROM STDIN") as copy:
        for n, (signature, family) in enumerate(probes):
            copy.write_row((n, family, json.dumps(asdict(signature))))
    cursor.execute(f"VACUUM ANALYZE {TABLE}")
    cursor.execute(f"COMMENT ON TABLE {PROBES} IS %s", [_marker(rows, seed)])


def stored(cursor, rows: int, seed: int) -> bool:  # noqa: ANN001
    cursor.execute("SELECT obj_description(to_regclass(%s), 'pg_class')", [PROBES])
    found = cursor.fetchone()
    return found is not None and found[0] == _marker(rows, seed)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection

    from investigator.roles import INVESTIGATOR
    from media_analysis.matching import Signature
    from media_analysis.selectors import media_candidates, media_lookups_warm, media_similar

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        if not stored(cursor, args.rows, args.seed):
            started = time.perf_counter()
            store(cursor, args.rows, args.queries, args.seed)
            print(f"stored {args.rows:,} pictures in {time.perf_counter() - started:.0f} s", flush=True)
        cursor.execute(f"SELECT n, family, signature FROM {PROBES} ORDER BY n")  # noqa: S608
        probes = [(family, Signature.from_json(json.loads(text))) for _, family, text in cursor.fetchall()]
        cursor.execute(f"SELECT id, split_part(original_name, ' ', 2)::integer FROM {TABLE}")  # noqa: S608
        family_of = dict(cursor.fetchall())
        cursor.execute(f"SELECT phash::text FROM {TABLE} ORDER BY id")  # noqa: S608
        phashes = np.array([int(h, 2) for (h,) in cursor.fetchall()], dtype=np.uint64)
    members: dict[int, set[int]] = {}
    for asset, family in family_of.items():
        members.setdefault(family, set()).add(asset)
    user, _ = User.objects.get_or_create(username="bench-lookup-full")
    user.groups.add(Group.objects.get(name=INVESTIGATOR))

    started = time.perf_counter()
    held = media_lookups_warm()
    print(f"{held:,} stored pictures; the in-memory copy was read in {time.perf_counter() - started:.1f} s; "
          f"{len(probes)} probes ({sum(f < 0 for f, _ in probes)} unrelated)", flush=True)

    numpy_ms, candidate_ms, lookup_ms, candidates, found, wanted, false = [], [], [], [], 0, 0, 0
    for family, signature in probes:
        started = time.perf_counter()
        np.nonzero(np.bitwise_count(phashes ^ np.uint64(int(signature.phash, 2))) <= 10)
        numpy_ms.append((time.perf_counter() - started) * 1000)
        with connection.cursor() as cursor:
            started = time.perf_counter()
            candidates.append(len(media_candidates(cursor, signature, neighbours=200)))
            candidate_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        similar = media_similar(user=user, signature=signature, picture=None)
        # As a picture's page makes it: the first page of matches, and the first-seen copy, read in full.
        similar[:60], similar.first_seen  # noqa: B018
        lookup_ms.append((time.perf_counter() - started) * 1000)
        matches = set(similar.asset_ids)
        expected = members.get(family, set())
        found += len(matches & expected)
        wanted += len(expected)
        false += len(matches - expected)
    base = percentile(numpy_ms, 95)
    print(f"\n{'':<44}{'p50 ms':>9}{'p95 ms':>9}{'p95/NumPy':>11}")
    print(f"{'pHash-only exact NumPy scan':<44}{percentile(numpy_ms, 50):>9.1f}{base:>9.1f}{1.0:>10.1f}×")
    for name, timings in (("candidates (media_candidates, every probe)", candidate_ms),
                          ("whole lookup (media_similar)", lookup_ms)):
        p95 = percentile(timings, 95)
        print(f"{name:<44}{percentile(timings, 50):>9.1f}{p95:>9.1f}{p95 / base:>10.1f}×")
    print(f"\ncandidates per lookup: median {statistics.median(candidates):.0f}, max {max(candidates)}; recall of the "
          f"probes' stored families {found / wanted if wanted else 1.0:.4f} ({found:,} of {wanted:,}); "
          f"pictures returned outside the family {false:,}")


if __name__ == "__main__":
    main()
