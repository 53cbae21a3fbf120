"""Coordination signals on hand-built cases (each positive and negative), media clusters without chaining,
clusters on the demo campaign against its ground truth, and the command with its exports."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from django.core.management import call_command
from django.db import connection

from accounts.coordination import signals as S
from accounts.coordination.services import detection_run_create, detection_run_execute, pair_weights
from accounts.models import Account, Dataset, DetectionRun, Platform, Post, PostMedia
from media_analysis.models import HashState, KnownSource, MediaAsset, MediaCluster, MediaClusterMember
from media_analysis.services import _CLUSTERS_LOCK_KEY, media_clusters_rebuild
from tests.connections import another_connection

pytestmark = pytest.mark.django_db
T0 = datetime(2020, 3, 1, 12, 0, tzinfo=UTC)
_ids = count(1)


@pytest.fixture
def dataset():
    return Dataset.objects.create(name="hand-built")


def account(dataset, handle, created=None, **extra):
    platform, _ = Platform.objects.get_or_create(slug="twitter", defaults={"name": "Twitter"})
    made = Account.objects.create(platform=platform, external_id=f"id-{handle}", handle=handle, created_at=created,
                                  **extra)
    made.datasets.add(dataset)
    return made


def post(owner, minutes, text="", media=(), **fields):
    made = Post.objects.create(platform=owner.platform, external_id=f"p{next(_ids)}", account=owner,
                               posted_at=T0 + timedelta(minutes=minutes), text=text, **fields)
    made.datasets.add(*owner.datasets.all())
    for position, asset in enumerate(media):
        PostMedia.objects.create(post=made, media=asset, position=position)
    return made


def picture(bits: str) -> MediaAsset:
    """A hashed picture whose every signature derives from one 64-bit pHash (mirrors far from everything)."""
    from dataclasses import asdict

    from media_analysis.matching import SCALES, Signature

    n = next(_ids)
    far = "".join("1" if b == "0" else "0" for b in bits)
    signature = Signature(phash=bits, phash_flip=far, centre=(bits * 2,) * len(SCALES), centre_flip=far * 2,
                          trimmed=(bits * 2,) * len(SCALES), trimmed_flip=far * 2, pdq="0" * 256, pdq_flip="1" * 256,
                          pdq_quality=0)
    return MediaAsset.objects.create(sha256=f"{n:064x}", file=f"assets/{n}.jpg", size_bytes=1, phash=bits, dhash=bits,
                                     pdq="0" * 256, pdq_quality=0, hash_state=HashState.DONE, phash_flip=far,
                                     pdq_flip="1" * 256, centre=bits * 2, signature=asdict(signature))


def flip(bits: str, *positions: int) -> str:
    chars = list(bits)
    for p in positions:
        chars[p] = "1" if chars[p] == "0" else "0"
    return "".join(chars)


def pairs(edges, signal):
    return {(e.a, e.b) for e in edges if e.signal == signal}


def ordered(x, y):
    return (min(x.pk, y.pk), max(x.pk, y.pk))


def test_co_text_normalises_and_respects_the_window(dataset):
    a, b, c, d = (account(dataset, h) for h in ("alpha", "bravo", "charlie", "delta"))
    pa = post(a, 0, "Vote them OUT  @someone https://t.co/xyz before november")
    pb = post(b, 4, "vote them out before   november https://t.co/other")
    post(c, 180, "vote them out before november")  # hours later: not together
    post(d, 1, "ok")  # too short to mean anything
    post(d, 2, "ok")
    edges = S.co_text(S.Params(dataset_id=dataset.pk))
    assert pairs(edges, "co_text") == {ordered(a, b)}
    (edge,) = edges
    assert edge.weight == 1 and [pa.pk, pb.pk] in [edge.pairs[0], edge.pairs[0][::-1]]
    assert edge.detail["median_gap_seconds"] == 240


def test_co_similar_text_needs_jaccard_over_threshold(dataset):
    a, b, c = (account(dataset, h) for h in ("alpha", "bravo", "charlie"))
    post(a, 0, "the swamp got deeper again tonight folks share now")
    post(b, 3, "the swamp got deeper again tonight friends share now")  # 8 of 10 distinct words: 0.8
    post(c, 5, "the weather got nicer again tonight friends go out")  # far below 0.8
    edges = S.co_similar_text(S.Params(dataset_id=dataset.pk))
    assert pairs(edges, "co_similar_text") == {ordered(a, b)}
    assert not S.co_similar_text(S.Params(dataset_id=dataset.pk, similar_text_threshold=0.9))


def test_co_similar_text_counts_each_post_pair_once_and_checks_in_blocks(dataset, monkeypatch):
    a, b, c = (account(dataset, h) for h in ("alpha", "bravo", "charlie"))
    text = "rare1 rare2 rare3 rare4 rare5 and the usual filler words here"
    first = [post(a, minute, text) for minute in (0, 1)]
    second = [post(b, minute, text.replace("usual", "USUAL")) for minute in (2, 3)]  # case is not a difference
    post(c, 2, "rare1 rare2 something else entirely that shares little with them")
    edges = S.co_similar_text(S.Params(dataset_id=dataset.pk))
    assert pairs(edges, "co_similar_text") == {ordered(a, b)}
    (edge,) = edges
    # 2 × 2 post pairs, each once although the posts share every prefix word; closest in time first
    assert edge.weight == 4 and len(edge.pairs) == 4
    assert edge.pairs[0] in ([first[1].pk, second[0].pk], [second[0].pk, first[1].pk])
    assert edge.detail["median_gap_seconds"] == 120
    monkeypatch.setattr(S, "VERIFY_BLOCK", 1)
    (again,) = S.co_similar_text(S.Params(dataset_id=dataset.pk))
    assert again.pairs == edge.pairs and again.weight == edge.weight


def test_word_sets_read_joined_texts():
    joined = "\x00".join(["Hello https://t.co/x\u00e9 @someone world", "STRASSE straße", "https://only.link", "x" * 5000])
    text, word, size = S.word_sets(joined, 4)
    sets = [set(word[text == i].tolist()) for i in range(4)]
    assert len(sets[0]) == 2 and len(sets[1]) == 1 and sets[2] == set() and len(sets[3]) == 1
    assert size == 5  # the end marker and four words
    with pytest.raises(ValueError, match="count"):
        S.word_sets(joined, 5)


def test_co_link_never_joins_on_empty_links(dataset):
    a, b, c = (account(dataset, h) for h in ("alpha", "bravo", "charlie"))
    post(a, 0, links=["https://example.com/story"])
    post(b, 2, links=["https://example.com/story"])
    post(c, 1, links=[])
    post(a, 30, links=[])
    edges = S.co_link(S.Params(dataset_id=dataset.pk))
    assert pairs(edges, "co_link") == {ordered(a, b)}
    assert not S.co_link(S.Params(dataset_id=dataset.pk, window=60))  # two minutes apart is outside a minute


def test_co_repost_and_hashtag_sequence(dataset):
    a, b, c = (account(dataset, h) for h in ("alpha", "bravo", "charlie"))
    post(a, 0, repost_of_external_id="orig-1", hashtags=["maga", "vote"])
    post(b, 5, repost_of_external_id="orig-1", hashtags=["vote", "maga"])  # same set, other order
    post(c, 6, repost_of_external_id="orig-2", hashtags=["vote"])  # another original; a single tag
    params = S.Params(dataset_id=dataset.pk)
    assert pairs(S.co_repost(params), "co_repost") == {ordered(a, b)}
    assert pairs(S.co_hashtag_sequence(params), "co_hashtag_sequence") == {ordered(a, b)}


def test_media_clusters_do_not_chain(dataset):
    base = "0" * 64
    first = picture(base)
    near = picture(flip(base, *range(8)))  # 8 bits from the first
    chained = picture(flip(base, *range(16)))  # 8 from `near`, 16 from the first
    a, b, c = (account(dataset, h) for h in ("alpha", "bravo", "charlie"))
    post(a, 0, media=[first])
    post(b, 1, media=[near])
    post(c, 2, media=[chained])
    result = media_clusters_rebuild(max_distance=10)
    assert result == {"pictures": 3, "clusters": 2, "with_copies": 1, "pictures_read_for_keypoints": 0}
    assert first.cluster_membership.cluster == near.cluster_membership.cluster
    assert chained.cluster_membership.cluster != first.cluster_membership.cluster
    cluster = first.cluster_membership.cluster
    assert cluster.centre == first and cluster.account_count == 2 and cluster.first_posted_at == T0
    assert (cluster.size, cluster.post_count) == (2, 2)
    assert cluster.last_posted_at == Post.objects.get(media=near).posted_at > T0
    # A second build replaces the first: the same groups, no rows left over.
    assert media_clusters_rebuild(max_distance=10) == result
    assert MediaCluster.objects.count() == 2 and MediaClusterMember.objects.count() == 3


def _copies(dataset):
    """Two accounts posting copies of one picture, a third posting another: two clusters, three members."""
    base = "0101" * 16
    a, b, c = (account(dataset, h) for h in ("alpha", "bravo", "charlie"))
    post(a, 0, media=[picture(base)])
    post(b, 1, media=[picture(flip(base, 2, 5))])
    post(c, 2, media=[picture("1" * 64)])


@pytest.mark.django_db(transaction=True)
def test_media_clusters_build_keeps_no_transaction_open_while_it_groups(dataset):
    """Grouping a million pictures takes minutes; a transaction open all that time would hold back vacuum for
    the whole database. Between its batches the build's connection is idle, outside any transaction."""
    _copies(dataset)
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    seen = []
    with another_connection(autocommit=True) as other:
        def look(done, total):
            seen.append(other.execute("SELECT state, backend_xmin FROM pg_stat_activity WHERE pid = %s",
                                      [pid]).fetchone())

        assert media_clusters_rebuild(progress=look) == {"pictures": 3, "clusters": 2, "with_copies": 1,
                                                         "pictures_read_for_keypoints": 0}
    assert seen == [("idle", None)]


