"""Instaloader profile folders (Instagram), read with instaloader's own structures.

Layout per target folder: ``{date}_UTC.json[.xz]`` posts, ``{date}_UTC.jpg`` /
``{date}_UTC_{n}.jpg`` media, ``{profile}_{id}.json[.xz]`` the profile and
``{date}_UTC_profile_pic.jpg``. Files are decoded with a size limit, then handed
to ``instaloader.load_structure`` with a context that refuses every network call:
an import never reaches Instagram, whatever a hostile file leaves out.
"""

from __future__ import annotations

import json
import lzma
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import instaloader
from instaloader import InstaloaderContext

from accounts.importers.records import AccountRecord, PostRecord, Record, Rejection, located
from accounts.normalize import clean_text, json_loads, normalize_url

MAX_JSON_BYTES = 32 * 1024 * 1024
POST_FILE_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2})_UTC(?:_\d+)?\.json(?:\.xz)?$")
PROFILE_FILE_RE = re.compile(r"^.+_\d+\.json(?:\.xz)?$")
PROFILE_PIC_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2})_UTC_profile_pic\.(?:jpe?g|png|webp)$", re.I)
MEDIA_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


class OfflineError(RuntimeError):
    pass


class OfflineContext(InstaloaderContext):
    """An instaloader context that never talks to Instagram."""

    def __init__(self) -> None:
        super().__init__(sleep=False, quiet=True)

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise OfflineError("the file lacks a field instaloader would fetch from Instagram")

    get_json = graphql_query = doc_id_graphql_query = get_iphone_json = _refuse
    get_raw = get_and_write_raw = head = get_page_data = _refuse


class DecodeError(ValueError):
    pass


def read_json_file(path: Path) -> dict:
    """Decode a .json or .json.xz file, refusing anything that expands past MAX_JSON_BYTES."""
    with path.open("rb") as handle:
        raw = handle.read(MAX_JSON_BYTES + 1)  # never a whole multi-gigabyte file
    if path.name.endswith(".xz"):
        if len(raw) > MAX_JSON_BYTES:  # xz never makes data smaller than this much of itself
            raise DecodeError(f"expands past {MAX_JSON_BYTES // (1024 * 1024)} MiB or is truncated")
        decompressor = lzma.LZMADecompressor()
        try:
            data = decompressor.decompress(raw, max_length=MAX_JSON_BYTES + 1)
        except lzma.LZMAError as exc:
            raise DecodeError(f"not a valid .xz file ({exc})") from exc
        if len(data) > MAX_JSON_BYTES or not decompressor.eof:
            raise DecodeError(f"expands past {MAX_JSON_BYTES // (1024 * 1024)} MiB or is truncated")
    else:
        if len(raw) > MAX_JSON_BYTES:
            raise DecodeError("file larger than the JSON size limit")
        data = raw
    try:
        payload = json_loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError(f"not valid JSON ({exc})") from exc
    if not isinstance(payload, dict):
        raise DecodeError("top level is not a JSON object")
    return payload


def _count(node: dict, key: str) -> int | None:
    value = node.get(key)
    if isinstance(value, dict) and isinstance(value.get("count"), int):
        return value["count"]
    return None


