"""Detection runs: signals → evidence edges → weighted account network → explained clusters.

How the network is built (the documented rule):

* Content signals (co_image, co_text, co_similar_text, co_link, co_repost, co_hashtag_sequence) weigh
  what they count: the number of coordinated post pairs.
* Supporting signals (shared_avatar, creation_burst, dormancy, look_alike_names, synchronised_activity,
  co_image_reuse) weigh 1 each. They are weak alone: accounts created on the same day happen by chance.
* A pair of accounts enters the network when its content weight is at least `min_content_pairs` (2), or at
  least 1 with one supporting signal besides. Weaker pairs are dropped and never join a cluster.
* So supporting signals only matter between accounts that content links, and the account-level ones
  (creation_burst, dormancy, look_alike_names, synchronised_activity) are looked for among those accounts
  only: over a whole population they grow with its square.
* Communities are found with the Leiden algorithm (leidenalg on igraph, modularity, fixed seed) on the
  summed weights; communities smaller than `min_cluster_size` are dropped.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from accounts.coordination import signals as S
from accounts.models import Cluster, ClusterMember, CoordinationEdge, Dataset, DetectionRun, JobStatus
from investigator import jobs

logger = logging.getLogger(__name__)

CONTENT_SIGNALS = ("co_image", "co_text", "co_similar_text", "co_link", "co_repost", "co_hashtag_sequence")
SUPPORTING_SIGNALS = ("shared_avatar", "creation_burst", "dormancy", "look_alike_names", "synchronised_activity",
                      "co_image_reuse")
SIGNAL_CHOICES = (*S.SIGNALS, "engagement_anomalies")
# The signals that compare pictures: they need them hashed.
IMAGE_SIGNALS = frozenset({"co_image", "co_image_reuse", "shared_avatar"})
# How much each signal adds to a cluster's score (per log of its weight inside the cluster).
SCORE_WEIGHTS = {
    "co_image": 3.0, "co_text": 2.0, "co_similar_text": 2.0, "co_link": 1.5, "co_repost": 1.0,
    "co_hashtag_sequence": 1.0, "shared_avatar": 1.5, "creation_burst": 1.0, "dormancy": 1.0,
    "look_alike_names": 1.0, "synchronised_activity": 0.5, "co_image_reuse": 0.5,
}


def signal_score(signal: str, weight: float) -> float:
    """What a signal of this weight inside a cluster adds to the cluster's score."""
    return SCORE_WEIGHTS.get(signal, 1.0) * math.log1p(max(0.0, weight))


DEFAULTS = {"min_content_pairs": 2, "min_cluster_size": 3, "resolution": 1.0, "seed": 42}


@transaction.atomic
def detection_run_create(
    *, dataset: Dataset | None, signals: list[str] | None = None, window: int | None = None,
    user: AbstractBaseUser | None = None, enqueue: bool = True, options: dict | None = None,
) -> DetectionRun:
    """Record a pending detection with every parameter it will use; a worker runs it after commit."""
    chosen = list(signals or SIGNAL_CHOICES)
    unknown = sorted(set(chosen) - set(SIGNAL_CHOICES))
    if unknown:
        raise ValueError(f"unknown signals: {', '.join(unknown)} (choose from {', '.join(SIGNAL_CHOICES)})")
    params = S.Params(dataset_id=dataset.pk if dataset else None, **({"window": window} if window else {}))
    if params.window <= 0:
        raise ValueError("the window must be a positive number of seconds")
    parameters = {**asdict(params), **DEFAULTS, **(options or {})}
    from django.conf import settings

    parameters["media"] = {"phash_match_distance": settings.PHASH_MATCH_DISTANCE,
                           "pdq_match_distance": settings.PDQ_MATCH_DISTANCE, "pdq_min_quality": settings.PDQ_MIN_QUALITY}
    run = DetectionRun.objects.create(
        dataset=dataset, signals=chosen, parameters=parameters,
        started_by=user if user is not None and user.is_authenticated else None,
        progress_total=sum(s != "engagement_anomalies" for s in chosen) + 4,  # the steps _detect advances through
    )
    if enqueue:
        from accounts.tasks import run_detection

        transaction.on_commit(lambda: run_detection.delay(run.pk))
    return run


