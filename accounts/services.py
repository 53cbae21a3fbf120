"""Writes of the social-media side. Importers of every format, the CLI, the web upload
and the API all go through these functions."""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from accounts.importers.records import AccountRecord, PostRecord, Record, Rejection
from accounts.models import (
    Account,
    Dataset,
    HandleChange,
    ImportRejection,
    ImportRun,
    JobStatus,
    Platform,
    Post,
    PostMedia,
)
from accounts.normalize import clean_text, extract_hashtags, extract_links, extract_mentions, normalize_url
from media_analysis.services import MediaRejected, StoredFile, media_assets_register, media_file_store

logger = logging.getLogger(__name__)
BATCH_SIZE = 1000
ACCOUNT_FIELDS = (
    "handle", "display_name", "bio", "external_url", "location", "language", "created_at", "follower_count",
    "following_count", "post_count", "is_private", "is_verified",
)
POST_FIELDS = (
    "posted_at", "text", "hashtags", "mentions", "links", "post_type", "language", "url", "repost_of_external_id",
    "reply_to_external_id", "like_count", "comment_count", "share_count", "view_count",
)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


@transaction.atomic
def dataset_get_or_create(*, name: str, user: AbstractBaseUser | None = None) -> Dataset:
    name = clean_text(name).strip()[:200]
    if not name:
        raise ValueError("A dataset needs a name")
    dataset, _ = Dataset.objects.get_or_create(name=name, defaults={"created_by": user})
    return dataset


def _source_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path} does not exist")
    return files


def source_files_describe(paths: list[Path]) -> list[dict[str, object]]:
    """Every input file's name (relative to what was named), size and SHA-256: the run's provenance."""
    roots = [p.resolve() for p in paths]
    sources = []
    for file in _source_files(roots):
        root = next((r for r in roots if r == file or r in file.parents), file.parent)
        sources.append({"name": str(file.relative_to(root.parent)), "sha256": file_sha256(file), "bytes": file.stat().st_size})
    return sources


def _combined_sha256(sources: list[dict[str, object]]) -> str:
    return hashlib.sha256("".join(sorted(str(s["sha256"]) for s in sources)).encode()).hexdigest()


