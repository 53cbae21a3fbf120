"""Watchlists: named lists of handles or platform ids, flagged wherever the accounts appear."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import Q

from accounts.importers.records import Rejection
from accounts.models import Account, Cluster, HandleChange, Platform, Watchlist, WatchlistEntry
from accounts.normalize import clean_text
from investigator.roles import INVESTIGATOR, has_role

MAX_LINE_CHARS = 64 * 1024  # a handle or an id is a few dozen characters: a longer line is rejected unread
HANDLE_RE = re.compile(r"^[A-Za-z0-9_.]{1,30}$")
ID_RE = re.compile(r"^[A-Za-z0-9_=+/.-]{1,128}$")  # numeric ids and the archives' hashed ids


@dataclass(frozen=True)
class WatchlistImport:
    watchlist: Watchlist
    added: int
    already_listed: int
    rejected: list[Rejection]


def parse_entry(raw: str, kind: str = "auto") -> tuple[str, str] | None:
    """(kind, value) for one line: '@name' or 'handle:name' is a handle, 'id:…' or digits an id."""
    text = clean_text(raw).strip().strip('"').strip()
    if not text:
        return None
    if kind == "handle" or text.startswith(("@", "handle:")):
        value = text.removeprefix("handle:").lstrip("@").strip().lower()
        return ("handle", value) if HANDLE_RE.match(value) else None
    if kind == "id" or text.startswith("id:") or text.isdigit():
        value = text.removeprefix("id:").strip()
        return ("id", value) if ID_RE.match(value) else None
    if HANDLE_RE.match(text):
        return "handle", text.lower()
    # Hashed ids of the information-operations archives are long opaque strings.
    return ("id", text) if ID_RE.match(text) else None


@transaction.atomic
def watchlist_import(
    *, name: str, lines: Iterable[str | None], platform: str | None, user: AbstractBaseUser | None,
    kind: str = "auto", source: str = "", source_sha256: str = "", description: str = "",
) -> WatchlistImport:
    """Entries from ``lines`` (the first cell of each; None for a line too long to read, which is rejected)."""
    platform_obj = Platform.objects.get(slug=platform) if platform else None
    watchlist, _ = Watchlist.objects.get_or_create(
        name=clean_text(name).strip()[:200],
        defaults={"created_by": user if user is not None and user.is_authenticated else None,
                  "description": description, "source": source[:500], "source_sha256": source_sha256},
    )
    entries, rejected, seen = [], [], set()
    for number, raw in enumerate(lines, start=1):
        if raw is None:
            rejected.append(Rejection(file=source, line=number, reason="line longer than 64 KiB"))
            continue
        first_cell = raw.split(",")[0]
        if not first_cell.strip() or first_cell.lstrip().startswith("#"):
            continue
        parsed = parse_entry(first_cell, kind)
        if parsed is None:
            rejected.append(Rejection(file=source, line=number, reason=f"not a handle or id: {first_cell.strip()[:80]!r}"))
            continue
        if parsed in seen:
            continue
        seen.add(parsed)
        entries.append(WatchlistEntry(watchlist=watchlist, platform=platform_obj, kind=parsed[0], value=parsed[1],
                                      line=number))
    before = watchlist.entries.count()
    WatchlistEntry.objects.bulk_create(entries, ignore_conflicts=True, batch_size=1000)
    added = watchlist.entries.count() - before
    return WatchlistImport(watchlist, added, len(entries) - added, rejected)


def watchlist_import_file(*, name: str, path: Path, platform: str | None, user: AbstractBaseUser | None,
                          kind: str = "auto") -> WatchlistImport:
    from accounts.importers.csvfiles import detect_encoding
    from accounts.importers.lines import numbered_lines
    from accounts.services import file_sha256

    with path.open(encoding=detect_encoding(path), errors="replace", newline="") as handle:
        lines = (line for _, line in numbered_lines(handle, MAX_LINE_CHARS))
        return watchlist_import(name=name, lines=lines, platform=platform, user=user, kind=kind, source=path.name,
                                source_sha256=file_sha256(path))


def watchlists_visible(*, user: AbstractBaseUser | AnonymousUser):  # noqa: ANN201 - a QuerySet
    return Watchlist.objects.all() if has_role(user, INVESTIGATOR) else Watchlist.objects.none()


def watchlist_hits(*, user: AbstractBaseUser | AnonymousUser, account_ids: Iterable[int]) -> dict[int, list[str]]:
    """For each account, the names of the watchlists that list it: by platform id, current handle or a past handle."""
    account_ids = list(account_ids)
    if not account_ids or not has_role(user, INVESTIGATOR):
        return {}
    accounts = list(Account.objects.filter(pk__in=account_ids).values("pk", "platform_id", "external_id", "handle"))
    platform_of = {a["pk"]: a["platform_id"] for a in accounts}
    # The same id or handle can exist on several platforms: each key lists every account that has it.
    by_id: dict[str, set[int]] = defaultdict(set)
    by_handle: dict[str, set[int]] = defaultdict(set)
    for account in accounts:
        by_id[account["external_id"]].add(account["pk"])
        by_handle[account["handle"].lower()].add(account["pk"])
    for change in HandleChange.objects.filter(account_id__in=account_ids, field="handle").values("account_id", "old_value"):
        by_handle[change["old_value"].lower()].add(change["account_id"])
    hits: dict[int, set[str]] = defaultdict(set)
    entries = WatchlistEntry.objects.filter(
        Q(kind="id", value__in=list(by_id)) | Q(kind="handle", value__in=list(by_handle))
    ).values("kind", "value", "platform_id", "watchlist__name")
    for entry in entries:
        candidates = (by_id if entry["kind"] == "id" else by_handle)[entry["value"]]
        for account_id in candidates:
            if entry["platform_id"] in (None, platform_of[account_id]):
                hits[account_id].add(entry["watchlist__name"])
    return {account_id: sorted(names) for account_id, names in hits.items()}


def cluster_watchlist_overlap(*, user: AbstractBaseUser | AnonymousUser, cluster: Cluster) -> list[dict[str, object]]:
    """How many of a cluster's members each watchlist lists."""
    members = list(cluster.members.values_list("pk", flat=True))
    counts: dict[str, int] = defaultdict(int)
    for names in watchlist_hits(user=user, account_ids=members).values():
        for name in names:
            counts[name] += 1
    return [{"watchlist": name, "listed": count, "members": len(members)} for name, count in sorted(counts.items())]