def detection_run_wait(*, run: DetectionRun, waited: dict | None = None) -> dict | None:
    """Whether a queued run should wait before it starts, for what its evidence would otherwise leave out
    without a word: an investigator who imports and at once starts a detection would get clusters short of
    the posts still being imported and of the pictures not hashed yet. So the run waits, its stage saying
    what for: first for imports into its dataset (any import, for a run over all data) to finish, then, if
    it has image signals, for the dataset's pictures (accounts.selectors.detection_pictures) to be hashed.

    `waited` is what the previous call returned. Returns what to pass next time, or None to start now:
    nothing to wait for, or nothing moved (no import batch stored, no picture hashed) for
    DETECTION_WAIT_STALL_SECONDS; the run then starts, and its summary says how many pictures it left out.
    Whenever no picture was hashed since the last look, claims of dead workers are given back and one more
    batch of hashing is queued, so that a lost hashing task cannot keep the run waiting."""
    from django.conf import settings

    from accounts.models import ImportRun
    from accounts.selectors import detection_pictures
    from accounts.services import import_runs_fail_stale
    from media_analysis.services import media_hash_requeue_stale, media_hashing_schedule

    import_runs_fail_stale()  # a dead import must not keep the run waiting
    importing = ImportRun.objects.filter(status__in=[JobStatus.PENDING, JobStatus.RUNNING]).order_by("pk")
    if run.dataset_id is not None:
        importing = importing.filter(dataset_id=run.dataset_id)
    if (current := importing.first()) is not None:
        stage, mark = (f"Waiting for import run {current.pk} to finish: the detection reads what it stores",
                       ["import", current.pk, current.progress_done])
    elif IMAGE_SIGNALS & set(run.signals) and (left := detection_pictures(dataset_id=run.dataset_id,
                                                                          waiting_only=True).waiting):
        stage, mark = (f"Waiting for {left:,} picture{'s' if left != 1 else ''} to be hashed: the image signals "
                       "compare them", ["pictures", left])
    else:
        return None
    now = since = time.time()
    if waited is not None and waited["mark"] == mark:  # nothing moved since the last look
        since = waited["since"]
        if now - since >= settings.DETECTION_WAIT_STALL_SECONDS:
            logger.warning("detection run %s: nothing moved for %.0f s (%s); starting", run.pk, now - since, stage)
            return None
        if mark[0] == "pictures":
            media_hash_requeue_stale()
            media_hashing_schedule(count=min(mark[1], settings.MEDIA_HASH_BATCH_SIZE))
    DetectionRun.objects.filter(pk=run.pk, status=JobStatus.PENDING).update(stage=stage)
    return {"mark": mark, "since": since}


def detection_run_claim(*, run_id: int) -> bool:
    """Take a queued run, or one whose worker fell silent (investigator.jobs): nothing of a run is stored before
    its last step, so it starts again from the beginning."""
    now = timezone.now()
    return bool(DetectionRun.objects.filter(jobs.claimable(), pk=run_id).update(
        status=JobStatus.RUNNING, started_at=now, heartbeat_at=now, stage="", progress_done=0))


def detection_runs_resume() -> int:
    """Queue every run not finished (at start-up; investigator.jobs.resume); returns how many."""
    from accounts.tasks import run_detection

    return jobs.resume(DetectionRun, run_detection)


class _TakenOver(Exception):
    """Another worker claimed the run again while this one was silent: the result is the other's to store."""


