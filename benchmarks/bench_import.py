"""Import throughput for the information-operations CSV layout.

    .venv/bin/python benchmarks/bench_import.py [--tweets N] [--accounts N]

Writes N synthetic tweets (users CSV + tweets CSV) to a temporary folder, imports
them into a fresh dataset of the test database's server, and prints posts per
second and peak memory. Figures, never assertions: these machines are shared.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "investigator.settings")
os.environ.setdefault("INVESTIGATOR_DB_NAME", "investigator_bench")

TWEET_COLUMNS = [
    "tweetid", "userid", "user_display_name", "user_screen_name", "user_reported_location", "user_profile_description",
    "user_profile_url", "follower_count", "following_count", "account_creation_date", "account_language",
    "tweet_language", "tweet_text", "tweet_time", "tweet_client_name", "in_reply_to_userid", "in_reply_to_tweetid",
    "quoted_tweet_tweetid", "is_retweet", "retweet_userid", "retweet_tweetid", "latitude", "longitude", "quote_count",
    "reply_count", "like_count", "retweet_count", "hashtags", "urls", "user_mentions", "poll_choices",
]


def write_archive(folder: Path, tweets: int, accounts: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    start = datetime(2018, 1, 1, tzinfo=UTC)
    with (folder / "bench_tweets_csv_hashed.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(TWEET_COLUMNS)
        for n in range(tweets):
            user = rng.randrange(accounts)
            when = start + timedelta(seconds=rng.randrange(365 * 86400))
            tags = rng.sample(["maga", "trump", "news", "vote", "usa", "resist"], k=rng.randrange(3))
            writer.writerow([
                10**18 + n, f"u{user:06d}", f"User {user}", f"user_{user}", "", "", "", rng.randrange(5000), 100,
                "2016-01-01", "en", "en", f"tweet {n} " + " ".join(f"#{t}" for t in tags), when.strftime("%Y-%m-%d %H:%M"),
                "Twitter Web Client", "", "", "", "False", "", "", "", "", 0, 0, rng.randrange(50), rng.randrange(20),
                "[" + ", ".join(tags) + "]", "[]" if rng.random() < 0.7 else f"['https://example.com/{n % 500}']", "[]", "",
            ])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tweets", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=2_000)
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command

    from accounts.services import import_paths

    call_command("migrate", verbosity=0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        write_archive(folder, args.tweets, args.accounts)
        written = time.perf_counter() - started
        started = time.perf_counter()
        run = import_paths(dataset_name=f"bench-{int(time.time())}", format="twitter-io", paths=[folder], user=None)
        seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"tweets written: {args.tweets:,} in {written:.1f} s")
    print(f"import: {run.created_count:,} created, {run.rejected_count} rejected in {seconds:.1f} s")
    print(f"throughput: {args.tweets / seconds:,.0f} posts/s (target ≥ 50,000 posts/s)")
    print(f"peak memory of this process: {peak_mib:,.0f} MiB")


if __name__ == "__main__":
    main()
