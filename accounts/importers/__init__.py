"""Importers: each reads one export format and yields plain records (see records.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from accounts.importers import crowdtangle, csvfiles, instaloader, ira, jsonl, twitter_io
from accounts.importers.records import Record

Reader = Callable[[list[Path]], Iterator[Record]]
Counter = Callable[[list[Path]], int]

READERS: dict[str, tuple[Reader, Counter]] = {
    "instaloader": (instaloader.read, instaloader.count_items),
    "twitter-io": (twitter_io.read, twitter_io.count_items),
    "ira-csv": (ira.read, ira.count_items),
    "crowdtangle": (crowdtangle.read, crowdtangle.count_items),
    "jsonl": (jsonl.read, jsonl.count_items),
}


def guess_format(paths: list[Path]) -> str:
    """The format of a set of inputs, from their content (headers, file names), for --format auto."""
    csv_files = [p for p in csvfiles.csv_files(paths) if p.suffix.lower() == ".csv"]
    if csv_files:
        if all(twitter_io.is_twitter_io(p) for p in csv_files):
            return "twitter-io"
        if all(ira.is_ira(p) for p in csv_files):
            return "ira-csv"
        if all(crowdtangle.is_crowdtangle(p) for p in csv_files):
            return "crowdtangle"
    files = [p for path in paths for p in ([path] if path.is_file() else sorted(f for f in path.rglob("*") if f.is_file()))]
    if any(jsonl.is_jsonl(p) for p in files):
        return "jsonl"
    if instaloader.profile_folders(paths):
        return "instaloader"
    raise ValueError("could not tell the format of these files; choose it (--format on the command line)")
