"""Writes of the social-media side. Importers of every format, the CLI, the web upload
and the API all go through these functions."""

from __future__ import annotations

import hashlib
import itertools
import logging
import queue
import shutil
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.importers import load
from accounts.importers.records import AccountRecord, PostRecord, Record, Rejection
from accounts.models import (
    Account,
    Dataset,
    ImportRejection,
    ImportRun,
    JobStatus,
    Platform,
    Post,
    PostMedia,
)
from accounts.normalize import clean_text, extract_hashtags, extract_links, extract_mentions, normalize_url
from investigator.memory import few_collections
from media_analysis.services import MediaRejected, StoredFile, media_assets_register, media_file_store

logger = logging.getLogger(__name__)
BATCH_SIZE = 10_000
# A batch also ends once its records bring this many pictures: storing them (SHA-256 and a copy each) is then
# most of the batch's time, and the progress bar should move every few seconds, not twice a minute.
BATCH_PICTURES = 1_000
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


def source_files_describe(paths: list[Path], *, progress: Callable[[int, int], None] | None = None,
                          ) -> list[dict[str, object]]:
    """Every input file's name (relative to what was named), size and SHA-256: the run's provenance.
    `progress` hears (files read, files in all) after each file."""
    roots = [p.resolve() for p in paths]
    files = _source_files(roots)
    sources = []
    for done, file in enumerate(files, start=1):
        root = next((r for r in roots if r == file or r in file.parents), file.parent)
        sources.append({"name": str(file.relative_to(root.parent)), "sha256": file_sha256(file), "bytes": file.stat().st_size})
        if progress:
            progress(done, len(files))
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
    checking: Callable[[int, int], None] | None = None,
) -> ImportRun:
    """The whole import of files or folders, in this process (the command line)."""
    run = import_run_queue(dataset_name=dataset_name, format=format, paths=paths, user=user, enqueue=False)
    return import_run_process(run=run, progress_total=progress_total, progress=progress, checking=checking)


@transaction.atomic
def import_run_queue(
    *, dataset_name: str, format: str, paths: list[Path], user: AbstractBaseUser | None, enqueue: bool = True
) -> ImportRun:
    """Record a pending import of files already on the server; a worker picks it up after commit."""
    if format not in ImportRun.Format.values:
        raise ValueError(f"Unknown format {format!r}")
    dataset = dataset_get_or_create(name=dataset_name, user=user)
    run = ImportRun.objects.create(
        dataset=dataset, format=format, input_paths=[str(p) for p in _distinct_inputs(paths)],
        started_by=user if user is not None and user.is_authenticated else None,
    )
    if enqueue:
        from accounts.tasks import run_import

        transaction.on_commit(lambda: run_import.delay(run.pk))
    return run


def _distinct_inputs(paths: list[Path]) -> list[Path]:
    """The paths named, each once, in the order given, without those inside a folder also named: a file named
    twice, or with its folder, would be read (and counted, and listed as a source) twice."""
    resolved = list(dict.fromkeys(Path(p).resolve() for p in paths))
    folders = [p for p in resolved if p.is_dir()]
    return [p for p in resolved if not any(folder in p.parents for folder in folders)]


def upload_store(*, files: list[UploadedFile]) -> list[Path]:
    """Save uploaded files under UPLOAD_ROOT in a fresh folder, under safe names; chunks, never whole files in memory."""
    import uuid

    from django.conf import settings
    from django.utils.text import get_valid_filename

    folder = Path(settings.UPLOAD_ROOT) / uuid.uuid4().hex
    folder.mkdir(parents=True)
    stored = []
    taken: set[str] = set()
    for upload in files:
        base = Path(str(upload.name).replace("\\", "/")).name  # never a path the client chose
        try:
            # At most 150 bytes, not characters: file systems count bytes (255 a name), and a character may take 4.
            safe = get_valid_filename(base).encode()[:150].decode(errors="ignore") or "upload"
        except Exception:  # noqa: BLE001 - Django raises SuspiciousFileOperation for names like ".."
            safe = "upload"
        # Names are kept as given: an Instaloader profile's files find each other by name. A name given twice
        # (compared as a case-insensitive file system would) gets a number: "posts (2).csv".
        head, dot, tail = safe[1:].partition(".")  # from the second character: ".hidden" is all stem
        name, copy = safe, 1
        while name.casefold() in taken:
            copy += 1
            name = f"{safe[0]}{head} ({copy}){dot}{tail}"
        taken.add(name.casefold())
        target = folder / name
        if hasattr(upload, "temporary_file_path"):  # already on disk: moved (a rename on one file system)
            shutil.move(upload.temporary_file_path(), target)  # Django's close() expects a temporary file to be gone
            stored.append(target)
            continue
        with target.open("wb") as sink:
            for chunk in upload.chunks():
                sink.write(chunk)
        stored.append(target)
    return stored


