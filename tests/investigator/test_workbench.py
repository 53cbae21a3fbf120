"""The workbench pages and fragments: who may see and do what, hostile content, cases, review, audit."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Account, Cluster
from investigator.models import AuditEvent, Case, CaseItem, ReviewDecision
from investigator.selectors import audit_chain_verify
from investigator.services import case_create, case_items_add
from tests.workbench import build_investigation

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def inv():
    return build_investigation()


def _pages(inv, case):
    a = inv.accounts[0]
    return {
        "dashboard": reverse("home"),
        "clusters": reverse("accounts:clusters"),
        "cluster": reverse("accounts:cluster", args=[inv.cluster.pk]),
        "account": reverse("accounts:account", args=[a.pk]),
        "account_posts": reverse("accounts:account_posts", args=[a.pk]),
        "search": reverse("accounts:search") + "?q=vote&kind=posts",
        "cases": reverse("cases"),
        "case": reverse("case", args=[case.pk]),
        "review": reverse("review"),
        "audit": reverse("audit"),
        "unreadable pictures": reverse("media_analysis:unreadable"),
    }


# Which roles may open each page; everyone else gets 403 (or 404 for a case they cannot see).
ALLOWED = {
    "review": {"reviewer", "admin"},
    "audit": {"lead", "reviewer", "admin"},
    "case": {"investigator", "lead", "admin"},  # the investigator built it; leads see every case
}


@pytest.mark.parametrize("role", ["outsider", "investigator", "lead", "reviewer", "admin"])
def test_every_page_checks_the_role(client, cast, inv, role):
    case = case_create(user=cast["investigator"], title="Dump chump")
    client.force_login(cast[role])
    for name, url in _pages(inv, case).items():
        allowed = ALLOWED.get(name, {"investigator", "lead", "reviewer", "admin"})
        status = client.get(url).status_code
        if name == "dashboard":
            assert status == 200  # the dashboard shows an outsider nothing (tested in test_views)
        elif name == "account_posts":
            assert status == (302 if role in allowed else 403), name
        elif role in allowed:
            assert status == 200, (name, role)
        else:
            assert status in (403, 404), (name, role, status)


def test_anonymous_users_are_sent_to_login(client, inv, cast):
    case = case_create(user=cast["investigator"], title="x")
    for url in _pages(inv, case).values():
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    for name in ("case_items_add", "review_submit", "media_analysis:unreadable_retry"):
        assert client.post(reverse(name), {}).status_code == 302


def test_fragments_return_partials_and_check_roles(client, cast, inv):
    a = inv.accounts[0]
    fragments = [reverse("accounts:clusters") + "?sort=size", reverse("accounts:account_posts", args=[a.pk]),
                 reverse("accounts:search") + "?q=dumpchump&kind=accounts"]
    client.force_login(cast["outsider"])
    for url in fragments:
        assert client.get(url, **HX).status_code == 403
    client.force_login(cast["investigator"])
    for url in fragments:
        body = client.get(url, **HX).content.decode()
        assert "<html" not in body and body.strip().startswith("<section"), url


def test_hostile_content_renders_inert_and_readable(client, cast, inv):
    client.force_login(cast["investigator"])
    hostile = inv.accounts[0]
    for url in (reverse("accounts:account", args=[hostile.pk]), reverse("accounts:cluster", args=[inv.cluster.pk]),
                reverse("accounts:search") + "?q=rigged&kind=hashtags"):
        page = client.get(url).content.decode()
        assert "<script>alert(" not in page and "<img src=x" not in page
        assert 'href="javascript:' not in page.lower()
        assert "\u202e" not in page and "\u200b" not in page  # direction overrides and zero-width shown as markers
        assert "&lt;script&gt;alert(&#x27;" in page
    page = client.get(reverse("accounts:account", args=[hostile.pk])).content.decode()
    assert "⟨U+202E⟩" in page and "⟨U+200B⟩" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(&#x27;bio&#x27;)&gt;" in page
    # A 10,000-character caption is folded: a short summary, the whole text one click away.
    summary = re.search(r"<summary class=\"user-text\">(A+)…</summary>", page)
    assert summary and len(summary.group(1)) < 700 and "tail-marker" in page
    # Only inline data blocks: no inline script that the CSP would have to allow.
    for tag in re.findall(r"<script[^>]*>", page):
        assert "src=" in tag or 'type="application/json"' in tag, tag


def test_cluster_page_shows_members_evidence_graph_and_timeline(client, cast, inv):
    client.force_login(cast["investigator"])
    page = client.get(reverse("accounts:cluster", args=[inv.cluster.pk])).content.decode()
    assert "3 identical texts posted within 10 min" in page
    for account in inv.accounts[:3]:
        assert reverse("accounts:account", args=[account.pk]) in page
    assert reverse("accounts:account", args=[inv.accounts[3].pk]) not in page  # the organic reader is no member
    assert "Identical text — 3 account pairs" in page and "Created together — 3 account pairs" in page
    assert page.count('id="post-') >= 6  # each co_text pair shows both posts
    graph = re.search(r'<script id="cluster-graph" type="application/json">(.*?)</script>', page, re.S).group(1)
    assert '"nodes"' in graph and graph.count('"source"') == 3 and "\\u003Cscript" in graph
    assert 'id="cluster-timeline"' in page and "2018-09-01" in page


def test_cluster_list_filters(client, cast, inv):
    client.force_login(cast["investigator"])
    url = reverse("accounts:clusters")
    assert inv.cluster.label.replace("'", "&#x27;") in client.get(url).content.decode()
    assert "No clusters match" in client.get(url, {"signal": "co_image"}).content.decode()
    assert "No clusters match" in client.get(url, {"min_size": 4}).content.decode()
    assert "No clusters match" not in client.get(url, {"signal": "co_text", "review": "unreviewed"}).content.decode()
    assert "No clusters match" in client.get(url, {"review": "reviewed"}).content.decode()


def test_search_by_handle_caption_hashtag_and_link(client, cast, inv):
    client.force_login(cast["investigator"])
    url = reverse("accounts:search")
    assert "dumpchump2" in client.get(url, {"q": "@dumpchump", "kind": "accounts"}).content.decode()
    posts = client.get(url, {"q": "weather park", "kind": "posts"}).content.decode()
    assert "Lovely weather" in posts and "Vote now" not in posts
    assert client.get(url, {"q": "#Rigged", "kind": "hashtags"}).content.decode().count('id="post-') == 3
    links = client.get(url, {"q": "https://NEWS.example.org/story?utm_source=x", "kind": "links"}).content.decode()
    assert links.count('id="post-') == 3


def test_case_workflow_add_annotate_tag_status_remove(client, cast, inv):
    client.force_login(cast["investigator"])
    response = client.post(reverse("cases"), {"title": "Dump chump network", "summary": "Seen on 2018-09-01"})
    case = Case.objects.get(title="Dump chump network")
    assert response.status_code == 302 and response["Location"] == reverse("case", args=[case.pk])
    add = {"case": case.pk, "kind": "account", "ids": str(inv.accounts[1].pk)}
    body = client.post(reverse("case_items_add"), add, **HX).content.decode()
    assert "Added 1 to" in body and "<html" not in body
    assert "Already in" in client.post(reverse("case_items_add"), add, **HX).content.decode()
    client.post(reverse("case_items_add"), {"case": case.pk, "kind": "cluster", "ids": inv.cluster.pk})
    bad = client.post(reverse("case_items_add"), {"case": case.pk, "kind": "account", "ids": "999999"}, **HX)
    assert bad.status_code == 400 and "Unknown account" in bad.content.decode()
    item = case.items.get(kind="account")
    url = reverse("case_item_annotate", args=[case.pk, item.pk])
    fragment = client.post(url, {"text": "Same caption <b>minutes</b> apart", "tags": "t0143.002, T0049 copypasta"}, **HX)
    body = fragment.content.decode()
    assert fragment.status_code == 200 and "Fabricated Persona" in body and "&lt;b&gt;minutes" in body
    item.refresh_from_db()
    assert item.tags == ["T0143.002", "T0049", "copypasta"]
    assert client.post(url, {"text": "", "tags": "<script>"}, **HX).status_code == 400
    client.post(reverse("case_status", args=[case.pk]), {"status": "in_review"})
    case.refresh_from_db()
    assert case.status == "in_review"
    client.post(reverse("case_items_remove", args=[case.pk]), {"items": [item.pk]})
    assert list(case.items.values_list("kind", flat=True)) == ["cluster"]
    actions = list(case.audit_events.order_by("id").values_list("action", flat=True))
    assert actions == ["case.created", "case.items_added", "case.items_added", "case.item_annotated", "case.status",
                       "case.items_removed"]
    assert audit_chain_verify().ok
    page = client.get(reverse("case", args=[case.pk])).content.decode()
    assert "status open → in_review" in page and "noted: Same caption &lt;b&gt;minutes&lt;/b&gt; apart" in page
    # Evidence over time: the cluster left in the case brings its members' posts.
    assert re.search(r'<script id="case-activity" type="application/json">\{"days": \[\{"date": "2018-09-01", "posts": 3\}', page)


def test_cases_are_private_to_their_people_and_leads_assign(client, cast, make_user, inv):
    other = make_user("investigator", "other")
    case = case_create(user=cast["investigator"], title="Private")
    client.force_login(other)
    assert client.get(reverse("case", args=[case.pk])).status_code == 404
    add = {"case": case.pk, "kind": "account", "ids": inv.accounts[0].pk}
    assert client.post(reverse("case_items_add"), add).status_code == 404
    assert client.post(reverse("case_assign", args=[case.pk]), {"assignee": other.pk}).status_code == 403
    client.force_login(cast["lead"])
    page = client.get(reverse("case", args=[case.pk])).content.decode()
    assert 'id="export"' in page
    client.post(reverse("case_assign", args=[case.pk]), {"assignee": other.pk})
    case.refresh_from_db()
    assert case.assigned_to == other and other in case.members.all()
    client.force_login(other)
    page = client.get(reverse("case", args=[case.pk])).content.decode()
    assert page and 'id="export"' not in page  # investigators never see the export action
    assert "Private" in client.get(reverse("cases") + "?scope=assigned").content.decode()


def test_reviewer_decides_with_a_reason_and_the_account_keeps_its_history(client, cast, inv):
    target = inv.accounts[1]
    url = reverse("review_submit")
    client.force_login(cast["investigator"])
    assert client.post(url, {"accounts": target.pk, "state": "confirmed", "reason": "x"}).status_code == 403
    client.force_login(cast["reviewer"])
    client.post(url, {"accounts": target.pk, "state": "confirmed", "reason": ""})
    assert not ReviewDecision.objects.exists()
    client.post(url, {"accounts": target.pk, "state": "confirmed", "reason": "Posts the same caption within a minute"})
    target.refresh_from_db()
    assert target.review_status == "confirmed"
    page = client.get(reverse("accounts:account", args=[target.pk])).content.decode()
    assert "Posts the same caption within a minute" in page and "by reviewer" in page
    event = AuditEvent.objects.filter(action="review.decided").get()
    assert event.subject_id == str(target.pk) and event.data["reason"] == "Posts the same caption within a minute"
    # Bulk from the cluster: every member decided makes the cluster reviewed.
    members = [a.pk for a in inv.accounts[:3]]
    client.post(url, {"accounts": members, "state": "confirmed", "reason": "Same network", "cluster": inv.cluster.pk})
    assert Cluster.objects.get(pk=inv.cluster.pk).review_status == "confirmed"
    assert set(Account.objects.filter(pk__in=members).values_list("review_status", flat=True)) == {"confirmed"}
    assert "No clusters match" not in client.get(reverse("accounts:clusters"), {"review": "reviewed"}).content.decode()


def test_four_eyes_reviewer_cannot_decide_on_own_case(client, cast, inv, settings):
    reviewer = cast["reviewer"]
    case = case_create(user=reviewer, title="Mine")
    case_items_add(case=case, user=reviewer, kind="cluster", ids=[inv.cluster.pk])
    client.force_login(reviewer)
    queue = client.get(reverse("review")).content.decode()
    assert "dumpchump1" not in queue
    response = client.post(reverse("review_submit"), {"accounts": inv.accounts[1].pk, "state": "cleared", "reason": "fine"},
                           follow=True)
    assert "four eyes" in response.content.decode() and not ReviewDecision.objects.exists()
    settings.REVIEW_ALLOW_OWN_CASES = True
    client.post(reverse("review_submit"), {"accounts": inv.accounts[1].pk, "state": "cleared", "reason": "fine"})
    assert ReviewDecision.objects.count() == 1


def test_review_queue_lists_clustered_undecided_accounts(client, cast, inv):
    client.force_login(cast["reviewer"])
    page = client.get(reverse("review")).content.decode()
    assert "dumpchump1" in page and "organic_reader" not in page


def test_audit_page_shows_the_chain_and_where_it_breaks(client, cast, inv):
    case = case_create(user=cast["investigator"], title="Audit me")
    case_items_add(case=case, user=cast["investigator"], kind="account", ids=[inv.accounts[1].pk])
    client.force_login(cast["reviewer"])
    assert "Chain intact" in client.get(reverse("audit")).content.decode()
    victim = AuditEvent.objects.get(action="case.items_added")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE investigator_auditevent SET data = '{\"ids\": [1]}' WHERE id = %s", [victim.pk])
        cursor.execute("SET LOCAL session_replication_role = origin")
    page = client.get(reverse("audit")).content.decode()
    assert f"Chain broken at event #{victim.pk}" in page and 'class="broken"' in page


def test_network_export_is_for_leads_and_audited(client, cast, inv):
    url = reverse("accounts:network", args=[inv.run.pk, "graphml"]) + f"?cluster={inv.cluster.pk}"
    client.force_login(cast["investigator"])
    assert client.get(url).status_code == 403
    assert "GraphML" not in client.get(reverse("accounts:cluster", args=[inv.cluster.pk])).content.decode()
    client.force_login(cast["lead"])
    response = client.get(url)
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    graph = ET.fromstring(response.content)  # noqa: S314 - our own export
    ns = {"g": "http://graphml.graphdrawing.org/xmlns"}
    assert len(graph.findall(".//g:node", ns)) == 3 and len(graph.findall(".//g:edge", ns)) == 3
    assert AuditEvent.objects.filter(action="export.network", actor=cast["lead"]).exists()


def test_login_is_throttled_after_repeated_failures(client, cast, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "investigator", "password": "wrong"})
    response = client.post(reverse("login"), {"username": "investigator", "password": "investigator-pass-123"})
    assert response.status_code == 429 and "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_main_pages_have_a_fixed_number_of_queries(client, cast):
    """No N+1: the query count of each main page does not grow with the number of members, items or posts."""
    small, large = build_investigation(), None
    client.force_login(cast["lead"])
    case = case_create(user=cast["lead"], title="Counting")
    case_items_add(case=case, user=cast["lead"], kind="account", ids=[a.pk for a in small.accounts])
    urls = lambda inv, case: [reverse("home"), reverse("accounts:clusters"), reverse("accounts:cluster", args=[inv.cluster.pk]),  # noqa: E731
                              reverse("accounts:account", args=[inv.accounts[0].pk]), reverse("case", args=[case.pk])]
    before = [_queries(client, u) for u in urls(small, case)]
    large = build_investigation(extra_members=8, name="ops-large")
    big_case = case_create(user=cast["lead"], title="Counting more")
    case_items_add(case=big_case, user=cast["lead"], kind="account", ids=[a.pk for a in large.accounts])
    case_items_add(case=big_case, user=cast["lead"], kind="post", ids=[p.pk for p in large.posts])
    after = [_queries(client, u) for u in urls(large, big_case)]
    assert after == before, (before, after)
    assert max(before) <= 25, before
    assert CaseItem.objects.filter(case=big_case).count() == len(large.accounts) + len(large.posts)


def test_members_join_a_case_and_posts_are_added_from_the_account_page(client, cast, make_user, inv):
    other = make_user("investigator", "other")
    case = case_create(user=cast["investigator"], title="Shared work")
    client.force_login(cast["investigator"])
    client.post(reverse("case_member_add", args=[case.pk]), {"member": other.pk})
    assert other in case.members.all()
    assert case.audit_events.filter(action="case.member_added", data__member="other").exists()
    client.force_login(other)
    page = client.get(reverse("accounts:account", args=[inv.accounts[1].pk])).content.decode()
    assert "Add post to case" in page and "Shared work" in page
    post = inv.posts[1]
    body = client.post(reverse("case_items_add"), {"case": case.pk, "kind": "post", "ids": post.pk}, **HX).content.decode()
    assert "Added 1 to" in body
    page = client.get(reverse("case", args=[case.pk])).content.decode()
    assert f"#post-{post.pk}" in page and "post by" in page


def test_picture_page_lists_copies_and_checks_the_role(client, cast, inv, tmp_path, settings):
    import skimage.data
    from PIL import Image

    from accounts.models import PostMedia
    from media_analysis.models import MediaAsset
    from media_analysis.services import media_assets_register, media_file_store, media_hash_batch, media_hash_claim

    settings.MEDIA_ROOT = str(tmp_path / "media")
    original, copy = tmp_path / "cat.jpg", tmp_path / "cat-small.jpg"
    picture = Image.fromarray(skimage.data.chelsea())
    picture.save(original, quality=92)
    picture.resize((picture.width // 2, picture.height // 2)).save(copy, quality=40)
    media_assets_register(files=[(media_file_store(path=p), p.name) for p in (original, copy)])
    media_hash_batch(asset_ids=media_hash_claim(limit=10))
    first, second = MediaAsset.objects.get(original_name="cat.jpg"), MediaAsset.objects.get(original_name="cat-small.jpg")
    PostMedia.objects.create(post=inv.posts[0], media=first)
    PostMedia.objects.create(post=inv.posts[2], media=second)
    url = reverse("media_analysis:media", args=[first.pk])
    client.force_login(cast["outsider"])
    assert client.get(url).status_code == 403
    client.force_login(cast["reviewer"])
    page = client.get(url).content.decode()
    assert "2 matches" in page and page.count("first seen") == 1
    assert reverse("media_analysis:media", args=[second.pk]) in page and "@dumpchump2" in page
    assert "&lt;script&gt;alert(&#x27;h&#x27;)" in page and "<script>alert(" not in page
