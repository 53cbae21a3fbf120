"""Reads of media analysis."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import overload

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.db.models import Count, Min, Q, QuerySet
from django.db.models.expressions import RawSQL

from investigator.roles import INVESTIGATOR, has_role
from media_analysis.hash_scan import HashScan, hash_scan
from media_analysis.hashing import UnreadableImage, compute_hashes
from media_analysis.matching import SIGNATURE_VERSION, MatchEvidence, Signature, Thresholds, hamming, media_matches
from media_analysis.models import HashState, MediaAsset
from media_analysis.services import KeypointChecks, stored_signatures


@dataclass(frozen=True)
class HashCounts:
    """How many assets are in each hashing state; `outdated` of the hashed ones wait to be hashed again with the
    workers' newer signature (matching.SIGNATURE_VERSION), and match with the one they have meanwhile."""

    pending: int = 0
    processing: int = 0
    done: int = 0
    failed: int = 0
    outdated: int = 0

    @property
    def total(self) -> int:
        return self.pending + self.processing + self.done + self.failed

    @property
    def finished(self) -> int:
        """Assets nothing is left to do for: hashed with the current signature, or failed."""
        return self.done - self.outdated + self.failed

    @property
    def percent(self) -> int:
        return round(100 * self.finished / self.total) if self.total else 100


def media_hash_counts() -> HashCounts:
    """How many assets are in each hashing state (operational; shown to every role)."""
    # Three index scans (media_unfinished_idx, media_signature_version_idx), not a scan of the table: the home
    # page asks every few seconds, and hashed pictures run to millions.
    unfinished = MediaAsset.objects.exclude(hash_state=HashState.DONE).order_by()
    counts = {state: n for state, n in unfinished.values_list("hash_state").annotate(n=Count("id"))
              if state in HashState.values}
    hashed = MediaAsset.objects.filter(hash_state=HashState.DONE)
    return HashCounts(**counts, done=hashed.count(),
                      outdated=hashed.filter(signature_version__lt=SIGNATURE_VERSION, hash_error="").count())