def import_run_claim(*, run_id: int) -> bool:
    """Take a pending run; False when another worker already has it."""
    now = timezone.now()
    return bool(ImportRun.objects.filter(pk=run_id, status=JobStatus.PENDING).update(
        status=JobStatus.RUNNING, started_at=now, heartbeat_at=now))


def import_runs_fail_stale(*, older_than: timedelta = timedelta(minutes=15)) -> int:
    """Mark failed the runs whose worker died: running, with no batch committed for `older_than`.
    What they imported before stays; importing the same files again finishes the job (imports are idempotent)."""
    cutoff = timezone.now() - older_than
    return ImportRun.objects.filter(status=JobStatus.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    ).update(
        status=JobStatus.FAILED, finished_at=timezone.now(),
        error=f"The worker stopped: no progress for {int(older_than.total_seconds() // 60)} minutes. The rows imported "
              "before that are kept; import the same files again to finish (nothing is imported twice).",
    )


def import_run_process(
    *,
    run: ImportRun,
    progress_total: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
    checking: Callable[[int, int], None] | None = None,
) -> ImportRun:
    """Provenance, archive unpacking, format detection and the import itself. Reading every file for its
    SHA-256 and unpacking archives come before the first row (minutes for a large export): the run's `stage`
    says so on its page, and `checking` hears (files read, files in all)."""
    import tempfile

    from django.conf import settings

    from accounts.importers import READERS, guess_format
    from accounts.importers.archives import ArchiveRefused, extract_zip

    def stage(text: str) -> None:
        ImportRun.objects.filter(pk=run.pk).update(stage=text[:200], heartbeat_at=timezone.now())

    reported = [0.0]

    def checked(done: int, total: int) -> None:
        if checking:
            checking(done, total)
        if done == total or time.monotonic() - reported[0] >= 0.5:
            reported[0] = time.monotonic()
            stage(f"Reading the input files for their SHA-256: {done:,} of {total:,}")

    paths = [Path(p) for p in run.input_paths]
    try:
        sources = source_files_describe(paths, progress=checked)
    except OSError as exc:
        return _import_run_fail(run, f"cannot read the input: {exc}")
    ImportRun.objects.filter(pk=run.pk).update(sources=sources, source_count=len(sources),
                                               source_sha256=_combined_sha256(sources))
    with tempfile.TemporaryDirectory(prefix="import-", dir=settings.VAR_DIR) as workdir:
        readable: list[Path] = []
        problems: list[Rejection] = []
        for path in paths:
            if path.is_file() and path.suffix.lower() == ".zip":
                stage(f"Unpacking {path.name}")
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
        stage("Counting the rows")
        total = counter(readable) if readable else 0
        ImportRun.objects.filter(pk=run.pk).update(progress_total=total, stage="")
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
    accounts: dict[tuple[str, str], AccountRecord] = field(default_factory=dict)  # a newer record of a key wins
    posts: dict[tuple[str, str], PostRecord] = field(default_factory=dict)
    rejections: list[Rejection] = field(default_factory=list)
    post_rows: list[tuple] = field(default_factory=list)
    pictures: int = 0

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
    and marks the run failed with the reason.

    Three things happen at once, so both cores work: a background thread reads and prepares the next
    batch (pure Python), this thread stores each batch's accounts (committed before its posts, so a post
    always finds an account introduced by any batch before it), and IMPORT_LOAD_CONNECTIONS database
    connections store the posts of different batches side by side: PostgreSQL's share of an import is
    the larger one, and one connection keeps only one core busy. Called inside a transaction (which
    other connections cannot see into), everything runs on this thread's connection instead."""
    from django.conf import settings
    from django.db import connection

    ImportRun.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING, started_at=run.started_at or timezone.now(),
                                               heartbeat_at=timezone.now())
    platforms = {p.slug: p for p in Platform.objects.all()}
    platform_ids = {slug: p.pk for slug, p in platforms.items()}
    connections_used = 1 if connection.in_atomic_block else settings.IMPORT_LOAD_CONNECTIONS
    switch_interval = sys.getswitchinterval()
    # The loading threads wait on PostgreSQL dozens of times per batch; each time one wants the GIL back it
    # would otherwise wait out the reading thread's whole time slice.
    sys.setswitchinterval(0.0002)
    try:
        loaders = _PostLoaders(run=run, platforms=platforms, progress=progress, connections=connections_used)
        with few_collections(), loaders:
            for batch in _prefetched(_batches(records, platform_ids)):
                loaders.raise_failure()
                rejections = _import_accounts(run, batch, platforms)
                loaders.submit(batch, rejections)
        load.reposts_link(dataset_id=run.dataset_id)
    except Exception as exc:
        logger.exception("import run %s failed", run.pk)
        ImportRun.objects.filter(pk=run.pk).update(
            status=JobStatus.FAILED, error=f"{exc.__class__.__name__}: {exc}", finished_at=timezone.now()
        )
        raise
    finally:
        sys.setswitchinterval(switch_interval)
    ImportRun.objects.filter(pk=run.pk).update(status=JobStatus.SUCCEEDED, finished_at=timezone.now())
    run.refresh_from_db()
    return run


