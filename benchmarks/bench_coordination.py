"""Coordination signals against coordination-network-toolkit on the same generated archive.

    .venv/bin/python benchmarks/bench_coordination.py [--tweets 1000000] [--accounts 50000] [--window 60]

Writes an information-operations archive with planted coordination (accounts/demo/io_archive.py), imports
it into an emptied benchmark database and preprocesses it for the toolkit (neither is timed here: see
bench_import.py), then times each of our content signals and the toolkit's matching network on the same
rows, checks that the edge sets are equal, and prints seconds and ratios. Figures, never assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "investigator.settings")
from benchmarks import own_database  # noqa: E402

own_database("investigator_bench_coordination")  # bench_import empties its own

PAIRS = (("co_text", "co_tweet", ()), ("co_link", "co_link", ()), ("co_repost", "co_retweet", ()),
         ("co_similar_text", "co_similar_tweet", ("--similarity_threshold", "0.8")))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tweets", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=50_000)
    parser.add_argument("--window", type=int, default=60)
    parser.add_argument("--skip", default="", help="comma-separated signals to leave out (e.g. co_similar_text)")
    parser.add_argument("--keep", type=Path, help="a folder for the archive and the toolkit's database; a second run "
                        "with the same folder reuses them and the imported rows instead of making them again")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command

    from accounts.coordination import signals as S
    from accounts.models import Account, Dataset
    from benchmarks import cnt

    cnt.ensure_installed()
    call_command("migrate", verbosity=0)
    with tempfile.TemporaryDirectory(dir=ROOT / "var") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        preprocessed = work / "toolkit-preprocessed.db"
        marker = work / "imported.json"
        wanted = {"tweets": args.tweets, "accounts": args.accounts, "database": os.environ["INVESTIGATOR_DB_NAME"]}
        kept = json.loads(marker.read_text()) if args.keep and marker.exists() and preprocessed.exists() else {}
        dataset = Dataset.objects.filter(pk=kept.get("dataset"), name="bench").first()
        if dataset and {k: kept.get(k) for k in wanted} == wanted and dataset.posts.count() == kept.get("posts"):
            print(f"reusing {work} and the imported dataset", flush=True)
        else:
            marker.unlink(missing_ok=True)
            dataset = prepare(work, preprocessed, args)
            marker.write_text(json.dumps({**wanted, "dataset": dataset.pk, "posts": dataset.posts.count()}))
        # The toolkit indexes its tables on first use and keeps the indexes: every run starts from a fresh copy.
        database = work / "toolkit.db"
        shutil.copyfile(preprocessed, database)

        params = S.Params(dataset_id=dataset.pk, window=args.window, min_text_chars=0, similar_text_min_words=1,
                          max_key_posts=10**9)
        external = dict(Account.objects.values_list("pk", "external_id"))
        skip = set(filter(None, args.skip.split(",")))
        print(f"\n{'signal':<18} {'ours s':>8} {'toolkit s':>10} {'ratio':>7} {'edges':>9}  same edges", flush=True)
        totals = {"ours": 0.0, "theirs": 0.0}
        for ours_name, their_name, extra in PAIRS:
            if ours_name in skip:
                continue
            started = time.perf_counter()
            edges = S.SIGNALS[ours_name](params)
            ours_seconds = time.perf_counter() - started
            theirs = cnt.run(database, "compute", their_name, "--time_window", str(args.window), "--min_edge_weight", "1",
                             "--n_cpus", "2", *extra)
            ours_set = {tuple(sorted((external[e.a], external[e.b]))) for e in edges}
            same = ours_set == cnt.network(database, their_name)
            if ours_name != "co_similar_text":
                totals["ours"] += ours_seconds
                totals["theirs"] += theirs["seconds"]
            print(f"{ours_name:<18} {ours_seconds:>8.1f} {theirs['seconds']:>10.1f} {theirs['seconds'] / ours_seconds:>6.1f}x"
                  f" {len(ours_set):>9,}  {'yes' if same else 'NO'}", flush=True)
        if totals["ours"]:
            print(f"{'text+link+repost':<18} {totals['ours']:>8.1f} {totals['theirs']:>10.1f}"
                  f" {totals['theirs'] / totals['ours']:>6.1f}x")
        print("targets: co-text + co-link + co-repost ≥ 3x faster, co-similar-text ≥ 10x faster, equal edge sets")


def prepare(work: Path, database: Path, args: argparse.Namespace):
    """Writes the archive, imports it into the emptied benchmark database and preprocesses it for the toolkit."""
    from django.db import connection

    from accounts.demo.io_archive import write_io_archive
    from accounts.services import import_paths
    from benchmarks import cnt

    folder = work / "archive"
    started = time.perf_counter()
    write_io_archive(folder, tweets=args.tweets, accounts=args.accounts, seed=3)
    print(f"archive: {args.tweets:,} tweets by {args.accounts:,} accounts written in {time.perf_counter() - started:.0f} s",
          flush=True)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE accounts_post, accounts_account, accounts_importrun, accounts_dataset CASCADE")
    started = time.perf_counter()
    run = import_paths(dataset_name="bench", format="twitter-io", paths=[folder], user=None)
    print(f"imported in {time.perf_counter() - started:.0f} s", flush=True)
    with connection.cursor() as cursor:  # what autovacuum does soon after a bulk import: hint bits, visibility map
        cursor.execute("VACUUM ANALYZE")
    database.unlink(missing_ok=True)
    cnt.write_messages(folder / "synthetic_tweets_csv_hashed.csv", work / "messages.csv")
    prep = cnt.run(database, "preprocess", "--format", "csv", str(work / "messages.csv"))
    print(f"toolkit preprocess: {prep['seconds']:.0f} s", flush=True)
    with sqlite3.connect(database) as db:  # its empty-URL bug would link everyone; compare like with like
        db.execute("DELETE FROM message_url WHERE url = ''")
    return run.dataset


if __name__ == "__main__":
    main()
