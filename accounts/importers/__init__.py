"""Importers: each reads one export format and yields plain records (see records.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from accounts.importers import instaloader
from accounts.importers.records import Record

Reader = Callable[[list[Path]], Iterator[Record]]
Counter = Callable[[list[Path]], int]

# Formats the ingestion work adds (twitter-io, ira-csv, crowdtangle, jsonl) register here.
READERS: dict[str, tuple[Reader, Counter]] = {
    "instaloader": (instaloader.read, instaloader.count_items),
}