def detection_run_execute(*, run: DetectionRun, progress: Callable[[str], None] | None = None) -> DetectionRun:
    """Run every chosen signal, store the edges, find and explain the clusters. A failure marks the run
    failed with the reason and stores nothing of it."""
    DetectionRun.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING, started_at=run.started_at or timezone.now(),
                                                  heartbeat_at=timezone.now())
    run.refresh_from_db(fields=["started_at"])  # which claim of the run this is: a silent run may be claimed again
    step = 0

    def advance(label: str) -> None:
        nonlocal step
        step += 1
        DetectionRun.objects.filter(pk=run.pk).update(progress_done=step, stage="")
        if progress:
            progress(label)

    try:
        # Not one transaction: progress must be visible to the page while the signals run. Nothing is
        # written before the edges and clusters, which are stored together with the run's result.
        with jobs.heartbeat(DetectionRun, run.pk):
            _detect(run, advance)
    except _TakenOver:
        logger.warning("detection run %s: claimed again by another worker while this one was silent; it is theirs",
                       run.pk)
    except Exception as exc:
        logger.exception("detection run %s failed", run.pk)
        DetectionRun.objects.filter(pk=run.pk, started_at=run.started_at).update(
            status=JobStatus.FAILED, error=f"{exc.__class__.__name__}: {exc}", finished_at=timezone.now())
        raise
    run.refresh_from_db()
    return run


def _params(run: DetectionRun) -> S.Params:
    fields = S.Params.__dataclass_fields__
    return S.Params(**{k: v for k, v in run.parameters.items() if k in fields})


def _detect(run: DetectionRun, advance: Callable[[str], None]) -> None:
    from accounts.selectors import detection_pictures
    from media_analysis.services import media_clusters_rebuild

    params = _params(run)

    def pictures_grouped(done: int, total: int) -> None:
        DetectionRun.objects.filter(pk=run.pk).update(stage=f"Grouping copies of pictures: {done:,} of {total:,}")

    def other_grouping() -> None:
        DetectionRun.objects.filter(pk=run.pk).update(
            stage="Waiting for another detection's grouping of pictures to finish")

    pictures = None
    if IMAGE_SIGNALS & set(run.signals):
        pictures = detection_pictures(dataset_id=params.dataset_id)
        media_clusters_rebuild(progress=pictures_grouped, waiting=other_grouping)
    advance("media clusters")
    activity = S.account_activity(params)
    edges: list[S.Edge] = []
    # Content signals first. The account-level supporting signals are then looked for only among accounts
    # that content already links: by the weak-edge rule they only ever strengthen such pairs, and over a
    # whole population they grow with its square (every common name stem, every busy creation day).
    ordered = sorted((n for n in run.signals if n != "engagement_anomalies"), key=lambda n: n not in CONTENT_SIGNALS)
    linked: set[int] = set()
    for name in ordered:
        if name in CONTENT_SIGNALS:
            found = S.SIGNALS[name](params)
            linked.update(a for e in found for a in (e.a, e.b))
        elif name in ("creation_burst", "look_alike_names"):
            found = S.SIGNALS[name](params, activity, among=linked)
        elif name == "synchronised_activity":
            found = S.SIGNALS[name](params, among=linked)
        else:
            found = S.SIGNALS[name](params)
        edges.extend(found)
        advance(name)
    flags = S.engagement_anomalies(params) if "engagement_anomalies" in run.signals else {}
    known_sources = S.known_source_avatars(params) if "shared_avatar" in run.signals else {}
    advance("engagement")
    communities = _communities(edges, run.parameters)
    advance("communities")
    clusters = [_cluster_describe(members, edges, activity, flags, known_sources, params)
                for members in communities]
    clusters.sort(key=lambda c: -c["score"])
    by_signal = Counter(e.signal for e in edges)
    summary = {
        "accounts": len(activity), "edges": len(edges), "edges_by_signal": dict(sorted(by_signal.items())),
        "clusters": len(clusters), "clustered_accounts": sum(len(c["members"]) for c in clusters),
        "flagged_accounts": len(flags),
        # What the image signals compared: pictures not hashed yet, or unreadable, are not in the evidence.
        **({"pictures": asdict(pictures)} if pictures is not None else {}),
    }
    advance("clusters")
    with transaction.atomic():
        # A step that kept this worker from saying it is alive for jobs.SILENT_AFTER (one long call
        # holding the GIL) may have let another worker claim the run again: only the latest claim stores.
        if not DetectionRun.objects.select_for_update().filter(pk=run.pk, status=JobStatus.RUNNING,
                                                               started_at=run.started_at).exists():
            raise _TakenOver
        _edges_store(run, edges)
        _clusters_store(run, clusters)
        DetectionRun.objects.filter(pk=run.pk).update(status=JobStatus.SUCCEEDED, summary=summary,
                                                      finished_at=timezone.now(), progress_done=run.progress_total)