def _max_length(model: type, name: str) -> int:
    return model._meta.get_field(name).max_length


BIGINT = 2**63 - 1  # the largest count a column holds
# Per kind of record, from the columns it is stored in: ids that must fit (cut short, an id would be another
# one), references emptied when too long, text cut to its column, and counts.
COLUMNS = {
    AccountRecord: ((("external_id", _max_length(Account, "external_id")),), (),
                    tuple((name, _max_length(Account, name)) for name in ("handle", "display_name", "location", "language")),
                    ("follower_count", "following_count", "post_count")),
    PostRecord: ((("external_id", _max_length(Post, "external_id")),
                  ("account_external_id", _max_length(Account, "external_id"))),
                 tuple((name, _max_length(Post, name)) for name in ("repost_of_external_id", "reply_to_external_id")),
                 tuple((name, _max_length(Post, name)) for name in ("post_type", "language")),
                 ("like_count", "comment_count", "share_count", "view_count")),
}

LENGTHS = {kind: ids + references + texts for kind, (ids, references, texts, _) in COLUMNS.items()}


def _fits_columns(record: AccountRecord | PostRecord, rejections: list[Rejection]) -> bool:
    """Whether a record can be stored, made to fit its columns where it can be (every format's records pass
    here). A corrupt or hostile file must not fail the batch it came in: an id too long for its column rejects
    the record; a reference that long, or a count no column holds (10^40 followers), is stored empty with a
    warning; a name, a language or a post type is cut to its column's length."""
    ids, references, texts, counts = COLUMNS[type(record)]
    if _fits(record, LENGTHS[type(record)], counts):  # nearly every record: no allocation at all
        return True
    kind = "account" if isinstance(record, AccountRecord) else "post"
    where = {"file": record.file, "line": record.line}
    for name, length in ids:
        if len(value := getattr(record, name)) > length:
            rejections.append(Rejection(**where, column=name,
                                        reason=f"{kind} {name} longer than {length} characters: {value[:40]}…"))
            return False
    for name in counts:
        if (value := getattr(record, name)) is not None and not -BIGINT <= value <= BIGINT:
            setattr(record, name, None)
            rejections.append(Rejection(**where, column=name, kept=True, reason=(
                f"{kind} {record.external_id}: {name} {str(value)[:30]}… is out of range; stored empty")))
    for name, length in references:
        if len(getattr(record, name)) > length:
            setattr(record, name, "")
            rejections.append(Rejection(**where, column=name, kept=True, reason=(
                f"{kind} {record.external_id}: {name} longer than {length} characters; stored empty")))
    for name, length in texts:
        setattr(record, name, getattr(record, name)[:length])
    return True


