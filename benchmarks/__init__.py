"""Benchmarks: scripts that print figures, never assertions (these machines are shared). Each runs in a
PostgreSQL database of its own, which it empties."""

from __future__ import annotations

import os


def own_database(default: str) -> str:
    """The benchmark's database: INVESTIGATOR_DB_NAME when set, else `default`. The benchmarks empty the
    database they run in, so a name without "bench" in it (the application's own, exported in the shell for
    `make run`, say) is refused rather than emptied."""
    name = os.environ.setdefault("INVESTIGATOR_DB_NAME", default)
    if "bench" not in name:
        raise SystemExit(f"The benchmarks empty the database they run in, and INVESTIGATOR_DB_NAME={name!r} does not "
                         f"name a benchmark's (its name must contain 'bench'). Unset it to use {default!r}.")
    return name
