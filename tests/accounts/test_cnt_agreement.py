"""The content signals agree with coordination-network-toolkit (co_tweet, co_similar_tweet, co_link,
co_retweet) on the same synthetic information-operations archive, except where the difference is the
toolkit's documented bug: an empty URL field becomes the "link" ''."""

from __future__ import annotations

import sqlite3

import pytest

from accounts.coordination import signals as S
from accounts.demo.io_archive import write_io_archive
from accounts.models import Account
from accounts.services import import_paths
from benchmarks import cnt

pytestmark = pytest.mark.django_db
WINDOW = 60


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    folder = tmp_path_factory.mktemp("io") / "archive"
    groups = write_io_archive(folder, tweets=4000, accounts=250, seed=5, days=3)
    database = folder.parent / "toolkit.db"
    messages = folder.parent / "messages.csv"
    cnt.write_messages(folder / "synthetic_tweets_csv_hashed.csv", messages)
    cnt.run(database, "preprocess", "--format", "csv", str(messages))
    return folder, groups, database


def _toolkit(database, network: str, *extra: str) -> set[tuple[str, str]]:
    cnt.run(database, "compute", network, "--time_window", str(WINDOW), "--min_edge_weight", "1", "--n_cpus", "2",
            *extra)
    return cnt.network(database, network)


def _ours(edges: list[S.Edge]) -> set[tuple[str, str]]:
    external = dict(Account.objects.values_list("pk", "external_id"))
    return {tuple(sorted((external[e.a], external[e.b]))) for e in edges}


@pytest.fixture
def params(archive):
    folder, _, _ = archive
    run = import_paths(dataset_name="agreement", format="twitter-io", paths=[folder], user=None)
    assert run.status == "succeeded" and run.rejected_count == 0
    # The toolkit's settings: no minimum text length, no minimum word count, no cap on shared keys.
    return S.Params(dataset_id=run.dataset_id, window=WINDOW, min_text_chars=0, similar_text_min_words=1,
                    max_key_posts=10**9)


def test_co_text_equals_co_tweet(archive, params):
    ours = _ours(S.co_text(params))
    assert ours and ours == _toolkit(archive[2], "co_tweet")


def test_co_similar_text_equals_co_similar_tweet(archive, params):
    similar = S.co_similar_text(params)
    theirs = _toolkit(archive[2], "co_similar_tweet", "--similarity_threshold", "0.8")
    assert similar and _ours(similar) == theirs
    # Exact copies are near copies too; the altered copies (one word changed) add post pairs.
    assert sum(e.weight for e in similar) > sum(e.weight for e in S.co_text(params))


def test_co_repost_equals_co_retweet(archive, params):
    ours = _ours(S.co_repost(params))
    assert ours and ours == _toolkit(archive[2], "co_retweet")


def test_co_link_equals_co_link_without_the_empty_url_bug(archive, params):
    database = archive[2]
    with_bug = _toolkit(database, "co_link")
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*) FROM message_url WHERE url = ''").fetchone()[0] > 0
        db.execute("DELETE FROM message_url WHERE url = ''")
    fixed = _toolkit(database, "co_link")
    ours = _ours(S.co_link(params))
    assert ours and ours == fixed
    assert fixed < with_bug  # the bug links accounts that shared no link at all
