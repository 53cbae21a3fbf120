# ruff: noqa: S608 - SQL is assembled from this module's own fragments; every value goes as a parameter
"""The coordination signals. Each turns the posts and accounts of a dataset into evidence edges
between two accounts: which signal, how strong (for post signals: the number of coordinated
post pairs) and the exact post pairs behind it.

The heavy joins run in PostgreSQL: posts are keyed (normalised text, link, repost source, hashtag
set, media cluster) and self-joined on the key within the time window, using the key's hash and the
time order, never a Python loop over pairs.
"""

from __future__ import annotations

import gc
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
from django.db import connection

from accounts.importers.csvfiles import parse_datetime

EVIDENCE_PAIRS = 25  # post pairs kept per edge, closest in time first; the weight counts them all


@dataclass
class Edge:
    signal: str
    a: int
    b: int
    weight: float
    pairs: list[list[int]] = field(default_factory=list)
    detail: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.a > self.b:
            self.a, self.b = self.b, self.a
            self.pairs = [[y, x] for x, y in self.pairs]


@dataclass(frozen=True)
class Params:
    dataset_id: int | None
    window: int = 600  # seconds between two posts that count as "together"
    long_window: int = 90 * 86400  # co-image reuse further apart than `window` but within this is reported apart
    min_text_chars: int = 12
    similar_text_threshold: float = 0.8
    similar_text_min_words: int = 4
    hashtag_min_tags: int = 2
    max_key_posts: int = 20_000  # a key (link, text, picture) in more posts than this is ignored as generic
    creation_window: int = 86400
    creation_min_accounts: int = 3
    dormancy_min_accounts: int = 3
    name_min_stem: int = 6
    name_min_score: float = 90.0
    sync_bin: int = 3600
    sync_min_posts: int = 5
    sync_min_correlation: float = 0.6
    sync_min_shared_bins: int = 4
    avatar_max_distance: int = 8
    like_burst_factor: float = 10.0


def _posts(params: Params) -> tuple[str, list]:
    """The dataset's posts, as a FROM fragment with its parameters."""
    if params.dataset_id is None:
        return "accounts_post p", []
    return ("accounts_post p JOIN accounts_post_datasets pd ON pd.post_id = p.id AND pd.dataset_id = %s",
            [params.dataset_id])


def _keyed_rows(keyed_sql: str, args: list, *, hashed: bool = False) -> np.ndarray:
    """(key, account, time in ms, post) of every keyed post as an (n, 4) int64 array. PostgreSQL packs the
    rows into a few bytea values (16 groups, so none nears bytea's 1 GB limit below ~500 million rows):
    one round trip, no Python object per row. Keys travel as 64-bit hashes: a false match needs a
    collision, about one chance in 10^7 at ten million posts. hashed: the keys are such hashes already."""
    key = "q.key::int8" if hashed else "hashtextextended(q.key::text, 0)"
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT string_agg(int8send({key}) || int8send(q.account_id::int8)
                              || int8send(floor(extract(epoch FROM q.posted_at) * 1000)::int8)
                              || int8send(q.post_id::int8), ''::bytea)
            FROM ({keyed_sql}) q GROUP BY q.post_id %% 16""", args)
        chunks = [bytes(row[0]) for row in cursor.fetchall()]
    return np.frombuffer(b"".join(chunks), dtype=">i8").reshape(-1, 4).astype(np.int64)


def band_pairs(key: np.ndarray, ms: np.ndarray, window_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of rows (i, j) with the same key and times at most window_ms apart (t_i ≤ t_j).

    Rows are sorted by (key, time); the pairs at distance d in that order are tested for every d, but only
    for rows still "open" (whose pair at distance d - 1 was within the window), so the work is the
    number of rows plus the number of pairs, whatever the key distribution."""
    order = np.lexsort((ms, key))
    key, ms = key[order], ms[order]
    found_i, found_j = [], []
    open_rows = np.arange(len(key) - 1)
    distance = 1
    while open_rows.size:
        partner = open_rows + distance
        inside = partner < len(key)
        open_rows, partner = open_rows[inside], partner[inside]
        near = (key[partner] == key[open_rows]) & (ms[partner] - ms[open_rows] <= window_ms)
        open_rows, partner = open_rows[near], partner[near]
        found_i.append(open_rows)
        found_j.append(partner)
        distance += 1
    i = np.concatenate(found_i) if found_i else np.empty(0, dtype=np.int64)
    j = np.concatenate(found_j) if found_j else np.empty(0, dtype=np.int64)
    return order[i], order[j]