def _fits(record: AccountRecord | PostRecord, lengths: tuple[tuple[str, int], ...], counts: tuple[str, ...]) -> bool:
    for name, length in lengths:
        if len(getattr(record, name)) > length:
            return False
    for name in counts:  # noqa: SIM110 - a plain loop: all() over a generator takes twice as long, on every row
        if (value := getattr(record, name)) is not None and not -BIGINT <= value <= BIGINT:
            return False
    return True


def _batches(records: Iterable[Record], platform_ids: dict[str, int]) -> Iterator[_Batch]:
    batch = _Batch()
    for record in records:
        if isinstance(record, AccountRecord):
            if _fits_columns(record, batch.rejections):
                batch.accounts[(record.platform, record.external_id)] = record
                batch.pictures += record.profile_image is not None
        elif isinstance(record, PostRecord):
            if _fits_columns(record, batch.rejections):
                batch.posts[(record.platform, record.external_id)] = record
                batch.pictures += len(record.media)
        else:
            batch.rejections.append(record)
        if len(batch) >= BATCH_SIZE or batch.pictures >= BATCH_PICTURES:
            batch.post_rows = [_post_row(seq, r, platform_ids) for seq, r in enumerate(batch.posts.values())]
            yield batch
            batch = _Batch()
    batch.post_rows = [_post_row(seq, r, platform_ids) for seq, r in enumerate(batch.posts.values())]
    yield batch