@pytest.mark.django_db(transaction=True)
def test_media_cluster_builds_wait_for_each_other(dataset):
    """Each build replaces every cluster: two at once would both store theirs (or fail on the second's centres).
    A build that finds another running waits for it, says so, and then groups the pictures as they are."""
    _copies(dataset)
    events, errors = [], []
    first_grouping, second_waiting, go_on = threading.Event(), threading.Event(), threading.Event()

    def build(name, **callbacks):
        try:
            media_clusters_rebuild(**callbacks)
            events.append(f"{name} done")
        except Exception as exc:  # reported below, with the thread's name
            errors.append((name, exc))
        finally:
            connection.close()

    def first_progress(done, total):
        events.append("first grouping")
        first_grouping.set()
        go_on.wait(timeout=20)

    def second_waits():
        events.append("second waiting")
        second_waiting.set()

    first = threading.Thread(target=build, args=("first",), kwargs={"progress": first_progress})
    second = threading.Thread(target=build, args=("second",), kwargs={
        "progress": lambda done, total: events.append("second grouping"), "waiting": second_waits})
    first.start()
    assert first_grouping.wait(timeout=20)
    second.start()
    assert second_waiting.wait(timeout=20), events
    go_on.set()
    first.join(timeout=30)
    second.join(timeout=30)
    assert not errors
    assert events == ["first grouping", "second waiting", "first done", "second grouping", "second done"]
    assert MediaCluster.objects.count() == 2 and MediaClusterMember.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_detection_waiting_for_another_grouping_of_pictures_says_so(dataset):
    _copies(dataset)
    run = detection_run_create(dataset=dataset, signals=["co_image"], enqueue=False)
    outcome = []
    with another_connection(autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [_CLUSTERS_LOCK_KEY])  # another process's build

        def detect():
            try:
                outcome.append(detection_run_execute(run=run).status)
            finally:
                connection.close()

        worker = threading.Thread(target=detect)
        worker.start()
        deadline = time.monotonic() + 20
        while not DetectionRun.objects.get(pk=run.pk).stage.startswith("Waiting") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert DetectionRun.objects.get(pk=run.pk).stage == "Waiting for another detection's grouping of pictures to finish"
        assert not MediaCluster.objects.exists()
        other.execute("SELECT pg_advisory_unlock(%s)", [_CLUSTERS_LOCK_KEY])
        worker.join(timeout=30)
    assert outcome == ["succeeded"]
    assert MediaCluster.objects.count() == 2
    alpha, bravo = Account.objects.get(handle="alpha"), Account.objects.get(handle="bravo")
    assert set(run.edges.filter(signal="co_image").values_list("account_a", "account_b")) == {ordered(alpha, bravo)}


