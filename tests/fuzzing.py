"""Damage for generated hostile files (hypothesis): a list of edits applied to a clean file's bytes."""

from __future__ import annotations

import re


def edited(content: bytes, edits: list[tuple[str, float, bytes]]) -> bytes:
    """Each edit is (kind, where as a share of the length, payload):
    insert, delete (as many bytes as the payload), overwrite, cut (a file that stopped mid-way),
    repeat-line (a duplicated row), number / word (a well-formed file with an absurd value where a number or a
    word stood), utf-16 / cp1252 (the whole file re-encoded)."""
    for kind, where, payload in edits:
        at = int(where * len(content))
        if kind == "insert":
            content = content[:at] + payload + content[at:]
        elif kind == "delete":
            content = content[:at] + content[at + len(payload):]
        elif kind == "overwrite":
            content = content[:at] + payload + content[at + len(payload):]
        elif kind == "cut":
            content = content[:max(at, 1)]
        elif kind == "repeat-line":
            lines = content.split(b"\n")
            line = lines[min(int(where * len(lines)), len(lines) - 1)]
            content = content + b"\n" + line + b"\n"
        elif kind in {"number", "word"}:
            found = list(re.finditer(rb"\d+" if kind == "number" else rb"[A-Za-z]+", content))
            if found:
                match = found[min(int(where * len(found)), len(found) - 1)]
                content = content[:match.start()] + payload + content[match.end():]
        elif kind in {"utf-16", "cp1252"}:
            text = content.decode("utf-8", errors="replace")
            content = text.encode("utf-16") if kind == "utf-16" else text.encode("cp1252", errors="replace")
        else:
            raise ValueError(f"unknown edit {kind!r}")
    return content
