"""The bulk loader: referential integrity checked set-based per batch (never given up), and posts stored by
several connections at once exactly as by one."""

from datetime import UTC, datetime

import psycopg
import pytest
from django.db import connection, transaction

from accounts import services
from accounts.importers import load
from accounts.importers.records import AccountRecord, PostRecord
from accounts.models import Account, Dataset, ImportRun, Platform, Post
from tests.connections import another_connection

WHEN = datetime(2020, 3, 1, tzinfo=UTC)


def _accounts(run: ImportRun, platform: Platform, *handles: str) -> None:
    services.accounts_upsert(run=run, records=[AccountRecord(platform="twitter", external_id=h, handle=h) for h in handles],
                             platforms={"twitter": platform}, rejections=[])


def _rows(platform: Platform, *posts: tuple[str, str, str]) -> list[tuple]:
    """(post id, account id, original's id) as staging rows."""
    records = [PostRecord(platform="twitter", external_id=post, account_external_id=account, posted_at=WHEN,
                          text=f"post {post}", repost_of_external_id=original, post_type="retweet" if original else "")
               for post, account, original in posts]
    return [services._post_row(seq, record, {"twitter": platform.pk}) for seq, record in enumerate(records)]


def _setup() -> tuple[Platform, Dataset, ImportRun]:
    platform, _ = Platform.objects.get_or_create(slug="twitter", defaults={"name": "Twitter"})
    dataset = Dataset.objects.create(name="bulk")
    return platform, dataset, ImportRun.objects.create(dataset=dataset, format="jsonl")


@pytest.mark.django_db(transaction=True)
def test_an_account_cannot_be_deleted_under_a_batch_that_points_at_it():
    """A batch locks the rows its posts point at until it commits, as the per-row checks it replaces would:
    a concurrent delete of an account waits instead of leaving the batch's posts pointing at nothing."""
    platform, dataset, run = _setup()
    _accounts(run, platform, "alice", "bob")
    alice = Account.objects.get(external_id="alice")
    with another_connection(autocommit=True) as other:
        other.execute("SET lock_timeout = '300ms'")
        with transaction.atomic():
            created, _, orphans = load.posts_load(rows=_rows(platform, ("p1", "alice", ""), ("p2", "bob", "p1")),
                                                  dataset_id=dataset.pk)
            assert (created, orphans) == (2, [])
            with connection.cursor() as cursor:
                cursor.execute("SHOW session_replication_role")
                assert cursor.fetchone()[0] == "origin"  # the caller's next statements run every trigger
            with pytest.raises(psycopg.errors.LockNotAvailable), other.transaction():
                other.execute("DELETE FROM accounts_account_datasets WHERE account_id = %s", [alice.pk])
                other.execute("DELETE FROM accounts_account WHERE id = %s", [alice.pk])
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("DELETE FROM accounts_dataset WHERE id = %s", [dataset.pk])
        # Committed. An original a later batch reposts is locked the same way, and so is a post stored
        # before that a batch links to another dataset.
        first = Post.objects.get(external_id="p1")
        second_dataset = Dataset.objects.create(name="bulk 2")

        def delete_p1() -> None:
            with other.transaction():
                other.execute("DELETE FROM accounts_post_datasets WHERE post_id = %s", [first.pk])
                other.execute("UPDATE accounts_post SET repost_of_id = NULL WHERE repost_of_id = %s", [first.pk])
                other.execute("DELETE FROM accounts_post WHERE id = %s", [first.pk])

        for rows, dataset_id in ((_rows(platform, ("p3", "bob", "p1")), dataset.pk),
                                 (_rows(platform, ("p1", "alice", "")), second_dataset.pk)):
            with transaction.atomic():
                load.posts_load(rows=rows, dataset_id=dataset_id)
                with pytest.raises(psycopg.errors.LockNotAvailable):
                    delete_p1()
    assert Post.objects.get(external_id="p3").repost_of == first
    assert set(dataset.posts.values_list("external_id", flat=True)) == {"p1", "p2", "p3"}
    assert list(second_dataset.posts.values_list("external_id", flat=True)) == ["p1"]


