"""Reading the CSV files platforms and archives publish, however messy they are."""

from __future__ import annotations

import ast
import csv
import functools
import operator
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from accounts.importers.lines import BoundedLines, LineTooLong, count_lines

MAX_LINE_CHARS = 64 * 1024 * 1024  # a physical line, and so a field; a longer one rejects its row
csv.field_size_limit(min(sys.maxsize, MAX_LINE_CHARS))
SNIFF_BYTES = 4 * 1024 * 1024
TWITTER_EPOCH_MS = 1288834974657


@dataclass
class CsvRow:
    line: int  # first physical line of the record, 1-based, header is line 1
    values: dict[str, str]


def detect_encoding(path: Path) -> str:
    """UTF-16 or UTF-8 when a byte-order mark says so; else UTF-8 when the first megabytes read as UTF-8, a few
    damaged bytes allowed (they become U+FFFD in their own rows); else Windows-1252.

    One corrupt byte must not turn a whole UTF-8 export (names in Cyrillic, Arabic, emoji) into mojibake:
    Windows-1252 text is told apart by having no valid multi-byte UTF-8 sequences to speak of, not by having
    one invalid one."""
    head = _head(path)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    text = head.decode("utf-8", errors="replace")
    damaged = text.count("\ufffd") - (1 if text.endswith("\ufffd") else 0)  # a character cut at the sniff boundary
    if damaged <= 0:
        return "utf-8-sig"
    multibyte = sum(1 for character in text if "\x7f" < character != "\ufffd")
    return "utf-8-sig" if multibyte >= 4 * damaged else "cp1252"


def _head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(SNIFF_BYTES)


def _header(path: Path) -> tuple[list[str], str | None]:
    with path.open(encoding=detect_encoding(path), errors="replace", newline="") as handle:
        try:
            cells = next(csv.reader(_without_nul(BoundedLines(handle, MAX_LINE_CHARS))), None)
        except LineTooLong as exc:
            return [], f"the header cannot be read: {exc}"
        except csv.Error as exc:
            return [], f"the header cannot be read as CSV ({exc})"
    if cells is None:
        return [], "the file is empty"
    return [normalise_column(c) for c in cells], None


def read_header(path: Path) -> list[str]:
    """The normalised column names; none when the header cannot be read (a line over MAX_LINE_CHARS)."""
    return _header(path)[0]


def header_problem(path: Path) -> str | None:
    """Why a file has no header to read (empty, or its first line over MAX_LINE_CHARS or not CSV), if it has none."""
    return _header(path)[1]


def header_rejection(path: Path, missing: Iterable[str]) -> str:
    """Why a file's header does not do for its format: it cannot be read at all, or it lacks these columns."""
    return header_problem(path) or f"missing required columns: {', '.join(sorted(missing))}"


def normalise_column(name: str) -> str:
    return name.strip().strip("\ufeff").strip()


def _without_nul(lines: Iterator[str]) -> Iterator[str]:
    return map(operator.methodcaller("replace", "\x00", ""), lines)  # in C: no Python frame per line


def read_rows(path: Path) -> Iterator[CsvRow]:
    """Stream rows as dicts keyed by the normalised header; constant memory whatever the size, and whatever the
    length of its lines. Undecodable bytes become U+FFFD rather than stopping the file. A row with a line or a
    field longer than MAX_LINE_CHARS comes as {"__unreadable__": why}, and reading starts again on the next
    line (were that line inside the row's quoted field, what follows reads as rows of its own, which the
    formats reject as incomplete)."""
    encoding = detect_encoding(path)
    with path.open(encoding=encoding, errors="replace", newline="") as handle:
        lines = BoundedLines(handle, MAX_LINE_CHARS)
        source = _without_nul(lines)
        try:
            header = [normalise_column(c) for c in next(csv.reader(source), [])]
        except (LineTooLong, csv.Error):
            return  # read_header() found no columns: the formats have rejected the file already
        width = len(header)
        previous_end = lines.number
        reader = csv.reader(source)
        while True:
            start = previous_end + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except (LineTooLong, csv.Error) as exc:
                why = str(exc) if isinstance(exc, LineTooLong) else f"cannot be read as CSV ({exc})"
                yield CsvRow(line=start, values={"__unreadable__": why})
                previous_end = lines.number
                reader = csv.reader(source)  # a fresh parser: outside any quoted field again
                continue
            previous_end = lines.number
            if not any(map(str.strip, cells)):  # in C: no Python frame per cell
                continue
            if len(cells) >= width:
                values = dict(zip(header, cells))
            else:
                values = dict(zip(header, cells + [""] * (width - len(cells))))
                values["__short__"] = str(len(cells))
            yield CsvRow(line=start, values=values)