def test_co_image_within_window_and_reuse_weeks_apart(dataset):
    base = "01" * 32
    copies = [picture(flip(base, i, i + 1)) for i in range(0, 6, 2)]
    unrelated = picture("1" * 64)
    a, b, c, d = (account(dataset, h) for h in ("alpha", "bravo", "charlie", "delta"))
    post(a, 0, media=[copies[0]])
    post(b, 7, media=[copies[1]])
    post(c, 3 * 7 * 24 * 60, media=[copies[2]])  # three weeks later
    post(d, 1, media=[unrelated])
    media_clusters_rebuild()
    params = S.Params(dataset_id=dataset.pk)
    assert pairs(S.co_image(params), "co_image") == {ordered(a, b)}
    assert pairs(S.co_image_reuse(params), "co_image_reuse") == {ordered(a, c), ordered(b, c)}


def test_shared_avatar_and_known_source(dataset):
    base = "0011" * 16
    stolen = picture(base)
    KnownSource.objects.create(asset=stolen, label="stock portrait")
    a = account(dataset, "alpha", profile_image=picture(flip(base, 3)))
    b = account(dataset, "bravo", profile_image=picture(flip(base, 9)))
    c = account(dataset, "charlie", profile_image=picture("1" * 64))
    media_clusters_rebuild()
    params = S.Params(dataset_id=dataset.pk)
    edges = S.shared_avatar(params)
    assert pairs(edges, "shared_avatar") == {ordered(a, b)} and edges[0].detail["known_source"]
    assert S.known_source_avatars(params) == {a.pk: "stock portrait", b.pk: "stock portrait"}
    assert c.pk not in S.known_source_avatars(params)


