"""Starting a detection from the page, its live progress, and who may do it."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections
from django.urls import reverse

from accounts.coordination.services import detection_run_create, detection_run_execute
from accounts.models import DetectionRun
from tests.workbench import build_investigation


def _wait_for(run_id: int, timeout: float = 120) -> DetectionRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = DetectionRun.objects.get(pk=run_id)
        if run.status in ("succeeded", "failed"):
            return run
        time.sleep(0.3)
    raise AssertionError(f"detection run {run_id} did not finish")


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["outsider", "investigator", "lead", "reviewer", "admin"])
def test_detection_pages_need_a_role(client, cast, role):
    run = DetectionRun.objects.create(status="running", progress_total=10, progress_done=4)
    client.force_login(cast[role])
    expected = 403 if role == "outsider" else 200
    assert client.get(reverse("accounts:detections")).status_code == expected
    assert client.get(reverse("accounts:detection", args=[run.pk])).status_code == expected
    if role == "outsider":
        assert client.post(reverse("accounts:detections"), {}).status_code == 403
        return
    fragment = client.get(reverse("accounts:detection", args=[run.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith('<div id="detection-progress"') and 'hx-trigger="every 1s"' in fragment
    assert '<progress max="100" value="40">' in fragment


@pytest.mark.django_db
def test_bad_detection_form_is_refused_with_reasons(client, cast):
    inv = build_investigation()
    client.force_login(cast["investigator"])
    response = client.post(reverse("accounts:detections"), {"dataset": inv.dataset.pk, "signals": ["co_vibes"], "window": -1})
    body = response.content.decode()
    assert response.status_code == 200 and "co_vibes is not one of the available choices" in body
    assert DetectionRun.objects.count() == 1  # only the hand-built one


@pytest.mark.django_db
def test_the_progress_bar_says_what_the_worker_is_doing(client, cast):
    inv = build_investigation()
    run = detection_run_create(dataset=inv.dataset, enqueue=False)
    DetectionRun.objects.filter(pk=run.pk).update(status="running", progress_done=0,
                                                  stage="Grouping copies of pictures: 2,000 of 145,575")
    client.force_login(cast["investigator"])
    body = client.get(reverse("accounts:detection", args=[run.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "Grouping copies of pictures: 2,000 of 145,575" in body and 'hx-trigger="every 1s"' in body


@pytest.mark.django_db(transaction=True)
def test_progress_is_visible_while_the_signals_run():
    inv = build_investigation()
    run = detection_run_create(dataset=inv.dataset, signals=["co_text", "creation_burst"], enqueue=False)
    seen: list[int] = []

    def progress(label: str) -> None:
        def read() -> None:  # another connection, as the page's
            seen.append(DetectionRun.objects.get(pk=run.pk).progress_done)
            connections.close_all()

        reader = threading.Thread(target=read)
        reader.start()
        reader.join()

    detection_run_execute(run=run, progress=progress)
    assert seen == list(range(1, len(seen) + 1)) and len(seen) == run.progress_total  # its last step is the last


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("celery_worker_process", ["filesystem"], indirect=True)
def test_detection_started_on_the_page_runs_on_a_worker(client, cast, celery_worker_process):
    inv = build_investigation()
    client.force_login(cast["investigator"])
    response = client.post(reverse("accounts:detections"),
                           {"dataset": inv.dataset.pk, "signals": ["co_text", "creation_burst"], "window": 600})
    run = DetectionRun.objects.exclude(pk=inv.run.pk).get()
    assert response.status_code == 302 and response["Location"] == reverse("accounts:detection", args=[run.pk])
    run = _wait_for(run.pk)
    assert run.status == "succeeded" and run.started_by == cast["investigator"] and run.parameters["window"] == 600
    assert run.summary["clusters"] == 1
    page = client.get(reverse("accounts:detection", args=[run.pk])).content.decode()
    cluster = run.clusters.get()
    assert "Succeeded" in page and reverse("accounts:cluster", args=[cluster.pk]) in page and "every 1s" not in page
    assert {a.handle for a in cluster.members.all()} == {a.handle for a in inv.accounts if a.handle != "organic_reader"}


@pytest.mark.django_db
def test_a_clusters_evidence_comes_strongest_first_as_its_score_weighs_it(client, cast):
    """Thirty pictures reused weeks apart weigh less in the score than twelve posted minutes apart, so the
    cluster page opens on the latter (by raw weight the reuse would come first)."""
    from accounts.coordination.services import signal_score
    from accounts.models import Cluster, ClusterMember, CoordinationEdge

    inv = build_investigation()
    a, b = inv.accounts[0], inv.accounts[1]
    run = DetectionRun.objects.create(dataset=inv.dataset, status="succeeded")
    weights = {"co_image_reuse": 30, "co_image": 12, "synchronised_activity": 7}
    cluster = Cluster.objects.create(detection_run=run, label="weighed", size=2, signal_breakdown={
        signal: {"edges": 1, "weight": weight, "accounts": 2} for signal, weight in weights.items()})
    for member in (a, b):
        ClusterMember.objects.create(cluster=cluster, account=member)
    first, second = sorted((a, b), key=lambda x: x.pk)
    for signal, weight in weights.items():
        CoordinationEdge.objects.create(detection_run=run, account_a=first, account_b=second, signal=signal,
                                        weight=weight, explanation=f"{signal} evidence")
    assert signal_score("co_image", 12) > signal_score("co_image_reuse", 30) > signal_score("synchronised_activity", 7)

    client.force_login(cast["investigator"])
    page = client.get(reverse("accounts:cluster", args=[cluster.pk])).content.decode()
    shown = [page.index(label) for label in ("Near-identical images within the window", "Images reused much later",
                                             "Synchronised activity —")]
    assert shown == sorted(shown)
    assert '<details class="evidence card" open>\n    <summary>Near-identical images within the window' in page


@pytest.mark.django_db
def test_running_a_detection_again_shows_each_cluster_once_from_the_latest_run(client, cast):
    """Each run keeps its clusters (cases cite them), but the dashboard, the cluster list, the review queue and the
    API show each dataset's latest run unless asked for another or for every run."""
    from rest_framework.test import APIClient

    from accounts.models import Cluster, ClusterMember

    inv = build_investigation()
    other = build_investigation(name="elsewhere")  # another dataset: its latest run counts too
    again = DetectionRun.objects.create(dataset=inv.dataset, status="succeeded", summary={"clusters": 1})
    rerun = Cluster.objects.create(detection_run=again, label="'dumpchump' network again", score=9.0,
                                   size=inv.cluster.size, signal_breakdown=inv.cluster.signal_breakdown)
    for member in inv.cluster.members.all():
        ClusterMember.objects.create(cluster=rerun, account=member)
    DetectionRun.objects.create(dataset=inv.dataset, status="failed")  # a later run that failed changes nothing

    client.force_login(cast["investigator"])
    dashboard = client.get("/").content.decode()
    assert "&#x27;dumpchump&#x27; network again" in dashboard
    assert dashboard.count(reverse("accounts:cluster", args=[rerun.pk])) == 1
    assert reverse("accounts:cluster", args=[inv.cluster.pk]) + '"' not in dashboard

    def listed(**query) -> set[int]:
        page = client.get(reverse("accounts:clusters"), query).content.decode()
        return {c.pk for c in (inv.cluster, rerun, other.cluster) if reverse("accounts:cluster", args=[c.pk]) + '"' in page}

    assert listed() == {rerun.pk, other.cluster.pk}
    assert listed(run="all") == {inv.cluster.pk, rerun.pk, other.cluster.pk}
    assert listed(run=inv.run.pk) == {inv.cluster.pk}
    assert client.get(reverse("accounts:cluster", args=[inv.cluster.pk])).status_code == 200  # still there

    from investigator.selectors import review_queue

    queued = list(review_queue(user=cast["reviewer"]))
    assert len(queued) == len({a.pk for a in queued}) == 6  # three accounts of each dataset, each once
    dumpchump1 = next(a for a in queued if a.pk == inv.accounts[1].pk)
    assert (dumpchump1.cluster_count, dumpchump1.top_score) == (1, 9.0)  # the latest run's cluster only
    client.force_login(cast["reviewer"])
    assert client.get(reverse("review")).content.decode().count(reverse("accounts:account", args=[dumpchump1.pk])) == 1

    api = APIClient()
    api.force_authenticate(cast["investigator"])
    assert {c["id"] for c in api.get("/api/clusters/").json()["results"]} == {rerun.pk, other.cluster.pk}
    assert {c["id"] for c in api.get("/api/clusters/", {"runs": "all"}).json()["results"]} == {
        inv.cluster.pk, rerun.pk, other.cluster.pk}
    assert [c["id"] for c in api.get("/api/clusters/", {"detection_run": inv.run.pk}).json()["results"]] == [
        inv.cluster.pk]
    assert api.get(f"/api/clusters/{inv.cluster.pk}/").status_code == 200