def _keyed_pairs(signal: str, rows: np.ndarray, params: Params, *, long_gap: bool = False) -> list[Edge]:
    """Edges between accounts whose posts share a key within the window (or, with long_gap, beyond the
    window but within the long window). rows: (key, account, time in ms, post), as _keyed_rows gives them.

    The self-join runs in NumPy on the keyed rows (a band join over the time order), not in Python loops."""
    low, high = (params.window, params.long_window) if long_gap else (-1, params.window)
    if len(rows) < 2:
        return []
    if len(rows) > params.max_key_posts:  # else no key can be in more posts than that
        keys = np.sort(rows[:, 0])
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        generic = keys[starts][np.diff(np.r_[starts, keys.size]) > params.max_key_posts]
        if generic.size:
            rows = rows[~np.isin(rows[:, 0], generic)]
    row_key, row_account, row_ms, row_post = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    i, j = band_pairs(row_key, row_ms, high * 1000)
    account_i, account_j = row_account[i], row_account[j]
    gap = np.abs(row_ms[j] - row_ms[i])
    keep = (account_i != account_j) & (gap > low * 1000)
    i, j, account_i, account_j, gap = i[keep], j[keep], account_i[keep], account_j[keep], gap[keep]
    posts = np.sort(row_post)
    several = bool((posts[1:] == posts[:-1]).any())  # some post has several keys (links)
    return _edges_from_pairs(signal, account_i, account_j, row_post[i], row_post[j], gap, row_key[i], several=several)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """For building many small lists and objects at once (evidence pairs, edges), none in a reference cycle:
    the cyclic collector would otherwise rescan every live object again and again as they pile up (4-5x
    the time of the building itself)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@_gc_paused()
def _edges_from_pairs(signal: str, account_i: np.ndarray, account_j: np.ndarray, post_i: np.ndarray,
                      post_j: np.ndarray, gap: np.ndarray, key: np.ndarray | None, *, several: bool) -> list[Edge]:
    """One edge per pair of accounts from coordinated post pairs (accounts differ; gap in ms), with the
    pair count as weight, the median gap and the first EVIDENCE_PAIRS post pairs, closest in time first.
    key: what each post pair shared (None: nothing countable); several: a pair of posts may come more
    than once (posts with several keys) and counts once."""
    swap = account_i > account_j
    a, b = np.where(swap, account_j, account_i), np.where(swap, account_i, account_j)
    post_a = np.where(swap, post_j, post_i)
    post_b = np.where(swap, post_i, post_j)
    keyed = key is not None
    key = key if keyed else np.zeros(a.size, dtype=np.int64)
    if not a.size:
        return []
    # Sorted by account pair, then gap (for the median), then posts (a stable evidence order). One sort key
    # for the pair where the ids allow it: every key fewer is a pass of the sort over all pairs.
    pair = a * (1 << 32) + b if b.max() < (1 << 31) else None  # b ≥ a
    by_pair = (pair,) if pair is not None else (b, a)
    order = np.lexsort((key, post_b, post_a, gap, *by_pair) if several else (post_b, post_a, gap, *by_pair))
    a, b, post_a, post_b, gap, key = a[order], b[order], post_a[order], post_b[order], gap[order], key[order]
    if several:  # one pair of posts counts once, however many keys they share: its copies now sit side by side
        fresh = np.r_[True, (post_a[1:] != post_a[:-1]) | (post_b[1:] != post_b[:-1])]
        a, b, post_a, post_b, gap, key = a[fresh], b[fresh], post_a[fresh], post_b[fresh], gap[fresh], key[fresh]
    starts = np.flatnonzero(np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1])])
    ends = np.r_[starts[1:], a.size]
    edges = []
    middle_low = (starts + (ends - starts - 1) // 2)
    middle_high = (starts + (ends - starts) // 2)
    medians = ((gap[middle_low] + gap[middle_high]) / 2000).round().tolist()
    counts = (ends - starts).tolist()
    # The evidence pairs of every edge (its first EVIDENCE_PAIRS), gathered and turned into lists in one go.
    shown = np.minimum(ends - starts, EVIDENCE_PAIRS)
    offsets = np.r_[0, np.cumsum(shown)]
    picked = np.repeat(starts - offsets[:-1], shown) + np.arange(offsets[-1])
    evidence = np.stack([post_a[picked], post_b[picked]], axis=1).tolist()
    offsets = offsets.tolist()
    for k, (start, end, n, median, first, second) in enumerate(zip(starts.tolist(), ends.tolist(), counts, medians,
                                                                   a[starts].tolist(), b[starts].tolist(), strict=True)):
        edges.append(Edge(
            signal, first, second, float(n), evidence[offsets[k]:offsets[k + 1]],
            # Views, not copies: turned into sets only for the edges inside a cluster.
            {"median_gap_seconds": median, "posts": (post_a[start:end], post_b[start:end]),
             "keys": key[start:end] if keyed else key[:0]},
        ))
    return edges


def co_text(params: Params) -> list[Edge]:
    """Identical text after normalisation (case, whitespace, @mentions and URLs removed), reposts excluded.
    PostgreSQL keeps each post's normalised text as a 64-bit key and its length (stored generated columns,
    migration accounts 0011), so nothing is normalised here."""
    source, args = _posts(params)
    keyed = f"""SELECT p.id AS post_id, p.account_id, p.posted_at, p.text_key AS key FROM {source}
                WHERE p.repost_of_external_id = '' AND p.text_chars >= %s"""
    return _keyed_pairs("co_text", _keyed_rows(keyed, [*args, params.min_text_chars], hashed=True), params)


def co_link(params: Params) -> list[Edge]:
    """The same normalised URL (links are normalised on import; an empty field is never a link)."""
    source, args = _posts(params)
    keyed = f"""SELECT p.id AS post_id, p.account_id, p.posted_at, link AS key FROM {source}
                CROSS JOIN LATERAL unnest(p.links) AS link
                WHERE p.repost_of_external_id = '' AND link <> ''"""
    return _keyed_pairs("co_link", _keyed_rows(keyed, args), params)


def co_repost(params: Params) -> list[Edge]:
    """Reposts of the same original."""
    source, args = _posts(params)
    keyed = f"""SELECT p.id AS post_id, p.account_id, p.posted_at, p.repost_of_external_id AS key FROM {source}
                WHERE p.repost_of_external_id <> ''"""
    return _keyed_pairs("co_repost", _keyed_rows(keyed, args), params)


def co_hashtag_sequence(params: Params) -> list[Edge]:
    """The same set of hashtags (at least hashtag_min_tags of them), whatever their order in the text."""
    source, args = _posts(params)
    keyed = f"""SELECT p.id AS post_id, p.account_id, p.posted_at,
                       array_to_string(ARRAY(SELECT DISTINCT t FROM unnest(p.hashtags) t ORDER BY t), ' ') AS key
                FROM {source} WHERE cardinality(p.hashtags) >= %s"""
    return _keyed_pairs("co_hashtag_sequence", _keyed_rows(keyed, [*args, params.hashtag_min_tags]), params)


def _co_image_keyed(params: Params) -> tuple[str, list]:
    source, args = _posts(params)
    keyed = f"""SELECT p.id AS post_id, p.account_id, p.posted_at, mm.cluster_id::text AS key FROM {source}
                JOIN accounts_postmedia pm ON pm.post_id = p.id
                JOIN media_analysis_mediaclustermember mm ON mm.asset_id = pm.media_id"""
    return keyed, args


def co_image(params: Params) -> list[Edge]:
    """Copies and near-copies of one picture (a media cluster) posted within the window."""
    keyed, args = _co_image_keyed(params)
    return _keyed_pairs("co_image", _keyed_rows(keyed, args), params)


def co_image_reuse(params: Params) -> list[Edge]:
    """The same picture posted again further apart than the window ("weeks apart"): reported, and weaker."""
    keyed, args = _co_image_keyed(params)
    return _keyed_pairs("co_image_reuse", _keyed_rows(keyed, args), params, long_gap=True)


# Words of a text, as the toolkit-compatible set used by co_similar_text: case-folded, links and @mentions
# removed. Texts travel joined by NUL, which PostgreSQL text never contains, so a link stops there.
WORD_OR_END_RE = re.compile(r"\w+|\x00", re.UNICODE)
URL_OR_MENTION_RE = re.compile(r"https?://[^\s\x00]+|@\w+")
VERIFY_BLOCK = 1_000_000  # candidate pairs whose word sets are intersected at once


def word_sets(joined: str, count: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The distinct words of `count` texts joined by NUL, as parallel (text index, word) arrays sorted by
    text, each text's words rarest first (fewest occurrences, then first seen), and the vocabulary size.
    One regular-expression pass over the whole string and C-level dictionary work; no Python set per text.

    Any fixed order of the words serves prefix filtering; rarest first keeps the prefixes selective."""
    tokens = WORD_OR_END_RE.findall(URL_OR_MENTION_RE.sub(" ", joined.casefold()))
    vocabulary = dict.fromkeys(tokens)
    vocabulary["\x00"] = None  # present even with no texts
    for number, token in enumerate(vocabulary):
        vocabulary[token] = number
    ids = np.fromiter(map(vocabulary.__getitem__, tokens), dtype=np.int64, count=len(tokens))
    end = ids == vocabulary["\x00"]
    text = np.cumsum(end)
    if count and (text[-1] if text.size else 0) != count - 1:
        raise ValueError("the joined texts do not match their count")
    words = ~end
    ids, text = ids[words], text[words]
    size = len(vocabulary)
    rank = np.empty(size, dtype=np.int64)
    rank[np.argsort(np.bincount(ids, minlength=size), kind="stable")] = np.arange(size)
    key = np.sort(text * size + rank[ids])
    key = key[np.r_[True, key[1:] != key[:-1]]] if key.size else key
    return key // size, key % size, size


