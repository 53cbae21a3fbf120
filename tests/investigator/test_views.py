"""Login, the home page and its HTMX fragment: who sees what, hostile names, security headers."""

import pytest
from django.urls import reverse

from accounts.models import Account, Platform, Post
from accounts.services import dataset_get_or_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset_with_content():
    dataset = dataset_get_or_create(name='<script>alert("x")</script>\u202edemo')
    platform = Platform.objects.get(slug="instagram")
    accounts = [Account.objects.create(platform=platform, external_id=str(i), handle=f"h{i}") for i in range(3)]
    for account in accounts:
        account.datasets.add(dataset)
    from django.utils import timezone

    post = Post.objects.create(platform=platform, external_id="p1", account=accounts[0], posted_at=timezone.now())
    post.datasets.add(dataset)
    return dataset


def test_login_page_is_public_and_home_is_not(client):
    assert client.get(reverse("login")).status_code == 200
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_login_then_home_shows_dataset_counts(client, cast, dataset_with_content):
    response = client.post(reverse("login"), {"username": "investigator", "password": "investigator-pass-123"})
    assert response.status_code == 302
    page = client.get(reverse("home")).content.decode()
    assert "<td class=\"num\">3</td>" in page and "<td class=\"num\">1</td>" in page
    # The hostile dataset name is shown, escaped, never as markup.
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert '<script>alert("x")</script>' not in page


@pytest.mark.parametrize("role", ["investigator", "lead", "reviewer", "admin"])
def test_every_role_sees_datasets(client, cast, dataset_with_content, role):
    client.force_login(cast[role])
    assert "3</td>" in client.get(reverse("home")).content.decode()


def test_outsider_without_role_sees_no_data(client, cast, dataset_with_content):
    client.force_login(cast["outsider"])
    page = client.get(reverse("home")).content.decode()
    assert "alert" not in page and "No datasets yet" in page


def test_htmx_fragment_checks_login_and_returns_the_partial(client, cast):
    headers = {"HTTP_HX_REQUEST": "true"}
    assert client.get(reverse("home"), **headers).status_code == 302
    client.force_login(cast["investigator"])
    response = client.get(reverse("home"), **headers)
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="hash-progress"') and "<html" not in body
    assert "HX-Request" in response["Vary"]


def test_security_headers(client):
    response = client.get(reverse("login"))
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_login_rejects_wrong_password(client, cast):
    response = client.post(reverse("login"), {"username": "lead", "password": "wrong"})
    assert response.status_code == 200 and "didn't match" in response.content.decode()