def _edges_store(run: DetectionRun, edges: list[S.Edge], batch: int = 5000) -> None:
    """Writes the edges a batch at a time: a million model instances at once would double the memory."""
    window = {k: v for k, v in run.parameters.items() if k != "media"}.get("window")
    merged = _merged_edges(edges)
    for start in range(0, len(merged), batch):
        CoordinationEdge.objects.bulk_create([
            CoordinationEdge(detection_run=run, account_a_id=e.a, account_b_id=e.b, signal=e.signal,
                             parameters={"window": window} if e.signal in CONTENT_SIGNALS else {},
                             weight=e.weight, evidence=e.pairs, explanation=_edge_explanation(e))
            for e in merged[start:start + batch]
        ])


def _merged_edges(edges: list[S.Edge]) -> list[S.Edge]:
    """One edge per account pair and signal (creation bursts can meet a pair twice)."""
    merged: dict[tuple[int, int, str], S.Edge] = {}
    for edge in edges:
        key = (edge.a, edge.b, edge.signal)
        if key not in merged:
            merged[key] = edge
    return list(merged.values())


def _edge_explanation(edge: S.Edge) -> str:
    d = edge.detail
    n = int(edge.weight)
    gap = d.get("median_gap_seconds")
    gap_text = f", median {_duration(gap)} apart" if gap is not None else ""
    return {
        "co_image": f"{n} pair(s) of posts with copies of the same picture{gap_text}",
        "co_image_reuse": f"{n} pair(s) of posts reusing the same picture much later{gap_text}",
        "co_text": f"{n} pair(s) of posts with identical text{gap_text}",
        "co_similar_text": f"{n} pair(s) of posts with near-identical text{gap_text}",
        "co_link": f"{n} pair(s) of posts sharing the same link{gap_text}",
        "co_repost": f"{n} pair(s) of reposts of the same original{gap_text}",
        "co_hashtag_sequence": f"{n} pair(s) of posts with the same set of hashtags{gap_text}",
        "shared_avatar": "profile pictures are copies of each other" + (
            " (a known-source picture)" if d.get("known_source") else ""),
        "creation_burst": f"created together on {d.get('created')} with {d.get('accounts', 0) - 2} other account(s)"
                          + (" (creation estimated from first activity)" if d.get("estimated") else ""),
        "dormancy": f"silent since {d.get('silent_since')}, like {d.get('accounts', 0) - 2} other account(s)",
        "look_alike_names": f"handles share the stem '{d.get('stem')}'",
        "synchronised_activity": f"posting times correlated (r = {d.get('correlation')}) over "
                                 f"{d.get('shared_hours')} shared hours",
    }.get(edge.signal, edge.signal)