def co_similar_text(params: Params) -> list[Edge]:
    """Near-identical text: Jaccard similarity of word sets ≥ the threshold, within the window.

    An exact set-similarity join with prefix filtering, in NumPy: words are ranked rarest first; two sets
    can only reach Jaccard t if they share one of the first |s| - ceil(t·|s|) + 1 words of each, so only
    posts that share such a word within the window (a band join on (word, time)) are candidates, and
    only candidates have their word sets intersected (sparse rows, in blocks)."""
    from scipy import sparse

    source, args = _posts(params)
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT string_agg(int8send(p.account_id::int8) || int8send(floor(extract(epoch FROM p.posted_at) * 1000)::int8)
                              || int8send(p.id::int8), ''::bytea ORDER BY p.id),
                   string_agg(convert_to(p.text, 'UTF8'), '\\x00'::bytea ORDER BY p.id)
            FROM {source} WHERE p.repost_of_external_id = '' AND p.text <> '' GROUP BY p.id %% 16""", args)
        chunks = cursor.fetchall()
    if not chunks:
        return []
    rows = np.frombuffer(b"".join(bytes(c[0]) for c in chunks), dtype=">i8").reshape(-1, 3).astype(np.int64)
    account, ms, post_id = rows[:, 0], rows[:, 1], rows[:, 2]
    text, word, vocabulary = word_sets(b"\x00".join(bytes(c[1]) for c in chunks).decode("utf-8"), len(rows))
    threshold = params.similar_text_threshold
    size = np.bincount(text, minlength=len(rows))
    rank = np.arange(text.size) - np.repeat(np.cumsum(size) - size, size)  # each text's words come rarest first
    prefix = size - np.ceil(threshold * size).astype(np.int64) + 1
    keep = (rank < prefix[text]) & (size[text] >= params.similar_text_min_words)
    first, second = band_pairs(word[keep], ms[text[keep]], params.window * 1000)
    i, j = text[keep][first], text[keep][second]
    other = account[i] != account[j]
    i, j = i[other], j[other]
    candidates = np.sort(np.minimum(i, j) * len(rows) + np.maximum(i, j))
    candidates = candidates[np.r_[True, candidates[1:] != candidates[:-1]]] if candidates.size else candidates
    # (a pair sharing several prefix words is checked once)
    i, j = candidates // len(rows), candidates % len(rows)
    matrix = sparse.csr_matrix((np.ones(text.size, dtype=np.int32), (text, word)), shape=(len(rows), vocabulary))
    similar = np.zeros(i.size, dtype=bool)
    for start in range(0, i.size, VERIFY_BLOCK):
        x, y = i[start:start + VERIFY_BLOCK], j[start:start + VERIFY_BLOCK]
        shared = np.asarray(matrix[x].multiply(matrix[y]).sum(axis=1)).ravel()
        similar[start:start + VERIFY_BLOCK] = shared / (size[x] + size[y] - shared) >= threshold
    i, j = i[similar], j[similar]
    return _edges_from_pairs("co_similar_text", account[i], account[j], post_id[i], post_id[j],
                             np.abs(ms[j] - ms[i]), None, several=False)


def _accounts(params: Params) -> tuple[str, list]:
    if params.dataset_id is None:
        return "accounts_account a", []
    return ("accounts_account a JOIN accounts_account_datasets ad ON ad.account_id = a.id AND ad.dataset_id = %s",
            [params.dataset_id])


def shared_avatar(params: Params) -> list[Edge]:
    """Profile pictures that are copies of each other (the same picture cluster), or that both come from
    the known-source bank (pictures known to be taken from elsewhere)."""
    source, args = _accounts(params)
    with connection.cursor() as cursor:
        cursor.execute(f"""
            WITH av AS (
                SELECT a.id AS account_id, a.profile_image_id AS asset_id, mm.cluster_id,
                       EXISTS (SELECT 1 FROM media_analysis_knownsource ks
                               JOIN media_analysis_mediaclustermember km ON km.asset_id = ks.asset_id
                               WHERE km.cluster_id = mm.cluster_id) AS known
                FROM {source} JOIN media_analysis_mediaclustermember mm ON mm.asset_id = a.profile_image_id)
            SELECT x.account_id, y.account_id, x.asset_id, y.asset_id, x.known
            FROM av x JOIN av y ON x.cluster_id = y.cluster_id AND x.account_id < y.account_id""", args)
        return [Edge("shared_avatar", a, b, 1.0, [], {"avatars": [ia, ib], "known_source": known})
                for a, b, ia, ib, known in cursor.fetchall()]


def known_source_avatars(params: Params) -> dict[int, str]:
    """Accounts whose profile picture matches a known-source picture: {account id: the source's label}."""
    source, args = _accounts(params)
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT DISTINCT ON (a.id) a.id, ks.label FROM {source}
            JOIN media_analysis_mediaclustermember mm ON mm.asset_id = a.profile_image_id
            JOIN media_analysis_mediaclustermember km ON km.cluster_id = mm.cluster_id
            JOIN media_analysis_knownsource ks ON ks.asset_id = km.asset_id
            ORDER BY a.id, ks.label""", args)
        return dict(cursor.fetchall())


def account_activity(params: Params) -> dict[int, dict]:
    """Per account: creation time (the platform's; where the platform does not publish it, as on Instagram,
    estimated as the earliest sign of life: first post or first profile picture), first and last post."""
    source, args = _accounts(params)
    posts_source, post_args = _posts(params)
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT a.id, a.handle, a.display_name, a.created_at, a.extra ->> 'first_profile_pic_at',
                   act.last_post, coalesce(act.posts, 0), act.first_post
            FROM {source}
            LEFT JOIN (SELECT p.account_id, min(p.posted_at) AS first_post, max(p.posted_at) AS last_post,
                              count(*) AS posts
                       FROM {posts_source} GROUP BY p.account_id) act ON act.account_id = a.id""", [*args, *post_args])
        rows = cursor.fetchall()
    activity = {}
    for account_id, handle, display_name, created, first_picture, last_post, posts, first_post in rows:
        signs = [t for t in (first_post, parse_datetime(first_picture) if first_picture else None) if t is not None]
        activity[account_id] = {
            "handle": handle, "display_name": display_name, "created": created or min(signs, default=None),
            "created_estimated": created is None, "first_post": first_post, "last_post": last_post, "posts": posts,
        }
    return activity