def media_assets_visible(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[MediaAsset]:
    if not has_role(user, INVESTIGATOR):
        return MediaAsset.objects.none()
    return MediaAsset.objects.defer("signature")


def media_unreadable(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[MediaAsset]:
    """Pictures that could not be hashed, or hashed again with the newer signature, newest first."""
    failed = Q(hash_state=HashState.FAILED) | (Q(hash_state=HashState.DONE) & ~Q(hash_error=""))
    return media_assets_visible(user=user).filter(failed).order_by("-id")


@dataclass(frozen=True)
class Sighting:
    post_id: int
    post_url: str
    posted_at: datetime
    account_id: int
    handle: str
    platform: str


@dataclass
class SimilarMedia:
    asset: MediaAsset
    phash_distance: int
    pdq_distance: int | None
    via: str = "phash"  # which signature agreed (media_analysis.matching)
    distance: int = 0  # its distance in bits
    sightings: list[Sighting] = field(default_factory=list)
    avatar_of: list[str] = field(default_factory=list)
    first_seen: bool = False
    keypoints: int | None = None  # keypoints in agreement, when the keypoint check was asked (media_analysis.keypoints)

    @property
    def first_posted_at(self) -> datetime | None:
        return min((s.posted_at for s in self.sightings), default=None)

    @property
    def via_label(self) -> str:
        return VIA_LABELS.get(self.via, self.via)


VIA_LABELS = {
    "phash": "whole picture", "phash-mirror": "mirrored", "centre": "centre (cropped or captioned)",
    "centre-mirror": "centre, mirrored", "trimmed": "without its banner", "trimmed-mirror": "without its banner, mirrored",
    "moved": "centre, moved (an uneven crop)", "moved-mirror": "centre, moved and mirrored",
    "pdq": "PDQ", "pdq-mirror": "PDQ, mirrored",
}
TIER = {"phash": 0, "phash-mirror": 0, "centre": 1, "centre-mirror": 1, "trimmed": 1, "trimmed-mirror": 1, "moved": 1,
        "moved-mirror": 1, "pdq": 2, "pdq-mirror": 2}


@dataclass(frozen=True)
class _Match:
    """What a lookup decided about one stored picture, before the picture itself is read."""
    asset_id: int
    via: str
    distance: int
    keypoints: int | None


class SimilarMediaList(Sequence[SimilarMedia]):
    """A lookup's matches, closest first: decided, ordered and counted at once, each one made (its picture read,
    with who posted it and when) only when it is asked for, and then kept. A picture's page shows sixty of a viral
    picture's thousands of copies; the API without paging and find_similar go through them all, a chunk at a
    time. The first-seen copy is known from the start (first_seen)."""

    CHUNK = 500  # matches made per query when going through them all

    def __init__(self, found: list[_Match], probe: Signature | None = None, thresholds: Thresholds | None = None,
                 first_seen: int | None = None) -> None:
        self._found, self._probe, self._thresholds, self._first_seen = found, probe, thresholds, first_seen
        self._made: dict[int, SimilarMedia] = {}

    @property
    def asset_ids(self) -> list[int]:
        """The matching pictures' ids, closest first, without reading them."""
        return [m.asset_id for m in self._found]

    @property
    def first_seen(self) -> SimilarMedia | None:
        """The copy posted earliest (the closest of those posted at that moment), None when none was posted."""
        position = next((i for i, m in enumerate(self._found) if m.asset_id == self._first_seen), None)
        return None if position is None else self[position]

    def __len__(self) -> int:
        return len(self._found)

    @overload
    def __getitem__(self, index: int) -> SimilarMedia: ...

    @overload
    def __getitem__(self, index: slice) -> list[SimilarMedia]: ...

    def __getitem__(self, index: int | slice) -> SimilarMedia | list[SimilarMedia]:
        if isinstance(index, slice):
            found = self._found[index]
            self._make(found)
            return [self._made[m.asset_id] for m in found]
        found = self._found[index]
        self._make([found])
        return self._made[found.asset_id]

    def __iter__(self) -> Iterator[SimilarMedia]:
        for start in range(0, len(self), self.CHUNK):
            yield from self[start:start + self.CHUNK]

    def _make(self, found: list[_Match]) -> None:
        wanted = {m.asset_id: m for m in found if m.asset_id not in self._made}
        if not wanted:
            return
        probe, thresholds = self._probe, self._thresholds
        made = []
        # Stored pictures are never deleted, so every match is there to read.
        for asset in MediaAsset.objects.filter(pk__in=_any(wanted)).defer("signature"):
            match = wanted[asset.pk]
            trusted = min(asset.pdq_quality or 0, probe.pdq_quality) >= thresholds.pdq_min_quality and asset.pdq
            made.append(SimilarMedia(asset, hamming(probe.phash, asset.phash),
                                     hamming(probe.pdq, asset.pdq) if trusted else None, match.via, match.distance,
                                     first_seen=asset.pk == self._first_seen, keypoints=match.keypoints))
        _attach_sightings(made)
        self._made.update((m.asset.pk, m) for m in made)


KNN_MAX = 10_240


def knn_within(cursor, *, table: str, column: str, length: int, vector: str, max_distance: float, k: int = 40,
               ef: int = 100, where: str = "TRUE", within_only: bool = True) -> list[tuple[int, int]]:
    """(id, distance) of stored rows near a bit vector, by the HNSW index: the k nearest, with k doubled
    while the k-th is still within max_distance, so that a picture with hundreds of copies comes back
    complete (a fixed LIMIT would cut it, and `WHERE distance <= T` with LIMIT keeps the index scanning
    when fewer than LIMIT rows qualify; see benchmarks/bench_lookup.py). Iterative index scans (pgvector
    0.8, strict order) keep LIMIT honest beyond ef_search. within_only=False also returns the nearest
    rows beyond max_distance (candidates for checks that use other signatures too).

    table, column and where are trusted identifiers from the caller; the vector is a parameter."""
    ef = max(ef, k)
    with transaction.atomic():
        cursor.execute("SET LOCAL hnsw.iterative_scan = strict_order")
        while True:
            cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(min(1000, ef))])
            cursor.execute(f"SELECT id, {column} <~> %s::bit({length}) AS d FROM {table} WHERE {where} "  # noqa: S608
                           f"ORDER BY {column} <~> %s::bit({length}) LIMIT %s", [vector, vector, k])
            rows = cursor.fetchall()
            if len(rows) < k or rows[-1][1] > max_distance or k >= KNN_MAX:
                return [(i, int(d)) for i, d in rows if not within_only or d <= max_distance]
            # A picture with many copies: near-equal hashes make the graph search miss some with a small
            # candidate list, so the next round searches wide at once (measured in bench_lookup).
            k, ef = max(4 * k, 1000), 1000


