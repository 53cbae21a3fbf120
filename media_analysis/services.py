"""Writes of media analysis: content-addressed storage and hashing."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from investigator.memory import few_collections
from media_analysis.hashing import UnreadableImage, compute_hashes, load_rgb
from media_analysis.keypoints import Keypoints, agreement, confirmed, keypoints
from media_analysis.matching import (
    LOOKUP_FIELDS,
    SIGNATURE_VERSION,
    MatchEvidence,
    Signature,
    Thresholds,
    media_match,
    words,
)
from media_analysis.models import HashState, KeypointCheck, MediaAsset, media_upload_path

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
        # A partial file of its own: imports storing the same picture at once each rename a whole copy into
        # place (atomic: a reader never sees half a file), and the last rename wins with the same bytes.
        partial = target.with_name(f"{target.name}.{secrets.token_hex(8)}.part")
        try:
            with path.open("rb") as source, partial.open("xb") as copy:
                shutil.copyfileobj(source, copy, length=1024 * 1024)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
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


def media_hashing_schedule(*, count: int) -> int:
    """Queue enough hashing tasks for ``count`` assets waiting to be hashed (or hashed again), once the
    transaction commits; returns how many."""
    from media_analysis.tasks import hash_pending_media

    batches = -(-count // settings.MEDIA_HASH_BATCH_SIZE)

    def enqueue() -> None:
        for _ in range(batches):
            hash_pending_media.delay()

    transaction.on_commit(enqueue)
    return batches


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


def media_rehash_claim(*, limit: int, older_than: timedelta = timedelta(minutes=30)) -> list[int]:
    """Claim up to ``limit`` hashed assets whose signature is older than matching.SIGNATURE_VERSION, oldest
    signature first, to hash them again. They stay hashed (and keep matching) while a worker has them; a claim
    older than ``older_than`` is a dead worker's, and is taken over. One whose stored file could not be hashed
    again (its hash_error says why) is not claimed again."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            WITH claimable AS MATERIALIZED (
                SELECT id FROM media_analysis_mediaasset
                WHERE hash_state = %s AND signature_version < %s AND hash_error = ''
                  AND (claimed_at IS NULL OR claimed_at < now() - %s)
                ORDER BY signature_version, id LIMIT %s FOR UPDATE SKIP LOCKED
            )
            UPDATE media_analysis_mediaasset AS asset SET claimed_at = now()
            FROM claimable WHERE asset.id = claimable.id
            RETURNING asset.id
            """,
            [HashState.DONE, SIGNATURE_VERSION, older_than, limit],
        )
        return sorted(row[0] for row in cursor.fetchall())


def media_hash_requeue_stale(*, older_than: timedelta = timedelta(minutes=30)) -> int:
    """Give back assets whose worker died mid-batch."""
    return MediaAsset.objects.filter(
        hash_state=HashState.PROCESSING, claimed_at__lt=timezone.now() - older_than
    ).update(hash_state=HashState.PENDING, claimed_at=None)


def media_hash_retry_failed() -> tuple[int, int]:
    """Give every picture that could not be hashed another try (a file restored to storage, a worker short of
    memory): failed ones are pending again, and hashed ones whose re-hash failed are hashed again if their
    signature is still older. Returns how many of each; the caller queues them (media_hashing_schedule), with
    whatever else is waiting."""
    failed = MediaAsset.objects.filter(hash_state=HashState.FAILED).update(
        hash_state=HashState.PENDING, hash_error="", claimed_at=None, hashed_at=None)
    rehash = MediaAsset.objects.filter(hash_state=HashState.DONE).exclude(hash_error="").update(
        hash_error="", claimed_at=None)
    return failed, rehash


def media_hash_batch(*, asset_ids: list[int], again: bool = False) -> dict[str, int]:
    """Hash claimed assets: pending ones (media_hash_claim), or with ``again`` hashed ones whose signature is
    older (media_rehash_claim). A broken file marks only its own asset failed; one that was hashed before keeps
    the hashes it has, and its hash_error says why it could not be hashed again."""
    done = failed = 0
    if again:
        assets = MediaAsset.objects.filter(id__in=asset_ids, hash_state=HashState.DONE,
                                           signature_version__lt=SIGNATURE_VERSION)
    else:
        assets = MediaAsset.objects.filter(id__in=asset_ids, hash_state=HashState.PROCESSING)
    for asset in assets.defer("signature"):
        path = Path(settings.MEDIA_ROOT) / asset.file.name
        try:
            hashes = compute_hashes(path, max_pixels=settings.MEDIA_MAX_IMAGE_PIXELS)
        except UnreadableImage as exc:
            reason = "the stored file is missing" if not path.exists() else str(exc)
            if again:
                MediaAsset.objects.filter(pk=asset.pk).update(
                    hash_error=f"could not be hashed again ({reason}); the earlier hashes stand", claimed_at=None)
            else:
                MediaAsset.objects.filter(pk=asset.pk).update(
                    hash_state=HashState.FAILED, hash_error=reason, hashed_at=timezone.now())
            failed += 1
            continue
        MediaAsset.objects.filter(pk=asset.pk).update(
            hash_state=HashState.DONE,
            hash_error="",
            claimed_at=None,
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
            signature_version=SIGNATURE_VERSION,
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


class KeypointChecks:
    """Keypoint checks (media_analysis.keypoints) of pairs matched on one coarse signature alone (see
    media_analysis.matching.media_match), between stored pictures and optionally an outside picture (an image
    lookup's probe). Verdicts between stored pictures are read from and kept in KeypointCheck rows (`save`),
    so each pair's pictures are read once, ever. A stored picture that cannot be read (its file gone) cannot
    refute its match: the signature's verdict stands, and nothing is kept, so the next check tries again.

    Not thread-safe: one per build, case file or request."""

    KEPT = 1024  # pictures whose keypoints are held at once (up to 80 KB each)
    PREFETCH = 256  # pairs checked side by side at a time

    def __init__(self, *, probe: Path | int | None = None, preload: bool = False) -> None:
        self.minimum = settings.CENTRE_CONFIRM_KEYPOINTS
        self.probe = probe
        self.known: dict[tuple[int, int, bool], int] = {}
        self.new: dict[tuple[int, int, bool], int] = {}
        self.preloaded = preload and self.minimum > 0
        if self.preloaded:
            self.known = {(first, second, mirrored): count for first, second, mirrored, count in
                          KeypointCheck.objects.values_list("first_id", "second_id", "mirrored", "agreement").iterator()}
        self._keypoints: OrderedDict[tuple[int | None, bool], Keypoints | None] = OrderedDict()
        self.pictures_read = 0
        self.counts: dict[tuple[int | None, int], int] = {}  # (a, b) as asked (a None for the probe): keypoints in agreement
        self._probe_counts: dict[tuple[int, bool], int] = {}

    def between(self, a: int, b: int) -> Callable[[bool, bool], bool] | None:
        """The `confirm` that media_match takes, for two stored pictures (None when the check is turned off)."""
        return None if self.minimum == 0 else \
            lambda mirrored, strict=False: self.confirms(a, b, mirrored=mirrored, strict=strict)

    def with_probe(self, asset: int) -> Callable[[bool, bool], bool] | None:
        """The same between the probe (a picture's file, or a stored picture's id) and a stored picture."""
        if self.minimum == 0 or self.probe is None or self.probe == asset:
            return None
        if isinstance(self.probe, int):
            return self.between(self.probe, asset)
        return lambda mirrored, strict=False: self.confirms(None, asset, mirrored=mirrored, strict=strict)

    def probe_count(self, asset: int) -> int | None:
        """Keypoints in agreement between the probe and a stored picture, if the check was asked."""
        return self.counts.get((self.probe if isinstance(self.probe, int) else None, asset))

    def confirms(self, a: int | None, b: int, *, mirrored: bool, strict: bool = False) -> bool:
        """Whether the keypoints of a (None: the probe), mirrored or not, and b confirm their match (strict: too
        plain to tell refuses it; keypoints.confirmed)."""
        if a is None:  # the probe: nothing to keep, but media_match may ask twice (whole picture, then centre)
            count = self._probe_counts.get((b, mirrored))
            if count is None:
                mine, theirs = self._picture(None, mirrored), self._picture(b, False)
                if mine is None or theirs is None:
                    return True
                count = self._probe_counts[b, mirrored] = agreement(mine, theirs)
            self.counts[a, b] = count
            return confirmed(count, self.minimum, strict)
        key = (min(a, b), max(a, b), mirrored)
        if key not in self.known and not self.preloaded:
            self._stored(key)
        count = self.known.get(key)
        if count is None:
            first, second = self._picture(key[0], mirrored), self._picture(key[1], False)
            if first is None or second is None:
                return True
            count = self.known[key] = self.new[key] = agreement(first, second)
        self.counts[a, b] = count
        return confirmed(count, self.minimum, strict)

    def _picture(self, asset: int | None, mirrored: bool) -> Keypoints | None:
        key = (asset, mirrored)
        if key in self._keypoints:
            self._keypoints.move_to_end(key)
            return self._keypoints[key]
        if asset is None:
            path = self.probe
        else:
            name = MediaAsset.objects.filter(pk=asset).values_list("file", flat=True).first()
            path = Path(settings.MEDIA_ROOT) / name if name else None
        found = self._read(path, mirrored, asset)
        self.pictures_read += found is not None
        return self._keep(key, found)

    def _read(self, path: Path | None, mirrored: bool, label: object) -> Keypoints | None:
        """A picture's keypoints from its file (None when it cannot be read). Thread-safe."""
        if path is None:
            return None
        try:
            image, _, size = load_rgb(path, max_pixels=settings.MEDIA_MAX_IMAGE_PIXELS)
        except UnreadableImage as exc:
            logger.warning("keypoint check: picture %s cannot be read (%s); its match stands", label or path, exc)
            return None
        return keypoints(image, mirrored=mirrored, side=max(size))

    def _keep(self, key: tuple[int | None, bool], found: Keypoints | None) -> Keypoints | None:
        self._keypoints[key] = found
        if len(self._keypoints) > self.KEPT:
            self._keypoints.popitem(last=False)
        return found

    def prefetch(self, pairs: Iterable[tuple[int, int, bool]]) -> None:
        """Check these pairs of stored pictures now, side by side on every core (OpenCV and Pillow let go of
        the GIL), so that `confirms` finds their verdicts. For the many pairs of a media-cluster build; the
        verdicts are the same as one at a time. PREFETCH pairs at a time, so that at most twice as many
        pictures' keypoints are held at once."""
        from concurrent.futures import ThreadPoolExecutor

        if self.minimum == 0:
            return
        todo = sorted({(min(a, b), max(a, b), mirrored) for a, b, mirrored in pairs} - self.known.keys())
        if not self.preloaded:
            todo = [key for key in todo if not self._stored(key)]
        if len(todo) < 2:
            return
        names = dict(MediaAsset.objects.filter(pk__in={asset for key in todo for asset in key[:2]})
                     .values_list("pk", "file"))
        with ThreadPoolExecutor(max_workers=min(len(todo), os.cpu_count() or 1)) as pool:
            for start in range(0, len(todo), self.PREFETCH):
                chunk = todo[start:start + self.PREFETCH]
                wanted = dict.fromkeys(side for first, second, mirrored in chunk for side in ((first, mirrored), (second, False)))
                pictures = {key: self._keypoints[key] for key in wanted if key in self._keypoints}
                missing = [key for key in wanted if key not in pictures]
                found = pool.map(lambda key: self._read(Path(settings.MEDIA_ROOT) / names[key[0]] if key[0] in names
                                                        else None, key[1], key[0]), missing)
                pictures.update(zip(missing, found, strict=True))
                self.pictures_read += sum(pictures[key] is not None for key in missing)
                counts = pool.map(lambda key, pictures=pictures: None if pictures[key[0], key[2]] is None
                                  or pictures[key[1], False] is None
                                  else agreement(pictures[key[0], key[2]], pictures[key[1], False]), chunk)
                for key, count in zip(chunk, counts, strict=True):
                    if count is not None:  # a picture that cannot be read: left to `confirms`, which lets it stand
                        self.known[key] = self.new[key] = count
                for key in missing:
                    self._keep(key, pictures[key])

    def _stored(self, key: tuple[int, int, bool]) -> bool:
        count = KeypointCheck.objects.filter(first_id=key[0], second_id=key[1], mirrored=key[2]).values_list(
            "agreement", flat=True).first()
        if count is not None:
            self.known[key] = count
        return count is not None

    def save(self) -> int:
        """Keep the verdicts reached since the last save. Returns how many."""
        rows = [KeypointCheck(first_id=first, second_id=second, mirrored=mirrored, agreement=count)
                for (first, second, mirrored), count in self.new.items()]
        # A picture deleted meanwhile takes its pairs with it: keep the rest.
        existing = set(MediaAsset.objects.filter(pk__in={r.first_id for r in rows} | {r.second_id for r in rows})
                       .values_list("pk", flat=True))
        KeypointCheck.objects.bulk_create([r for r in rows if r.first_id in existing and r.second_id in existing],
                                          ignore_conflicts=True, batch_size=2000)
        self.new.clear()
        return len(rows)


# Serialises media cluster builds: each replaces every cluster, so two at once would each store a whole set.
_CLUSTERS_LOCK_KEY = 0x3ED1AC


def media_clusters_rebuild(
    *, max_distance: int | None = None, max_pdq_distance: int | None = None, neighbours: int = 24,
    progress: Callable[[int, int], None] | None = None, waiting: Callable[[], None] | None = None,
) -> dict[str, int]:
    """Group every hashed picture with its near-duplicates, leader first.

    Pictures are taken in order of first appearance. Each is compared with the centres found so far (see
    CentreIndex: faiss HNSW indexes over the centres' signatures, so a picture meets the few centres near
    it, never every picture) and joins the closest centre it matches with all signatures
    (media_analysis.matching), or becomes a centre itself. Every member therefore matches its centre
    directly: a chain of small changes (A~B~C) cannot drag an unrelated picture in, and a picture with
    thousands of copies still has one centre, however many copies sit near it.

    A picture placed with a centre on one coarse signature alone (the central region, or the whole-picture
    pHash near its threshold) must also pass the keypoint check (media_analysis.keypoints), which reads both
    pictures the first time and keeps its verdict (KeypointCheck), so a rebuild reads only pictures in pairs
    it has not seen.

    One build runs at a time: a second one calls `waiting` and starts when the first is done, so it groups
    the pictures as they are then. The grouping (minutes at a million pictures) reads the signatures a
    batch at a time, each read a statement of its own, so no transaction stays open for it (an open one
    would hold back vacuum for the whole database); only storing the result is one transaction. Pictures
    hashed after the build began wait for the next one.
    """
    from dataclasses import replace

    max_distance = settings.PHASH_MATCH_DISTANCE if max_distance is None else max_distance
    max_pdq_distance = settings.PDQ_MATCH_DISTANCE if max_pdq_distance is None else max_pdq_distance
    thresholds = replace(Thresholds.from_settings(), phash=max_distance, pdq=max_pdq_distance)
    with _clusters_lock(waiting), few_collections():
        with connection.cursor() as cursor:
            cursor.execute("""
                SELECT m.id FROM media_analysis_mediaasset m
                LEFT JOIN LATERAL (SELECT min(p.posted_at) AS first_posted FROM accounts_postmedia pm
                                   JOIN accounts_post p ON p.id = pm.post_id WHERE pm.media_id = m.id) f ON true
                WHERE m.hash_state = 'done' AND m.signature IS NOT NULL
                ORDER BY f.first_posted NULLS LAST, m.id""")
            order = np.fromiter((row[0] for row in cursor.fetchall()), dtype=np.int64)
        checks = KeypointChecks(preload=True)
        centres = CentreIndex(thresholds, neighbours=neighbours, checks=checks)
        members: list[tuple[int, int, int, str, int | None]] = []  # asset, centre, distance, via, keypoints
        for start in range(0, len(order), CentreIndex.BATCH):
            ids = order[start:start + CentreIndex.BATCH].tolist()
            found = stored_signatures(ids)
            batch = [(asset_id, found[asset_id]) for asset_id in ids if asset_id in found]
            for (asset_id, _), (centre, evidence) in zip(batch, centres.assign(batch), strict=True):
                if evidence is None:
                    members.append((asset_id, asset_id, 0, "phash", None))
                else:
                    keypoints = None if evidence.via.startswith("pdq") else checks.counts.get((asset_id, centre))
                    members.append((asset_id, centre, evidence.distance, evidence.via, keypoints))
            if progress:
                progress(min(start + CentreIndex.BATCH, len(order)), len(order))
        checks.save()
        parameters = {"max_distance": max_distance, "max_pdq_distance": max_pdq_distance, "neighbours": neighbours,
                      "pdq_min_quality": settings.PDQ_MIN_QUALITY, "centre_distance": thresholds.centre,
                      "centre_confirm_keypoints": checks.minimum, "phash_confirm_beyond": thresholds.phash_sure}
        with transaction.atomic():
            _media_clusters_store(members, parameters)
    sizes = Counter(member[1] for member in members)
    return {"pictures": len(members), "clusters": len(sizes), "with_copies": sum(1 for n in sizes.values() if n > 1),
            "pictures_read_for_keypoints": checks.pictures_read}


def stored_signatures(ids: list[int]) -> dict[int, Signature]:
    """The stored signatures of these pictures (those that have one), for media_match: without the fields only
    a lookup's probe reads (LOOKUP_FIELDS, never compared: about a third of each signature's hashes). Read as text and
    parsed here: at a million pictures, half the time of reading them through the ORM's JSONField; leaving the
    lookup fields out saves another tenth."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, (signature - %s::text[])::text FROM {MediaAsset._meta.db_table} "  # noqa: S608 (model table name)
                       "WHERE id = ANY(%s) AND signature IS NOT NULL", [list(LOOKUP_FIELDS), ids])
        return {asset_id: Signature.from_json(json.loads(text)) for asset_id, text in cursor.fetchall()}


@contextlib.contextmanager
def _clusters_lock(waiting: Callable[[], None] | None) -> Iterator[None]:
    """PostgreSQL's session-level advisory lock, so builds in any process wait for each other; a build whose
    process dies loses it with its connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_CLUSTERS_LOCK_KEY])
        if not cursor.fetchone()[0]:
            if waiting:
                waiting()
            cursor.execute("SELECT pg_advisory_lock(%s)", [_CLUSTERS_LOCK_KEY])
    try:
        yield
    finally:
        # A connection that broke under the build took the lock with it; its error is the one to report.
        with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_CLUSTERS_LOCK_KEY])


