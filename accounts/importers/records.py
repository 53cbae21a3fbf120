"""What every importer yields: plain records, independent of the source format."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path


@dataclass
class AccountRecord:
    platform: str
    external_id: str
    handle: str
    display_name: str = ""
    bio: str = ""
    external_url: str = ""
    location: str = ""
    language: str = ""
    created_at: datetime | None = None
    follower_count: int | None = None
    following_count: int | None = None
    post_count: int | None = None
    is_private: bool | None = None
    is_verified: bool | None = None
    profile_image: Path | None = None
    extra: dict = field(default_factory=dict)
    file: str = ""  # where it was read, for the problems reported about it
    line: int | None = None


@dataclass
class PostRecord:
    platform: str
    external_id: str
    account_external_id: str
    posted_at: datetime
    text: str = ""
    hashtags: list[str] | None = None  # None: extract from text
    mentions: list[str] | None = None
    links: list[str] | None = None
    post_type: str = ""
    language: str = ""
    url: str = ""
    repost_of_external_id: str = ""
    reply_to_external_id: str = ""
    like_count: int | None = None
    comment_count: int | None = None
    share_count: int | None = None
    view_count: int | None = None
    media: list[Path] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    file: str = ""  # where it was read, for the problems reported about it
    line: int | None = None


@dataclass
class Rejection:
    file: str
    reason: str
    line: int | None = None
    column: str = ""
    kept: bool = False  # a warning: the row itself was imported


Record = AccountRecord | PostRecord | Rejection


def located(record: AccountRecord, file: str, line: int | None = None) -> AccountRecord:
    """A copy of an account record that knows where it was read, for the problems reported about it."""
    return replace(record, file=file, line=line)