def media_candidates(cursor, probe: Signature, *, neighbours: int, exclude: int | None = None,
                     thresholds: Thresholds | None = None) -> set[int]:
    """Stored pictures near a probe on any indexed signature: whole-picture pHash (and the probe's mirror),
    PDQ (and its mirror) when trusted, and the central region (plain, mirrored, without banners). Per
    signature: the `neighbours` nearest, and every stored picture within that signature's threshold
    however many there are. The probe's moved regions (Signature.moved, thirty-two with the mirrored ones: its
    central region moved, for the probe as the original of an uneven crop; its outer windows, for the probe as
    the crop) and its inner windows (sixteen: for the probe as the original of a crop cut further) add only the
    pictures within their own threshold, and so do its central region's other scales (Signature.scales_flip,
    Signature.wide: for the probe as the original of a copy cut down on every side, and as that copy). Found by
    an exact scan of the process's in-memory copy of the hashes (media_analysis.hash_scan), or with more stored
    pictures than settings.MEDIA_SCAN_MAX_ROWS by the HNSW indexes (knn_within)."""
    thresholds = thresholds or Thresholds.from_settings()
    probes = [("phash", 64, v, thresholds.phash, neighbours) for v in (probe.phash, probe.phash_flip)]
    probes += [("centre", 128, v, thresholds.centre, neighbours)
               for v in (probe.centre[0], probe.centre_flip, probe.trimmed[0], probe.trimmed_flip)]
    # Only the 70% central region is indexed: the probe's other scales meet a stored copy cut down (the probe as
    # its original), its wide ones a stored original (the probe as the copy cut down).
    probes += [("centre", 128, v, thresholds.centre, 0) for v in (*probe.centre[1:], *probe.trimmed[1:],
                                                                   *probe.scales_flip, *probe.wide, *probe.wide_flip)]
    probes += [("centre", 128, v, thresholds.centre_shifted, 0)
               for v in (*probe.moved, *probe.moved_flip, *probe.inner, *probe.inner_flip)]
    if probe.pdq_quality >= settings.PDQ_MIN_QUALITY:
        probes += [("pdq", 256, v, thresholds.pdq, neighbours) for v in (probe.pdq, probe.pdq_flip)]
    probes = list(dict.fromkeys(probes))  # a picture with no banner has the same central and trimmed regions
    found: set[int] = set()
    if _scanned(cursor):
        scans = _lookup_scans(cursor, {(column, length) for column, length, *_ in probes})
        passes: dict[tuple[str, int, int], list[str]] = {}  # (column, threshold, k): vectors, scanned in one pass
        for column, _, vector, threshold, k in probes:
            passes.setdefault((column, threshold, k), []).append(vector)
        for (column, threshold, k), vectors in passes.items():
            found.update(scans[column].near_any(vectors, max_distance=threshold, k=k).tolist())
        return found - {exclude}
    for column, length, vector, threshold, k in probes:
        rows = knn_within(cursor, table="media_analysis_mediaasset", column=column, length=length, vector=vector,
                          max_distance=threshold, k=max(k, 8), where=f"hash_state = 'done' AND {column} IS NOT NULL",
                          within_only=k == 0)
        found.update(i for i, _ in rows)
    return found - {exclude}


SCANNED_COLUMNS = (("phash", 64), ("centre", 128), ("pdq", 256))  # every hash column media_candidates probes


def _scanned(cursor) -> bool:  # noqa: ANN001
    """Whether lookups scan this process's in-memory copy of the hashes (else the HNSW indexes)."""
    return 0 < settings.MEDIA_SCAN_MAX_ROWS >= stored_pictures_estimate(cursor)


def _lookup_scans(cursor, columns: set[tuple[str, int]]) -> dict[str, HashScan]:  # noqa: ANN001
    return {column: hash_scan(cursor, table=MediaAsset._meta.db_table, column=column, bits=length,
                              where="hash_state = 'done'") for column, length in columns}


def media_lookups_warm() -> int:
    """Read this process's in-memory copy of the hashes now rather than in the first image lookup's request
    (about 5 s at a million pictures). Returns how many pictures the copy holds (0 when lookups use the
    HNSW indexes instead). Runs on a connection of its own, closed at the end: it is meant for a thread
    of its own (investigator/gunicorn.py starts one in every web worker)."""
    try:
        with connection.cursor() as cursor:
            if not _scanned(cursor):
                return 0
            return max(len(scan) for scan in _lookup_scans(cursor, set(SCANNED_COLUMNS)).values())
    finally:
        connection.close()