def _media_clusters_store(members: list[tuple[int, int, int, str, int | None]], parameters: dict) -> None:
    """Replace the stored media clusters: the members go in by COPY and the clusters and their figures are made
    from them in SQL (a million members would take minutes as model instances). The old rows are deleted, not
    truncated, so pages keep reading them until this transaction commits."""
    from media_analysis.models import MediaCluster, MediaClusterMember

    clusters, members_table = MediaCluster._meta.db_table, MediaClusterMember._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {members_table}")  # noqa: S608 (model table names)
        cursor.execute(f"DELETE FROM {clusters}")  # noqa: S608
        cursor.execute("CREATE TEMPORARY TABLE media_cluster_load (asset bigint, centre bigint, distance smallint, "
                       "via text, keypoints smallint) ON COMMIT DROP")
        with cursor.copy("COPY media_cluster_load FROM STDIN") as copy:
            for row in members:
                copy.write_row(row)
        insert = (f"INSERT INTO {clusters} (centre_id, size, account_count, post_count, parameters, built_at) "  # noqa: S608
                  "SELECT centre, count(*), 0, 0, %s::jsonb, now() FROM media_cluster_load GROUP BY centre ORDER BY centre")
        cursor.execute(insert, [json.dumps(parameters)])
        cursor.execute(f"""
            INSERT INTO {members_table} (cluster_id, asset_id, distance, via, keypoints)
            SELECT c.id, l.asset, l.distance, l.via, l.keypoints FROM media_cluster_load l
            JOIN {clusters} c ON c.centre_id = l.centre
            ORDER BY l.asset""")  # noqa: S608
        cursor.execute(f"""
            UPDATE {clusters} c SET first_posted_at = s.first_posted, last_posted_at = s.last_posted,
                   account_count = s.accounts, post_count = s.posts
            FROM (SELECT mm.cluster_id, min(p.posted_at) AS first_posted, max(p.posted_at) AS last_posted,
                         count(DISTINCT p.account_id) AS accounts, count(DISTINCT p.id) AS posts
                  FROM {members_table} mm
                  JOIN accounts_postmedia pm ON pm.media_id = mm.asset_id
                  JOIN accounts_post p ON p.id = pm.post_id
                  GROUP BY mm.cluster_id) s
            WHERE s.cluster_id = c.id""")  # noqa: S608
        cursor.execute("DROP TABLE media_cluster_load")  # before the commit, for callers inside a larger transaction


