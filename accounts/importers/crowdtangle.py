"""CrowdTangle CSV exports (Instagram and Facebook). Columns are mapped by name, whatever
their order or the export's year; unknown columns are ignored; missing required ones are
reported. Instagram post URLs are turned into Instagram media ids, so a CrowdTangle row
and an Instaloader file of the same post are one post."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from accounts.importers.csvfiles import (
    CsvRow,
    count_rows,
    csv_files,
    header_rejection,
    parse_datetime,
    parse_int,
    read_header,
    read_rows,
    row_problem,
)
from accounts.importers.records import AccountRecord, PostRecord, Record, Rejection, located
from accounts.normalize import clean_text, extract_links

US_ZONES = {"EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7, "UTC": 0, "GMT": 0}
SHORTCODE_RE = re.compile(r"instagram\.com/(?:p|reel|tv)/([A-Za-z0-9_-]{5,64})")
REQUIRED = {"instagram": {"user name", "post created", "url"}, "facebook": {"post created", "url"}}


def _key(name: str) -> str:
    return re.sub(r"\s+", " ", name.strip().lower())


def _platform(header: set[str]) -> str:
    return "facebook" if {"facebook id", "page name", "message"} & header else "instagram"


def is_crowdtangle(path: Path) -> bool:
    header = {_key(c) for c in read_header(path)}
    return "post created" in header and "url" in header and ({"user name", "facebook id", "page name", "account"} & header)


_files = csv_files


count_items = count_rows


def parse_created(value: str | None) -> datetime | None:
    """'2019-03-01 12:34:56 EST' and the other forms CrowdTangle wrote."""
    if not value:
        return None
    match = re.fullmatch(r"(.+?)\s+([A-Z]{3})", value.strip())
    if match and match.group(2) in US_ZONES:
        naive = parse_datetime(match.group(1))
        if naive is None:
            return None
        return naive.replace(tzinfo=timezone(timedelta(hours=US_ZONES[match.group(2)]))).astimezone(UTC)
    return parse_datetime(value)


def read(paths: list[Path]) -> Iterator[Record]:
    for path in _files(paths):
        header = {_key(c) for c in read_header(path)}
        platform = _platform(header)
        missing = REQUIRED[platform] - header
        if platform == "facebook" and not {"facebook id", "user name"} & header:
            missing.add("facebook id or user name")
        if missing:
            yield Rejection(file=path.name, line=1, reason=header_rejection(path, missing))
            continue
        accounts: dict[str, AccountRecord] = {}
        for row in read_rows(path):
            row.values = {_key(k): v for k, v in row.values.items()}
            yield from _row(row, platform, path.name, accounts)


def _row(row: CsvRow, platform: str, name: str, accounts: dict[str, AccountRecord]) -> Iterator[Record]:
    values = row.values
    if problem := row_problem(values):
        yield Rejection(file=name, line=row.line, reason=problem)
        return
    handle = values.get("user name", "").strip().lstrip("@")
    account_id = values.get("facebook id", "").strip() or (f"handle:{handle.lower()}" if handle else "")
    if not account_id:
        yield Rejection(file=name, line=row.line, column="User Name", reason="no account id or user name")
        return
    posted_at = parse_created(values.get("post created"))
    if posted_at is None:
        yield Rejection(file=name, line=row.line, column="Post Created", reason=f"unreadable date {values.get('post created')!r}")
        return
    url = values.get("url", "").strip()
    if not url:
        yield Rejection(file=name, line=row.line, column="URL", reason="empty post URL")
        return
    account = AccountRecord(
        platform=platform, external_id=account_id, handle=handle or account_id,
        display_name=clean_text(values.get("account") or values.get("page name") or ""),
        follower_count=parse_int(values.get("followers at posting")) or parse_int(values.get("likes at posting")),
    )
    if accounts.get(account_id) != account:
        accounts[account_id] = account
        yield located(account, name, row.line)
    shortcode = SHORTCODE_RE.search(url)
    external_id = url
    if platform == "instagram" and shortcode:
        from instaloader import Post
        from instaloader.exceptions import InvalidArgumentException

        try:
            external_id = str(Post.shortcode_to_mediaid(shortcode.group(1)))
        except InvalidArgumentException:  # longer than a media id's shortcode (private posts' are): the URL stays the id
            pass
    text = clean_text(values.get("description") or values.get("message") or "")
    links = [values[k].strip() for k in ("link", "final link") if values.get(k, "").strip()]
    yield PostRecord(
        platform=platform, external_id=external_id, account_external_id=account_id, posted_at=posted_at, text=text,
        links=[*links, *extract_links(text)], url=url, post_type=values.get("type", "").strip().lower(),
        like_count=parse_int(values.get("likes")), comment_count=parse_int(values.get("comments")),
        share_count=parse_int(values.get("shares")), view_count=parse_int(values.get("views")),
        extra={k: values[k].strip() for k in ("image text", "title", "link text", "sponsor name", "total interactions")
               if values.get(k, "").strip()},
        file=name, line=row.line,
    )