def stored_pictures_estimate(cursor) -> int:  # noqa: ANN001
    """The planner's count of stored pictures (0 before the table was first analysed)."""
    cursor.execute("SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = %s::regclass",
                   [MediaAsset._meta.db_table])
    return cursor.fetchone()[0]


def media_similar(
    *,
    user: AbstractBaseUser | AnonymousUser,
    signature: Signature,
    picture: Path | int | None,
    max_distance: int | None = None,
    candidates: int = 200,
) -> SimilarMediaList:
    """Stored copies and near-copies of a probe picture, closest first.

    Candidates come from the HNSW indexes (media_candidates); each is then checked with every signature
    (media_analysis.matching.media_match), so mirrored, cropped and captioned copies are found while
    unrelated pictures are not. A candidate matched on one coarse signature alone must also pass the keypoint
    check (media_match says when) against `picture`, the probe's file or its stored asset's id (None: no
    picture to check with). `keypoints` on a match says how many agreed, when the check was asked.
    max_distance overrides the whole-picture pHash threshold. Each match lists the posts that carry it,
    and the earliest copy is marked first seen.
    """
    if not has_role(user, INVESTIGATOR):
        return SimilarMediaList([])
    thresholds = Thresholds.from_settings()
    if max_distance is not None:
        thresholds = replace(thresholds, phash=max_distance)
    with connection.cursor() as cursor:
        ids = media_candidates(cursor, signature, neighbours=candidates, thresholds=thresholds)
    # The whole-picture pHash decides most copies of a viral picture alone (media_match returns at once within
    # phash_sure bits), and it is a column: only the other candidates' full signatures are read and parsed. Most
    # candidates are unrelated pictures (the nearest on each signature), so only the matches become model instances.
    phashes = MediaAsset.objects.filter(pk__in=_any(ids), phash__isnull=False).values_list("pk", "phash")
    sure = min(thresholds.phash, thresholds.phash_sure)
    whole = {pk: min((hamming(signature.phash, phash), "phash"), (hamming(signature.phash_flip, phash), "phash-mirror"))
             for pk, phash in phashes}
    unsure = [pk for pk, (distance, _) in whole.items() if distance > sure]
    signatures = stored_signatures(unsure) if unsure else {}
    checks = KeypointChecks(probe=picture)
    # The unsure candidates are checked all at once (their central regions compared in NumPy).
    checked = [pk for pk in unsure if pk in signatures]
    evidence = {pk: MatchEvidence(True, via, distance) for pk, (distance, via) in whole.items() if distance <= sure}
    evidence |= dict(zip(checked, media_matches(signature, [signatures[pk] for pk in checked], thresholds,
                                                lambda i: checks.with_probe(checked[i])), strict=True))
    found = [_Match(pk, e.via, e.distance, None if e.via.startswith("pdq") else checks.probe_count(pk))
             for pk, e in evidence.items() if e.matched]
    checks.save()
    found.sort(key=lambda m: (TIER.get(m.via, 3), m.distance, m.asset_id))
    return SimilarMediaList(found, signature, thresholds, first_seen=_first_seen([m.asset_id for m in found]))


def _first_seen(ranked: list[int]) -> int | None:
    """Of these pictures (closest first), the one posted earliest; the closest of those posted at that moment."""
    from accounts.models import PostMedia

    first = (PostMedia.objects.filter(media_id__in=_any(ranked), post__posted_at__isnull=False)
             .values("media_id").annotate(first=Min("post__posted_at")).values_list("media_id", "first"))
    rank = {pk: i for i, pk in enumerate(ranked)}
    return min(first, key=lambda row: (row[1], rank[row[0]]), default=(None,))[0]


def _any(ids: Iterable[int]) -> RawSQL:
    """Ids for `pk__in` as one array parameter: a lookup with thousands of copies would otherwise send (and have
    Django and psycopg build) a query with a placeholder per id."""
    return RawSQL("SELECT unnest(%s::bigint[])", [sorted(ids)])