def _distinct(vectors: list[str]) -> list[str]:
    return list(dict.fromkeys(vectors))


class CentreIndex:
    """The media clusters' centres so far, searchable by every signature media_match compares.

    Five faiss binary HNSW indexes (built for exactly this: Hamming k-NN over packed bits), each vector
    mapped back to its centre:
    - whole-picture pHash (probed with the picture's pHash and its mirror's),
    - every central-region and trimmed hash of each centre (probed with the picture's central 70% and its
      mirror's, plain and trimmed; and with its moved regions, Signature.moved): the picture as a cropped or captioned
      copy of the centre,
    - each centre's own central 70% probes (probed with all of the picture's scales): the centre as the copy,
    - each centre's moved central regions (Signature.shifted; probed with all of the picture's scales): the
      centre as an unevenly cropped copy. Its outer windows are left out: they would make the build about 1.5x
      slower, and only find a crop's original posted after the crop (the picture probing with its own outer
      windows finds the original posted first),
    - PDQ, only between pictures detailed enough for it.
    The k nearest within the thresholds are then checked with media_match, the closest agreeing one wins
    (whole picture before centre before PDQ)."""

    TIER = {"phash": 0, "centre": 1, "trimmed": 1, "moved": 1, "pdq": 2}
    BATCH = 512  # pictures per assign(): larger batches search faster, but compare more new centres in NumPy
    # Searches made with another search's probes (the name of a search is otherwise the key of its probes). Having
    # no probes of their own, they are left out of the exact comparison within a batch (_near_in_batch).
    PROBES_OF = {"phash_first": "phash"}

    def __init__(self, thresholds: Thresholds, *, neighbours: int = 24, checks: KeypointChecks | None = None) -> None:
        import faiss

        self.thresholds = thresholds
        self.checks = checks
        self.neighbours = neighbours
        # Every comparison media_match makes has its own search here (the central regions at every scale among
        # them), so the first cuts are the match thresholds themselves: (index searched, limit, k nearest, search
        # parameters, None for the index's own). The moved regions (thirty-two probes a picture, sixteen vectors a
        # centre: more than all the others) count within their own,
        # tighter threshold, and are searched narrowly: the 8 nearest with efSearch 32, in an index with 8 links
        # built with efConstruction 16. On the scale-1 demo's pictures that gives 99.07% of them the exact scan's
        # centre; standard searches give 99.74%, but made synthetic distinct-heavy builds several times slower.
        # Every picture's pHash and its mirror's are searched first for the 8 nearest with efSearch 16
        # ("phash_first"; see assign): on 300,000 synthetic pictures that halved the pHash searches (24.7 s to
        # 12.3 s) and gave 299,990 of them the same centre as searching widely at once.
        narrow = faiss.SearchParametersHNSW(efSearch=32)
        self.searches = {
            "phash_first": ("phash", thresholds.phash, 8, faiss.SearchParametersHNSW(efSearch=16)),
            "phash": ("phash", thresholds.phash, neighbours, None), "scales": ("scales", thresholds.centre, neighbours, None),
            "probes": ("probes", thresholds.centre, neighbours, None), "pdq": ("pdq", thresholds.pdq, neighbours, None),
            "moved": ("scales", thresholds.centre_shifted, 8, narrow),
            "at_moved": ("moved", thresholds.centre_shifted, 8, narrow)}
        self.indexes = {name: faiss.IndexBinaryHNSW(bits, links) for name, bits, links in
                        (("phash", 64, 16), ("scales", 128, 16), ("probes", 128, 16), ("moved", 128, 8), ("pdq", 256, 16))}
        # Measured on the scale-2 demo's 28,740 real pictures (80% distinct) against an exact scan of every
        # centre, since each vector is added once (_distinct): the same centre for 99.89% of pictures at
        # efConstruction 40, 99.91% at 48, 99.95% at 80 (1.3-1.45x the time of 40), 99.74% at 24 or 32 (no
        # faster); efSearch below 64 loses more than it gains (99.76% at 48). Adding new centres is most of
        # the build, so 40. A missed centre only splits a cluster in two; it never merges unrelated pictures.
        for index in self.indexes.values():
            index.hnsw.efConstruction = 40
            index.hnsw.efSearch = max(64, neighbours * 2)
        self.indexes["moved"].hnsw.efConstruction = 16
        self.owner: dict[str, list[int]] = {name: [] for name in self.indexes}
        self.signatures: dict[int, Signature] = {}

    # A picture without banners has trimmed hashes equal to its central ones (99.7% of the scale-2 demo's
    # pictures), so each vector is added and searched once: half the work, the same answers.
    def _vectors(self, signature: Signature) -> dict[str, list[str]]:
        trusted = signature.pdq_quality >= self.thresholds.pdq_min_quality
        return {"phash": [signature.phash], "scales": _distinct([*signature.centre, *signature.trimmed]),
                "probes": _distinct([signature.centre[0], signature.centre_flip, signature.trimmed[0],
                                     signature.trimmed_flip]),
                "moved": [*signature.shifted, *signature.shifted_flip],
                "pdq": [signature.pdq] if trusted else []}

    def _probes(self, signature: Signature) -> dict[str, list[str]]:
        trusted = signature.pdq_quality >= self.thresholds.pdq_min_quality
        return {"phash": [signature.phash, signature.phash_flip],
                "scales": _distinct([signature.centre[0], signature.centre_flip, signature.trimmed[0],
                                     signature.trimmed_flip]),
                "probes": _distinct([*signature.centre, *signature.trimmed]),
                "moved": [*signature.moved, *signature.moved_flip],
                "at_moved": _distinct([*signature.centre, *signature.trimmed]),
                "pdq": [signature.pdq, signature.pdq_flip] if trusted else []}

    def assign(self, batch: list[tuple[int, Signature]]) -> list[tuple[int, MatchEvidence | None]]:
        """Leader first over a batch of pictures, in order: each joins the closest centre it matches, found
        before the batch or earlier in it, or becomes a centre itself. Returns (centre, evidence) per picture,
        with no evidence for a new centre.

        The centres from before the batch are searched with one faiss call per index for the whole batch
        (faiss spreads a batch over the cores; one query at a time it cannot, and its threads wait on each
        other when the cores are busy). The batch's own pictures are compared exactly with each other
        (_near_in_batch), and its new centres then added to the indexes in one call per index."""
        signatures = [signature for _, signature in batch]
        probes = [self._probes(signature) for signature in signatures]
        best: list[tuple | None] = [None] * len(batch)
        checked: list[set[int]] = [set() for _ in batch]
        pending = list(range(len(batch)))
        # A whole-picture match outranks any other, so the central regions and PDQ are only searched for
        # pictures the pHash index offers none. It is searched narrowly first ("phash_first", with the pHash
        # probes): most pictures are copies a few bits from their centre, and only those it finds no match for
        # are searched again as widely as the other indexes.
        for stage in (("phash_first",), ("phash",), ("scales", "probes", "moved", "at_moved", "pdq")):
            candidates: list[set[int]] = [set() for _ in batch]
            for name in stage:
                for position, centre in self._search(name, [(i, probes[i][self.PROBES_OF.get(name, name)]) for i in pending]):
                    candidates[position].add(centre)
            ranked = {i: self._ranked(signatures[i], candidates[i] - checked[i]) for i in pending}
            self._prefetch([(batch[i][0], ranked[i], best[i]) for i in pending])
            for i in pending:
                best[i] = self._better(best[i], batch[i][0], signatures[i], ranked[i])
                checked[i] |= candidates[i]
            pending = [i for i in pending if best[i] is None or best[i][0][0] != 0]

        # The batch's own pictures, compared exactly with each other (one faiss range search per index): which
        # earlier pictures of the batch each one is near. Those that became centres are its candidates. Only a
        # picture that matched no centre from before the batch can become one, and only a whole-picture match
        # could beat one a picture has already: the rest of the search would find nothing that counts.
        vectors = [self._vectors(signature) for signature in signatures]
        unmatched = {i for i in range(len(batch)) if best[i] is None}
        earlier = self._near_in_batch(
            [p if best[i] is None or best[i][0][0] != 0 else {"phash": p["phash"]} for i, p in enumerate(probes)],
            [v if i in unmatched else {} for i, v in enumerate(vectors)])
        own: dict[str, list[tuple[int, list[str]]]] = {name: [] for name in self.indexes}
        results: list[tuple[int, MatchEvidence | None]] = []
        for i, (asset_id, signature) in enumerate(batch):
            near = {batch[j][0] for j in earlier[i] if results[j][1] is None}
            if near:
                best[i] = self._better(best[i], asset_id, signature, self._ranked(signature, near))
            if best[i] is None:
                self.signatures[asset_id] = signature
                for name, found in vectors[i].items():
                    if found:
                        own[name].append((asset_id, found))
                results.append((asset_id, None))
            else:
                results.append((best[i][1], best[i][2]))
        for name, centres in own.items():
            if centres:
                self._add(name, [asset for asset, found in centres for _ in found],
                          words([v for _, found in centres for v in found]))
        return results

    def _near_in_batch(self, probes: list[dict[str, list[str]]], vectors: list[dict[str, list[str]]]) -> list[set[int]]:
        """Per picture of a batch, the earlier pictures of the batch whose vectors one of its probes comes within
        the limit of, for any index: an exact range search (faiss IndexBinaryFlat) of all the batch's probes
        against all its vectors. A picture's probes or vectors may leave out any index (they are not searched)."""
        import faiss

        earlier: list[set[int]] = [set() for _ in probes]
        for name, (searched, limit, *_) in self.searches.items():
            probe_of = np.array([i for i, p in enumerate(probes) for _ in p.get(name, ())], dtype=np.int64)
            vector_of = np.array([i for i, v in enumerate(vectors) for _ in v.get(searched, ())], dtype=np.int64)
            if not len(probe_of) or not len(vector_of):
                continue
            flat = faiss.IndexBinaryFlat(self.indexes[searched].d)
            flat.add(words([x for v in vectors for x in v.get(searched, ())]).view(np.uint8))
            limits, _, rows = flat.range_search(words([x for p in probes for x in p.get(name, ())]).view(np.uint8),
                                                limit + 1)  # distances below the radius
            picture, other = np.repeat(probe_of, np.diff(limits).astype(np.int64)), vector_of[rows]
            for i, j in zip(*(column[other < picture].tolist() for column in (picture, other)), strict=True):
                earlier[i].add(j)
        return earlier

    def _add(self, name: str, owners: list[int], vectors: np.ndarray) -> None:
        self.indexes[name].add(vectors.view(np.uint8))
        self.owner[name].extend(owners)

    def _search(self, name: str, queries: list[tuple[int, list[str]]]) -> list[tuple[int, int]]:
        """(query position, centre) for every centre with a vector among the k nearest of a probe, within the
        limit; one faiss search for all the probes."""
        searched, limit, k, params = self.searches[name]
        index = self.indexes[searched]
        positions = [position for position, probes in queries for _ in probes]
        if index.ntotal == 0 or not positions:
            return []
        vectors = words([p for _, probes in queries for p in probes]).view(np.uint8)
        distances, rows = index.search(vectors, min(k, index.ntotal), params=params)
        hits = (distances <= limit) & (rows >= 0)
        owners = self.owner[searched]
        queries_hit, ranks = np.nonzero(hits)
        return [(positions[q], owners[r]) for q, r in zip(queries_hit.tolist(), rows[queries_hit, ranks].tolist(), strict=True)]

    def _ranked(self, signature: Signature, centres: Iterable[int]) -> list[tuple[tuple, int, MatchEvidence, bool | None]]:
        """The centres the signatures match, best first: (rank, centre, evidence, and the `mirrored` the keypoint
        check would be asked with, None when the match needs no check)."""
        ranked = []
        for centre in centres:
            asked: list[bool] = []
            evidence = media_match(signature, self.signatures[centre], self.thresholds,
                                   lambda mirrored, strict=False, asked=asked: asked.append(mirrored) or True)
            if evidence.matched:
                rank = (self.TIER[evidence.via.split("-")[0]], evidence.distance, centre)
                ranked.append((rank, centre, evidence, asked[0] if asked else None))
        return sorted(ranked, key=lambda found: found[0])

    def _prefetch(self, pictures: list[tuple[int, list, tuple | None]]) -> None:
        """Put the pairs that _better may ask about to the keypoint check beforehand, all at once and side by side
        (KeypointChecks.prefetch): per picture, its ranked centres while they rank above its best match so far,
        down to the first that needs no check."""
        if self.checks is None or self.checks.minimum == 0:
            return
        pairs = []
        for asset, ranked, best in pictures:
            for rank, centre, _, mirrored in ranked:
                if (best is not None and rank >= best[0]) or mirrored is None:
                    break
                pairs.append((asset, centre, mirrored))
        self.checks.prefetch(pairs)

    def _better(self, best: tuple | None, asset: int, signature: Signature, ranked: list) -> tuple | None:
        """The best of the best match so far and these ranked centres (_ranked). A match on one coarse signature
        alone must also pass the keypoint check, which reads pictures: it is asked in order of rank, only while
        a match could still win."""
        for rank, centre, evidence, mirrored in ranked:
            if best is not None and rank >= best[0]:
                break  # the rest rank lower still
            if mirrored is not None and self.checks is not None:
                evidence = media_match(signature, self.signatures[centre], self.thresholds, self.checks.between(asset, centre))
                if not evidence.matched:
                    continue
                rank = (self.TIER[evidence.via.split("-")[0]], evidence.distance, centre)  # lower, if the check refused
            if best is None or rank < best[0]:
                best = (rank, centre, evidence)
        return best
