"""Investigator's own JSONL: one account or post per line, validated against a published
JSON Schema (accounts/importers/jsonl_schema.json, documented in docs/jsonl.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from jsonschema.exceptions import best_match

from accounts.importers.csvfiles import parse_datetime
from accounts.importers.lines import numbered_lines
from accounts.importers.records import AccountRecord, PostRecord, Record, Rejection
from accounts.normalize import clean_text, json_loads

SCHEMA_PATH = Path(__file__).with_name("jsonl_schema.json")
MAX_LINE_BYTES = 8 * 1024 * 1024


@lru_cache(maxsize=1)
def validators() -> dict[str, Draft202012Validator]:
    """One validator per line type, so an error names the field that is wrong for that type."""
    schema = json.loads(SCHEMA_PATH.read_text())
    return {branch["title"]: Draft202012Validator(branch, format_checker=FormatChecker()) for branch in schema["oneOf"]}


def _files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        found.extend(sorted(p for p in path.rglob("*.jsonl") if p.is_file()) if path.is_dir() else [path])
    return found


def is_jsonl(path: Path) -> bool:
    return path.suffix.lower() in {".jsonl", ".ndjson"}


def count_items(paths: list[Path]) -> int:
    total = 0
    for path in _files(paths):
        with path.open("rb") as handle:
            # A line too long to read counts as the item it was meant to be.
            total += sum(1 for _, line in numbered_lines(handle, MAX_LINE_BYTES) if line is None or line.strip())
    return total


def _problem(error: ValidationError) -> tuple[str, str]:
    return "/".join(str(p) for p in error.absolute_path), error.message[:500]


def _media(path: Path, entries: list[str]) -> tuple[list[Path], list[str]]:
    """Local files inside the JSONL file's folder; anything outside it (../, absolute) is refused."""
    base = path.parent.resolve()
    files, refused = [], []
    for entry in entries:
        if entry.startswith(("http://", "https://")):
            refused.append(f"{entry[:200]} (URLs are recorded, not downloaded)")
            continue
        candidate = (base / entry).resolve()
        if base not in candidate.parents:
            refused.append(f"{entry[:200]} (outside the import folder)")
            continue
        files.append(candidate)
    return files, refused


def read(paths: list[Path]) -> Iterator[Record]:
    for path in _files(paths):
        with path.open("rb") as handle:
            for number, raw in numbered_lines(handle, MAX_LINE_BYTES):
                if raw is None:
                    yield Rejection(file=path.name, line=number, reason="line longer than 8 MiB")
                    continue
                if not raw.strip():
                    continue
                try:
                    item = json_loads(raw.decode("utf-8-sig"))
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    yield Rejection(file=path.name, line=number, reason=f"not valid JSON ({exc})")
                    continue
                line_type = item.get("type") if isinstance(item, dict) else None
                if line_type not in validators():
                    yield Rejection(file=path.name, line=number, column="type", reason='each line needs "type": account or post')
                    continue
                error = best_match(validators()[line_type].iter_errors(item))
                if error is not None:
                    column, message = _problem(error)
                    yield Rejection(file=path.name, line=number, column=column, reason=f"does not match the schema: {message}")
                    continue
                yield from _record(item, path, number)


def _record(item: dict, path: Path, number: int) -> Iterator[Record]:
    if item["type"] == "account":
        avatar, refused = _media(path, [item["avatar"]] if item.get("avatar") else [])
        yield from (Rejection(file=path.name, line=number, column="avatar", reason=f"avatar not imported: {r}", kept=True)
                    for r in refused)
        yield AccountRecord(
            platform=item["platform"], external_id=item["id"], handle=clean_text(item["handle"]),
            display_name=clean_text(item.get("display_name", "")), bio=clean_text(item.get("bio", "")),
            external_url=item.get("url", ""), location=clean_text(item.get("location", "")),
            language=item.get("language", ""), created_at=parse_datetime(item.get("created_at")),
            follower_count=item.get("followers"), following_count=item.get("following"), post_count=item.get("posts"),
            is_verified=item.get("verified"), is_private=item.get("private"), profile_image=avatar[0] if avatar else None,
        )
        return
    posted_at = parse_datetime(item["posted_at"])
    if posted_at is None:
        yield Rejection(file=path.name, line=number, column="posted_at", reason=f"unreadable date {item['posted_at'][:100]!r}")
        return
    media, refused = _media(path, item.get("media", []))
    yield from (Rejection(file=path.name, line=number, column="media", reason=f"media not imported: {r}", kept=True)
                for r in refused)
    yield PostRecord(
        platform=item["platform"], external_id=item["id"], account_external_id=item["account_id"],
        posted_at=posted_at, text=clean_text(item.get("text", "")),
        hashtags=[h.lstrip("#").casefold() for h in item["hashtags"]] if "hashtags" in item else None,
        mentions=[m.lstrip("@").lower() for m in item["mentions"]] if "mentions" in item else None,
        links=item.get("links"), repost_of_external_id=item.get("repost_of", ""), reply_to_external_id=item.get("reply_to", ""),
        language=item.get("language", ""), url=item.get("url", ""), like_count=item.get("likes"),
        comment_count=item.get("comments"), share_count=item.get("shares"), view_count=item.get("views"), media=media,
        file=path.name, line=number,
    )
