"""The REST API: every endpoint per role, the workflows behind it, filters and paging, the schema and its docs."""

from __future__ import annotations

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import DetectionRun, ImportRun
from investigator.models import Annotation, AuditEvent, Case, CaseExport, CaseItem, ReviewDecision
from investigator.services import case_create, case_items_add
from media_analysis.models import MediaAsset
from media_analysis.services import media_assets_register, media_file_store, media_hash_batch, media_hash_claim
from tests.workbench import HOSTILE_HANDLE, build_investigation

pytestmark = pytest.mark.django_db

EVERYONE = {"investigator", "lead", "reviewer", "admin"}
LEADS = {"lead", "admin"}
REVIEWERS = {"reviewer", "admin"}
AUDITORS = {"lead", "reviewer", "admin"}
ROLES = ["outsider", "investigator", "lead", "reviewer", "admin"]


def _jpeg(array, size: int | None = None, quality: int = 90) -> bytes:
    image = Image.fromarray(array)
    if size:
        image = image.resize((size, size))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


@pytest.fixture
def world(tmp_path, settings, cast):
    """The shared investigation, one hashed picture posted by a member, a case the investigator built holding
    a member, and a finished export of it."""
    import skimage.data
    from django.utils import timezone

    settings.MEDIA_ROOT = str(tmp_path / "media")
    inv = build_investigation()
    picture = tmp_path / "chelsea.jpg"
    picture.write_bytes(_jpeg(skimage.data.chelsea()))
    media_assets_register(files=[(media_file_store(path=picture), picture.name)])
    media_hash_batch(asset_ids=media_hash_claim(limit=10))
    asset = MediaAsset.objects.get()
    inv.posts[1].media.add(asset)
    case = case_create(user=cast["investigator"], title="Dump chump network")
    case_items_add(case=case, user=cast["investigator"], kind="account", ids=[inv.accounts[1].pk])
    export = CaseExport.objects.create(case=case, requested_by=cast["lead"], status="succeeded",
                                       expires_at=timezone.now() - timezone.timedelta(hours=1))
    run = ImportRun.objects.create(dataset=inv.dataset, format="jsonl", status="succeeded")
    return {"inv": inv, "asset": asset, "case": case, "export": export, "import": run, "picture": picture}


