"""Writes of media analysis: content-addressed storage and hashing."""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from media_analysis.hashing import UnreadableImage, compute_hashes
from media_analysis.models import HashState, MediaAsset, media_upload_path

logger = logging.getLogger(__name__)


class MediaRejected(ValueError):
    pass


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size: int
    relative_path: str


def _file_sha256(path: Path, *, limit: int) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            size += len(chunk)
            if size > limit:
                raise MediaRejected(f"larger than the media size limit of {limit // (1024 * 1024)} MiB")
            digest.update(chunk)
    if size == 0:
        raise MediaRejected("empty file (0 bytes)")
    return digest.hexdigest(), size


def media_file_store(*, path: Path) -> StoredFile:
    """Copy a file into content-addressed storage (once per distinct content)."""
    if not path.is_file():
        raise MediaRejected("file not found")
    sha256, size = _file_sha256(path, limit=settings.MEDIA_MAX_FILE_BYTES)
    stub = MediaAsset(sha256=sha256)
    relative = media_upload_path(stub, path.name)
    target = Path(settings.MEDIA_ROOT) / relative
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(target.suffix + ".part")
        shutil.copyfile(path, partial)
        partial.replace(target)  # atomic: a reader never sees half a file
    return StoredFile(sha256=sha256, size=size, relative_path=relative)


def media_assets_register(*, files: list[tuple[StoredFile, str]]) -> dict[str, MediaAsset]:
    """Create MediaAsset rows for stored files not known yet; return every asset by SHA-256."""
    by_sha = {stored.sha256: (stored, name) for stored, name in files}
    existing = {a.sha256: a for a in MediaAsset.objects.filter(sha256__in=by_sha)}
    new_assets = [
        MediaAsset(sha256=sha, file=stored.relative_path, size_bytes=stored.size, original_name=name[:500])
        for sha, (stored, name) in by_sha.items() if sha not in existing
    ]
    if new_assets:
        MediaAsset.objects.bulk_create(new_assets, ignore_conflicts=True, batch_size=500)
        existing = {a.sha256: a for a in MediaAsset.objects.filter(sha256__in=by_sha)}
        media_hashing_schedule(count=len(new_assets))
    return existing