def _duration(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    if seconds < 14 * 86400:
        return f"{seconds / 86400:.0f} days"
    return f"{seconds / (7 * 86400):.0f} weeks"


def pair_weights(edges: list[S.Edge], min_content_pairs: int) -> dict[tuple[int, int], float]:
    """The network's edges after the weak-edge rule (see the module's documentation)."""
    content: dict[tuple[int, int], float] = defaultdict(float)
    supporting: dict[tuple[int, int], int] = defaultdict(int)
    for edge in edges:
        if edge.signal in CONTENT_SIGNALS:
            content[(edge.a, edge.b)] += edge.weight
        elif edge.signal in SUPPORTING_SIGNALS:
            supporting[(edge.a, edge.b)] += 1
    kept = {}
    for pair, weight in content.items():
        if weight >= min_content_pairs or (weight >= 1 and supporting[pair] >= 1):
            kept[pair] = weight + supporting[pair]
    return kept


def _communities(edges: list[S.Edge], options: dict) -> list[list[int]]:
    import igraph
    import leidenalg

    weights = pair_weights(edges, int(options.get("min_content_pairs", DEFAULTS["min_content_pairs"])))
    if not weights:
        return []
    nodes = sorted({a for pair in weights for a in pair})
    index = {a: i for i, a in enumerate(nodes)}
    graph = igraph.Graph(n=len(nodes), edges=[(index[a], index[b]) for a, b in weights], directed=False)
    graph.es["weight"] = list(weights.values())
    partition = leidenalg.find_partition(
        graph, leidenalg.RBConfigurationVertexPartition, weights="weight",
        resolution_parameter=float(options.get("resolution", DEFAULTS["resolution"])),
        seed=int(options.get("seed", DEFAULTS["seed"])),
    )
    minimum = int(options.get("min_cluster_size", DEFAULTS["min_cluster_size"]))
    return [sorted(nodes[i] for i in community) for community in partition if len(community) >= minimum]


def _cluster_describe(members: list[int], edges: list[S.Edge], activity: dict[int, dict],
                      flags: dict[int, list[str]], known_sources: dict[int, str], params: S.Params) -> dict:
    inside = set(members)
    own = [e for e in edges if e.a in inside and e.b in inside]
    breakdown: dict[str, dict] = {}
    for signal in sorted({e.signal for e in own}):
        mine = [e for e in own if e.signal == signal]
        accounts = {a for e in mine for a in (e.a, e.b)}
        posts = {p for e in mine for side in e.detail.get("posts", ()) for p in side.tolist()}
        keys = {k for e in mine for k in np.asarray(e.detail.get("keys", ())).tolist()}
        breakdown[signal] = {"edges": len(mine), "weight": sum(e.weight for e in mine), "accounts": len(accounts),
                             "posts": len(posts), "items": len(keys)}
    pairs = len(members) * (len(members) - 1) / 2
    linked = {(e.a, e.b) for e in own if e.signal in CONTENT_SIGNALS}
    density = len(linked) / pairs if pairs else 0
    score = sum(signal_score(s, b["weight"]) for s, b in breakdown.items())
    flagged = [a for a in members if a in flags]
    score = (score * (0.5 + 0.5 * density)) + 0.5 * min(len(flagged), 5)
    explanation = _cluster_explanation(members, own, breakdown, activity, flags, known_sources, params)
    handles = [activity[a]["handle"] for a in members]
    stems = Counter(e.detail["stem"] for e in own if e.signal == "look_alike_names")
    label = f"'{stems.most_common(1)[0][0]}' network" if stems else f"@{handles[0]} and {len(members) - 1} others"
    strength: Counter = Counter()
    for e in own:
        if e.signal in CONTENT_SIGNALS:
            strength[e.a] += e.weight
            strength[e.b] += e.weight
    top = max(strength.values(), default=0) or 1
    return {"members": members, "score": round(score, 2), "breakdown": breakdown, "explanation": explanation,
            "label": label, "density": round(density, 3), "centrality": {a: round(w / top, 3) for a, w in strength.items()}}


def _cluster_explanation(members: list[int], own: list[S.Edge], breakdown: dict, activity: dict[int, dict],
                         flags: dict[int, list[str]], known_sources: dict[int, str], params: S.Params) -> str:
    window = _duration(params.window)
    parts = []
    nouns = {"co_image": "near-identical images", "co_text": "identical texts", "co_similar_text": "near-identical texts",
             "co_link": "shared links", "co_repost": "reposts of the same originals",
             "co_hashtag_sequence": "posts with the same hashtag set"}
    for signal, noun in nouns.items():
        if signal in breakdown:
            b = breakdown[signal]
            what = f" of {b['items']} distinct picture(s)" if signal == "co_image" else ""
            parts.append(f"{b['posts']} {noun}{what} posted within {window} by {b['accounts']} accounts")
    if "co_image_reuse" in breakdown:
        parts.append(f"pictures reused later (more than {window} apart) by {breakdown['co_image_reuse']['accounts']} accounts")
    created = [e for e in own if e.signal == "creation_burst"]
    if created:
        for day in sorted({e.detail["created"] for e in created}):
            accounts = {a for e in created if e.detail["created"] == day for a in (e.a, e.b)}
            silent = [e for e in own if e.signal == "dormancy" and {e.a, e.b} <= accounts]
            text = f"{len(accounts)} accounts created on {day}"
            if any(e.detail.get("estimated") for e in created if e.detail["created"] == day):
                text += " (estimated from first activity)"
            if silent:
                text += f" and silent since {max(e.detail['silent_since'] for e in silent)}"
            parts.append(text)
    elif "dormancy" in breakdown:
        day = max(e.detail["silent_since"] for e in own if e.signal == "dormancy")
        parts.append(f"{breakdown['dormancy']['accounts']} accounts silent since {day}")
    stems = Counter(e.detail["stem"] for e in own if e.signal == "look_alike_names")
    if stems:
        stem = stems.most_common(1)[0][0]
        sharing = {a for e in own if e.signal == "look_alike_names" and e.detail["stem"] == stem for a in (e.a, e.b)}
        parts.append(f"handles of {len(sharing)} accounts share the stem '{stem}'")
    if "shared_avatar" in breakdown:
        parts.append(f"{breakdown['shared_avatar']['accounts']} accounts use copies of the same profile picture")
    stolen = sorted({known_sources[a] for a in members if a in known_sources})
    if stolen:
        count = sum(1 for a in members if a in known_sources)
        parts.append(f"{count} profile picture(s) match the known-source bank ({', '.join(stolen)})")
    if "synchronised_activity" in breakdown:
        parts.append(f"posting times of {breakdown['synchronised_activity']['accounts']} accounts move together")
    flagged = [a for a in members if a in flags]
    if flagged:
        parts.append(f"{len(flagged)} account(s) with engagement anomalies ({flags[flagged[0]][0]})")
    return "; ".join(parts) + "." if parts else ""


def cluster_timeline(*, members: list[int], dataset_id: int | None) -> dict:
    """Posts and interactions per day of a cluster's accounts, and how fast interactions grow (a doubling
    time fitted on interactions per post, when they grow)."""
    source = "accounts_post p"
    args: list = []
    if dataset_id is not None:
        source += " JOIN accounts_post_datasets pd ON pd.post_id = p.id AND pd.dataset_id = %s"
        args.append(dataset_id)
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT date_trunc('day', p.posted_at)::date, count(*),
                   sum(coalesce(p.like_count, 0) + coalesce(p.comment_count, 0) + coalesce(p.share_count, 0))
            FROM {source} WHERE p.account_id = ANY(%s) GROUP BY 1 ORDER BY 1""", [*args, members])  # noqa: S608
        days = [{"date": d.isoformat(), "posts": n, "interactions": int(i or 0)} for d, n, i in cursor.fetchall()]
    doubling = None
    points = [(datetime.fromisoformat(d["date"]).toordinal(), d["interactions"] / d["posts"]) for d in days
              if d["interactions"] > 0]
    if len(points) >= 4:
        x = np.array([p[0] for p in points], dtype=np.float64)
        y = np.log2(np.array([p[1] for p in points], dtype=np.float64))
        slope = float(np.polyfit(x - x.min(), y, 1)[0])
        if slope > 0:
            doubling = round(1 / slope, 1)
    return {"days": days, "doubling_days": doubling}


def _clusters_store(run: DetectionRun, clusters: list[dict]) -> None:
    for described in clusters:
        timeline = cluster_timeline(members=described["members"], dataset_id=run.dataset_id)
        explanation = described["explanation"]
        if timeline["doubling_days"]:
            explanation += f" Interactions per post doubled about every {timeline['doubling_days']:.0f} days."
        cluster = Cluster.objects.create(
            detection_run=run, label=described["label"][:200], score=described["score"], size=len(described["members"]),
            signal_breakdown={**described["breakdown"], "_density": described["density"]},
            explanation=explanation, timeline=timeline,
        )
        centrality = described["centrality"]
        ClusterMember.objects.bulk_create(
            [ClusterMember(cluster=cluster, account_id=a, centrality=centrality.get(a, 0)) for a in described["members"]])