def test_creation_burst_and_dormancy(dataset):
    day = datetime(2018, 8, 3, 9, tzinfo=UTC)
    block = [account(dataset, f"block{i}", created=day + timedelta(hours=2 * i)) for i in range(3)]
    lone = account(dataset, "lone", created=day + timedelta(days=40))
    pair = [account(dataset, f"pair{i}", created=day + timedelta(days=200, hours=i)) for i in range(2)]
    for member in block:
        post(member, 0)
        post(member, 60 * 24 * 20)  # last post: 2020-03-21
    for other in (lone, *pair):
        post(other, 0)
        post(other, 60 * 24 * 90)
    edges = S.creation_burst(S.Params(dataset_id=dataset.pk))
    created = pairs(edges, "creation_burst")
    assert created == {ordered(x, y) for i, x in enumerate(block) for y in block[i + 1:]}  # two are not a burst
    assert {e.detail["created"] for e in edges if e.signal == "creation_burst"} == {"2018-08-03"}
    assert pairs(edges, "dormancy") == created
    assert {e.detail["silent_since"] for e in edges if e.signal == "dormancy"} == {"2020-03-21"}


def test_look_alike_names(dataset):
    family = [account(dataset, h) for h in ("dumpchump", "dump.chump2020", "the_dumpchump")]
    other = account(dataset, "anna.smith12")
    edges = S.look_alike_names(S.Params(dataset_id=dataset.pk))
    assert pairs(edges, "look_alike_names") == {ordered(x, y) for i, x in enumerate(family) for y in family[i + 1:]}
    assert {e.detail["stem"] for e in edges} == {"dumpchump"}
    assert other.pk not in {a for e in edges for a in (e.a, e.b)}
    # Blocks of rows (memory) give the same pairs; `among` keeps to the accounts given.
    blocked = S.look_alike_names(S.Params(dataset_id=dataset.pk), block=1)
    assert pairs(blocked, "look_alike_names") == pairs(edges, "look_alike_names")
    among = S.look_alike_names(S.Params(dataset_id=dataset.pk), among={family[0].pk, family[1].pk, other.pk})
    assert pairs(among, "look_alike_names") == {ordered(family[0], family[1])}