def _endpoints(world: dict) -> list[tuple[str, str, dict | None, set[str], int]]:
    """(method, url, body, roles allowed, status when allowed). Order matters: later calls see earlier writes.
    Bodies with a file are sent as multipart, the others as JSON."""
    inv, case = world["inv"], world["case"]
    account, cluster, asset = inv.accounts[1], inv.cluster, world["asset"]
    item = case.items.get()
    note = Annotation.objects.create(case_item=item, author=case.created_by, text="first note")
    decision = ReviewDecision.objects.create(account=inv.accounts[3], state="cleared", reason="organic", reviewer=case.created_by)
    event = AuditEvent.objects.filter(case=case).first()
    picture = world["picture"].read_bytes()
    api = "/api"
    return [
        ("get", f"{api}/", None, EVERYONE | {"outsider"}, 200),  # the router's index lists links only
        ("get", f"{api}/platforms/", None, EVERYONE, 200),
        ("get", f"{api}/platforms/{inv.accounts[0].platform_id}/", None, EVERYONE, 200),
        ("get", f"{api}/datasets/", None, EVERYONE, 200),
        ("get", f"{api}/datasets/{inv.dataset.pk}/", None, EVERYONE, 200),
        ("get", f"{api}/accounts/", None, EVERYONE, 200),
        ("get", f"{api}/accounts/{account.pk}/", None, EVERYONE, 200),
        ("get", f"{api}/posts/", None, EVERYONE, 200),
        ("get", f"{api}/posts/{inv.posts[0].pk}/", None, EVERYONE, 200),
        ("get", f"{api}/media/", None, EVERYONE, 200),
        ("get", f"{api}/media/{asset.pk}/", None, EVERYONE, 200),
        ("get", f"{api}/media/{asset.pk}/similar/", None, EVERYONE, 200),
        ("post", f"{api}/media/lookup/", {"image": SimpleUploadedFile("probe.jpg", picture)}, EVERYONE, 200),
        ("get", f"{api}/imports/", None, EVERYONE, 200),
        ("post", f"{api}/imports/", {"dataset": "api", "format": "jsonl",
                                     "files": [SimpleUploadedFile("x.jsonl", b'{"type": "account"}\n')]}, EVERYONE, 202),
        ("get", f"{api}/imports/{world['import'].pk}/", None, EVERYONE, 200),
        ("get", f"{api}/imports/{world['import'].pk}/problems/", None, EVERYONE, 200),
        ("get", f"{api}/detections/", None, EVERYONE, 200),
        ("get", f"{api}/detections/{inv.run.pk}/", None, EVERYONE, 200),
        ("post", f"{api}/detections/", {"dataset": inv.dataset.pk, "signals": ["co_text"]}, EVERYONE, 202),
        ("get", f"{api}/clusters/", None, EVERYONE, 200),
        ("get", f"{api}/clusters/{cluster.pk}/", None, EVERYONE, 200),
        ("get", f"{api}/clusters/{cluster.pk}/accounts/", None, EVERYONE, 200),
        ("get", f"{api}/cases/", None, EVERYONE, 200),
        ("post", f"{api}/cases/", {"title": "From the API"}, EVERYONE, 201),
        # The investigator built the case; leads and admins see every case; the reviewer does not.
        ("get", f"{api}/cases/{case.pk}/", None, {"investigator"} | LEADS, 200),
        ("get", f"{api}/cases/{case.pk}/items/", None, {"investigator"} | LEADS, 200),
        ("post", f"{api}/cases/{case.pk}/items/", {"kind": "cluster", "ids": [cluster.pk]}, {"investigator"} | LEADS, 201),
        ("post", f"{api}/annotations/", {"case_item": item.pk, "text": "Same caption", "tags": "T0049"},
         {"investigator"} | LEADS, 201),
        ("get", f"{api}/annotations/", None, EVERYONE, 200),
        ("get", f"{api}/annotations/{note.pk}/", None, {"investigator"} | LEADS, 200),
        ("post", f"{api}/cases/{case.pk}/members/", {"member": "reviewer"}, {"investigator"} | LEADS, 200),
        ("post", f"{api}/cases/{case.pk}/status/", {"status": "in_review"}, {"investigator"} | LEADS, 200),
        ("post", f"{api}/cases/{case.pk}/assign/", {"assignee": "investigator"}, LEADS, 200),
        ("post", f"{api}/cases/{case.pk}/remove-items/", {"items": [item.pk]}, {"investigator"} | LEADS, 200),
        ("get", f"{api}/decisions/", None, EVERYONE, 200),
        ("get", f"{api}/decisions/{decision.pk}/", None, EVERYONE, 200),
        ("get", f"{api}/decisions/queue/", None, REVIEWERS, 200),
        ("post", f"{api}/decisions/", {"accounts": [account.pk], "state": "confirmed", "reason": "Same text, same minute"},
         REVIEWERS, 201),
        ("get", f"{api}/exports/", None, LEADS, 200),
        ("post", f"{api}/exports/", {"case": case.pk}, LEADS, 202),
        ("get", f"{api}/exports/{world['export'].pk}/", None, LEADS, 200),
        ("get", f"{api}/exports/{world['export'].pk}/download/", None, LEADS, 410),
        ("get", f"{api}/audit/", None, AUDITORS, 200),
        ("get", f"{api}/audit/verify/", None, AUDITORS, 200),
        ("get", f"{api}/audit/{event.pk}/", None, AUDITORS, 200),
        ("get", f"{api}/schema/", None, EVERYONE | {"outsider"}, 200),
    ]


def _call(api: APIClient, method: str, url: str, body: dict | None):  # noqa: ANN202 - a test response
    multipart = body is not None and any(isinstance(v, SimpleUploadedFile | list) and v and
                                         isinstance(v if not isinstance(v, list) else v[0], SimpleUploadedFile)
                                         for v in body.values())
    if multipart:
        for value in body.values():
            for upload in value if isinstance(value, list) else [value]:
                if isinstance(upload, SimpleUploadedFile):
                    upload.seek(0)
    return getattr(api, method)(url, body, format="multipart" if multipart else "json")


