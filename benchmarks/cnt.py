"""coordination-network-toolkit, the reference tool the benchmarks and the agreement tests compare against.

It is a development dependency (requirements-dev.txt), never a runtime one. Each of its commands runs
in a child process of the same interpreter, so its time and peak memory are its own.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

# Runs one toolkit command and reports its peak memory (the child's own, not the benchmark's).
RUNNER = """
import json, resource, sys, time
from coordination_network_toolkit.__main__ import main
sys.argv = ["coordination_network_toolkit", *sys.argv[1:]]
started = time.perf_counter()
main()
print(json.dumps({"seconds": time.perf_counter() - started,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), file=sys.stderr)
"""


def ensure_installed() -> None:
    try:
        import coordination_network_toolkit  # noqa: F401
    except ImportError as exc:
        raise SystemExit("coordination-network-toolkit is missing: run `make dev` (requirements-dev.txt)") from exc


def write_messages(io_tweets_csv: Path, target: Path) -> int:
    """The toolkit's own CSV layout, from the same information-operations rows the project imports:
    message_id, user_id, username, repost_id, reply_id, message, timestamp, urls (space-separated)."""
    count = 0
    with io_tweets_csv.open(newline="", encoding="utf-8") as source, target.open("w", newline="", encoding="utf-8") as sink:
        reader = csv.DictReader(source)
        writer = csv.writer(sink)
        writer.writerow(["message_id", "user_id", "username", "repost_id", "reply_id", "message", "timestamp", "urls"])
        for row in reader:
            urls = row["urls"].strip("[]").replace("'", "").replace(",", " ").split()
            when = datetime.fromisoformat(row["tweet_time"]).timestamp()
            writer.writerow([row["tweetid"], row["userid"], row["user_screen_name"], row["retweet_tweetid"],
                             row["in_reply_to_tweetid"], row["tweet_text"], int(when), " ".join(urls)])
            count += 1
    return count


def run(database: Path, *args: str) -> dict[str, float]:
    """`coordination_network_toolkit DATABASE ARGS…`; returns its seconds and peak memory."""
    ensure_installed()
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", RUNNER, str(database), *args],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"coordination-network-toolkit failed: {done.stderr[-2000:]}")
    report = next(json.loads(line) for line in reversed(done.stderr.strip().splitlines()) if line.startswith('{"seconds"'))
    report["wall_seconds"] = time.perf_counter() - started
    return report


def network(database: Path, name: str) -> set[tuple[str, str]]:
    """A computed network (co_tweet, co_link, …) as unordered pairs of user ids, loops left out."""
    import sqlite3

    with sqlite3.connect(database) as db:
        rows = db.execute(f"SELECT user_1, user_2 FROM {name}_network WHERE user_1 <> user_2").fetchall()  # noqa: S608
    return {(min(str(a), str(b)), max(str(a), str(b))) for a, b in rows}