def media_similar_to_upload(*, user: AbstractBaseUser | AnonymousUser, upload: UploadedFile,
                            max_distance: int | None = None) -> SimilarMediaList:
    """Copies of an uploaded picture (the lookup page and the API). The upload is read from a temporary
    file that is gone afterwards; a file that is too large or not a readable picture raises UnreadableImage."""
    if upload.size > settings.MEDIA_MAX_FILE_BYTES:
        raise UnreadableImage("that file is larger than the media size limit")
    with tempfile.NamedTemporaryFile(suffix=".img") as probe:
        for chunk in upload.chunks():
            probe.write(chunk)
        probe.flush()
        hashes = compute_hashes(Path(probe.name), max_pixels=settings.MEDIA_MAX_IMAGE_PIXELS)
        return media_similar(user=user, signature=hashes.signature, picture=Path(probe.name), max_distance=max_distance)


def stored_signature(asset: MediaAsset) -> Signature | None:
    return Signature.from_json(asset.signature) if asset.signature else None


def _attach_sightings(matches: list[SimilarMedia]) -> None:
    from accounts.models import Account, PostMedia

    by_id = {m.asset.pk: m for m in matches}
    rows = (
        PostMedia.objects.filter(media_id__in=_any(by_id))
        .values("media_id", "post_id", "post__url", "post__posted_at", "post__account_id", "post__account__handle",
                "post__platform__slug")
        .order_by("post__posted_at")
    )
    for row in rows:
        by_id[row["media_id"]].sightings.append(Sighting(
            row["post_id"], row["post__url"], row["post__posted_at"], row["post__account_id"],
            row["post__account__handle"], row["post__platform__slug"],
        ))
    for media_id, handle in Account.objects.filter(profile_image_id__in=_any(by_id)).values_list("profile_image_id", "handle"):
        by_id[media_id].avatar_of.append(handle)


@dataclass(frozen=True)
class AvatarMatch:
    account_id: int
    handle: str
    other: str  # the other account's handle, or the known source's label
    distance: int


def avatars_shared(*, user: AbstractBaseUser | AnonymousUser, max_distance: int = 8, neighbours: int = 20) -> list[AvatarMatch]:
    """Pairs of accounts whose profile photos are copies of each other (pHash within max_distance).

    Each avatar asks the HNSW index for its nearest pictures (a LATERAL k-NN), so the cost grows
    with the number of accounts, not its square; identical files share one asset and pair directly.
    """
    if not has_role(user, INVESTIGATOR):
        return []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.ef_search = %s", [max(40, neighbours * 4)])
        cursor.execute(
            """
            WITH avatars AS (
                SELECT a.id AS account_id, a.handle, m.id AS media_id, m.phash
                FROM accounts_account a JOIN media_analysis_mediaasset m ON m.id = a.profile_image_id
                WHERE m.hash_state = 'done'
            ),
            near AS (
                SELECT av.account_id, n.id AS media_id, n.distance
                FROM avatars av
                CROSS JOIN LATERAL (
                    SELECT m.id, m.phash <~> av.phash AS distance FROM media_analysis_mediaasset m
                    WHERE m.hash_state = 'done' ORDER BY m.phash <~> av.phash LIMIT %s
                ) n
                WHERE n.distance <= %s
            )
            SELECT DISTINCT a1.account_id, a1.handle, a2.handle, near.distance::int
            FROM near
            JOIN avatars a1 ON a1.account_id = near.account_id
            JOIN avatars a2 ON a2.media_id = near.media_id AND a2.account_id <> a1.account_id
            ORDER BY 1, 3
            """,
            [neighbours, max_distance],
        )
        return [AvatarMatch(*row) for row in cursor.fetchall()]


def avatars_from_known_sources(*, user: AbstractBaseUser | AnonymousUser, max_distance: int = 12,
                               neighbours: int = 200) -> list[AvatarMatch]:
    """Accounts whose profile photo matches a picture in the known-source bank."""
    if not has_role(user, INVESTIGATOR):
        return []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.ef_search = %s", [max(40, neighbours)])
        cursor.execute(
            """
            SELECT a.id, a.handle, ks.label, n.distance::int
            FROM media_analysis_knownsource ks
            JOIN media_analysis_mediaasset src ON src.id = ks.asset_id AND src.hash_state = 'done'
            CROSS JOIN LATERAL (
                SELECT m.id, m.phash <~> src.phash AS distance FROM media_analysis_mediaasset m
                WHERE m.hash_state = 'done' ORDER BY m.phash <~> src.phash LIMIT %s
            ) n
            JOIN accounts_account a ON a.profile_image_id = n.id
            WHERE n.distance <= %s
            ORDER BY a.handle
            """,
            [neighbours, max_distance],
        )
        return [AvatarMatch(*row) for row in cursor.fetchall()]
