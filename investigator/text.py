"""Showing text written by adversaries."""

from __future__ import annotations

# Bidirectional overrides and isolates, zero-width characters, the soft hyphen and the BOM: invisible in a
# page, yet they reorder or hide what an adversary's text says. They are shown as visible markers instead.
_INVISIBLE = {
    cp: f"⟨U+{cp:04X}⟩"
    for cp in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C,
               0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x00AD)
}


def reveal(value: object) -> str:
    """The text with direction controls and invisible characters made visible. Plain text: it still has to be
    escaped where it is shown (templates autoescape; canvases draw text, never markup)."""
    return str(value if value is not None else "").translate(_INVISIBLE)


def spreadsheet_safe(value: object) -> str:
    """A CSV cell a spreadsheet will show, never run: text starting like a formula (=, +, -, @, a tab or a
    carriage return) gets a leading quote. Handles, captions and file names are written by adversaries."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