def test_the_role_tests_cover_every_operation_of_the_schema(cast, world):
    api = APIClient()
    api.force_authenticate(cast["admin"])
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operations = {(method, path) for path, methods in schema["paths"].items() for method in methods}
    tested = {(method, re.sub(r"/\d+/", "/{id}/", url)) for method, url, *_ in _endpoints(world)}
    assert operations - tested == set()


@pytest.mark.parametrize("role", ROLES)
def test_every_endpoint_checks_the_role(cast, world, role):
    api = APIClient()
    api.force_authenticate(cast[role])
    for method, url, body, allowed, ok in _endpoints(world):
        response = _call(api, method, url, body)
        expected = ok if role in allowed else None
        if expected is None:
            # No role at all: 403 everywhere. A role that may not see this case: 404, as on the pages.
            assert response.status_code in ({403} if role == "outsider" else {403, 404}), (method, url, role,
                                                                                            response.status_code)
        else:
            assert response.status_code == expected, (method, url, role, response.status_code, response.content[:300])


def test_anonymous_requests_are_refused(world):
    api = APIClient()
    for method, url, body, _, _ in _endpoints(world):
        assert _call(api, method, url, body).status_code in {401, 403}, url
    assert APIClient().get("/api/docs/").status_code in {401, 403}


def _counts() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (Case, CaseItem, Annotation, ReviewDecision, CaseExport, DetectionRun,
                                                      ImportRun, AuditEvent))


def test_nothing_is_written_by_refused_requests(cast, world):
    endpoints = _endpoints(world)
    before = _counts()
    api = APIClient()
    api.force_authenticate(cast["outsider"])
    for method, url, body, _, _ in endpoints:
        _call(api, method, url, body)
    api.force_authenticate(cast["investigator"])
    case = world["case"]
    assert api.post(f"/api/cases/{case.pk}/assign/", {"assignee": "lead"}, format="json").status_code == 403
    assert api.post("/api/decisions/", {"accounts": [world["inv"].accounts[0].pk], "state": "cleared", "reason": "x"},
                    format="json").status_code == 403
    assert api.post("/api/exports/", {"case": case.pk}, format="json").status_code == 403
    assert _counts() == before