def _stamp_time(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%d_%H-%M-%S").replace(tzinfo=UTC)


def profile_folders(paths: list[Path]) -> list[Path]:
    """Every folder below ``paths`` that holds Instaloader files. A profile or post file named on its own stands
    for its folder (a post needs the profile and pictures beside it); any other file stands for nothing."""
    folders: set[Path] = set()
    for path in paths:
        if path.is_file():
            if _is_structure_file(path.name):
                folders.add(path.parent)
            continue
        for candidate in [path, *sorted(p for p in path.rglob("*") if p.is_dir())]:
            if any(_is_structure_file(f.name) for f in candidate.iterdir() if f.is_file()):
                folders.add(candidate)
    return sorted(folders)


def _is_profile_file(name: str) -> bool:
    return bool(PROFILE_FILE_RE.match(name)) and not POST_FILE_RE.match(name)


def _is_structure_file(name: str) -> bool:
    return bool(POST_FILE_RE.match(name) or PROFILE_FILE_RE.match(name))


def count_items(paths: list[Path]) -> int:
    return sum(1 for folder in profile_folders(paths) for f in folder.iterdir() if _is_structure_file(f.name))


def read(paths: list[Path]) -> Iterator[Record]:
    context = OfflineContext()
    found = {path: profile_folders([path]) for path in paths}
    folders = sorted(set().union(*found.values()))
    for path, own in found.items():
        # A picture or caption named beside its post (files uploaded one by one) is read with that post.
        if not own and not (path.is_file() and path.parent in folders):
            yield Rejection(file=path.name, reason="no Instaloader files here: a profile folder holds the profile "
                                                   "(<username>_<id>.json.xz) and its posts (<date>_UTC.json.xz)")
    for folder in folders:
        yield from _read_folder(folder, context, folder.parent)


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return path.name


def _read_folder(folder: Path, context: InstaloaderContext, root: Path) -> Iterator[Record]:
    # The profile first, so posts find their account complete; then posts in time order.
    files = sorted((f for f in folder.iterdir() if f.is_file()), key=lambda f: (not _is_profile_file(f.name), f.name))
    names = {f.name for f in files}
    profile_pics = sorted(f for f in files if PROFILE_PIC_RE.match(f.name))
    seen_accounts: set[str] = set()
    for path in files:
        if not _is_structure_file(path.name):
            continue
        try:
            payload = read_json_file(path)
            structure = instaloader.load_structure(context, payload)
        except (DecodeError, OSError) as exc:
            yield Rejection(file=_relative(path, root), reason=str(exc))
            continue
        except Exception as exc:  # noqa: BLE001 - instaloader asserts and raises anything on hostile input
            yield Rejection(file=_relative(path, root), reason=f"not an Instaloader structure ({exc.__class__.__name__}: {exc})")
            continue
        try:
            if isinstance(structure, instaloader.Profile):
                record = _profile_record(structure, profile_pics[-1] if profile_pics else None)
                if profile_pics:
                    # Instagram publishes no creation date; the first profile picture's upload time bounds it.
                    day, time_of_day = PROFILE_PIC_RE.match(profile_pics[0].name).group(1).split("_")
                    record.extra["first_profile_pic_at"] = f"{day}T{time_of_day.replace('-', ':')}+00:00"
                seen_accounts.add(record.external_id)
                yield located(record, _relative(path, root))
            elif isinstance(structure, instaloader.Post):
                match = POST_FILE_RE.match(path.name)
                stamp = match.group(1) if match else None
                yield from _post_records(structure, _relative(path, root), stamp, names, folder, seen_accounts)
            else:
                yield Rejection(file=_relative(path, root), reason=f"unsupported structure {type(structure).__name__}")
        except Exception as exc:  # noqa: BLE001 - as above: one bad file never stops the import
            yield Rejection(file=_relative(path, root), reason=f"missing or malformed field ({exc.__class__.__name__}: {exc})")


def _profile_record(profile: instaloader.Profile, picture: Path | None) -> AccountRecord:
    node = profile._node  # noqa: SLF001 - counts read straight from the node: the properties would query Instagram
    user_id = str(node["id"])
    if not user_id.isdigit():
        raise ValueError(f"profile id {user_id!r} is not numeric")
    return AccountRecord(
        platform="instagram",
        external_id=user_id,
        handle=clean_text(str(node["username"])),
        display_name=clean_text(node.get("full_name") or ""),
        bio=clean_text(node.get("biography") or ""),
        external_url=normalize_url(node.get("external_url") or ""),
        follower_count=_count(node, "edge_followed_by"),
        following_count=_count(node, "edge_follow"),
        post_count=_count(node, "edge_owner_to_timeline_media"),
        is_private=node.get("is_private") if isinstance(node.get("is_private"), bool) else None,
        is_verified=node.get("is_verified") if isinstance(node.get("is_verified"), bool) else None,
        profile_image=picture,
    )


def _post_records(post: instaloader.Post, shown: str, stamp: str | None, names: set[str], folder: Path,
                  seen_accounts: set[str]) -> Iterator[Record]:
    node = post._node  # noqa: SLF001
    owner = node.get("owner") or {}
    owner_id = str(owner.get("id", ""))
    if not owner_id.isdigit():
        raise ValueError("post has no numeric owner id")
    if owner_id not in seen_accounts and owner.get("username"):
        # No profile file (e.g. a hashtag download): the owner is known only by id and handle.
        seen_accounts.add(owner_id)
        yield located(AccountRecord(platform="instagram", external_id=owner_id, handle=clean_text(str(owner["username"]))),
                      shown)
    media: list[Path] = []
    if stamp:
        single = f"{stamp}_UTC.jpg"
        if single in names:
            media.append(folder / single)
        index = 1
        while True:
            candidates = [f"{stamp}_UTC_{index}{suffix}" for suffix in MEDIA_SUFFIXES]
            found = next((c for c in candidates if c in names), None)
            if found is None:
                break
            media.append(folder / found)
            index += 1
    missing_media = not media and not node.get("is_video")
    yield PostRecord(
        platform="instagram",
        external_id=str(post.mediaid),
        account_external_id=owner_id,
        posted_at=post.date_utc.replace(tzinfo=UTC),
        text=clean_text(post.caption or ""),
        post_type=str(node.get("__typename", "")),
        url=f"https://www.instagram.com/p/{post.shortcode}/",
        like_count=_count(node, "edge_media_preview_like") or _count(node, "edge_liked_by"),
        comment_count=_count(node, "edge_media_to_comment") or _count(node, "edge_media_to_parent_comment"),
        media=media,
        extra={k: node[k] for k in ("accessibility_caption", "location") if node.get(k)},
        file=shown,
    )
    if missing_media:
        yield Rejection(file=shown, reason="no image file beside the post (missing media)", column="media", kept=True)
