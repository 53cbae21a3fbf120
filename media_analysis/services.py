"""Writes of media analysis: content-addressed storage and hashing."""

from __future__ import annotations

import hashlib
import logging
import shutil
from dataclasses import dataclass
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