def _prefetched(batches: Iterator[_Batch]) -> Iterator[_Batch]:
    """The batches, produced one ahead in a thread; an error there is raised here."""
    slots: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    done = object()

    def offer(item: object) -> bool:
        return _put_unless(slots, item, stop.is_set)

    def produce() -> None:
        try:
            for batch in batches:
                if not offer(batch):
                    return
            offer(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            offer(exc)

    worker = threading.Thread(target=produce, name="import-reader", daemon=True)
    worker.start()
    try:
        while (item := slots.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


def _put_unless(slots: queue.Queue, item: object, stopped: Callable[[], bool]) -> bool:
    """Put `item` once there is room, unless `stopped()` turns true while waiting (the other side is gone,
    and would never take it). Returns whether it was put."""
    while not stopped():
        try:
            slots.put(item, timeout=0.5)
            return True
        except queue.Full:
            continue
    return False


def _platform(platforms: dict[str, Platform], slug: str) -> Platform:
    if slug not in platforms:
        platforms[slug], _ = Platform.objects.get_or_create(slug=slug, defaults={"name": slug.title()})
    return platforms[slug]


class _PostLoaders:
    """Stores batches' posts on `connections` database connections at once, each batch in its own
    transaction; with one connection, in the calling thread. A failure stops the loaders and is raised
    in the calling thread (raise_failure, or on leaving the block)."""

    DEADLOCK_RETRIES = 3

    def __init__(self, *, run: ImportRun, platforms: dict[str, Platform], progress: Callable[[int], None] | None,
                 connections: int) -> None:
        self.run, self.platforms = run, platforms
        self.progress = self._locked(progress) if progress and connections > 1 else progress
        self.failure: BaseException | None = None
        self.pending: queue.Queue = queue.Queue(maxsize=1)  # one batch waits while the loaders are busy
        self.threads = [threading.Thread(target=self._serve, name=f"import-loader-{n}", daemon=True)
                        for n in range(connections if connections > 1 else 0)]

    def __enter__(self) -> _PostLoaders:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, kind: type | None, *_: object) -> None:
        for _thread in self.threads:
            self.pending.put(None)
        for thread in self.threads:
            thread.join()
        if kind is None:
            self.raise_failure()

    @staticmethod
    def _locked(progress: Callable[[int], None]) -> Callable[[int], None]:
        """A progress bar's counter is not safe to add to from several threads at once."""
        lock = threading.Lock()

        def locked(done: int) -> None:
            with lock:
                progress(done)

        return locked

    def raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure

    def submit(self, batch: _Batch, rejections: list[Rejection]) -> None:
        if not self.threads:
            _import_posts(self.run, batch, self.platforms, rejections, self.progress)
            return
        # Never wait for a free loader after one has failed: the others may be gone.
        if not _put_unless(self.pending, (batch, rejections), lambda: self.failure is not None):
            self.raise_failure()

    def _serve(self) -> None:
        from django.db import connections

        try:
            while (item := self.pending.get()) is not None:
                if self.failure is None:
                    try:
                        self._load(*item)
                    except BaseException as exc:  # noqa: BLE001 - raised in the submitting thread
                        self.failure = self.failure or exc
        finally:
            connections.close_all()  # this thread's own connection

    def _load(self, batch: _Batch, rejections: list[Rejection]) -> None:
        """Batches holding the same posts (an export repeats rows) insert them in key order, so they only
        wait for each other; should two still meet in a deadlock (merging into posts already stored),
        PostgreSQL cancels one of them, which is simply stored again."""
        from django.db import OperationalError
        from psycopg.errors import DeadlockDetected

        for attempt in itertools.count(1):
            try:
                _import_posts(self.run, batch, self.platforms, list(rejections), self.progress)
                return
            except (OperationalError, DeadlockDetected) as exc:
                deadlock = isinstance(exc, DeadlockDetected) or isinstance(exc.__cause__, DeadlockDetected)
                if not deadlock or attempt > self.DEADLOCK_RETRIES:
                    raise
                logger.info("import run %s: a batch met another in a deadlock; storing it again", self.run.pk)


@dataclass
class _Tally:
    media: int = 0


@transaction.atomic
def _import_accounts(run: ImportRun, batch: _Batch, platforms: dict[str, Platform]) -> list[Rejection]:
    """A batch's accounts and the rejections read with it, committed; returns the rejections for its posts'
    transaction, which stores them all."""
    rejections = list(batch.rejections)
    tally = _Tally()
    created, updated = accounts_upsert(run=run, records=list(batch.accounts.values()), platforms=platforms,
                                       rejections=rejections, tally=tally)
    read = len(batch.accounts) + sum(not r.kept for r in batch.rejections)
    _run_count(run, read=read, created=created, updated=updated, media=tally.media)
    return rejections


@transaction.atomic
def _import_posts(run: ImportRun, batch: _Batch, platforms: dict[str, Platform], rejections: list[Rejection],
                  progress: Callable[[int], None] | None) -> None:
    tally = _Tally()
    created, updated = posts_upsert(run=run, batch=batch, platforms=platforms, rejections=rejections, tally=tally)
    ImportRejection.objects.bulk_create([
        ImportRejection(import_run=run, file=r.file[:1000], line=r.line, column=r.column[:200], reason=r.reason, kept=r.kept)
        for r in rejections
    ])
    _run_count(run, read=len(batch.posts), created=created, updated=updated, media=tally.media,
               rejected=sum(not r.kept for r in rejections))
    if progress:
        read = len(batch.accounts) + len(batch.posts) + sum(not r.kept for r in batch.rejections)
        progress(read)


def _run_count(run: ImportRun, *, read: int, created: int, updated: int, media: int, rejected: int = 0) -> None:
    """Add to the run's counts in the database (increments: loaders finish their batches in any order)."""
    ImportRun.objects.filter(pk=run.pk).update(
        read_count=F("read_count") + read, created_count=F("created_count") + created,
        updated_count=F("updated_count") + updated, rejected_count=F("rejected_count") + rejected,
        progress_done=F("progress_done") + read, media_count=F("media_count") + media, heartbeat_at=timezone.now(),
    )


def _store_media(paths: list[Path], rejections: list[Rejection], tally: _Tally) -> dict[Path, StoredFile]:
    stored: dict[Path, StoredFile] = {}
    for path in paths:
        if path in stored:
            continue
        try:
            stored[path] = media_file_store(path=path)
        except (MediaRejected, OSError) as exc:
            # With its folder: an export's picture names repeat across profiles (they are timestamps).
            rejections.append(Rejection(file=f"{path.parent.name}/{path.name}", reason=f"media not imported: {exc}",
                                        column="media", kept=True))
    if stored:
        assets = media_assets_register(files=[(s, p.name) for p, s in stored.items()])
        tally.media += len(stored)
        return {p: s for p, s in stored.items() if s.sha256 in assets}
    return stored


def accounts_upsert(*, run: ImportRun, records: list[AccountRecord], platforms: dict[str, Platform],
                    rejections: list[Rejection], tally: _Tally | None = None) -> tuple[int, int]:
    """Insert new accounts, update known ones; a changed handle or display name is recorded."""
    if not records:
        return 0, 0
    from media_analysis.models import MediaAsset

    avatars = _store_media([r.profile_image for r in records if r.profile_image], rejections, tally or _Tally())
    avatar_assets = {a.sha256: a.pk for a in MediaAsset.objects.filter(sha256__in=[s.sha256 for s in avatars.values()])}
    rows = []
    for seq, record in enumerate(records):
        avatar_id = avatar_assets.get(avatars[record.profile_image].sha256) if record.profile_image in avatars else None
        rows.append((
            seq, _platform(platforms, record.platform).pk, record.external_id, record.handle, record.display_name,
            record.bio, normalize_url(record.external_url), record.location, record.language, record.created_at,
            record.follower_count, record.following_count, record.post_count, record.is_private, record.is_verified,
            avatar_id, load.jsonb(record.extra),
        ))
    return load.accounts_load(rows=rows, dataset_id=run.dataset_id, import_run_id=run.pk)


def _post_row(seq: int, record: PostRecord, platform_ids: dict[str, int]) -> tuple:
    """A post as its staging row: text cleaned, hashtags, mentions and links extracted and normalised."""
    text = clean_text(record.text)
    hashtags = extract_hashtags(text) if record.hashtags is None else [h for h in record.hashtags if h]
    mentions = extract_mentions(text) if record.mentions is None else [m for m in record.mentions if m]
    links = extract_links(text) if record.links is None else [u for u in map(normalize_url, record.links) if u]
    return (
        seq, platform_ids.get(record.platform), record.external_id, record.account_external_id, record.posted_at, text,
        load.array_field(hashtags), load.array_field(mentions), load.array_field(links), record.post_type,
        record.language, record.url, record.repost_of_external_id, record.reply_to_external_id, record.like_count,
        record.comment_count, record.share_count, record.view_count,
        load.jsonb(record.extra), record.file, record.line,
    )


def posts_upsert(*, run: ImportRun, batch: _Batch, platforms: dict[str, Platform],
                 rejections: list[Rejection], tally: _Tally | None = None) -> tuple[int, int]:
    if not batch.posts:
        return 0, 0
    rows = batch.post_rows
    if any(row[1] is None for row in rows):  # a platform first seen in this batch
        ids = {slug: _platform(platforms, slug).pk for slug in {r.platform for r in batch.posts.values()}}
        rows = [(row[0], ids[record.platform], *row[2:]) for row, record in zip(rows, batch.posts.values(), strict=True)]
    created, updated, orphans = load.posts_load(rows=rows, dataset_id=run.dataset_id)
    rejections.extend(
        Rejection(file=file, line=line, reason=f"post {post_id}: its account {account_id} is unknown")
        for file, line, post_id, account_id in orphans
    )
    with_media = [r for r in batch.posts.values() if r.media]
    if with_media:
        stored = _store_media([m for r in with_media for m in r.media], rejections, tally or _Tally())
        _link_media(with_media, platforms, stored)
    return created, updated


def _link_media(records: list[PostRecord], platforms: dict[str, Platform], stored: dict[Path, StoredFile]) -> None:
    from media_analysis.models import MediaAsset

    asset_ids = dict(MediaAsset.objects.filter(sha256__in={s.sha256 for s in stored.values()}).values_list("sha256", "pk"))
    post_ids: dict[tuple[int, str], int] = {}
    by_platform: dict[int, list[str]] = defaultdict(list)
    for record in records:
        by_platform[_platform(platforms, record.platform).pk].append(record.external_id)
    for platform_id, external_ids in by_platform.items():
        for pk, external_id in Post.objects.filter(platform_id=platform_id, external_id__in=external_ids).values_list(
            "pk", "external_id"
        ):
            post_ids[(platform_id, external_id)] = pk
    links = []
    for record in records:
        post_id = post_ids.get((platforms[record.platform].pk, record.external_id))
        for position, path in enumerate(record.media):
            if post_id and path in stored and stored[path].sha256 in asset_ids:
                links.append(PostMedia(post_id=post_id, media_id=asset_ids[stored[path].sha256], position=position))
    PostMedia.objects.bulk_create(links, ignore_conflicts=True, batch_size=1000)