def test_synchronised_activity(dataset):
    a, b, c = (account(dataset, h) for h in ("alpha", "bravo", "charlie"))
    for hour in (0, 5, 26, 50, 77, 101, 130):
        post(a, hour * 60)
        post(b, hour * 60 + 10)
    for hour in (3, 14, 40, 66, 90, 115, 140):
        post(c, hour * 60)
    edges = S.synchronised_activity(S.Params(dataset_id=dataset.pk))
    assert pairs(edges, "synchronised_activity") == {ordered(a, b)}
    assert pairs(S.synchronised_activity(S.Params(dataset_id=dataset.pk), block=1), "synchronised_activity") == {ordered(a, b)}
    assert S.synchronised_activity(S.Params(dataset_id=dataset.pk), among={a.pk, c.pk}) == []


def test_synchronised_activity_equals_dense_pearson_correlation(dataset):
    import random

    import numpy as np

    rng = random.Random(7)
    hours: dict = {}
    leaders = [rng.sample(range(300), 12) for _ in range(3)]
    for n in range(9):  # three groups: a leader's hours, copied with a few changes, and unrelated accounts
        own = set(leaders[n % 3]) if n < 6 else set(rng.sample(range(300), 12))
        own ^= set(rng.sample(range(300), n % 4))
        hours[account(dataset, f"acct{n}")] = sorted(own)
    for owner, active in hours.items():
        for hour in active:
            for _ in range(1 + hour % 2):
                post(owner, hour * 60)
    edges = S.synchronised_activity(S.Params(dataset_id=dataset.pk))
    found = {(e.a, e.b): e.detail["correlation"] for e in edges}

    owners = sorted(hours, key=lambda o: o.pk)
    bins = sorted({h for o in owners for h in hours[o]})
    matrix = np.array([[(1 + h % 2) if h in hours[o] else 0 for h in bins] for o in owners], dtype=float)
    correlation = np.corrcoef(matrix)
    shared = (matrix > 0).astype(int) @ (matrix > 0).astype(int).T
    expected = {(owners[i].pk, owners[j].pk): round(float(correlation[i, j]), 3)
                for i in range(len(owners)) for j in range(i + 1, len(owners))
                if correlation[i, j] >= 0.6 and shared[i, j] >= 4}
    assert expected and found == expected
    assert {(e.a, e.b) for e in S.synchronised_activity(S.Params(dataset_id=dataset.pk), block=2)} == set(expected)