def row_problem(values: dict[str, str]) -> str | None:
    """Why read_rows could not give a row whole, if it could not."""
    if "__unreadable__" in values:
        return values["__unreadable__"]
    if "__short__" in values:
        return "truncated row: fewer cells than the header"
    return None


NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")


def parse_int(value: str | None) -> int | None:
    if value is None:
        return None
    if value.isdigit() and value.isascii():
        return int(value)
    value = value.strip().replace(",", "")
    if not value:
        return None
    try:
        return int(float(value)) if NUMBER.fullmatch(value) else None
    except (ValueError, OverflowError):
        return None


def parse_bool(value: str | None) -> bool | None:
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered in {"true", "1", "yes", "t"}:
        return True
    if lowered in {"false", "0", "no", "f"}:
        return False
    return None


DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%d", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y",
    "%Y-%m-%d %H:%M:%S %Z", "%Y-%m-%d %H:%M:%S %z", "%a %b %d %H:%M:%S %z %Y",
)


ISO_DATE = re.compile(r"\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d{1,6})?)?)?(?:Z|[+-]\d\d:?\d\d)?")


@functools.lru_cache(maxsize=16_384)  # archives give minutes: the same value recurs on many rows
def parse_datetime(value: str | None) -> datetime | None:
    """Dates in the formats these exports use; naive times are UTC (the archives publish UTC)."""
    if not value:
        return None
    text = value.strip()
    if ISO_DATE.fullmatch(text):  # the common case, parsed in C
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    text = text.replace("Z", "+0000") if text.endswith("Z") else text
    text = re.sub(r"([+-]\d\d):(\d\d)$", r"\1\2", text)
    text = text.replace(" UTC", " +0000") if text.endswith(" UTC") else text
    for fmt in DATE_FORMATS:
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return None


_ITEM = r"""(?:\s*'[^'\\,]*'\s*|\s*"[^"\\,]*"\s*|[^'"\\,\[\]]*)"""
SIMPLE_LIST = re.compile(rf"\[(?:{_ITEM},)*{_ITEM}\]")


def parse_list(value: str | None) -> list[str]:
    """List literals as the archives write them: ``[maga, trump]``, ``['https://…']``, ``[]`` or empty.
    An empty field is an empty list, never a list holding one empty string."""
    if value is None:
        return []
    text = value.strip()
    if not text or text in {"[]", "['']", '[""]', "nan", "None"}:
        return []
    if len(text) < 20_000 and SIMPLE_LIST.fullmatch(text):  # the common shapes, without the cost of a Python parser
        return [item for item in (part.strip().strip("'\"").strip() for part in text[1:-1].split(",")) if item]
    if text.startswith("[") and text.endswith("]"):
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            parsed = None
        if isinstance(parsed, (list, tuple)):
            return [str(item).strip() for item in parsed if str(item).strip()]
    # Bare or damaged literals ("[maga, trump]", a cell cut mid-list): split on commas.
    inner = text[1:] if text.startswith("[") else text
    inner = inner[:-1] if inner.endswith("]") else inner
    return [part.strip().strip("'\"").strip() for part in inner.split(",") if part.strip().strip("'\"").strip()]


def snowflake_time(tweet_id: str | int | None) -> datetime | None:
    """The exact millisecond a tweet was posted, encoded in its Snowflake id (ids since late 2010)."""
    number = parse_int(str(tweet_id)) if tweet_id is not None else None
    if number is None or number < 2**32:  # pre-Snowflake ids carry no time
        return None
    milliseconds = (number >> 22) + TWITTER_EPOCH_MS
    return datetime.fromtimestamp(milliseconds / 1000, tz=UTC)


def csv_files(paths: list[Path]) -> list[Path]:
    """The CSV files named, or found below the folders named (a folder named like one is not one)."""
    found: list[Path] = []
    for path in paths:
        found.extend(sorted(p for p in path.rglob("*.csv") if p.is_file()) if path.is_dir() else [path])
    return found


def count_rows(paths: list[Path]) -> int:
    """Physical lines after the header: the progress total (quoted newlines make it an upper bound)."""
    total = 0
    for path in csv_files(paths):
        with path.open("rb") as handle:
            total += max(0, count_lines(handle) - 1)
    return total
