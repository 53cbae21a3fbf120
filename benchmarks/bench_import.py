"""Import throughput for the information-operations CSV layout, side by side with
coordination-network-toolkit's own `preprocess` of the same rows.

    .venv/bin/python benchmarks/bench_import.py [--sizes 100000,1000000] [--accounts N] [--halves]

For each size it writes that many synthetic tweets (users CSV + tweets CSV, and the
same rows in the toolkit's CSV layout), imports them into an emptied benchmark
database, runs the toolkit's preprocess on the same rows, and prints posts per
second, the ratio between the two, and each process's peak memory (flat as the
file grows: the import streams). `--halves` also times the import's two halves apart, each with
the whole machine: reading (Python) and storing (PostgreSQL and the loaders), so the bound shows.
Figures, never assertions: these machines are shared.
The toolkit is installed into var/bench/ on first use (see benchmarks/cnt.py).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "investigator.settings")
from benchmarks import own_database  # noqa: E402

own_database("investigator_bench")

TWEET_COLUMNS = [
    "tweetid", "userid", "user_display_name", "user_screen_name", "user_reported_location", "user_profile_description",
    "user_profile_url", "follower_count", "following_count", "account_creation_date", "account_language",
    "tweet_language", "tweet_text", "tweet_time", "tweet_client_name", "in_reply_to_userid", "in_reply_to_tweetid",
    "quoted_tweet_tweetid", "is_retweet", "retweet_userid", "retweet_tweetid", "latitude", "longitude", "quote_count",
    "reply_count", "like_count", "retweet_count", "hashtags", "urls", "user_mentions", "poll_choices",
]


WORDS = ("the", "vote", "news", "fake", "media", "america", "great", "again", "election", "rigged", "truth", "people",
         "watch", "share", "now", "breaking", "president", "democrats", "police", "video", "today", "never", "forget")


def write_archive(folder: Path, tweets: int, accounts: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    start = datetime(2018, 1, 1, tzinfo=UTC)
    with (folder / "bench_users_csv_hashed.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["userid", "user_display_name", "user_screen_name", "user_reported_location",
                         "user_profile_description", "user_profile_url", "follower_count", "following_count",
                         "account_creation_date", "account_language"])
        for user in range(accounts):
            writer.writerow([f"u{user:06d}", f"User {user}", f"user_{user}", "", "bio", "", rng.randrange(5000), 100,
                             "2016-01-01", "en"])
    with (folder / "bench_tweets_csv_hashed.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(TWEET_COLUMNS)
        for n in range(tweets):
            user = rng.randrange(accounts)
            when = start + timedelta(seconds=rng.randrange(365 * 86400))
            tags = rng.sample(["maga", "trump", "news", "vote", "usa", "resist"], k=rng.randrange(3))
            words = " ".join(rng.choices(WORDS, k=rng.randrange(6, 18)))
            retweet = rng.random() < 0.2
            writer.writerow([
                10**18 + n, f"u{user:06d}", f"User {user}", f"user_{user}", "", "", "", rng.randrange(5000), 100,
                "2016-01-01", "en", "en", f"{words} " + " ".join(f"#{t}" for t in tags),
                when.strftime("%Y-%m-%d %H:%M"), "Twitter Web Client", "", "", "", str(retweet), "",
                10**18 + rng.randrange(max(1, n)) if retweet else "", "", "", 0, 0, rng.randrange(50), rng.randrange(20),
                "[" + ", ".join(tags) + "]", "[]" if rng.random() < 0.7 else f"['https://example.com/{n % 500}?utm_source=x']",
                "[]", "",
            ])


def child_import(folder: Path) -> None:
    """One import in this process, into an emptied benchmark database; prints its figures as JSON."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from accounts.services import import_paths

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE accounts_post, accounts_account, accounts_importrun, accounts_dataset CASCADE")
    started = time.perf_counter()
    run = import_paths(dataset_name="bench", format="twitter-io", paths=[folder], user=None)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "created": run.created_count, "rejected": run.rejected_count,
                      "status": run.status, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def child_halves(folder: Path, store_rows: int) -> None:
    """The import's two halves apart, each with the whole machine: reading and preparing every batch (Python,
    nothing stored), then storing the first `store_rows` posts' batches read beforehand (PostgreSQL's share and
    the loaders'). Prints posts per second for each as JSON."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from accounts import services
    from accounts.importers import READERS
    from accounts.models import Platform
    from investigator.memory import few_collections

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE accounts_post, accounts_account, accounts_importrun, accounts_dataset CASCADE")
    Platform.objects.get_or_create(slug="twitter", defaults={"name": "Twitter"})
    platform_ids = dict(Platform.objects.values_list("slug", "pk"))
    reader = READERS["twitter-io"][0]
    with few_collections():
        started = time.perf_counter()
        posts = sum(len(batch.posts) for batch in services._batches(reader([folder]), platform_ids))
        reading = posts / (time.perf_counter() - started)
        batches, kept = [], 0
        for batch in services._batches(reader([folder]), platform_ids):
            batches.append(batch)
            kept += len(batch.posts)
            if kept >= store_rows:
                break
    services._batches = lambda records, ids: iter(batches)  # the reader's work is done already
    run = services.import_run_queue(dataset_name="bench", format="twitter-io", paths=[], user=None, enqueue=False)
    started = time.perf_counter()
    run = services.import_run_execute(run=run, records=[])
    storing = kept / (time.perf_counter() - started)
    print(json.dumps({"reading": reading, "storing": storing, "stored": kept, "status": run.status}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated tweet counts")
    parser.add_argument("--accounts", type=int, default=5_000)
    parser.add_argument("--halves", action="store_true",
                        help="also time reading alone (every row) and storing alone (up to --store-rows posts read "
                             "beforehand), to show which half bounds the import")
    parser.add_argument("--store-rows", type=int, default=200_000)
    parser.add_argument("--child-import", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-halves", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_import:
        child_import(args.child_import)
        return
    if args.child_halves:
        child_halves(args.child_halves, args.store_rows)
        return

    from benchmarks import cnt

    cnt.ensure_installed()
    print(f"{'tweets':>10} {'ours s':>8} {'ours posts/s':>13} {'ours MiB':>9} {'toolkit s':>10} {'toolkit posts/s':>16}"
          f" {'toolkit MiB':>12} {'ratio':>6}")
    scratch = Path(__file__).resolve().parent.parent / "var"
    scratch.mkdir(exist_ok=True)
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(dir=scratch) as tmp:
            folder = Path(tmp) / "archive"
            folder.mkdir()
            write_archive(folder, size, args.accounts)
            cnt.write_messages(folder / "bench_tweets_csv_hashed.csv", Path(tmp) / "messages.csv")
            done = subprocess.run([sys.executable, __file__, "--child-import", str(folder)], capture_output=True,
                                  text=True, check=True)
            ours = json.loads(done.stdout.strip().splitlines()[-1])
            if ours["status"] != "succeeded" or ours["rejected"]:
                raise SystemExit(f"the import did not go cleanly: {ours}")
            theirs = cnt.run(Path(tmp) / "cnt.db", "preprocess", "--format", "csv", str(Path(tmp) / "messages.csv"))
            halves = None
            if args.halves:
                done = subprocess.run([sys.executable, __file__, "--child-halves", str(folder), "--store-rows",
                                       str(args.store_rows)], capture_output=True, text=True, check=True)
                halves = json.loads(done.stdout.strip().splitlines()[-1])
        ours_rate, their_rate = size / ours["seconds"], size / theirs["seconds"]
        print(f"{size:>10,} {ours['seconds']:>8.1f} {ours_rate:>13,.0f} {ours['peak_mib']:>9,.0f} {theirs['seconds']:>10.1f}"
              f" {their_rate:>16,.0f} {theirs['peak_mib']:>12,.0f} {ours_rate / their_rate:>5.2f}x", flush=True)
        if halves:
            print(f"{'':>10} halves: reading alone {halves['reading']:,.0f} posts/s, storing alone {halves['storing']:,.0f}"
                  f" posts/s (first {halves['stored']:,} posts)", flush=True)
    print("targets: ≥ 50,000 posts/s end to end and ≥ 2x the toolkit's preprocess; memory flat as the file grows")


if __name__ == "__main__":
    main()