def test_edges_are_stored_in_batches_once_per_pair_and_signal(dataset):
    from accounts.coordination.services import _edges_store
    from accounts.models import CoordinationEdge

    people = [account(dataset, f"p{n}") for n in range(6)]
    run = detection_run_create(dataset=dataset, signals=["co_text"], enqueue=False)
    edges = [S.Edge("co_text", people[n].pk, people[n + 1].pk, 2.0, [[1, 2]]) for n in range(5)]
    edges.append(S.Edge("co_text", people[1].pk, people[0].pk, 9.0))  # the same pair again: the first one stays
    _edges_store(run, edges, batch=2)
    stored = CoordinationEdge.objects.filter(detection_run=run)
    assert stored.count() == 5
    assert sorted(stored.values_list("weight", flat=True)) == [2.0] * 5
    assert all(e.evidence == [[1, 2]] and e.parameters == {"window": 600} for e in stored)


def test_large_groups_are_linked_linearly_not_as_cliques():
    small = S._group_pairs([5, 1, 3])
    assert sorted(small) == [(1, 3), (1, 5), (3, 5)]
    big = list(range(1000))
    linked = S._group_pairs(big)
    assert len(linked) < 10 * len(big) and len(set(linked)) == len(linked)
    assert {a for pair in linked for a in pair} == set(big)  # nobody left out


def test_detection_looks_for_supporting_signals_only_among_content_linked_accounts(dataset):
    """Over a whole population, name stems and busy creation days grow with its square; they only ever
    strengthen pairs that content links, so detection looks for them there only."""
    twins = [account(dataset, h, created=datetime(2018, 8, 3, 9, tzinfo=UTC))
             for h in ("dumpchump1", "dumpchump2", "dumpchump3")]
    strangers = [account(dataset, h, created=datetime(2018, 8, 3, 10, tzinfo=UTC))
                 for h in ("annasmith1", "annasmith2", "annasmith3")]
    for i, member in enumerate(twins):
        post(member, i, text="Everyone must see this video right now before it is deleted")
        post(member, 100 + i, text="Second identical message from the network, share it everywhere")
    for i, member in enumerate(strangers):
        post(member, 5000 + 900 * i, text=f"My own thoughts number {i} about the weather and my garden")
    run = detection_run_execute(run=detection_run_create(dataset=dataset, signals=["co_text", "look_alike_names",
                                                                                      "creation_burst"], enqueue=False))
    stored = {(e.signal, e.account_a_id, e.account_b_id) for e in run.edges.all()}
    strangers_ids = {a.pk for a in strangers}
    assert not any(a in strangers_ids or b in strangers_ids for _, a, b in stored)
    assert {s for s, _, _ in stored} == {"co_text", "look_alike_names", "creation_burst"}
    assert run.clusters.count() == 1


def test_engagement_anomalies(dataset):
    bought = account(dataset, "bought")
    steady = account(dataset, "steady")
    for i, (likes, followers) in enumerate([(10, 100), (12, 110), (9, 2500), (400, 2600), (11, 2600)]):
        post(bought, i * 60, like_count=likes, extra={"follower_count": str(followers)})
        post(steady, i * 60, like_count=10 + i, extra={"follower_count": str(100 + i)})
    flags = S.engagement_anomalies(S.Params(dataset_id=dataset.pk))
    assert set(flags) == {bought.pk}
    assert any("like burst" in f for f in flags[bought.pk]) and any("follower jump" in f for f in flags[bought.pk])


def test_weak_edges_alone_never_make_a_cluster():
    edges = [S.Edge("creation_burst", 1, 2, 1), S.Edge("look_alike_names", 1, 2, 1), S.Edge("co_text", 3, 4, 1),
             S.Edge("co_image", 5, 6, 2), S.Edge("co_link", 7, 8, 1), S.Edge("dormancy", 7, 8, 1)]
    assert pair_weights(edges, min_content_pairs=2) == {(5, 6): 2.0, (7, 8): 2.0}


