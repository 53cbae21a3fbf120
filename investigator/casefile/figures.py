"""The report's figures, computed here and drawn as SVG by the report template (so every label is escaped
there): the network of the case's accounts, posts per day, and each picture beside its altered copies."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from accounts.models import Account, CoordinationEdge, Post
from accounts.selectors import SIGNAL_LABELS
from media_analysis.matching import Thresholds, media_match
from media_analysis.models import MediaAsset
from media_analysis.selectors import VIA_LABELS, stored_signature
from media_analysis.services import KeypointChecks

NETWORK_MAX_NODES = 150
SIGNAL_COLOURS = {
    "co_image": "#d9480f", "co_image_reuse": "#e8590c", "co_text": "#1c7ed6", "co_similar_text": "#4dabf7",
    "co_link": "#2b8a3e", "co_repost": "#9c36b5", "co_hashtag_sequence": "#f08c00", "shared_avatar": "#c2255c",
    "creation_burst": "#5c940d", "dormancy": "#868e96", "look_alike_names": "#7048e8", "synchronised_activity": "#0b7285",
}
STATUS_COLOURS = {"confirmed": "#c92a2a", "cleared": "#2b8a3e", "inconclusive": "#e67700", "unreviewed": "#495057"}


@dataclass
class Network:
    width: int
    height: int
    nodes: list[dict] = field(default_factory=list)
    edges: list[dict] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)
    omitted: int = 0


def network_figure(accounts: list[Account], edges: list[CoordinationEdge], *, width: int = 680, height: int = 440) -> Network:
    """The accounts as nodes (coloured by review decision, sized by links), one line per linked pair in the
    colour of its strongest signal, laid out by Kamada–Kawai (deterministic: same case, same picture)."""
    import igraph

    degree: dict[int, float] = {}
    pairs: dict[tuple[int, int], CoordinationEdge] = {}
    for edge in edges:
        key = (edge.account_a_id, edge.account_b_id)
        if key not in pairs or edge.weight > pairs[key].weight:
            pairs[key] = edge
        for account in key:
            degree[account] = degree.get(account, 0) + edge.weight
    shown = sorted(accounts, key=lambda a: (-degree.get(a.pk, 0), a.pk))[:NETWORK_MAX_NODES]
    index = {a.pk: n for n, a in enumerate(shown)}
    links = [(index[a], index[b], edge) for (a, b), edge in pairs.items() if a in index and b in index]
    figure = Network(width, height, omitted=len(accounts) - len(shown))
    if not shown:
        return figure
    graph = igraph.Graph(n=len(shown), edges=[(a, b) for a, b, _ in links])
    layout = graph.layout_kamada_kawai() if len(shown) > 1 else igraph.Layout([(0.0, 0.0)])
    xs, ys = [p[0] for p in layout.coords], [p[1] for p in layout.coords]
    span_x, span_y = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    margin = 40

    def place(n: int) -> tuple[float, float]:
        return (round(margin + (xs[n] - min(xs)) / span_x * (width - 2 * margin), 1),
                round(margin + (ys[n] - min(ys)) / span_y * (height - 2 * margin), 1))

    top = max(degree.values(), default=1) or 1
    for n, account in enumerate(shown):
        x, y = place(n)
        r = round(5 + 9 * math.sqrt(degree.get(account.pk, 0) / top), 1)
        right = x > width / 2  # labels point inwards, so none runs off the picture
        figure.nodes.append({"x": x, "y": y, "r": r, "label_x": round(x - r - 3 if right else x + r + 3, 1),
                             "anchor": "end" if right else "start",
                             "label": f"@{account.handle[:24]}", "colour": STATUS_COLOURS.get(account.review_status, "#495057")})
    for a, b, edge in links:
        (x1, y1), (x2, y2) = place(a), place(b)
        figure.edges.append({"x1": x1, "y1": y1, "x2": x2, "y2": y2, "colour": SIGNAL_COLOURS.get(edge.signal, "#adb5bd"),
                             "width": round(min(4.0, 0.8 + edge.weight / 2), 1)})
    used = sorted({edge.signal for _, _, edge in links})
    figure.legend = [(SIGNAL_LABELS.get(s, s), SIGNAL_COLOURS.get(s, "#adb5bd")) for s in used]
    return figure


@dataclass
class Timeline:
    width: int
    height: int
    bars: list[dict] = field(default_factory=list)
    ticks: list[dict] = field(default_factory=list)
    peak: int = 0
    first: str = ""
    last: str = ""


def timeline_figure(days: list[dict[str, Any]], *, width: int = 680, height: int = 160) -> Timeline:
    """Posts per day (case_activity's rows) as bars on a continuous day axis, empty days included."""
    figure = Timeline(width, height)
    if not days:
        return figure
    counts = {date.fromisoformat(d["date"]): int(d["posts"]) for d in days}
    first, last = min(counts), max(counts)
    span = (last - first).days + 1
    figure.peak, figure.first, figure.last = max(counts.values()), first.isoformat(), last.isoformat()
    plot_h, left = height - 30, 36
    step = (width - left - 4) / span
    for day, posts in sorted(counts.items()):
        h = max(1.0, plot_h * posts / figure.peak)
        figure.bars.append({"x": round(left + (day - first).days * step, 2), "y": round(plot_h - h + 4, 2),
                            "w": round(max(step * 0.85, 0.6), 2), "h": round(h, 2), "title": f"{day}: {posts}"})
    for n in range(5):
        offset = round((span - 1) * n / 4)
        label = (first.toordinal() + offset)
        figure.ticks.append({"x": round(left + offset * step, 2), "label": date.fromordinal(label).isoformat()})
    return figure


@dataclass
class CopyGroup:
    original: MediaAsset
    copies: list[dict] = field(default_factory=list)  # {"asset", "via", "keypoints", "distance", "first_posted"}


def copy_groups(media: list[MediaAsset], posts: list[Post], media_of_post: dict[int, list[str]],
                *, limit: int = 40) -> list[CopyGroup]:
    """Each picture beside its altered copies among the case file's pictures. Leader first, as media clusters
    are built: in order of first posting, a picture joins the first earlier original it matches, so a chain
    of small changes cannot pull unrelated pictures together."""
    first_posted: dict[str, datetime] = {}
    for post in posts:
        for sha in media_of_post.get(post.pk, []):
            first_posted.setdefault(sha, post.posted_at)
    signed = [(asset, stored_signature(asset)) for asset in media if asset.signature]
    signed.sort(key=lambda pair: (first_posted.get(pair[0].sha256) is None, first_posted.get(pair[0].sha256) or 0,
                                  pair[0].pk))
    thresholds = Thresholds.from_settings()
    checks = KeypointChecks()
    groups: list[tuple[CopyGroup, Any]] = []
    for asset, signature in signed:
        for group, leader in groups:
            evidence = media_match(leader, signature, thresholds, checks.between(group.original.pk, asset.pk))
            if evidence.matched:
                group.copies.append({"asset": asset, "via": VIA_LABELS.get(evidence.via, evidence.via),
                                     "keypoints": None if evidence.via.startswith("pdq")
                                     else checks.counts.get((group.original.pk, asset.pk)),
                                     "distance": evidence.distance, "first_posted": first_posted.get(asset.sha256)})
                break
        else:
            groups.append((CopyGroup(asset), signature))
    checks.save()
    found = [group for group, _ in groups if group.copies]
    for group in found:
        group.original.first_posted = first_posted.get(group.original.sha256)
    found.sort(key=lambda g: -len(g.copies))
    return found[:limit]
