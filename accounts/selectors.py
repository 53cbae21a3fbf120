"""Reads of the social-media side. Every read a user sees takes the user."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db.models import Count, Exists, F, JSONField, Max, Min, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import TruncDate
from django.urls import reverse

from accounts.models import (
    Account,
    Cluster,
    ClusterMember,
    CoordinationEdge,
    Dataset,
    DetectionRun,
    ImportRun,
    JobStatus,
    Post,
    PostMedia,
    ReviewStatus,
)
from accounts.normalize import normalize_url
from investigator.roles import INVESTIGATOR, has_role
from investigator.text import reveal, spreadsheet_safe
from media_analysis.models import HashState, MediaAsset, MediaCluster
from media_analysis.selectors import HashCounts, media_hash_counts


def datasets_visible(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Dataset]:
    """Every role may see every dataset; outsiders (no role) see none."""
    if not has_role(user, INVESTIGATOR):
        return Dataset.objects.none()
    return Dataset.objects.all()


@dataclass(frozen=True)
class DatasetOverview:
    dataset: Dataset
    accounts: int
    posts: int
    last_import: object


def dataset_overview(*, user: AbstractBaseUser | AnonymousUser) -> list[DatasetOverview]:
    datasets = (
        datasets_visible(user=user)
        .annotate(last_import=Max("import_runs__finished_at"))
        .order_by("name")
    )
    account_counts = dict(
        Account.datasets.through.objects.filter(dataset__in=datasets)
        .values("dataset").annotate(n=Count("id")).values_list("dataset", "n")
    )
    post_counts = dict(
        Post.datasets.through.objects.filter(dataset__in=datasets)
        .values("dataset").annotate(n=Count("id")).values_list("dataset", "n")
    )
    return [
        DatasetOverview(d, account_counts.get(d.id, 0), post_counts.get(d.id, 0), d.last_import)
        for d in datasets
    ]


def media_hash_progress(*, user: AbstractBaseUser | AnonymousUser) -> HashCounts | None:
    if not has_role(user, INVESTIGATOR):
        return None
    return media_hash_counts()


@dataclass(frozen=True)
class PictureCounts:
    """The pictures a detection's image signals compare, by hashing state."""

    total: int = 0
    hashed: int = 0
    waiting: int = 0  # not hashed yet (queued, or being hashed)
    unreadable: int = 0


def detection_pictures(*, dataset_id: int | None, waiting_only: bool = False) -> PictureCounts:
    """The pictures a detection's image signals compare: the dataset's posts' pictures, its accounts' profile
    pictures and the known-source bank (every stored picture when no dataset is chosen). With `waiting_only`,
    only those not hashed yet are counted: cheap enough to ask every few seconds."""
    pictures = MediaAsset.objects.all()
    if dataset_id is not None:
        in_posts = PostMedia.objects.filter(media=OuterRef("pk"), post__datasets=dataset_id)
        as_avatar = Account.objects.filter(profile_image=OuterRef("pk"), datasets=dataset_id)
        pictures = pictures.filter(Exists(in_posts) | Exists(as_avatar) | Q(known_source__isnull=False))
    if waiting_only:
        return PictureCounts(waiting=pictures.filter(hash_state__in=[HashState.PENDING, HashState.PROCESSING]).count())
    by_state = dict(pictures.order_by().values_list("hash_state").annotate(n=Count("id")))
    return PictureCounts(
        total=sum(by_state.values()), hashed=by_state.get(HashState.DONE, 0),
        waiting=by_state.get(HashState.PENDING, 0) + by_state.get(HashState.PROCESSING, 0),
        unreadable=by_state.get(HashState.FAILED, 0),
    )