def _bursts(times: list[tuple], window: int, minimum: int) -> list[list[int]]:
    """Groups of at least `minimum` accounts whose times fall within `window` seconds of the group's first."""
    times = sorted((t, a) for t, a in times if t is not None)
    groups, i = [], 0
    while i < len(times):
        j = i
        while j + 1 < len(times) and (times[j + 1][0] - times[i][0]).total_seconds() <= window:
            j += 1
        if j - i + 1 >= minimum:
            groups.append([a for _, a in times[i:j + 1]])
            i = j + 1
        else:
            i += 1
    return groups


def _among(activity: dict[int, dict], among: set[int] | None) -> dict[int, dict]:
    return activity if among is None else {a: v for a, v in activity.items() if a in among}


def creation_burst(params: Params, activity: dict[int, dict] | None = None, among: set[int] | None = None) -> list[Edge]:
    """Accounts created within one day of each other (several of them), and accounts that fell silent
    on the same day. Each is weak alone; with content signals it explains a network's set-up. `among`
    limits it to those accounts (detection passes the accounts content signals link)."""
    activity = _among(activity if activity is not None else account_activity(params), among)
    edges: list[Edge] = []
    created = [(v["created"], a) for a, v in activity.items()]
    for group in _bursts(created, params.creation_window, params.creation_min_accounts):
        day = min(activity[a]["created"] for a in group).date().isoformat()
        estimated = any(activity[a]["created_estimated"] for a in group)
        for a, b in _group_pairs(group):
            edges.append(Edge("creation_burst", a, b, 1.0, [], {"created": day, "accounts": len(group),
                                                                 "estimated": estimated}))
    end = max((v["last_post"] for v in activity.values() if v["last_post"]), default=None)
    if end is not None:
        # Silent from a day well before the data ends (30 days), together with others.
        dormant = [(v["last_post"], a) for a, v in activity.items()
                   if v["last_post"] and v["posts"] >= 2 and end - v["last_post"] > timedelta(days=30)]
        for group in _bursts(dormant, params.creation_window, params.dormancy_min_accounts):
            day = max(activity[a]["last_post"] for a in group).date().isoformat()
            for a, b in _group_pairs(group):
                edges.append(Edge("dormancy", a, b, 1.0, [], {"silent_since": day, "accounts": len(group)}))
    return edges