def import_paths(
    *,
    dataset_name: str,
    format: str,
    paths: list[Path],
    user: AbstractBaseUser | None,
    progress_total: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportRun:
    """The whole import of files or folders, in this process (the command line)."""
    run = import_run_queue(dataset_name=dataset_name, format=format, paths=paths, user=user, enqueue=False)
    return import_run_process(run=run, progress_total=progress_total, progress=progress)


@transaction.atomic
def import_run_queue(
    *, dataset_name: str, format: str, paths: list[Path], user: AbstractBaseUser | None, enqueue: bool = True
) -> ImportRun:
    """Record a pending import of files already on the server; a worker picks it up after commit."""
    if format not in ImportRun.Format.values:
        raise ValueError(f"Unknown format {format!r}")
    dataset = dataset_get_or_create(name=dataset_name, user=user)
    run = ImportRun.objects.create(
        dataset=dataset, format=format, input_paths=[str(p) for p in paths],
        started_by=user if user is not None and user.is_authenticated else None,
    )
    if enqueue:
        from accounts.tasks import run_import

        transaction.on_commit(lambda: run_import.delay(run.pk))
    return run


def upload_store(*, files: list[UploadedFile]) -> list[Path]:
    """Save uploaded files under var/uploads in a fresh folder, under safe names; chunks, never whole files in memory."""
    import uuid

    from django.conf import settings
    from django.utils.text import get_valid_filename

    folder = Path(settings.VAR_DIR) / "uploads" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    stored = []
    for index, upload in enumerate(files):
        base = Path(str(upload.name).replace("\\", "/")).name  # never a path the client chose
        try:
            safe = get_valid_filename(base)[:150]
        except Exception:  # noqa: BLE001 - Django raises SuspiciousFileOperation for names like ".."
            safe = ""
        target = folder / f"{index:03d}-{safe or 'upload'}"
        with target.open("wb") as sink:
            for chunk in upload.chunks():
                sink.write(chunk)
        stored.append(target)
    return stored


def import_run_claim(*, run_id: int) -> bool:
    """Take a pending run; False when another worker already has it."""
    return bool(ImportRun.objects.filter(pk=run_id, status=JobStatus.PENDING).update(
        status=JobStatus.RUNNING, started_at=timezone.now()))


def import_run_process(
    *,
    run: ImportRun,
    progress_total: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportRun:
    """Provenance, archive unpacking, format detection and the import itself."""
    import tempfile

    from django.conf import settings

    from accounts.importers import READERS, guess_format
    from accounts.importers.archives import ArchiveRefused, extract_zip

    paths = [Path(p) for p in run.input_paths]
    try:
        sources = source_files_describe(paths)
    except OSError as exc:
        return _import_run_fail(run, f"cannot read the input: {exc}")
    ImportRun.objects.filter(pk=run.pk).update(sources=sources, source_sha256=_combined_sha256(sources))
    with tempfile.TemporaryDirectory(prefix="import-", dir=settings.VAR_DIR) as workdir:
        readable: list[Path] = []
        problems: list[Rejection] = []
        for path in paths:
            if path.is_file() and path.suffix.lower() == ".zip":
                target = Path(workdir) / f"{len(readable)}-{path.stem}"
                try:
                    problems += extract_zip(path, target, max_total_bytes=settings.IMPORT_MAX_UNZIPPED_BYTES)
                except ArchiveRefused as exc:
                    problems.append(Rejection(file=path.name, reason=str(exc)))
                    continue
                readable.append(target)
            else:
                readable.append(path)
        data_format = run.format
        if data_format == ImportRun.Format.AUTO:
            try:
                if not readable:
                    raise ValueError("nothing to import: " + "; ".join(p.reason for p in problems))
                data_format = guess_format(readable)
            except ValueError as exc:
                return _import_run_fail(run, str(exc))
            ImportRun.objects.filter(pk=run.pk).update(format=data_format)
        reader, counter = READERS[data_format]
        total = counter(readable) if readable else 0
        ImportRun.objects.filter(pk=run.pk).update(progress_total=total)
        if progress_total:
            progress_total(total)
        run.refresh_from_db()
        return import_run_execute(run=run, records=itertools.chain(problems, reader(readable) if readable else ()),
                                  progress=progress)


def _import_run_fail(run: ImportRun, reason: str) -> ImportRun:
    ImportRun.objects.filter(pk=run.pk).update(status=JobStatus.FAILED, error=reason[:5000], finished_at=timezone.now())
    run.refresh_from_db()
    return run


@dataclass
class _Batch:
    accounts: dict[tuple[str, str], AccountRecord]
    posts: list[PostRecord]
    rejections: list[Rejection]

    def __len__(self) -> int:
        return len(self.accounts) + len(self.posts) + len(self.rejections)


def import_run_execute(
    *,
    run: ImportRun,
    records: Iterable[Record],
    progress: Callable[[int], None] | None = None,
) -> ImportRun:
    """Load records in batches. Each batch commits on its own: good rows are kept, bad rows are
    reported with their file and line; an error that stops the run leaves earlier batches intact
    and marks the run failed with the reason."""
    ImportRun.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING, started_at=run.started_at or timezone.now())
    platforms = {p.slug: p for p in Platform.objects.all()}
    batch = _Batch({}, [], [])
    try:
        for record in records:
            if isinstance(record, AccountRecord):
                # A newer record of the same account in one batch wins.
                batch.accounts[(record.platform, record.external_id)] = record
            elif isinstance(record, PostRecord):
                batch.posts.append(record)
            else:
                batch.rejections.append(record)
            if len(batch) >= BATCH_SIZE:
                _import_batch(run, batch, platforms, progress)
                batch = _Batch({}, [], [])
        _import_batch(run, batch, platforms, progress)
    except Exception as exc:
        logger.exception("import run %s failed", run.pk)
        ImportRun.objects.filter(pk=run.pk).update(
            status=JobStatus.FAILED, error=f"{exc.__class__.__name__}: {exc}", finished_at=timezone.now()
        )
        raise
    ImportRun.objects.filter(pk=run.pk).update(status=JobStatus.SUCCEEDED, finished_at=timezone.now())
    run.refresh_from_db()
    return run


def _platform(platforms: dict[str, Platform], slug: str) -> Platform:
    if slug not in platforms:
        platforms[slug], _ = Platform.objects.get_or_create(slug=slug, defaults={"name": slug.title()})
    return platforms[slug]


@transaction.atomic
def _import_batch(run: ImportRun, batch: _Batch, platforms: dict[str, Platform],
                  progress: Callable[[int], None] | None) -> None:
    rejections = list(batch.rejections)
    created, updated = accounts_upsert(run=run, records=list(batch.accounts.values()), platforms=platforms,
                                       rejections=rejections)
    post_created, post_updated = posts_upsert(run=run, records=batch.posts, platforms=platforms, rejections=rejections)
    ImportRejection.objects.bulk_create([
        ImportRejection(import_run=run, file=r.file[:1000], line=r.line, column=r.column[:200], reason=r.reason, kept=r.kept)
        for r in rejections
    ])
    rejected = sum(not r.kept for r in rejections)
    read = len(batch.accounts) + len(batch.posts) + sum(not r.kept for r in batch.rejections)
    run.read_count += read
    run.created_count += created + post_created
    run.updated_count += updated + post_updated
    run.rejected_count += rejected
    run.progress_done += read
    ImportRun.objects.filter(pk=run.pk).update(
        read_count=run.read_count, created_count=run.created_count, updated_count=run.updated_count,
        rejected_count=run.rejected_count, progress_done=run.progress_done, media_count=run.media_count,
    )
    if progress:
        progress(read)


def _store_media(paths: list[Path], rejections: list[Rejection], run: ImportRun) -> dict[Path, StoredFile]:
    stored: dict[Path, StoredFile] = {}
    for path in paths:
        if path in stored:
            continue
        try:
            stored[path] = media_file_store(path=path)
        except (MediaRejected, OSError) as exc:
            rejections.append(Rejection(file=path.name, reason=f"media not imported: {exc}", column="media", kept=True))
    if stored:
        assets = media_assets_register(files=[(s, p.name) for p, s in stored.items()])
        run.media_count += len(stored)
        return {p: s for p, s in stored.items() if s.sha256 in assets}
    return stored


def accounts_upsert(*, run: ImportRun, records: list[AccountRecord], platforms: dict[str, Platform],
                    rejections: list[Rejection]) -> tuple[int, int]:
    """Insert new accounts, update known ones; a changed handle or display name is recorded."""
    if not records:
        return 0, 0
    from media_analysis.models import MediaAsset

    avatars = _store_media([r.profile_image for r in records if r.profile_image], rejections, run)
    avatar_assets = {a.sha256: a.pk for a in MediaAsset.objects.filter(sha256__in=[s.sha256 for s in avatars.values()])}
    keys: dict[int, list[str]] = defaultdict(list)
    for record in records:
        keys[_platform(platforms, record.platform).pk].append(record.external_id)
    existing: dict[tuple[int, str], Account] = {}
    for platform_id, external_ids in keys.items():
        for account in Account.objects.filter(platform_id=platform_id, external_id__in=external_ids):
            existing[(platform_id, account.external_id)] = account
    to_create, to_update, seen, changes = [], [], [], []
    for record in records:
        platform = _platform(platforms, record.platform)
        values = {f: getattr(record, f) for f in ACCOUNT_FIELDS}
        values["external_url"] = normalize_url(values["external_url"])
        avatar_id = avatar_assets.get(avatars[record.profile_image].sha256) if record.profile_image in avatars else None
        current = existing.get((platform.pk, record.external_id))
        if current is None:
            to_create.append(Account(platform=platform, external_id=record.external_id, profile_image_id=avatar_id,
                                     extra=record.extra, **values))
            continue
        for field in ("handle", "display_name"):
            old, new = getattr(current, field), values[field]
            if old and new and old != new:
                changes.append(HandleChange(account=current, field=field, old_value=old[:500], new_value=new[:500],
                                            import_run=run))
        dirty = _merge_known_values(current, values)
        if avatar_id and current.profile_image_id != avatar_id:
            current.profile_image_id = avatar_id
            dirty = True
        seen.append(current)
        if dirty:
            to_update.append(current)
    Account.objects.bulk_create(to_create, batch_size=500)
    if to_update:
        Account.objects.bulk_update(to_update, [*ACCOUNT_FIELDS, "profile_image", "last_seen"], batch_size=500)
    HandleChange.objects.bulk_create(changes)
    Account.objects.filter(pk__in=[a.pk for a in seen]).update(last_seen=timezone.now())
    through = Account.datasets.through
    through.objects.bulk_create(
        [through(account_id=a.pk, dataset_id=run.dataset_id) for a in [*to_create, *seen]], ignore_conflicts=True
    )
    return len(to_create), len(to_update)


def _merge_known_values(instance: Account | Post, values: dict[str, object]) -> bool:
    """Apply a newer export's values; a field it leaves empty keeps what we already know. True if anything changed."""
    changed = False
    for field, value in values.items():
        if value not in (None, "") and getattr(instance, field) != value:
            setattr(instance, field, value)
            changed = True
    return changed


def posts_upsert(*, run: ImportRun, records: list[PostRecord], platforms: dict[str, Platform],
                 rejections: list[Rejection]) -> tuple[int, int]:
    if not records:
        return 0, 0
    by_key: dict[tuple[int, str], PostRecord] = {}
    for record in records:
        by_key[(_platform(platforms, record.platform).pk, record.external_id)] = record
    account_ids: dict[tuple[int, str], int] = {}
    for platform_id in {k[0] for k in by_key}:
        owners = {r.account_external_id for (p, _), r in by_key.items() if p == platform_id}
        for pk, external_id in Account.objects.filter(platform_id=platform_id, external_id__in=owners).values_list(
            "pk", "external_id"
        ):
            account_ids[(platform_id, external_id)] = pk
    existing: dict[tuple[int, str], Post] = {}
    for platform_id in {k[0] for k in by_key}:
        ids = [e for (p, e) in by_key if p == platform_id]
        for post in Post.objects.filter(platform_id=platform_id, external_id__in=ids):
            existing[(platform_id, post.external_id)] = post
    stored = _store_media([m for r in by_key.values() for m in r.media], rejections, run)
    to_create, to_update, seen = [], [], []
    for key, record in by_key.items():
        account_id = account_ids.get((key[0], record.account_external_id))
        if account_id is None:
            rejections.append(Rejection(file=record.extra.get("_file", ""), line=record.extra.get("_line"),
                                        reason=f"post {record.external_id}: its account {record.account_external_id} is unknown"))
            continue
        values = {f: getattr(record, f) for f in POST_FIELDS}
        text = values["text"] = clean_text(values["text"])
        values["hashtags"] = extract_hashtags(text) if record.hashtags is None else [h for h in record.hashtags if h]
        values["mentions"] = extract_mentions(text) if record.mentions is None else [m for m in record.mentions if m]
        links = extract_links(text) if record.links is None else record.links
        values["links"] = [u for u in (normalize_url(link) for link in links) if u]
        current = existing.get(key)
        if current is None:
            to_create.append(Post(platform_id=key[0], external_id=record.external_id, account_id=account_id,
                                  extra={k: v for k, v in record.extra.items() if not k.startswith("_")}, **values))
        else:
            seen.append(current)
            if _merge_known_values(current, values):
                to_update.append(current)
    Post.objects.bulk_create(to_create, batch_size=1000)
    if to_update:
        Post.objects.bulk_update(to_update, list(POST_FIELDS), batch_size=1000)
    through = Post.datasets.through
    through.objects.bulk_create(
        [through(post_id=p.pk, dataset_id=run.dataset_id) for p in [*to_create, *seen]], ignore_conflicts=True
    )
    _link_media(to_create, by_key, stored)
    return len(to_create), len(to_update)


def _link_media(posts: list[Post], by_key: dict[tuple[int, str], PostRecord], stored: dict[Path, StoredFile]) -> None:
    from media_analysis.models import MediaAsset

    shas = {s.sha256 for s in stored.values()}
    asset_ids = dict(MediaAsset.objects.filter(sha256__in=shas).values_list("sha256", "pk"))
    links = []
    for post in posts:
        record = by_key[(post.platform_id, post.external_id)]
        for position, path in enumerate(record.media):
            if path in stored and stored[path].sha256 in asset_ids:
                links.append(PostMedia(post=post, media_id=asset_ids[stored[path].sha256], position=position))
    PostMedia.objects.bulk_create(links, ignore_conflicts=True, batch_size=1000)