def test_detection_run_rejects_unknown_signals_and_bad_windows(dataset):
    with pytest.raises(ValueError, match="unknown signals: co_vibes"):
        detection_run_create(dataset=dataset, signals=["co_text", "co_vibes"], enqueue=False)
    with pytest.raises(ValueError, match="window"):
        detection_run_create(dataset=dataset, window=-5, enqueue=False)


def _hash_everything() -> None:
    from media_analysis.services import media_hash_batch, media_hash_claim

    while ids := media_hash_claim(limit=500):
        media_hash_batch(asset_ids=ids)


@pytest.fixture
def demo_detection(small_demo, settings, tmp_path):
    from accounts.services import import_paths

    settings.MEDIA_ROOT = str(tmp_path / "media")
    outdir, truth = small_demo
    import_paths(dataset_name="demo", format="instaloader", paths=[outdir], user=None)
    call_command("import_known_sources", str(outdir / "known_sources"), label="stock portrait")
    _hash_everything()
    run = detection_run_execute(run=detection_run_create(dataset=Dataset.objects.get(name="demo"), enqueue=False))
    return run, truth


def test_demo_campaign_clusters_match_ground_truth(demo_detection):
    run, truth = demo_detection
    assert run.status == "succeeded"
    group_of = {a["username"]: g["name"] for g in truth["groups"] for a in g["accounts"]}
    clusters = [(c, {a.handle for a in c.members.all()}) for c in run.clusters.all()]
    # Each cluster is matched to the group most of its members belong to.
    true_positive = clustered = 0
    found_by_group: dict[str, set[str]] = {}
    for _, members in clusters:
        groups = [group_of.get(h) for h in members]
        best = max(set(groups), key=groups.count)
        clustered += len(members)
        true_positive += groups.count(best) if best else 0
        if best:
            found_by_group.setdefault(best, set()).update(h for h in members if group_of.get(h) == best)
    recall = sum(len(v) for v in found_by_group.values()) / len(group_of)
    precision = true_positive / clustered
    assert precision >= 0.9 and recall >= 0.9, (precision, recall)
    assert set(found_by_group) == {g["name"] for g in truth["groups"]}

    organic = set(truth["organic_accounts"])
    organic_clustered = {h for _, members in clusters for h in members} & organic
    assert len(organic_clustered) <= 0.01 * len(organic)

    block = truth["creation_block"]
    (block_cluster,) = [c for c, members in clusters if set(block["accounts"]) <= members]
    assert f"5 accounts created on {block['created_on']}" in block_cluster.explanation
    assert f"silent since {block['last_post'][:10]}" in block_cluster.explanation
    assert "near-identical images" in block_cluster.explanation and "stem 'dumpchump'" in block_cluster.explanation
    assert block_cluster.timeline["doubling_days"] and 20 <= block_cluster.timeline["doubling_days"] <= 90
    assert run.edges.filter(signal="co_image").exists() and run.edges.filter(signal="co_image_reuse").exists()
    stolen = [c for c, members in clusters if members & set(truth["stolen_avatar"]["accounts"])]
    assert any("known-source bank" in c.explanation for c in stolen)
    assert run.parameters["window"] == 600 and run.parameters["media"]["phash_match_distance"] == 10


def test_command_writes_json_and_networks_that_open_in_networkx_and_igraph(demo_detection, tmp_path, capsys):
    import igraph
    import networkx as nx

    run, truth = demo_detection
    out = tmp_path / "result.json"
    paths = [tmp_path / f"network.{ext}" for ext in ("graphml", "gexf", "csv")]
    call_command("detect_coordination", "--dataset", "demo", "--here", "--json", str(out),
                 *[arg for p in paths for arg in ("--export", str(p))])
    printed = capsys.readouterr().out
    assert "clusters" in printed and "'dumpchump' network" in printed
    document = json.loads(out.read_text())
    assert document["clusters"] and document["edges"] and document["parameters"]["window"] == 600
    assert all(len(pair) == 2 for edge in document["edges"] for pair in edge["post_pairs"])
    graph = nx.read_graphml(paths[0])
    assert graph.number_of_edges() > 0 and any(d.get("label") == "dumpchump" for _, d in graph.nodes(data=True))
    assert nx.read_gexf(paths[1]).number_of_nodes() == graph.number_of_nodes()
    assert igraph.Graph.Read_GraphML(str(paths[0])).ecount() == graph.number_of_edges()
    lines = paths[2].read_text().splitlines()
    assert lines[0].startswith("source,target") and len(lines) == graph.number_of_edges() + 1


