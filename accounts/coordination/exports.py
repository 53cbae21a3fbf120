"""A detection run's network, whole or one cluster, as GraphML and GEXF (for Gephi) and as a CSV edge list."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import networkx as nx

from accounts.models import Account, Cluster, ClusterMember, CoordinationEdge, DetectionRun
from investigator.text import spreadsheet_safe

FORMATS = ("graphml", "gexf", "csv")


def network_graph(*, run: DetectionRun, cluster: Cluster | None = None) -> nx.Graph:
    """Accounts as nodes (handle, platform, review state, cluster); one edge per account pair with each
    signal's weight as an attribute and the total as `weight`."""
    edges = CoordinationEdge.objects.filter(detection_run=run)
    if cluster is not None:
        members = list(ClusterMember.objects.filter(cluster=cluster).values_list("account_id", flat=True))
        edges = edges.filter(account_a_id__in=members, account_b_id__in=members)
    graph = nx.Graph(detection_run=run.pk, parameters=json.dumps(run.parameters, sort_keys=True, default=str))
    cluster_of = dict(ClusterMember.objects.filter(cluster__detection_run=run).values_list("account_id", "cluster_id"))
    for a, b, signal, weight in edges.values_list("account_a_id", "account_b_id", "signal", "weight").order_by("id"):
        data = graph.get_edge_data(a, b) or {"weight": 0.0, "signals": ""}
        data[signal] = weight
        data["weight"] += weight
        data["signals"] = ",".join(sorted({*filter(None, data["signals"].split(",")), signal}))
        graph.add_edge(a, b, **data)
    node_ids = set(graph.nodes) | (set(members) if cluster is not None else set())
    for account in Account.objects.filter(pk__in=node_ids).select_related("platform"):
        graph.add_node(account.pk, label=account.handle, platform=account.platform.slug,
                       review_status=account.review_status, cluster=cluster_of.get(account.pk, 0))
    return graph


def network_export(*, run: DetectionRun, format: str, cluster: Cluster | None = None) -> bytes:
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r} (choose from {', '.join(FORMATS)})")
    graph = network_graph(run=run, cluster=cluster)
    if format == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["source", "target", "source_handle", "target_handle", "weight", "signals"])
        for a, b, data in sorted(graph.edges(data=True)):
            writer.writerow([a, b, spreadsheet_safe(graph.nodes[a].get("label", "")),
                             spreadsheet_safe(graph.nodes[b].get("label", "")), data["weight"], data["signals"]])
        return out.getvalue().encode()
    buffer = io.BytesIO()
    (nx.write_graphml if format == "graphml" else nx.write_gexf)(graph, buffer)
    return buffer.getvalue()


def network_write(*, run: DetectionRun, path: Path, cluster: Cluster | None = None) -> None:
    format = path.suffix.lstrip(".").lower()
    path.write_bytes(network_export(run=run, format=format, cluster=cluster))