def media_hashing_schedule(*, count: int) -> None:
    """Queue enough hashing tasks for ``count`` new assets, once the transaction commits."""
    from media_analysis.tasks import hash_pending_media

    batches = max(1, -(-count // settings.MEDIA_HASH_BATCH_SIZE))

    def enqueue() -> None:
        for _ in range(batches):
            hash_pending_media.delay()

    transaction.on_commit(enqueue)


def media_hash_claim(*, limit: int) -> list[int]:
    """Claim up to ``limit`` pending assets; a concurrent worker skips the rows this one locked."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            # MATERIALIZED: the LIMIT is applied once; an IN (subquery) may be re-run by the planner.
            """
            WITH claimable AS MATERIALIZED (
                SELECT id FROM media_analysis_mediaasset WHERE hash_state = %s
                ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
            )
            UPDATE media_analysis_mediaasset AS asset SET hash_state = %s, claimed_at = now()
            FROM claimable WHERE asset.id = claimable.id AND asset.hash_state = %s
            RETURNING asset.id
            """,
            [HashState.PENDING, limit, HashState.PROCESSING, HashState.PENDING],
        )
        return sorted(row[0] for row in cursor.fetchall())


def media_hash_requeue_stale(*, older_than: timedelta = timedelta(minutes=30)) -> int:
    """Give back assets whose worker died mid-batch."""
    return MediaAsset.objects.filter(
        hash_state=HashState.PROCESSING, claimed_at__lt=timezone.now() - older_than
    ).update(hash_state=HashState.PENDING, claimed_at=None)


def media_hash_batch(*, asset_ids: list[int]) -> dict[str, int]:
    """Hash claimed assets. A broken file marks only its own asset failed."""
    done = failed = 0
    for asset in MediaAsset.objects.filter(id__in=asset_ids, hash_state=HashState.PROCESSING):
        path = Path(settings.MEDIA_ROOT) / asset.file.name
        try:
            hashes = compute_hashes(path, max_pixels=settings.MEDIA_MAX_IMAGE_PIXELS)
        except (UnreadableImage, FileNotFoundError) as exc:
            reason = str(exc) if isinstance(exc, UnreadableImage) else "stored file is missing"
            MediaAsset.objects.filter(pk=asset.pk).update(
                hash_state=HashState.FAILED, hash_error=reason, hashed_at=timezone.now()
            )
            failed += 1
            continue
        MediaAsset.objects.filter(pk=asset.pk).update(
            hash_state=HashState.DONE,
            hash_error="",
            hashed_at=timezone.now(),
            width=hashes.width,
            height=hashes.height,
            format=hashes.format[:16],
            phash=hashes.phash,
            dhash=hashes.dhash,
            pdq=hashes.pdq,
            pdq_quality=hashes.pdq_quality,
            phash_flip=hashes.signature.phash_flip,
            pdq_flip=hashes.signature.pdq_flip,
            centre=hashes.signature.centre[0],
            signature=asdict(hashes.signature),
        )
        done += 1
    return {"done": done, "failed": failed}


@transaction.atomic
def known_sources_add(*, paths: list[Path], label: str, note: str = "", user: object = None) -> list[MediaAsset]:
    """Register pictures known to come from elsewhere; they are hashed like any other media."""
    from media_analysis.models import KnownSource

    stored = [(media_file_store(path=path), path.name) for path in paths]
    assets = media_assets_register(files=stored)
    added = []
    for stored_file, name in stored:
        asset = assets[stored_file.sha256]
        KnownSource.objects.get_or_create(
            asset=asset,
            defaults={"label": f"{label}: {name}"[:300], "note": note,
                      "added_by": user if getattr(user, "is_authenticated", False) else None},
        )
        added.append(asset)
    return added


def media_clusters_rebuild(
    *, max_distance: int | None = None, max_pdq_distance: int | None = None, neighbours: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Group every hashed picture with its near-duplicates.

    Candidates come from the HNSW indexes (a LATERAL k-NN per picture on every indexed signature, see
    _verified_neighbours), so the cost grows with the number of pictures, not its square; each candidate
    pair is checked with all signatures (media_analysis.matching). Pictures are then taken in order of
    first appearance: each joins the nearest existing centre it matches, or becomes a centre itself. Every
    member therefore matches its centre directly; a chain of small changes (A~B~C) cannot drag an
    unrelated picture in.
    """
    from media_analysis.models import MediaCluster, MediaClusterMember

    max_distance = settings.PHASH_MATCH_DISTANCE if max_distance is None else max_distance
    max_pdq_distance = settings.PDQ_MATCH_DISTANCE if max_pdq_distance is None else max_pdq_distance
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL hnsw.ef_search = %s", [max(40, neighbours * 2)])
            cursor.execute("""
                SELECT m.id, min(p.posted_at) AS first_posted
                FROM media_analysis_mediaasset m
                LEFT JOIN accounts_postmedia pm ON pm.media_id = m.id
                LEFT JOIN accounts_post p ON p.id = pm.post_id
                WHERE m.hash_state = 'done'
                GROUP BY m.id
                ORDER BY min(p.posted_at) NULLS LAST, m.id""")
            order = cursor.fetchall()
            near = _verified_neighbours(cursor, neighbours, max_distance, max_pdq_distance)
        centre_of: dict[int, int] = {}
        members: list[tuple[int, int, int, str]] = []  # asset, centre, distance, via
        for done, (asset_id, _) in enumerate(order, 1):
            candidates = [(rank, centre) for centre, rank in near.get(asset_id, {}).items() if centre_of.get(centre) == centre]
            if candidates:
                (_, distance, via), centre = min(candidates)
                centre_of[asset_id] = centre
                members.append((asset_id, centre, distance, via))
            else:
                centre_of[asset_id] = asset_id
                members.append((asset_id, asset_id, 0, "phash"))
            if progress and done % 1000 == 0:
                progress(done, len(order))
        MediaCluster.objects.all().delete()
        parameters = {"max_distance": max_distance, "max_pdq_distance": max_pdq_distance, "neighbours": neighbours,
                      "pdq_min_quality": settings.PDQ_MIN_QUALITY}
        clusters = MediaCluster.objects.bulk_create(
            [MediaCluster(centre_id=c, parameters=parameters) for c in sorted({c for _, c, _, _ in members})],
            batch_size=2000,
        )
        cluster_id = {c.centre_id: c.pk for c in clusters}
        MediaClusterMember.objects.bulk_create(
            [MediaClusterMember(cluster_id=cluster_id[c], asset_id=a, distance=d, via=v) for a, c, d, v in members],
            batch_size=2000,
        )
        with connection.cursor() as cursor:
            cursor.execute("""
                UPDATE media_analysis_mediacluster c SET size = s.size, first_posted_at = s.first_posted,
                       last_posted_at = s.last_posted, account_count = s.accounts, post_count = s.posts
                FROM (SELECT mm.cluster_id, count(DISTINCT mm.asset_id) AS size, min(p.posted_at) AS first_posted,
                             max(p.posted_at) AS last_posted, count(DISTINCT p.account_id) AS accounts,
                             count(DISTINCT p.id) AS posts
                      FROM media_analysis_mediaclustermember mm
                      LEFT JOIN accounts_postmedia pm ON pm.media_id = mm.asset_id
                      LEFT JOIN accounts_post p ON p.id = pm.post_id
                      GROUP BY mm.cluster_id) s
                WHERE s.cluster_id = c.id""")
    if progress:
        progress(len(order), len(order))
    sizes = Counter(centre for _, centre, _, _ in members)
    return {"pictures": len(order), "clusters": len(clusters), "with_copies": sum(1 for n in sizes.values() if n > 1)}


# Probe vectors per picture and the indexed column each is compared with. The probes not stored as columns
# are read from the signature.
NEIGHBOUR_PROBES = (
    ("phash", "a.phash"), ("phash", "a.phash_flip"),
    ("centre", "a.centre"), ("centre", "(a.signature ->> 'centre_flip')::bit(128)"),
    ("centre", "(a.signature -> 'trimmed' ->> 0)::bit(128)"), ("centre", "(a.signature ->> 'trimmed_flip')::bit(128)"),
    ("pdq", "a.pdq"), ("pdq", "a.pdq_flip"),
)


def _verified_neighbours(cursor, neighbours: int, max_distance: int, max_pdq_distance: int,
                         ) -> dict[int, dict[int, tuple[float, int, str]]]:
    """{picture: {matching picture: (rank, distance, via)}} for every hashed picture."""
    from dataclasses import replace

    from media_analysis.matching import Signature, Thresholds, media_match

    thresholds = replace(Thresholds.from_settings(), phash=max_distance, pdq=max_pdq_distance)
    # Loose first cuts, so only plausible pairs reach the exact check: the whole-picture rules are exact
    # already; a central region within 48 of 128 bits may still match at another scale.
    limits = {"phash": max_distance, "centre": 48, "pdq": max_pdq_distance}
    pairs: set[tuple[int, int]] = set()
    for column, probe in NEIGHBOUR_PROBES:
        trusted = column == "pdq"  # PDQ only between pictures detailed enough for it
        quality = "AND a.pdq_quality >= %(quality)s AND b.pdq_quality >= %(quality)s" if trusted else ""
        cursor.execute(f"""
            SELECT a.id, n.id FROM media_analysis_mediaasset a
            CROSS JOIN LATERAL (
                SELECT b.id, b.{column} <~> {probe} AS distance FROM media_analysis_mediaasset b
                WHERE b.hash_state = 'done' AND b.{column} IS NOT NULL {quality}
                ORDER BY b.{column} <~> {probe} LIMIT %(neighbours)s) n
            WHERE a.hash_state = 'done' AND a.signature IS NOT NULL AND n.id <> a.id AND n.distance <= %(limit)s""",  # noqa: S608
            {"quality": settings.PDQ_MIN_QUALITY, "neighbours": neighbours, "limit": limits[column]})
        pairs.update((min(x, y), max(x, y)) for x, y in cursor.fetchall())
    ids = {i for pair in pairs for i in pair}
    signatures = {pk: Signature.from_json(data) for pk, data in
                  MediaAsset.objects.filter(pk__in=ids).values_list("pk", "signature")}
    tier = {"phash": 0, "centre": 1, "trimmed": 1, "pdq": 2}
    near: dict[int, dict[int, tuple[float, int, str]]] = {}
    for x, y in pairs:
        evidence = media_match(signatures[x], signatures[y], thresholds)
        if evidence.matched:
            rank = (tier[evidence.via.split("-")[0]] * 1000 + evidence.distance, evidence.distance, evidence.via)
            near.setdefault(x, {})[y] = rank
            near.setdefault(y, {})[x] = rank
    return near
