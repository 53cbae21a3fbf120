"""Twitter/X information-operations archives: a users CSV and a tweets CSV per operation.

Accounts with fewer than 5,000 followers carry hashed ids and names in these
archives; they are kept as given (the hash is the stable identity)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from accounts.importers.csvfiles import (
    CsvRow,
    count_rows,
    csv_files,
    header_rejection,
    parse_bool,
    parse_datetime,
    parse_int,
    parse_list,
    read_header,
    read_rows,
    row_problem,
)
from accounts.importers.records import AccountRecord, PostRecord, Record, Rejection, located
from accounts.normalize import clean_text

USER_COLUMNS = {"userid", "user_screen_name"}
TWEET_COLUMNS = {"tweetid", "userid", "tweet_time"}


def _files(paths: list[Path]) -> list[Path]:
    found = csv_files(paths)
    # Users before tweets, so every tweet finds its account complete.
    return sorted(found, key=lambda p: ("tweetid" in read_header(p), str(p)))


def is_twitter_io(path: Path) -> bool:
    header = set(read_header(path))
    return USER_COLUMNS <= header and ("tweetid" in header or "account_creation_date" in header) and "content" not in header


count_items = count_rows


def _account(row: CsvRow) -> AccountRecord:
    values = row.values
    return AccountRecord(
        platform="twitter",
        external_id=values["userid"].strip(),
        handle=clean_text(values.get("user_screen_name", "")).strip() or values["userid"].strip(),
        display_name=clean_text(values.get("user_display_name", "")),
        bio=clean_text(values.get("user_profile_description", "")),
        external_url=values.get("user_profile_url", "").strip(),
        location=clean_text(values.get("user_reported_location", "")),
        language=values.get("account_language", "").strip(),
        created_at=parse_datetime(values.get("account_creation_date")),
        follower_count=parse_int(values.get("follower_count")),
        following_count=parse_int(values.get("following_count")),
    )


def read(paths: list[Path]) -> Iterator[Record]:
    # Accounts come from the users file when there is one; tweet rows only fill in the others.
    seen_users: set[str] = set()
    for path in _files(paths):
        header = set(read_header(path))
        name = path.name
        missing = (TWEET_COLUMNS if "tweetid" in header else USER_COLUMNS) - header
        if missing:
            yield Rejection(file=name, line=1, reason=header_rejection(path, missing))
            continue
        for row in read_rows(path):
            if problem := row_problem(row.values):
                yield Rejection(file=name, line=row.line, reason=problem)
                continue
            if not row.values.get("userid", "").strip():
                yield Rejection(file=name, line=row.line, column="userid", reason="empty userid")
                continue
            if "tweetid" not in header:
                seen_users.add(row.values["userid"].strip())
                yield located(_account(row), name, row.line)
                continue
            userid = row.values["userid"].strip()
            if userid not in seen_users:
                seen_users.add(userid)
                yield located(_account(row), name, row.line)
            yield from _tweet(row, name)


def _tweet(row: CsvRow, name: str) -> Iterator[Record]:
    values = row.values
    tweet_id = values["tweetid"].strip()
    if not tweet_id:
        yield Rejection(file=name, line=row.line, column="tweetid", reason="empty tweetid")
        return
    posted_at = parse_datetime(values.get("tweet_time"))
    if posted_at is None:
        yield Rejection(file=name, line=row.line, column="tweet_time", reason=f"unreadable date {values.get('tweet_time')!r}")
        return
    is_retweet = parse_bool(values.get("is_retweet")) or False
    yield PostRecord(
        platform="twitter",
        external_id=tweet_id,
        account_external_id=values["userid"].strip(),
        posted_at=posted_at,
        text=clean_text(values.get("tweet_text", "")),
        hashtags=[h.lstrip("#").casefold() for h in parse_list(values.get("hashtags"))],
        mentions=[m.lstrip("@").lower() for m in parse_list(values.get("user_mentions"))],
        links=parse_list(values.get("urls")),
        post_type="retweet" if is_retweet else ("reply" if values.get("in_reply_to_tweetid", "").strip() else "tweet"),
        language=values.get("tweet_language", "").strip(),
        repost_of_external_id=values.get("retweet_tweetid", "").strip() if is_retweet else "",
        reply_to_external_id=values.get("in_reply_to_tweetid", "").strip(),
        like_count=parse_int(values.get("like_count")),
        comment_count=parse_int(values.get("reply_count")),
        share_count=parse_int(values.get("retweet_count")),
        extra={k: values[k].strip() for k in ("tweet_client_name", "quoted_tweet_tweetid", "quote_count", "poll_choices",
                                              "follower_count", "following_count",
                                              "latitude", "longitude") if values.get(k, "").strip()},
        file=name, line=row.line,
    )
