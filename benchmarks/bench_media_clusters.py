"""Media clusters at scale: leader-first grouping through the centres' faiss HNSW indexes (CentreIndex, what
media_clusters_rebuild uses) against an exact scan of every centre with NumPy, in the same run.

    .venv/bin/python benchmarks/bench_media_clusters.py [--sizes 20000,150000] [--exact-up-to 20000]
    .venv/bin/python benchmarks/bench_media_clusters.py --database --sizes 100000,1000000 [--singletons 0.96]

Signatures are synthetic but shaped like real data: families of copies of one picture (whole-picture pHash,
five central-region scales, trimmed and moved hashes, outer and inner windows, the wide scales lookups probe,
mirror hashes and PDQ: every field a real signature stores, so reading them costs what it would), each copy a few
bits off its original, one in ten mirrored, family sizes from 1 (most pictures are unique) to several hundred (a viral picture).
Prints pictures per second for both, how often they agree on a picture's centre, and how many family
members end up with their family's first picture; with --database, the build's time and its parts (reading
the signatures, grouping them, storing the clusters). Figures, never assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "investigator.settings")


def _bits(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 2, size=n, dtype=np.uint8)


def _noisy(rng: np.random.Generator, bits: np.ndarray, flips: int) -> np.ndarray:
    if flips == 0:
        return bits
    out = bits.copy()
    out[rng.choice(bits.size, size=flips, replace=False)] ^= 1
    return out


def _s(bits: np.ndarray) -> str:
    return (bits + ord("0")).astype(np.uint8).tobytes().decode("ascii")


# The fields only lookups read (media_analysis.matching.LOOKUP_FIELDS), with as many hashes as a real signature has.
LOOKUP_FIELDS = {"inner": 8, "inner_flip": 8, "scales_flip": 4, "wide": 3, "wide_flip": 3}


def synthetic(n: int, seed: int = 7, singletons: float = 0.6, banners: float = 0.1) -> tuple[list, list[int]]:
    """n signatures in first-appearance order and the family each belongs to; `singletons` is the share of
    families with one picture only, `banners` the share whose pictures carry a banner (their trimmed hashes
    differ from the central ones; without one they are equal, as for 99.7% of the scale-2 demo's pictures)."""
    from media_analysis.matching import Signature

    rng = np.random.default_rng(seed)
    windows = np.random.default_rng(seed + 1)  # the outer windows' own draws, leaving the rest as they were
    lookups = np.random.default_rng(seed + 2)  # and those of the fields only lookups read (the build leaves them)
    families: list[tuple[int, int]] = []  # (family, copies)
    total, family = 0, 0
    while total < n:
        size = 1 if rng.random() < singletons else int(min(n - total, rng.pareto(1.2) * 3 + 2))
        families.append((family, max(1, min(size, n - total))))
        total += families[-1][1]
        family += 1
    bases = {}
    order: list[tuple[int, bool]] = []
    for fam, size in families:
        bases[fam] = {"phash": _bits(rng, 64), "phash_flip": _bits(rng, 64), "centre": [_bits(rng, 128) for _ in range(5)],
                      "centre_flip": _bits(rng, 128), "trimmed": [_bits(rng, 128) for _ in range(5)],
                      "trimmed_flip": _bits(rng, 128), "pdq": _bits(rng, 256), "pdq_flip": _bits(rng, 256)}
        bannered = rng.random() < banners
        if not bannered:
            bases[fam]["trimmed"], bases[fam]["trimmed_flip"] = bases[fam]["centre"], bases[fam]["centre_flip"]
        # The central region moved in eight directions, and six ways away from a banner (Signature.shifted), each also mirrored.
        bases[fam]["shifted"] = [_bits(rng, 128) for _ in range(14 if bannered else 8)]
        bases[fam]["shifted_flip"] = [_bits(rng, 128) for _ in range(14 if bannered else 8)]
        # The windows where its original's centre would be, were it an uneven crop (Signature.outer), also mirrored.
        bases[fam]["outer"] = [_bits(windows, 128) for _ in range(8)]
        bases[fam]["outer_flip"] = [_bits(windows, 128) for _ in range(8)]
        for name, count in LOOKUP_FIELDS.items():
            bases[fam][name] = [_bits(lookups, 128) for _ in range(count)]
        order += [(fam, i == 0) for i in range(size)]
    # Copies appear after their original, interleaved with everything else.
    originals = [o for o in order if o[1]]
    copies = [o for o in order if not o[1]]
    rng.shuffle(copies)
    merged: list[tuple[int, bool]] = []
    seen: set[int] = set()
    pending = deque(copies)
    for original in originals:
        merged.append(original)
        seen.add(original[0])
        while pending and rng.random() < 0.55:
            candidate = pending.pop()
            if candidate[0] in seen:
                merged.append(candidate)
            else:
                pending.appendleft(candidate)
                break
    merged += pending
    signatures, labels = [], []
    for fam, is_original in merged:
        b = bases[fam]
        k = 0 if is_original else int(rng.integers(0, 5))
        mirrored = not is_original and rng.random() < 0.1
        phash, phash_flip = (b["phash_flip"], b["phash"]) if mirrored else (b["phash"], b["phash_flip"])
        centre0, centre_flip = (b["centre_flip"], b["centre"][0]) if mirrored else (b["centre"][0], b["centre_flip"])
        pdq, pdq_flip = (b["pdq_flip"], b["pdq"]) if mirrored else (b["pdq"], b["pdq_flip"])
        centre = (_s(_noisy(rng, centre0, k)), *(_s(_noisy(rng, c, k)) for c in b["centre"][1:]))
        centre_flip = _s(_noisy(rng, centre_flip, k))
        if b["trimmed"] is b["centre"]:
            trimmed, trimmed_flip = centre, centre_flip
        else:
            trimmed = tuple(_s(_noisy(rng, c, k)) for c in b["trimmed"])
            trimmed_flip = _s(_noisy(rng, b["trimmed_flip"], k))
        signatures.append(Signature(
            phash=_s(_noisy(rng, phash, k)), phash_flip=_s(_noisy(rng, phash_flip, k)),
            centre=centre, centre_flip=centre_flip, trimmed=trimmed, trimmed_flip=trimmed_flip,
            pdq=_s(_noisy(rng, pdq, 2 * k)), pdq_flip=_s(_noisy(rng, pdq_flip, 2 * k)), pdq_quality=90,
            shifted=tuple(_s(_noisy(rng, c, k)) for c in b["shifted"]),
            shifted_flip=tuple(_s(_noisy(rng, c, k)) for c in b["shifted_flip"]),
            outer=tuple(_s(_noisy(windows, c, k)) for c in b["outer"]),
            outer_flip=tuple(_s(_noisy(windows, c, k)) for c in b["outer_flip"]),
            **{name: tuple(_s(_noisy(lookups, c, k)) for c in b[name]) for name in LOOKUP_FIELDS}))
        labels.append(fam)
    return signatures, labels


def exact_centres(thresholds: object) -> object:
    """The baseline: CentreIndex with every HNSW search replaced by an exact NumPy Hamming scan of all centres
    (np.bitwise_count over uint64 words, in growing arrays): every centre within the limit, not the k nearest."""
    from media_analysis.matching import hamming_matrix as _hamming_matrix
    from media_analysis.matching import words as _words
    from media_analysis.services import CentreIndex

    class ExactCentres(CentreIndex):
        def __init__(self) -> None:
            super().__init__(thresholds)
            self.table = {name: np.zeros((1024, index.d // 64), dtype=np.uint64) for name, index in self.indexes.items()}
            self.size = dict.fromkeys(self.indexes, 0)

        def _add(self, name: str, owners: list[int], vectors: np.ndarray) -> None:
            while self.size[name] + len(vectors) > len(self.table[name]):
                self.table[name] = np.concatenate([self.table[name], np.zeros_like(self.table[name])])
            self.table[name][self.size[name]:self.size[name] + len(vectors)] = vectors
            self.size[name] += len(vectors)
            self.owner[name].extend(owners)

        def _search(self, name: str, queries: list) -> list[tuple[int, int]]:
            searched, limit, *_ = self.searches[name]  # every centre within the limit, not the k nearest
            table = self.table[searched][: self.size[searched]]
            found = []
            for position, probes in queries:
                if probes and len(table):
                    hits = np.nonzero(_hamming_matrix(_words(probes), table) <= limit)[1]
                    found += [(position, self.owner[searched][i]) for i in hits.tolist()]
            return found

    return ExactCentres()


def leader_first(index: object, signatures: list, batch: int) -> tuple[list[int], float]:
    from investigator.memory import few_collections

    start = time.perf_counter()
    centre_of = []
    with few_collections():  # as media_clusters_rebuild runs
        for first in range(0, len(signatures), batch):
            chunk = list(enumerate(signatures[first:first + batch], start=first))
            centre_of += [centre for centre, _ in index.assign(chunk)]
    return centre_of, time.perf_counter() - start


def _timed(spent: Counter, part: str, work: Callable) -> Callable:
    """work, adding the seconds each call takes to spent[part]."""
    def run(*args: object, **kwargs: object) -> object:
        started = time.perf_counter()
        try:
            return work(*args, **kwargs)
        finally:
            spent[part] += time.perf_counter() - started
    return run


def stored_build(signatures: list) -> tuple[float, float, dict]:
    """media_clusters_rebuild end to end on the signatures stored as hashed pictures in the benchmark's own
    database, in first-appearance order: the seconds to store them (setup, not part of the build), the
    seconds of the build (read, group, store the clusters) and its result, with the seconds of each of
    those three parts under "seconds"."""
    from unittest import mock

    from django.db import connection
    from django.test import override_settings
    from tqdm import tqdm

    from media_analysis import services
    from media_analysis.matching import SIGNATURE_VERSION
    from media_analysis.services import CentreIndex, media_clusters_rebuild

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE media_analysis_mediaasset RESTART IDENTITY CASCADE")
        with cursor.copy("COPY media_analysis_mediaasset (sha256, file, size_bytes, original_name, source_url, format, "
                         "hash_state, hash_error, signature, signature_version, created_at) FROM STDIN") as copy:
            for n, signature in enumerate(signatures):
                copy.write_row((f"{n:064x}", f"bench/{n}.jpg", 0, "", "", "JPEG", "done", "",
                                json.dumps(asdict(signature)), SIGNATURE_VERSION, "2026-01-01T00:00:00Z"))
        cursor.execute("VACUUM ANALYZE media_analysis_mediaasset")
    stored_s = time.perf_counter() - started
    # Synthetic signatures have no pictures behind them, so the keypoint check (media_analysis.keypoints) on
    # matches by the central region alone cannot run: bench_matching.py measures it.
    # Three parts of the build are timed where media_clusters_rebuild calls them. The rest of it (finding the
    # order, keeping the keypoint verdicts, and the commit of the new clusters, where PostgreSQL makes its
    # deferred foreign-key checks) is the build's time less theirs.
    spent: Counter = Counter()
    with tqdm(total=len(signatures), desc="media_clusters_rebuild", unit="pictures", leave=False) as bar, \
            override_settings(CENTRE_CONFIRM_KEYPOINTS=0), \
            mock.patch.object(services, "stored_signatures", _timed(spent, "read", services.stored_signatures)), \
            mock.patch.object(CentreIndex, "assign", _timed(spent, "group", CentreIndex.assign)), \
            mock.patch.object(services, "_media_clusters_store", _timed(spent, "store", services._media_clusters_store)):
        started = time.perf_counter()
        result = media_clusters_rebuild(progress=lambda done, total: bar.update(done - bar.n))
        build_s = time.perf_counter() - started
    return stored_s, build_s, {**result, "seconds": spent}  # a part never called counts 0 s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="20000,150000")
    parser.add_argument("--batch", type=int, default=0,
                        help="pictures per CentreIndex.assign (default: CentreIndex.BATCH, which --database always uses)")
    parser.add_argument("--exact-up-to", type=int, default=20000, help="run the exact baseline up to this size")
    parser.add_argument("--real", type=int, default=0, metavar="N",
                        help="also the first N hashed pictures of the database INVESTIGATOR_DB_NAME names (for "
                             "example the scale-10 demo that bench_web.py loads: INVESTIGATOR_DB_NAME=investigator_bench_web)")
    parser.add_argument("--ef-construction", default="", metavar="N,N",
                        help="with --real: build the centre indexes at each of these efConstruction values instead "
                             "of CentreIndex's own (40), to weigh speed against agreement with the exact scan")
    parser.add_argument("--singletons", type=float, default=0.6,
                        help="share of families with one picture (default 0.6: about 16%% of pictures are distinct; "
                             "0.96 gives about 67%%, near the scale-10 demo's 63%%, where new centres dominate the time)")
    parser.add_argument("--database", action="store_true",
                        help="time media_clusters_rebuild end to end at each size instead, with the signatures stored as "
                             "hashed pictures in a database of its own (investigator_bench_media_clusters unless "
                             "INVESTIGATOR_DB_NAME names another benchmark database; emptied)")
    args = parser.parse_args()
    if args.database:
        if args.real:
            parser.error("--database empties its own database; run --real separately")
        from benchmarks import own_database

        own_database("investigator_bench_media_clusters")
    import django

    django.setup()
    from media_analysis.matching import Thresholds
    from media_analysis.services import CentreIndex

    if args.database:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
    thresholds = Thresholds.from_settings()
    batch = args.batch or CentreIndex.BATCH
    builds = []
    print(f"{CentreIndex.BATCH if args.database else batch} pictures per batch")
    if not args.database:
        print(f"{'pictures':>9} {'families':>9} {'faiss pics/s':>13} {'exact pics/s':>13} {'speed-up':>9} "
              f"{'same centre':>12} {'with family first':>18}")
    for size in (int(s) for s in args.sizes.split(",")):
        signatures, labels = synthetic(size, singletons=args.singletons)
        first_of = {}
        for n, fam in enumerate(labels):
            first_of.setdefault(fam, n)
        if args.database:  # the end-to-end build only: the in-memory table is a run without --database
            builds.append((size, *stored_build(signatures)))
            print(f"{size:,} pictures in {len(first_of):,} families built", flush=True)
            continue
        fast, fast_s = leader_first(CentreIndex(thresholds), signatures, batch)
        recovered = sum(1 for n, c in enumerate(fast) if c == first_of[labels[n]]) / size
        if size <= args.exact_up_to:
            exact, exact_s = leader_first(exact_centres(thresholds), signatures, batch)
            same = sum(1 for a, b in zip(fast, exact) if a == b) / size
            print(f"{size:>9,} {len(first_of):>9,} {size / fast_s:>13,.0f} {size / exact_s:>13,.0f} "
                  f"{exact_s / fast_s:>8.1f}× {same:>12.4f} {recovered:>18.4f}")
        else:
            print(f"{size:>9,} {len(first_of):>9,} {size / fast_s:>13,.0f} {'—':>13} {'—':>9} {'—':>12} {recovered:>18.4f}")
        del signatures, labels, fast
    if builds:
        print(f"\nmedia_clusters_rebuild end to end (read the signatures from the database, group them, store the "
              f"clusters; other: the order, the commit)\n"
              f"{'pictures':>9} {'stored in s':>12} {'build s':>8} {'read s':>7} {'group s':>8} {'store s':>8} "
              f"{'other s':>8} {'pictures/s':>11} {'clusters':>9} {'with copies':>12}")
        for size, stored_s, build_s, result in builds:
            parts = result["seconds"]
            other = build_s - parts["read"] - parts["group"] - parts["store"]
            print(f"{size:>9,} {stored_s:>12.1f} {build_s:>8.1f} {parts['read']:>7.1f} {parts['group']:>8.1f} "
                  f"{parts['store']:>8.1f} {other:>8.1f} {size / build_s:>11,.0f} {result['clusters']:>9,} "
                  f"{result['with_copies']:>12,}")
        (small, _, small_s, _), (large, _, large_s, _) = builds[0], builds[-1]
        if large > small:
            print(f"{large / small:.0f}× the pictures took {large_s / small_s:.1f}× the time; target: 1,000,000 in ≤ 600 s")
    if args.real:
        from media_analysis.matching import Signature
        from media_analysis.models import MediaAsset

        rows = MediaAsset.objects.filter(hash_state="done", signature__isnull=False).order_by("id")
        signatures = [Signature.from_json(d) for d in rows.values_list("signature", flat=True)[: args.real]]
        exact, exact_s = leader_first(exact_centres(thresholds), signatures, batch)
        print(f"\nreal pictures: {len(signatures):,}, {len(set(exact)):,} clusters (exact), "
              f"exact {len(signatures) / exact_s:,.0f} pictures/s")
        for ef in (int(e) for e in args.ef_construction.split(",")) if args.ef_construction else (None,):
            centres = CentreIndex(thresholds)
            if ef is not None:  # the indexes are empty still: the build parameter applies to every add
                for index in centres.indexes.values():
                    index.hnsw.efConstruction = ef
            fast, fast_s = leader_first(centres, signatures, batch)
            same = sum(1 for a, b in zip(fast, exact) if a == b) / len(signatures)
            label = f"efConstruction {ef}" if ef is not None else "faiss"
            print(f"{label}: {len(set(fast)):,} clusters, {len(signatures) / fast_s:,.0f} pictures/s, "
                  f"speed-up {exact_s / fast_s:.1f}×, same centre {same:.4f}")


if __name__ == "__main__":
    main()
