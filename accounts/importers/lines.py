"""Reading a file a line at a time in constant memory, however long its lines are.

Iterating a file object reads each whole line into memory: one line of several gigabytes (a hostile file, or
a dump with no line breaks) would take that much. These readers never hold more than a line's limit; a
longer line is read past in pieces and reported, and reading goes on with the next line."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, AnyStr, Generic

PIECE = 1024 * 1024  # how much of an over-long line is read at a time while skipping it


class LineTooLong(ValueError):
    def __init__(self, number: int, limit: int) -> None:
        size = f"{limit // 2**20} MiB" if limit % 2**20 == 0 else f"{limit:,} bytes or characters"
        super().__init__(f"line {number} is longer than {size}")
        self.number = number


class BoundedLines(Generic[AnyStr]):
    """The lines of a file opened in binary mode, or in text mode with newline="", each with its line ending
    and at most ``limit`` long (bytes or characters, the ending included). A longer line is skipped: next()
    raises LineTooLong for it, and the call after that returns the line that follows. ``number`` is the
    1-based number of the last line read."""

    def __init__(self, handle: IO[AnyStr], limit: int) -> None:
        self.handle, self.limit, self.number = handle, limit, 0
        self.ends = ("\n", "\r") if isinstance(handle.read(0), str) else (b"\n",)

    def __iter__(self) -> BoundedLines[AnyStr]:
        return self

    def __next__(self) -> AnyStr:
        line = self.handle.readline(self.limit + 1)
        if not line:
            raise StopIteration
        self.number += 1
        if len(line) > self.limit:
            while line and not line.endswith(self.ends):
                line = self.handle.readline(PIECE)
            raise LineTooLong(self.number, self.limit)
        return line


def count_lines(handle: IO[bytes]) -> int:
    """Lines in a file opened in binary mode (a last line without its ending counts), read in pieces."""
    count, last = 0, b"\n"
    while piece := handle.read(PIECE):
        count += piece.count(b"\n")
        last = piece
    return count + (not last.endswith(b"\n"))


def numbered_lines(handle: IO[AnyStr], limit: int) -> Iterator[tuple[int, AnyStr | None]]:
    """(1-based number, line) for each line of BoundedLines(handle, limit); None for a line over the limit."""
    lines = BoundedLines(handle, limit)
    while True:
        try:
            line = next(lines)
        except StopIteration:
            return
        except LineTooLong:
            yield lines.number, None
            continue
        yield lines.number, line