@pytest.mark.django_db
def test_the_tables_a_batch_writes_without_triggers_have_no_triggers_but_foreign_keys():
    """posts_load runs with session_replication_role = replica, which skips every trigger on the tables it
    writes. Only PostgreSQL's own foreign-key triggers may be there (the batch locks their rows itself); a
    trigger added to these tables must be mirrored in posts_load, or imports would silently skip it."""
    with connection.cursor() as cursor:
        cursor.execute("""SELECT tgrelid::regclass::text, tgname FROM pg_trigger
                          WHERE tgrelid IN ('accounts_post'::regclass, 'accounts_post_datasets'::regclass)
                            AND NOT tgisinternal""")
        assert cursor.fetchall() == []


@pytest.mark.django_db
def test_without_the_right_to_switch_checks_off_every_row_is_checked_as_usual():
    """A database role that may not set session_replication_role (a managed database) loads the same rows
    with PostgreSQL's own per-row checks (trying to switch them off would fail the batch)."""
    platform, dataset, run = _setup()
    _accounts(run, platform, "carol")
    with connection.cursor() as cursor:
        cursor.execute("CREATE ROLE investigator_test_loader NOSUPERUSER")  # undone with the test's transaction
        cursor.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO investigator_test_loader")
        cursor.execute("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO investigator_test_loader")
        cursor.execute("SELECT current_database()")
        cursor.execute(f'GRANT TEMPORARY ON DATABASE "{cursor.fetchone()[0]}" TO investigator_test_loader')
        cursor.execute("SET LOCAL ROLE investigator_test_loader")
        created, _, orphans = load.posts_load(rows=_rows(platform, ("p1", "carol", ""), ("p2", "nobody", "")),
                                              dataset_id=dataset.pk)
        assert created == 1 and [o[2:] for o in orphans] == [("p2", "nobody")]
        cursor.execute("RESET ROLE")
    assert list(Post.objects.values_list("external_id", flat=True)) == ["p1"]


def _archive(folder, tweets: int = 3000, accounts: int = 60) -> None:
    """An information-operations archive whose batches overlap: repeated rows, retweets of tweets before
    and after them, a few bad rows."""
    import csv
    import random

    from tests.accounts.test_csv_importers import TWEETS_HEADER

    rng = random.Random(5)
    with (folder / "op_tweets_csv_hashed.csv").open("w", newline="", encoding="utf-8") as handle:
        handle.write(TWEETS_HEADER)
        writer = csv.writer(handle)
        for n in range(tweets):
            tweet = n if rng.random() > 0.1 else rng.randrange(max(n, 1))  # a tenth repeat an earlier row
            user = tweet % accounts
            retweet = tweet % 7 == 0
            when = "yesterday" if tweet % 401 == 0 else f"2019-04-{1 + tweet % 28:02d} {tweet % 24:02d}:{tweet % 60:02d}"
            writer.writerow([
                10**18 + tweet, f"u{user}", f"User {user}", f"user_{user}", "", "", "", 10, 20, "2016-01-01", "en", "en",
                f"Post number {tweet % 50} #tag{tweet % 9} @user_{(user + 1) % accounts}", when, "Web", "", "", "",
                str(retweet), "", 10**18 + (tweet * 31) % tweets if retweet else "", "", "", 0, 1, 2, 3,
                f"[tag{tweet % 9}]", f"['https://example.com/{tweet % 40}?utm_source=x']", "", "",
            ])


