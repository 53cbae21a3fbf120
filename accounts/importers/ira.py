"""FiveThirtyEight / Clemson IRA tweets: the 21-column release and the per-author copies.

The layout is told apart by its header. ``publish_date`` has minute resolution;
when a Snowflake ``tweet_id`` is present the exact millisecond is recovered from it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from accounts.importers.csvfiles import (
    CsvRow,
    count_rows,
    csv_files,
    header_problem,
    parse_datetime,
    parse_int,
    read_header,
    read_rows,
    row_problem,
    snowflake_time,
)
from accounts.importers.records import AccountRecord, PostRecord, Record, Rejection, located
from accounts.normalize import clean_text

FULL_COLUMNS = {"external_author_id", "author", "content", "publish_date"}
PER_AUTHOR_COLUMNS = {"author_id", "content", "publish_date"}


_files = csv_files


def layout(path: Path) -> str | None:
    header = set(read_header(path))
    if FULL_COLUMNS <= header:
        return "full"
    if PER_AUTHOR_COLUMNS <= header:
        return "per-author"
    return None


def is_ira(path: Path) -> bool:
    return layout(path) is not None


count_items = count_rows


def read(paths: list[Path]) -> Iterator[Record]:
    for path in _files(paths):
        kind = layout(path)
        if kind is None:
            neither = ("header matches neither IRA layout (needs content, publish_date and external_author_id/author "
                       "or author_id)")
            yield Rejection(file=path.name, line=1, reason=header_problem(path) or neither)
            continue
        accounts: dict[str, AccountRecord] = {}
        for row in read_rows(path):
            if problem := row_problem(row.values):
                yield Rejection(file=path.name, line=row.line, reason=problem)
                continue
            yield from _row(row, kind, path, accounts)


def _row(row: CsvRow, kind: str, path: Path, accounts: dict[str, AccountRecord]) -> Iterator[Record]:
    values = row.values
    author_id = (values.get("external_author_id") if kind == "full" else values.get("author_id", "")).strip()
    if not author_id:
        yield Rejection(file=path.name, line=row.line, column="external_author_id", reason="empty author id")
        return
    handle = clean_text(values.get("author", "")).strip() if kind == "full" else path.stem
    minute_time = parse_datetime(values.get("publish_date"))
    if minute_time is None:
        yield Rejection(file=path.name, line=row.line, column="publish_date",
                        reason=f"unreadable date {values.get('publish_date')!r}")
        return
    tweet_id = values.get("tweet_id", "").strip()
    exact = snowflake_time(tweet_id)
    # Trust the Snowflake time only when it agrees with the published minute (guards against mangled ids).
    posted_at = exact if exact is not None and abs(exact - minute_time) < timedelta(minutes=2) else minute_time
    account = AccountRecord(
        platform="twitter", external_id=author_id, handle=handle or author_id,
        language=values.get("language", "").strip() if kind == "per-author" else "",
        location=clean_text(values.get("region", "")),
        follower_count=parse_int(values.get("followers")), following_count=parse_int(values.get("following")),
        post_count=parse_int(values.get("updates")),
        extra={k: values[k].strip() for k in ("account_type", "account_category") if values.get(k, "").strip()},
    )
    if accounts.get(author_id) != account:
        accounts[author_id] = account
        yield located(account, path.name, row.line)
    content = clean_text(values.get("content", ""))
    if not tweet_id:
        # The per-author copies have no tweet id: a stable one from the row keeps re-imports idempotent.
        tweet_id = "ira-" + hashlib.sha256(f"{author_id}|{values.get('publish_date')}|{content}".encode()).hexdigest()[:24]
    post_type = values.get("post_type", "").strip()
    links = [values[k].strip() for k in ("article_url", "tco1_step1", "tco2_step1", "tco3_step1") if values.get(k, "").strip()]
    yield PostRecord(
        platform="twitter", external_id=tweet_id, account_external_id=author_id, posted_at=posted_at, text=content,
        links=links or None, post_type=(post_type or ("RETWEET" if values.get("retweet") == "1" else "tweet")).lower(),
        language=values.get("language", "").strip(),
        extra={"harvested_date": values.get("harvested_date", "").strip(), "minute_resolution": exact is None},
        file=path.name, line=row.line,
    )