def test_command_refuses_unknown_dataset_and_format(tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no dataset"):
        call_command("detect_coordination", "--dataset", "nope", "--here")
    Dataset.objects.create(name="empty")
    with pytest.raises(CommandError, match="extension"):
        call_command("detect_coordination", "--dataset", "empty", "--here", "--export", str(tmp_path / "x.png"))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("celery_worker_process", ["filesystem"], indirect=True)
def test_command_runs_the_detection_on_a_worker(celery_worker_process, capsys):
    dataset = Dataset.objects.create(name="queued")
    a, b, c = (account(dataset, h) for h in ("alpha", "bravo", "charlie"))
    for minutes in (0, 60, 120):
        for n, owner in enumerate((a, b, c)):
            post(owner, minutes + n, f"coordinated message number {minutes} for everyone", links=[f"https://x.example/{minutes}"])
    call_command("detect_coordination", "--dataset", "queued", "--signals", "co_text,co_link", "--window", "300")
    printed = capsys.readouterr().out
    assert "1 clusters (3 accounts)" in printed
    run = Dataset.objects.get(name="queued").detection_runs.get()
    assert run.status == "succeeded" and run.signals == ["co_text", "co_link"] and run.parameters["window"] == 300
    assert run.progress_done == run.progress_total
    (cluster,) = run.clusters.all()
    assert "9 identical texts posted within 5 min by 3 accounts" in cluster.explanation


def test_band_pairs_finds_exactly_the_pairs_within_the_window():
    import numpy as np

    rng = np.random.default_rng(3)
    key = rng.integers(0, 5, size=400)
    ms = rng.integers(0, 100_000, size=400)
    i, j = S.band_pairs(key, ms, 2_000)
    found = {(min(x, y), max(x, y)) for x, y in zip(i.tolist(), j.tolist(), strict=True)}
    expected = {(x, y) for x in range(400) for y in range(x + 1, 400)
                if key[x] == key[y] and abs(int(ms[x]) - int(ms[y])) <= 2_000}
    assert found == expected and len(i) == len(expected)  # each pair once, the window's edge included


def test_a_cluster_page_shows_the_reference_copy_then_the_most_altered_ones(dataset, client, cast):
    from accounts.models import Cluster, ClusterMember
    from accounts.selectors import cluster_shared_media

    base = "0110" * 16
    reference = picture(base)
    copies = [picture(flip(base, *range(bits))) for bits in (1, 1, 2, 2, 3, 4, 5, 6)]
    a, b = account(dataset, "alpha"), account(dataset, "bravo")
    post(a, 0, media=[reference])
    post(b, 1, media=copies[:4])
    post(a, 2, media=copies[4:])
    media_clusters_rebuild()
    run = DetectionRun.objects.create(dataset=dataset, status="succeeded")
    cluster = Cluster.objects.create(detection_run=run, label="alpha and bravo", size=2)
    for member in (a, b):
        ClusterMember.objects.create(cluster=cluster, account=member)
    [shared] = cluster_shared_media(cluster=cluster)
    assert shared.copies[0] == reference
    assert [m.cluster_membership.distance for m in shared.copies[1:]] == [6, 5, 4, 3, 2]
    client.force_login(cast["investigator"])
    page = client.get(f"/clusters/{cluster.pk}/").content.decode()
    assert page.count("reference copy") == 1 and "6 bits (phash)" in page