def _stored() -> tuple[list[tuple], list[tuple]]:
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT p.external_id, a.external_id, p.posted_at, p.text, p.hashtags, p.mentions, p.links, o.external_id,
                   p.text_key, p.text_chars, array_agg(d.name ORDER BY d.name)
            FROM accounts_post p JOIN accounts_account a ON a.id = p.account_id
            LEFT JOIN accounts_post o ON o.id = p.repost_of_id
            JOIN accounts_post_datasets pd ON pd.post_id = p.id JOIN accounts_dataset d ON d.id = pd.dataset_id
            GROUP BY p.id, a.id, o.id ORDER BY p.external_id""")
        posts = cursor.fetchall()
        cursor.execute("SELECT file, line, reason, kept FROM accounts_importrejection ORDER BY file, line, reason")
        return posts, cursor.fetchall()


@pytest.mark.django_db(transaction=True)
def test_posts_stored_by_several_connections_are_those_one_connection_stores(tmp_path, settings, monkeypatch):
    folder = tmp_path / "io"
    folder.mkdir()
    _archive(folder)
    monkeypatch.setattr(services, "BATCH_SIZE", 250)  # a dozen batches, on three connections at once
    results = []
    for connections in (1, 3):
        settings.IMPORT_LOAD_CONNECTIONS = connections
        ticks: list[int] = []
        run = services.import_paths(dataset_name="op", format="twitter-io", paths=[folder], user=None,
                                    progress=ticks.append)
        assert sum(ticks) == run.read_count == run.progress_done  # the progress bar reaches the end
        results.append(((run.status, run.read_count, run.created_count, run.updated_count, run.rejected_count),
                        *_stored()))
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE accounts_post, accounts_account, accounts_importrun, accounts_dataset CASCADE")
    (serial_run, serial_posts, serial_rejections), (parallel_run, parallel_posts, parallel_rejections) = results
    assert serial_run[0] == "succeeded" and serial_run[2] > 2500 and serial_run[4] > 0
    assert sum(post[7] is not None for post in serial_posts) > 300  # retweets pointing at their originals
    assert parallel_run == serial_run
    assert parallel_posts == serial_posts
    assert parallel_rejections == serial_rejections


@pytest.mark.django_db(transaction=True)
def test_a_loader_that_fails_stops_the_import_and_keeps_what_was_committed(tmp_path, settings, monkeypatch):
    folder = tmp_path / "io"
    folder.mkdir()
    _archive(folder, tweets=2000)
    monkeypatch.setattr(services, "BATCH_SIZE", 200)
    settings.IMPORT_LOAD_CONNECTIONS = 2
    calls = []
    posts_load = load.posts_load

    def failing(**kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise OSError("disk full")
        return posts_load(**kwargs)

    monkeypatch.setattr(load, "posts_load", failing)
    with pytest.raises(OSError, match="disk full"):
        services.import_paths(dataset_name="op", format="twitter-io", paths=[folder], user=None)
    run = ImportRun.objects.get()
    assert run.status == "failed" and "disk full" in run.error
    stored = Post.objects.count()
    assert 0 < stored < 2000 and run.created_count >= stored  # batches before the failure (and beside it) kept
    monkeypatch.setattr(load, "posts_load", posts_load)
    again = services.import_paths(dataset_name="op", format="twitter-io", paths=[folder], user=None)
    assert again.status == "succeeded" and Post.objects.count() == stored + again.created_count


@pytest.mark.django_db
def test_extra_fields_reach_jsonb_whole_whatever_the_fast_encoder_refuses():
    """jsonb() encodes with orjson and hands what orjson refuses (an integer beyond 64 bits, a key that is not a
    string) to the standard encoder: every value is stored as the standard encoder would have it."""
    import json

    values = [{}, {"client": "Twitter Web Client", "count": "12"}, {"caption": 'é "quoted"\n\t\\ \u2028 \x1f'},
              {"huge": 2**70, "negative": -(2**65)}, {1: "a key that is not a string", "nested": {"list": [1, 2.5, None]}}]
    with connection.cursor() as cursor:
        for value in values:
            text = load.jsonb(value)
            assert json.loads(text) == json.loads(json.dumps(value))
            cursor.execute("SELECT %s::jsonb = %s::jsonb", [text, json.dumps(value)])
            assert cursor.fetchone()[0] is True
