"""A small hand-built investigation shared by the workbench's view and browser tests: four accounts (one
named, described and captioned by an adversary), identical posts, a detection run with one cluster."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from accounts.models import Account, Cluster, ClusterMember, CoordinationEdge, Dataset, DetectionRun, Platform, Post

HOSTILE_HANDLE = "<script>alert('h')</script>\u202eevil"
HOSTILE_BIO = "<img src=x onerror=alert('bio')> bio\u200bwith\u200dzero-width"
HOSTILE_TEXT = "Vote now <script>alert('caption')</script> #Rigged https://news.example.org/story"
LONG_CAPTION = "A" * 9990 + " tail-marker"


@dataclass
class Investigation:
    dataset: Dataset
    accounts: list[Account]
    posts: list[Post]
    run: DetectionRun
    cluster: Cluster


def build_investigation(extra_members: int = 0, name: str = "ops") -> Investigation:
    dataset = Dataset.objects.create(name=name)
    # get_or_create: transactional tests flush the platforms the data migration made.
    platform, _ = Platform.objects.get_or_create(slug="twitter", defaults={"name": "Twitter/X"})
    created = datetime(2018, 8, 3, 10, tzinfo=UTC)
    specs = [
        dict(handle=HOSTILE_HANDLE, display_name="Real\u200bNews\u202e", bio=HOSTILE_BIO, external_url="javascript:alert('url')"),
        dict(handle="dumpchump1", display_name="Dump Chump"),
        dict(handle="dumpchump2", display_name="Dump Chump 2"),
        dict(handle="organic_reader", display_name="Just a reader"),
        *[dict(handle=f"dumpchump{n}") for n in range(3, 3 + extra_members)],
    ]
    accounts = []
    for n, spec in enumerate(specs):
        account = Account.objects.create(platform=platform, external_id=f"{name}-{n}", created_at=created,
                                         follower_count=10 * n, **spec)
        account.datasets.add(dataset)
        accounts.append(account)
    start = datetime(2018, 9, 1, 12, tzinfo=UTC)
    posts = []
    coordinated = [a for i, a in enumerate(accounts) if i != 3]
    for i, account in enumerate(coordinated):
        post = Post.objects.create(platform=platform, external_id=f"{name}-p{i}", account=account,
                                   posted_at=start + timedelta(minutes=i),
                                   text=HOSTILE_TEXT, hashtags=["rigged"], links=["https://news.example.org/story"],
                                   url="javascript:alert('post')", like_count=3)
        post.datasets.add(dataset)
        posts.append(post)
    long_post = Post.objects.create(platform=platform, external_id=f"{name}-long", account=accounts[0],
                                    posted_at=start + timedelta(days=1), text=LONG_CAPTION)
    long_post.datasets.add(dataset)
    organic = Post.objects.create(platform=platform, external_id=f"{name}-org", account=accounts[3], posted_at=start,
                                  text="Lovely weather in the park today")
    organic.datasets.add(dataset)
    run = DetectionRun.objects.create(dataset=dataset, status="succeeded", parameters={"window": 600},
                                      summary={"clusters": 1}, finished_at=start)
    for i, a in enumerate(coordinated):
        for j, b in enumerate(coordinated):
            if a.pk < b.pk:
                CoordinationEdge.objects.create(detection_run=run, account_a=a, account_b=b, signal="co_text", weight=1,
                                                evidence=[[posts[i].pk, posts[j].pk]],
                                                explanation="1 pair(s) of posts with identical text, median 1 min apart")
                CoordinationEdge.objects.create(detection_run=run, account_a=a, account_b=b, signal="creation_burst", weight=1,
                                                evidence=[], explanation="created together on 2018-08-03")
    cluster = Cluster.objects.create(
        detection_run=run, label="'dumpchump' network", score=7.5, size=len(coordinated),
        signal_breakdown={"co_text": {"edges": 3, "weight": 3, "accounts": 3, "posts": 3, "items": 1},
                          "creation_burst": {"edges": 3, "weight": 3, "accounts": 3, "posts": 0, "items": 0}, "_density": 1.0},
        explanation=f"{len(coordinated)} identical texts posted within 10 min; 3 accounts created on 2018-08-03.",
        timeline={"days": [{"date": "2018-09-01", "posts": 3, "interactions": 9}], "doubling_days": None},
    )
    for a in coordinated:
        ClusterMember.objects.create(cluster=cluster, account=a, centrality=1.0)
    return Investigation(dataset, accounts, posts, run, cluster)