def test_token_authentication(cast, world):
    token = Token.objects.create(user=cast["lead"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api.get("/api/exports/").status_code == 200
    api.credentials(HTTP_AUTHORIZATION="Token not-a-real-key")
    assert api.get("/api/accounts/").status_code == 401


def test_case_workflow_through_the_api(cast, world):
    inv = world["inv"]
    builder, reviewer, lead = APIClient(), APIClient(), APIClient()
    builder.force_authenticate(cast["investigator"])
    reviewer.force_authenticate(cast["reviewer"])
    lead.force_authenticate(cast["lead"])

    case = builder.post("/api/cases/", {"title": "  Flooding #Rigged  ", "summary": "<b>inert</b>"}, format="json").json()
    assert case["title"] == "Flooding #Rigged" and case["created_by"] == "investigator" and case["members"] == ["investigator"]
    ids = [a.pk for a in inv.accounts[:3]]
    assert builder.post(f"/api/cases/{case['id']}/items/", {"kind": "account", "ids": ids}, format="json").json() == {"added": 3}
    assert builder.post(f"/api/cases/{case['id']}/items/", {"kind": "account", "ids": ids}, format="json").json() == {"added": 0}
    unknown = builder.post(f"/api/cases/{case['id']}/items/", {"kind": "post", "ids": [10**9]}, format="json")
    assert unknown.status_code == 400 and "Unknown post id" in str(unknown.json())
    items = builder.get(f"/api/cases/{case['id']}/items/").json()["results"]
    assert [i["target"] for i in items] == ids and items[0]["kind"] == "account"

    note = builder.post("/api/annotations/", {"case_item": items[0]["id"], "text": "Stolen photo", "tags": "t0143.002, flood"},
                        format="json")
    assert note.status_code == 201 and note.json()["author"] == "investigator"
    bad_tag = builder.post("/api/annotations/", {"case_item": items[0]["id"], "tags": "<script>"}, format="json")
    assert bad_tag.status_code == 400 and "is not a tag" in str(bad_tag.json())
    items = builder.get(f"/api/cases/{case['id']}/items/").json()["results"]
    assert items[0]["tags"] == ["T0143.002", "flood"] and items[0]["annotations"][0]["text"] == "Stolen photo"
    assert [n["text"] for n in builder.get(f"/api/annotations/?case={case['id']}").json()["results"]] == ["Stolen photo"]

    # Four eyes: the reviewer joins a case of their own with these accounts, so must not decide on them.
    own = reviewer.post("/api/cases/", {"title": "Mine"}, format="json").json()
    reviewer.post(f"/api/cases/{own['id']}/items/", {"kind": "account", "ids": [ids[0]]}, format="json")
    refused = reviewer.post("/api/decisions/", {"accounts": ids, "state": "confirmed", "reason": "Same text"}, format="json")
    assert refused.status_code == 403 and "four eyes" in refused.json()["detail"]
    assert not ReviewDecision.objects.exists()
    no_reason = reviewer.post("/api/decisions/", {"accounts": ids[1:], "state": "confirmed", "reason": "  "}, format="json")
    assert no_reason.status_code == 400
    decided = reviewer.post("/api/decisions/", {"accounts": ids[1:], "state": "confirmed", "reason": "Same text",
                                                "cluster": inv.cluster.pk}, format="json")
    assert decided.status_code == 201 and {d["account"] for d in decided.json()} == set(ids[1:])
    history = builder.get(f"/api/decisions/?account={ids[1]}").json()["results"]
    assert [(d["state"], d["reviewer"], d["reason"]) for d in history] == [("confirmed", "reviewer", "Same text")]
    assert builder.get(f"/api/accounts/{ids[1]}/").json()["review_status"] == "confirmed"
    queue = [a["id"] for a in reviewer.get("/api/decisions/queue/").json()["results"]]
    assert ids[1] not in queue and ids[0] not in queue  # decided; in the reviewer's own case

    assigned = lead.post(f"/api/cases/{case['id']}/assign/", {"assignee": "reviewer"}, format="json").json()
    assert assigned["assigned_to"] == "reviewer" and "reviewer" in assigned["members"]
    assert lead.post(f"/api/cases/{case['id']}/assign/", {"assignee": "outsider"}, format="json").status_code == 400
    assert builder.post(f"/api/cases/{case['id']}/status/", {"status": "closed"}, format="json").json()["status"] == "closed"
    assert builder.post(f"/api/cases/{case['id']}/status/", {"status": "gone"}, format="json").status_code == 400
    mine = builder.get("/api/cases/?scope=mine").json()["results"]
    assert {c["id"] for c in mine} == {case["id"], world["case"].pk}
    assert [c["id"] for c in reviewer.get("/api/cases/?scope=mine").json()["results"]] == [own["id"]]

    actions = [e["action"] for e in lead.get(f"/api/audit/?case={case['id']}").json()["results"]]
    assert {"case.created", "case.items_added", "case.item_annotated", "case.assigned", "case.status"} <= set(actions)
    assert lead.get("/api/audit/verify/").json()["ok"] is True


def test_filters_paging_and_cluster_evidence(cast, world):
    inv = world["inv"]
    api = APIClient()
    api.force_authenticate(cast["investigator"])
    found = api.get("/api/accounts/", {"handle": "DUMPCHUMP1"}).json()
    assert found["count"] == 1 and found["results"][0]["handle"] == "dumpchump1"
    hostile = api.get("/api/accounts/", {"handle": HOSTILE_HANDLE})
    assert hostile["Content-Type"] == "application/json" and hostile.json()["results"][0]["handle"] == HOSTILE_HANDLE
    assert api.get("/api/accounts/", {"cluster": inv.cluster.pk}).json()["count"] == 3
    assert api.get("/api/accounts/", {"review_status": "nonsense"}).status_code == 400
    tagged = api.get("/api/posts/", {"hashtag": "#Rigged"}).json()
    assert tagged["count"] == 3 and all("rigged" in p["hashtags"] for p in tagged["results"])
    assert api.get("/api/posts/", {"link": "HTTPS://News.Example.org/story?utm_source=x"}).json()["count"] == 3
    with_picture = api.get("/api/posts/", {"media": world["asset"].pk}).json()["results"]
    assert [p["id"] for p in with_picture] == [inv.posts[1].pk] and with_picture[0]["media"] == [world["asset"].pk]
    paged = api.get("/api/posts/", {"page_size": 2}).json()
    assert paged["count"] == 5 and len(paged["results"]) == 2 and "page=2" in paged["next"]
    assert api.get("/api/posts/", {"page": 99}).status_code == 404

    # Any ISO 8601 offset, even ones PostgreSQL does not take (found by the schemathesis run), compared in UTC.
    after = api.get("/api/posts/", {"posted_after": "2018-09-01T00:00:00-23:46"}).json()
    assert after["count"] == 1  # 23:46 UTC on 1 September: only the long caption, a day after the 12:00 burst
    assert api.get("/api/accounts/", {"created_before": "0001-01-01T00:00:00+10:00"}).status_code == 400

    assert api.get("/api/detections/", {"status": "succeeded", "dataset": inv.dataset.pk}).json()["count"] == 1
    assert api.get("/api/detections/", {"status": "pending"}).json()["count"] == 0
    assert api.get("/api/imports/", {"dataset": inv.dataset.pk}).json()["count"] == 1
    assert api.get("/api/clusters/", {"min_size": 4}).json()["count"] == 0
    assert api.get("/api/clusters/", {"signal": "co_text", "review": "unreviewed"}).json()["count"] == 1
    detail = api.get(f"/api/clusters/{inv.cluster.pk}/").json()
    assert {m["handle"] for m in detail["members"]} == {a.handle for a in inv.accounts[:3]}
    co_text = [e for e in detail["edges"] if e["signal"] == "co_text"]
    assert len(co_text) == 3 and all(len(e["evidence"]) == 1 for e in co_text)
    assert {p for e in co_text for p in e["evidence"][0]} == {p.pk for p in inv.posts}


def test_detection_start_validates(cast, world):
    api = APIClient()
    api.force_authenticate(cast["investigator"])
    bad = api.post("/api/detections/", {"dataset": world["inv"].dataset.pk, "signals": ["astrology"]}, format="json")
    assert bad.status_code == 400 and "signals" in bad.json()
    assert api.post("/api/detections/", {"dataset": 10**9}, format="json").status_code == 404
    started = api.post("/api/detections/", {"dataset": world["inv"].dataset.pk, "window": 300}, format="json")
    assert started.status_code == 202 and started.json()["status"] == "pending"
    run = DetectionRun.objects.get(pk=started.json()["id"])
    assert run.parameters["window"] == 300 and run.started_by == cast["investigator"]
    # A worker waiting for the pictures says so in the run's stage.
    DetectionRun.objects.filter(pk=run.pk).update(stage="Waiting for 3 pictures to be hashed")
    assert api.get(f"/api/detections/{run.pk}/").json()["stage"] == "Waiting for 3 pictures to be hashed"


def test_media_lookup_by_upload(cast, world):
    import skimage.data

    api = APIClient()
    api.force_authenticate(cast["investigator"])
    copy = SimpleUploadedFile("copy.jpg", _jpeg(skimage.data.chelsea()[:, ::-1], size=200, quality=40))
    matches = api.post("/api/media/lookup/", {"image": copy}, format="multipart").json()
    assert [m["asset"]["id"] for m in matches] == [world["asset"].pk]
    assert matches[0]["via"].endswith("mirror") and matches[0]["sightings"][0]["handle"] == "dumpchump1"
    assert matches[0]["first_seen"] is True and matches[0]["asset"]["file_url"].endswith(f"{world['asset'].sha256}/")
    unrelated = SimpleUploadedFile("other.jpg", _jpeg(skimage.data.astronaut(), size=256))
    assert api.post("/api/media/lookup/", {"image": unrelated}, format="multipart").json() == []
    junk = api.post("/api/media/lookup/", {"image": SimpleUploadedFile("x.jpg", b"<html>")}, format="multipart")
    assert junk.status_code == 400 and "Could not read that picture" in str(junk.json())
    assert MediaAsset.objects.count() == 1  # lookups store nothing
    same = api.get(f"/api/media/{world['asset'].pk}/similar/").json()
    assert [m["asset"]["id"] for m in same] == [world["asset"].pk] and same[0]["distance"] == 0


def test_the_copies_of_a_picture_come_whole_or_a_page_at_a_time(cast, world, tmp_path):
    """Without paging the answer is every match, as always; with `page`/`page_size` it is that page of the same
    list, the total in X-Total-Count and (for a GET) the neighbouring pages in Link."""
    import skimage.data

    for n, (size, quality) in enumerate([(300, 80), (240, 60), (200, 50), (160, 85)]):
        copy = tmp_path / f"copy{n}.jpg"
        copy.write_bytes(_jpeg(skimage.data.chelsea(), size=size, quality=quality))
        media_assets_register(files=[(media_file_store(path=copy), copy.name)])
    media_hash_batch(asset_ids=media_hash_claim(limit=10))
    api = APIClient()
    api.force_authenticate(cast["investigator"])
    url = f"/api/media/{world['asset'].pk}/similar/"
    whole = api.get(url)
    every = [m["asset"]["id"] for m in whole.json()]
    assert len(every) == 5 and set(every) == set(MediaAsset.objects.values_list("pk", flat=True))
    assert "X-Total-Count" not in whole and "Link" not in whole

    pages = [api.get(url, {"page": page, "page_size": 2}) for page in (1, 2, 3)]
    assert [m["asset"]["id"] for page in pages for m in page.json()] == every
    assert [len(page.json()) for page in pages] == [2, 2, 1]
    assert {page["X-Total-Count"] for page in pages} == {"5"}
    assert pages[0]["Link"] == f'<http://testserver{url}?page=2&page_size=2>; rel="next"'
    assert pages[1]["Link"] == (f'<http://testserver{url}?page=3&page_size=2>; rel="next", '
                                f'<http://testserver{url}?page=1&page_size=2>; rel="prev"')
    assert pages[2]["Link"] == f'<http://testserver{url}?page=2&page_size=2>; rel="prev"'
    beyond = api.get(url, {"page": 9, "page_size": 2})
    assert beyond.status_code == 200 and beyond.json() == [] and beyond["X-Total-Count"] == "5"
    assert beyond["Link"] == f'<http://testserver{url}?page=3&page_size=2>; rel="prev"'
    first = api.get(url, {"page": 1})  # the API's page size
    assert [m["asset"]["id"] for m in first.json()] == every and "Link" not in first
    assert [m["asset"]["id"] for m in api.get(url, {"page_size": 3}).json()] == every[:3]
    # The list's filters are no parameters here, in the schema or in the answer.
    assert [m["asset"]["id"] for m in api.get(url, {"hash_state": "pending", "sha256": "0" * 64}).json()] == every
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    parameters = schema["paths"]["/api/media/{id}/similar/"]["get"]["parameters"]
    assert sorted(p["name"] for p in parameters) == ["id", "max_distance", "page", "page_size"]
    for bad in ({"page": 0}, {"page": "two"}, {"page_size": 501}, {"page_size": -1}, {"max_distance": 65}):
        refused = api.get(url, bad)
        assert refused.status_code == 400 and set(refused.json()) == set(bad), bad

    probe = SimpleUploadedFile("probe.jpg", _jpeg(skimage.data.chelsea(), size=220, quality=70))
    everything = [m["asset"]["id"] for m in api.post("/api/media/lookup/", {"image": probe}, format="multipart").json()]
    assert sorted(everything) == sorted(every)
    probe.seek(0)
    page = api.post("/api/media/lookup/", {"image": probe, "page": 2, "page_size": 3}, format="multipart")
    assert [m["asset"]["id"] for m in page.json()] == everything[3:] and page["X-Total-Count"] == "5"
    probe.seek(0)
    refused = api.post("/api/media/lookup/", {"image": probe, "page_size": 0}, format="multipart")
    assert refused.status_code == 400 and "page_size" in refused.json()


def test_schema_is_valid_and_the_docs_page_is_self_hosted(cast):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")
    api = APIClient()
    api.force_authenticate(cast["investigator"])
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    browser = api.get("/api/accounts/", HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
    assert browser["Content-Type"] == "application/json"  # no HTML pages with inline scripts: the docs page is the view
    wanted = {"/api/accounts/", "/api/cases/{id}/items/", "/api/media/lookup/", "/api/exports/{id}/download/"}
    assert wanted <= set(schema["paths"])
    from django.test import Client

    client = Client()
    client.force_login(cast["investigator"])
    page = client.get(reverse("api:docs")).content.decode()
    assert "<style" not in page and "cdn" not in page.lower()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert client.get("/api/docs/?script=").status_code == 200
