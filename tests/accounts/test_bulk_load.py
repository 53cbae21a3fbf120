"""The bulk loader's referential integrity: checked set-based for a batch, never given up."""

from datetime import UTC, datetime

import psycopg
import pytest
from django.db import connection, transaction

from accounts import services
from accounts.importers import load
from accounts.importers.records import AccountRecord, PostRecord
from accounts.models import Account, Dataset, ImportRun, Platform, Post

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
    info = connection.connection.info
    with psycopg.connect(host=info.host, port=info.port, dbname=info.dbname, user=info.user,
                         password=info.password, autocommit=True) as other:
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
        # Committed: the posts are there, and an original a later batch reposts is locked the same way.
        first = Post.objects.get(external_id="p1")
        with transaction.atomic():
            load.posts_load(rows=_rows(platform, ("p3", "bob", "p1")), dataset_id=dataset.pk)
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("DELETE FROM accounts_post WHERE id = %s", [first.pk])
    assert Post.objects.get(external_id="p3").repost_of == first
    assert set(dataset.posts.values_list("external_id", flat=True)) == {"p1", "p2", "p3"}


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