def import_runs_visible(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[ImportRun]:
    """Runs without their file lists (an Instaloader export lists every picture: 100,000s of entries);
    source_count says how many, import_run_sources gives the first of them."""
    if not has_role(user, INVESTIGATOR):
        return ImportRun.objects.none()
    return ImportRun.objects.select_related("dataset", "started_by").defer("sources", "input_paths")


def import_run_sources(*, run: ImportRun, limit: int = 200) -> list[dict]:
    """The first `limit` input files of a run (name, bytes, SHA-256), cut in the database."""
    row = (ImportRun.objects.filter(pk=run.pk)
           .annotate(head=RawSQL("jsonb_path_query_array(sources, %s::jsonpath)", [f"$[0 to {max(0, limit - 1)}]"],
                               output_field=JSONField()))
           .values_list("head", flat=True).first())
    return list(row or [])[:limit]


PROBLEM_COLUMNS = ("kind", "file", "line", "column", "reason")


def import_run_problems_csv(*, run: ImportRun) -> Iterator[str]:
    """Every rejected row and warning of a run as CSV text, the header first, read from the database in chunks
    (a run over a broken file can have millions). Cells are spreadsheet-safe: file names and the values
    quoted in reasons come from the imported files."""
    out = _Line()
    writer = csv.writer(out, lineterminator="\n")
    yield writer.writerow(PROBLEM_COLUMNS)
    problems = run.rejections.order_by("id").values_list("kept", "file", "line", "column", "reason")
    for kept, file, line, column, reason in problems.iterator(chunk_size=5000):
        yield writer.writerow(["warning" if kept else "rejected", spreadsheet_safe(file), line or "",
                               spreadsheet_safe(column), spreadsheet_safe(reason)])


class _Line:
    """A file-like object whose write returns the text, so csv.writer hands each row over (Django's streaming
    CSV recipe)."""

    def write(self, value: str) -> str:
        return value


# --- Accounts, posts and clusters ------------------------------------------------------------------

def accounts_visible(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Account]:
    if not has_role(user, INVESTIGATOR):
        return Account.objects.none()
    return Account.objects.select_related("platform", "profile_image")


def posts_visible(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Post]:
    if not has_role(user, INVESTIGATOR):
        return Post.objects.none()
    return Post.objects.select_related("account__platform")


def detection_runs_visible(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[DetectionRun]:
    if not has_role(user, INVESTIGATOR):
        return DetectionRun.objects.none()
    return DetectionRun.objects.select_related("dataset", "started_by").order_by("-created_at")


def clusters_visible(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Cluster]:
    if not has_role(user, INVESTIGATOR):
        return Cluster.objects.none()
    return Cluster.objects.select_related("detection_run__dataset")


def detection_runs_latest() -> QuerySet[DetectionRun]:
    """The latest succeeded run of each dataset (and of all data): the current clusters. Each run keeps its own
    clusters (a case cites the run it took them from), so running a detection again would otherwise show
    every cluster once per run on the dashboard, the cluster list and the review queue."""
    return (DetectionRun.objects.filter(status=JobStatus.SUCCEEDED)
            .order_by("dataset_id", "-created_at", "-pk").distinct("dataset_id"))


def clusters_current(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Cluster]:
    """The clusters of each dataset's latest run (detection_runs_latest)."""
    return clusters_visible(user=user).filter(detection_run__in=detection_runs_latest().values("pk"))


CLUSTER_SORTS = {"score": "-score", "size": "-size", "newest": "-detection_run__created_at", "label": "label"}
REVIEW_FILTERS = ("unreviewed", "in_progress", "reviewed")


def clusters_filtered(*, user: AbstractBaseUser | AnonymousUser, dataset: int | None = None, run: int | None = None,
                      every_run: bool = False, signal: str = "", min_size: int | None = None,
                      min_score: float | None = None, review: str = "", sort: str = "score") -> QuerySet[Cluster]:
    """The cluster list's filters: one run's clusters, or each dataset's latest run's (clusters_current), or with
    `every_run` those of every run. Review state: unreviewed (no member decided), in progress (some decided),
    reviewed (every member decided)."""
    scope = clusters_visible(user=user) if run or every_run else clusters_current(user=user)
    clusters = scope.annotate(decided=Count("members", filter=~Q(members__review_status=ReviewStatus.UNREVIEWED)))
    if dataset:
        clusters = clusters.filter(detection_run__dataset_id=dataset)
    if run:
        clusters = clusters.filter(detection_run_id=run)
    if signal:
        clusters = clusters.filter(signal_breakdown__has_key=signal)
    if min_size:
        clusters = clusters.filter(size__gte=min_size)
    if min_score is not None:
        clusters = clusters.filter(score__gte=min_score)
    if review == "unreviewed":
        clusters = clusters.filter(decided=0)
    elif review == "in_progress":
        clusters = clusters.filter(decided__gt=0, decided__lt=F("size"))
    elif review == "reviewed":
        clusters = clusters.filter(decided__gte=F("size"))
    return clusters.order_by(CLUSTER_SORTS.get(sort, "-score"), "id")


def cluster_members(*, cluster: Cluster) -> list[Account]:
    members = (Account.objects.filter(clustermember__cluster=cluster)
               .annotate(centrality=F("clustermember__centrality"), posts_stored=Count("posts", distinct=True))
               .select_related("platform", "profile_image").order_by("-centrality", "handle"))
    return list(members)


def cluster_edges(*, cluster: Cluster) -> QuerySet[CoordinationEdge]:
    member_ids = ClusterMember.objects.filter(cluster=cluster).values("account_id")
    return (CoordinationEdge.objects.filter(detection_run_id=cluster.detection_run_id, account_a__in=member_ids,
                                            account_b__in=member_ids)
            .select_related("account_a", "account_b").order_by("signal", "-weight"))


@dataclass
class EvidencePair:
    edge: CoordinationEdge
    post_a: Post | None
    post_b: Post | None


@dataclass
class SignalEvidence:
    signal: str
    label: str
    summary: dict
    edges: int
    pairs: list[EvidencePair] = field(default_factory=list)
    account_edges: list[CoordinationEdge] = field(default_factory=list)  # signals without post pairs


SIGNAL_LABELS = {
    "co_image": "Near-identical images within the window", "co_image_reuse": "Images reused much later",
    "co_text": "Identical text", "co_similar_text": "Near-identical text", "co_link": "Same link",
    "co_repost": "Reposts of the same original", "co_hashtag_sequence": "Same hashtag set",
    "shared_avatar": "Copied profile pictures", "creation_burst": "Created together", "dormancy": "Silent together",
    "look_alike_names": "Look-alike names", "synchronised_activity": "Synchronised activity",
}


def cluster_evidence(*, cluster: Cluster, pairs_per_signal: int = 12) -> list[SignalEvidence]:
    """Per signal: the cluster's breakdown figures and the first post pairs behind its strongest edges."""
    edges = list(cluster_edges(cluster=cluster))
    by_signal: dict[str, list[CoordinationEdge]] = {}
    for edge in edges:
        by_signal.setdefault(edge.signal, []).append(edge)
    wanted: list[tuple[CoordinationEdge, int, int]] = []
    for signal_edges in by_signal.values():
        picked = 0
        for edge in signal_edges:
            for pair in edge.evidence[: pairs_per_signal - picked]:
                if isinstance(pair, list | tuple) and len(pair) == 2:
                    wanted.append((edge, int(pair[0]), int(pair[1])))
                    picked += 1
            if picked >= pairs_per_signal:
                break
    posts = Post.objects.select_related("account").prefetch_related("media").in_bulk(
        {p for _, a, b in wanted for p in (a, b)})
    result = []
    breakdown = cluster.signal_breakdown or {}
    for signal, signal_edges in by_signal.items():
        evidence = SignalEvidence(signal, SIGNAL_LABELS.get(signal, signal), breakdown.get(signal, {}), len(signal_edges))
        evidence.pairs = [EvidencePair(e, posts.get(a), posts.get(b)) for e, a, b in wanted if e.signal == signal]
        if not evidence.pairs:
            evidence.account_edges = signal_edges[:pairs_per_signal]
        result.append(evidence)
    result.sort(key=lambda s: -_score_share(s.signal, s.summary))
    return result


def _score_share(signal: str, summary: dict) -> float:
    """How much a signal adds to its cluster's score: the order the evidence is shown in, strongest first (many
    pictures reused weeks apart weigh less than fewer posted minutes apart)."""
    from accounts.coordination.services import signal_score

    weight = summary.get("weight", 0) if isinstance(summary, dict) else 0
    return signal_score(signal, float(weight))


def cluster_graph(*, cluster: Cluster, members: list[Account]) -> dict:
    """Nodes and edges for the network drawing: one edge per account pair, its signals listed."""
    pairs: dict[tuple[int, int], dict] = {}
    for edge in cluster_edges(cluster=cluster).values("account_a_id", "account_b_id", "signal", "weight"):
        key = (edge["account_a_id"], edge["account_b_id"])
        entry = pairs.setdefault(key, {"signals": [], "weight": 0.0})
        entry["signals"].append(edge["signal"])
        entry["weight"] += edge["weight"]
    return {
        "nodes": [{"id": str(a.pk), "label": f"@{reveal(a.handle)}", "url": reverse("accounts:account", args=[a.pk]),
                   "centrality": float(a.centrality or 0), "review": a.review_status} for a in members],
        "edges": [{"source": str(a), "target": str(b), "weight": round(v["weight"], 2), "signals": sorted(v["signals"])}
                  for (a, b), v in pairs.items()],
    }


@dataclass
class SharedPicture:
    cluster: MediaCluster
    copies: list[MediaAsset]
    accounts: list[str]
    first_posted_at: object


def cluster_shared_media(*, cluster: Cluster, limit: int = 12) -> list[SharedPicture]:
    """Pictures (media clusters) posted by two or more of the cluster's accounts, with the copies they used."""
    member_ids = list(ClusterMember.objects.filter(cluster=cluster).values_list("account_id", flat=True))
    rows = (PostMedia.objects.filter(post__account_id__in=member_ids, media__cluster_membership__isnull=False)
            .values("media__cluster_membership__cluster_id")
            .annotate(accounts=Count("post__account_id", distinct=True), first=Min("post__posted_at"))
            .filter(accounts__gte=2).order_by("-accounts", "first")[:limit])
    found = {r["media__cluster_membership__cluster_id"]: r for r in rows}
    if not found:
        return []
    copies: dict[int, list[MediaAsset]] = {}
    posted: dict[int, set[str]] = {}
    for link in (PostMedia.objects.filter(post__account_id__in=member_ids, media__cluster_membership__cluster_id__in=found)
                 .select_related("media__cluster_membership", "post__account")):
        cid = link.media.cluster_membership.cluster_id
        bucket = copies.setdefault(cid, [])
        if all(m.pk != link.media_id for m in bucket):
            bucket.append(link.media)
        posted.setdefault(cid, set()).add(link.post.account.handle)
    media_clusters = MediaCluster.objects.in_bulk(list(found))
    return [SharedPicture(media_clusters[cid], _shown_copies(copies.get(cid, []), media_clusters[cid].centre_id),
                          sorted(posted.get(cid, ())), found[cid]["first"]) for cid in found if cid in media_clusters]


def _shown_copies(copies: list[MediaAsset], centre_id: int, shown: int = 6) -> list[MediaAsset]:
    """The copies to show of a picture: the one closest to the picture's reference copy (itself, when it was
    posted), then the most altered ones, which tell how the picture was changed."""
    ordered = sorted(copies, key=lambda m: (m.pk != centre_id, m.cluster_membership.distance, m.pk))
    return ordered[:1] + sorted(ordered[1:], key=lambda m: (-m.cluster_membership.distance, m.pk))[:shown - 1]


@dataclass
class AccountLink:
    other: Account
    edges: list[CoordinationEdge]

    @property
    def weight(self) -> float:
        return sum(e.weight for e in self.edges)


def account_links(*, account: Account, limit: int = 30) -> list[AccountLink]:
    """Accounts linked to this one by the latest detection run that linked it at all, strongest first."""
    touching = CoordinationEdge.objects.filter(Q(account_a=account) | Q(account_b=account))
    latest = touching.order_by("-detection_run_id").values_list("detection_run_id", flat=True).first()
    if latest is None:
        return []
    links: dict[int, AccountLink] = {}
    for edge in touching.filter(detection_run_id=latest).select_related("account_a__platform", "account_b__platform"):
        other = edge.account_b if edge.account_a_id == account.pk else edge.account_a
        links.setdefault(other.pk, AccountLink(other, [])).edges.append(edge)
    return sorted(links.values(), key=lambda link: -link.weight)[:limit]


def account_activity(*, account: Account) -> list[dict]:
    rows = (Post.objects.filter(account=account).annotate(day=TruncDate("posted_at")).values("day")
            .annotate(posts=Count("id")).order_by("day"))
    return [{"date": r["day"].isoformat(), "posts": r["posts"]} for r in rows]


def account_posts(*, account: Account) -> QuerySet[Post]:
    return (Post.objects.filter(account=account).prefetch_related("media").order_by("-posted_at", "-id"))


def account_clusters(*, account: Account) -> QuerySet[Cluster]:
    return account.clusters.select_related("detection_run__dataset").order_by("-detection_run_id", "-score")


# --- Search ----------------------------------------------------------------------------------------

SEARCH_KINDS = ("accounts", "posts", "hashtags", "links")


def search_accounts(*, user: AbstractBaseUser | AnonymousUser, query: str) -> QuerySet[Account]:
    query = query.strip().lstrip("@")
    return (accounts_visible(user=user).filter(Q(handle__icontains=query) | Q(display_name__icontains=query)
                                               | Q(external_id=query))
            .order_by("handle"))


def search_posts(*, user: AbstractBaseUser | AnonymousUser, query: str) -> QuerySet[Post]:
    """Captions by PostgreSQL full-text search ('simple' configuration: every language, no stemming)."""
    search = SearchQuery(query, config="simple", search_type="websearch")
    return (posts_visible(user=user).annotate(document=SearchVector("text", config="simple"))
            .filter(document=search).order_by("-posted_at", "-id"))


def search_hashtag(*, user: AbstractBaseUser | AnonymousUser, query: str) -> QuerySet[Post]:
    tag = query.strip().lstrip("#").lower()
    return posts_visible(user=user).filter(hashtags__contains=[tag]).order_by("-posted_at", "-id")


def search_link(*, user: AbstractBaseUser | AnonymousUser, query: str) -> QuerySet[Post]:
    link = normalize_url(query.strip()) or query.strip()
    return posts_visible(user=user).filter(links__contains=[link]).order_by("-posted_at", "-id")
