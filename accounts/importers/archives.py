"""Zip archives as input: extracted with every path checked, sizes counted as they are written."""

from __future__ import annotations

import contextlib
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from accounts.importers.records import Rejection

MAX_RATIO = 200  # compressed-to-expanded ratio above which a member is a zip bomb
RATIO_GRACE_BYTES = 1024 * 1024  # tiny members compress absurdly well and are harmless
CHUNK = 1024 * 1024


class ArchiveRefused(ValueError):
    pass


MAX_NAME_BYTES = 255  # the longest file name (one path component) most file systems take


def _safe_name(name: str) -> PurePosixPath | None:
    path = PurePosixPath(name.replace("\\", "/"))
    if (path.is_absolute() or not path.parts or any(part in {"..", ""} for part in path.parts) or ":" in path.parts[0]
            or any(len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES for part in path.parts)):
        return None
    return path


def extract_zip(archive: Path, destination: Path, *, max_total_bytes: int) -> list[Rejection]:
    """Extract into ``destination``. Unsafe or unreadable members are skipped and reported; a bomb stops the
    archive."""
    problems: list[Rejection] = []
    written = 0
    try:
        bundle = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ArchiveRefused(f"{archive.name}: not a readable zip archive ({exc})") from exc
    destination.mkdir(parents=True, exist_ok=True)  # even when no member can be extracted
    with bundle:
        for member in bundle.infolist():
            if member.is_dir():
                continue
            name = _safe_name(member.filename)
            mode = member.external_attr >> 16
            if name is None:
                problems.append(Rejection(file=f"{archive.name}:{member.filename[:300]}",
                                          reason="unsafe path in archive (skipped)"))
                continue
            if stat.S_ISLNK(mode):
                problems.append(Rejection(file=f"{archive.name}:{name}", reason="symbolic link in archive (skipped)"))
                continue
            if member.file_size > RATIO_GRACE_BYTES and member.file_size > MAX_RATIO * max(member.compress_size, 1):
                raise ArchiveRefused(f"{archive.name}:{name}: expands {member.file_size // max(member.compress_size, 1)}×; "
                                     "refused as a zip bomb")
            target = destination / name
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(member) as source, target.open("wb") as sink:
                    member_bytes = 0
                    while chunk := source.read(CHUNK):
                        member_bytes += len(chunk)
                        written += len(chunk)
                        # Sizes in the header can lie: count what is actually written.
                        if written > max_total_bytes:
                            raise ArchiveRefused(f"{archive.name}: expands past {max_total_bytes // (1024 ** 2)} MiB")
                        if member_bytes > RATIO_GRACE_BYTES and member_bytes > MAX_RATIO * max(member.compress_size, 1):
                            raise ArchiveRefused(f"{archive.name}:{name}: refused as a zip bomb")
                        sink.write(chunk)
            except ArchiveRefused:
                raise
            # Damaged data (zlib.error), an encrypted member (RuntimeError), a path that clashes with another
            # member's (a file where a folder must go): that member only.
            except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError, RuntimeError,
                    ValueError, zlib.error) as exc:
                with contextlib.suppress(OSError):
                    if target.is_file():
                        target.unlink()
                problems.append(Rejection(file=f"{archive.name}:{name}", reason=f"damaged archive member ({exc})"))
    return problems