GROUP_CLIQUE_MAX = 300


def _group_pairs(group: list[int], neighbours: int = 10) -> list[tuple[int, int]]:
    """Ordered account pairs linking a group: every pair for up to GROUP_CLIQUE_MAX accounts; beyond,
    each account with its `neighbours` next ones in time order, so edges grow linearly, not quadratically."""
    pairs = []
    for i, a in enumerate(group):
        others = group[i + 1:] if len(group) <= GROUP_CLIQUE_MAX else group[i + 1:i + 1 + neighbours]
        pairs.extend((min(a, b), max(a, b)) for b in others)
    return pairs


def _stem_text(handle: str) -> str:
    return re.sub(r"[\d._\-]+", "", handle.casefold())


def look_alike_names(params: Params, activity: dict[int, dict] | None = None, among: set[int] | None = None,
                     block: int = 2000) -> list[Edge]:
    """Handles that share a long stem once digits and separators are removed ("dump.chump2020" and
    "dumpchump_resist" share "dumpchump"), scored with RapidFuzz's partial ratio. Compared in blocks of
    rows, so memory stays at block × accounts scores; `among` limits it to those accounts."""
    from rapidfuzz import fuzz, process

    activity = _among(activity if activity is not None else account_activity(params), among)
    ids = [a for a, v in activity.items() if len(_stem_text(v["handle"])) >= params.name_min_stem]
    stems = [_stem_text(activity[a]["handle"]) for a in ids]
    if len(ids) < 2:
        return []
    pairs = []
    for start in range(0, len(stems), block):
        scores = process.cdist(stems[start:start + block], stems, scorer=fuzz.partial_ratio,
                               score_cutoff=params.name_min_score, dtype=np.uint8, workers=1)
        rows, cols = np.nonzero(scores)
        keep = cols > rows + start
        pairs.extend(zip((rows[keep] + start).tolist(), cols[keep].tolist(), strict=True))
    edges = []
    for i, j in pairs:
        stem = _common_stem(stems[i], stems[j])
        if len(stem) >= params.name_min_stem:
            edges.append(Edge("look_alike_names", ids[i], ids[j], 1.0, [],
                              {"stem": stem, "handles": [activity[ids[i]]["handle"], activity[ids[j]]["handle"]]}))
    return edges


def _common_stem(x: str, y: str) -> str:
    from difflib import SequenceMatcher

    match = SequenceMatcher(None, x, y, autojunk=False).find_longest_match(0, len(x), 0, len(y))
    return x[match.a: match.a + match.size]


def synchronised_activity(params: Params, among: set[int] | None = None, block: int = 2000) -> list[Edge]:
    """Accounts whose posting-time series (posts per hour) are strongly correlated (Pearson, over every hour
    in which any of the accounts posted), with at least sync_min_shared_bins hours active together.

    The series are sparse rows (an account posts in few of the hours), so only pairs that share an active
    hour are ever multiplied: for centred series, x·y - n·mean(x)·mean(y) over the product of their norms.
    Rows are taken a block at a time (memory: the block's pairs that share an hour); `among` limits it to
    those accounts."""
    from scipy import sparse

    source, args = _posts(params)
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT p.account_id, floor(extract(epoch FROM p.posted_at) / %s)::bigint AS bin, count(*)
            FROM {source} GROUP BY 1, 2""", [params.sync_bin, *args])
        found = np.array(cursor.fetchall(), dtype=np.int64).reshape(-1, 3)
    account, hour, count = found[:, 0], found[:, 1], found[:, 2]
    ids, row = np.unique(account, return_inverse=True)
    wanted = np.bincount(row, weights=count) >= params.sync_min_posts
    if among is not None:
        wanted &= np.isin(ids, np.fromiter(among, dtype=np.int64, count=len(among)))
    keep = wanted[row]
    if wanted.sum() < 2:
        return []
    accounts = ids[wanted]
    row = np.searchsorted(accounts, account[keep])
    bins, column = np.unique(hour[keep], return_inverse=True)
    n = bins.size
    series = sparse.csr_matrix((count[keep].astype(np.float64), (row, column)), shape=(accounts.size, n))
    active = series.copy()
    active.data[:] = 1.0
    mean = np.asarray(series.sum(axis=1)).ravel() / n
    norm = np.sqrt(np.maximum(np.asarray(series.multiply(series).sum(axis=1)).ravel() - n * mean ** 2, 0))
    norm[norm == 0] = 1
    edges = []
    for start in range(0, accounts.size, block):
        part = slice(start, start + block)
        # Each block against itself and the accounts after it only: every pair once.
        shared = active[part] @ active[start:].T
        dots = series[part] @ series[start:].T
        # Both have the pattern "shares an hour", built in the same order from inputs of the same pattern.
        if not (np.array_equal(shared.indptr, dots.indptr) and np.array_equal(shared.indices, dots.indices)):
            shared.sort_indices()
            dots.sort_indices()
        i = np.repeat(np.arange(shared.shape[0]), np.diff(shared.indptr)) + start
        j = shared.indices + start
        pick = (j > i) & (shared.data >= params.sync_min_shared_bins)
        i, j, hours, dot = i[pick], j[pick], shared.data[pick], dots.data[pick]
        correlation = (dot - n * mean[i] * mean[j]) / (norm[i] * norm[j])
        hit = correlation >= params.sync_min_correlation
        for a, b, h, c in zip(accounts[i[hit]].tolist(), accounts[j[hit]].tolist(), hours[hit].tolist(),
                              correlation[hit].tolist(), strict=True):
            edges.append(Edge("synchronised_activity", a, b, float(h), [],
                              {"correlation": round(c, 3), "shared_hours": int(h)}))
    return edges


def engagement_anomalies(params: Params) -> dict[int, list[str]]:
    """Account-level flags read from the counts recorded with each post: like bursts (a post with many
    times the account's usual likes) and follower jumps (follower counts recorded with the posts, when
    the export has them, rising many times over between two posts)."""
    source, args = _posts(params)
    flags: dict[int, list[str]] = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT p.account_id, array_agg(p.like_count ORDER BY p.posted_at),
                   array_agg((p.extra ->> 'follower_count')::bigint ORDER BY p.posted_at)
                     FILTER (WHERE p.extra ->> 'follower_count' ~ '^[0-9]{{1,15}}$')
            FROM {source} WHERE p.like_count IS NOT NULL GROUP BY p.account_id HAVING count(*) >= 4""", args)
        for account_id, likes, followers in cursor.fetchall():
            likes = np.array(likes, dtype=np.float64)
            median = float(np.median(likes))
            if median >= 1 and likes.max() >= params.like_burst_factor * median:
                flags[account_id].append(f"like burst: {int(likes.max())} likes against a usual {int(median)}")
            if followers and len(followers) >= 2:
                f = np.array(followers, dtype=np.float64)
                jumps = f[1:] / np.maximum(f[:-1], 1)
                if f[:-1].max() >= 10 and jumps.max() >= 5:
                    flags[account_id].append(f"follower jump: ×{jumps.max():.0f} between two posts")
                if (np.diff(f) < 0).sum() >= 2 and (np.diff(f) > 0).sum() >= 2 and np.ptp(f) >= 0.5 * f.max():
                    flags[account_id].append("follower count cycling up and down")
    return dict(flags)


SIGNALS: dict[str, Callable[[Params], list[Edge]]] = {
    "co_image": co_image,
    "co_image_reuse": co_image_reuse,
    "co_text": co_text,
    "co_similar_text": co_similar_text,
    "co_link": co_link,
    "co_repost": co_repost,
    "co_hashtag_sequence": co_hashtag_sequence,
    "shared_avatar": shared_avatar,
    "creation_burst": creation_burst,
    "look_alike_names": look_alike_names,
    "synchronised_activity": synchronised_activity,
}
