"""The image-lookup page and the picture endpoint: roles, results, hostile data, what is served."""

from datetime import UTC, datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from accounts.models import Account, Platform, Post, PostMedia
from media_analysis.models import MediaAsset
from media_analysis.services import media_assets_register, media_file_store, media_hash_batch, media_hash_claim

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored(tmp_path, settings):
    import skimage.data

    settings.MEDIA_ROOT = str(tmp_path / "media")
    picture = tmp_path / "chelsea.jpg"
    Image.fromarray(skimage.data.chelsea()).save(picture, quality=90)
    html = tmp_path / "page.jpg"
    html.write_bytes(b"<html><script>alert(1)</script></html>")
    media_assets_register(files=[(media_file_store(path=p), p.name) for p in (picture, html)])
    media_hash_batch(asset_ids=media_hash_claim(limit=10))
    platform = Platform.objects.get(slug="instagram")
    account = Account.objects.create(platform=platform, external_id="1", handle="<b>evil\u202ehandle</b>")
    post = Post.objects.create(platform=platform, external_id="p", account=account, url="javascript:alert(1)",
                               posted_at=datetime(2019, 1, 1, tzinfo=UTC))
    good = MediaAsset.objects.get(original_name="chelsea.jpg")
    PostMedia.objects.create(post=post, media=good)
    return picture, good, MediaAsset.objects.get(original_name="page.jpg")


@pytest.mark.parametrize("role", [None, "investigator", "lead", "reviewer", "admin"])
def test_lookup_page_and_pictures_need_the_investigator_role(client, cast, stored, role):
    client.force_login(cast[role or "outsider"])
    _, good, _ = stored
    expected = 403 if role is None else 200
    assert client.get(reverse("media_analysis:lookup")).status_code == expected
    assert client.get(reverse("media_analysis:file", args=[good.sha256])).status_code == expected


def test_anonymous_gets_login(client, stored):
    _, good, _ = stored
    assert client.get(reverse("media_analysis:file", args=[good.sha256])).status_code == 302


def test_lookup_finds_the_copy_and_renders_hostile_data_inert(client, cast, stored):
    picture, good, _ = stored
    client.force_login(cast["investigator"])
    probe = picture.read_bytes()
    response = client.post(reverse("media_analysis:lookup"),
                           {"image": SimpleUploadedFile("probe.jpg", probe), "max_distance": 6}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="lookup-results">') and "1 match" in body
    assert reverse("media_analysis:file", args=[good.sha256]) in body and "first seen" in body
    assert "&lt;b&gt;evil" in body and "<b>evil" not in body
    assert "javascript:" not in body


def test_lookup_reports_unreadable_upload(client, cast, stored):
    client.force_login(cast["lead"])
    response = client.post(reverse("media_analysis:lookup"),
                           {"image": SimpleUploadedFile("x.jpg", b"not an image"), "max_distance": 10})
    assert "Could not read that picture: not an image file" in response.content.decode()


def test_only_decoded_pictures_are_served_with_an_image_type(client, cast, stored):
    _, good, html = stored
    client.force_login(cast["investigator"])
    response = client.get(reverse("media_analysis:file", args=[good.sha256]))
    assert response["Content-Type"] == "image/jpeg" and response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content)[:2] == b"\xff\xd8"
    assert html.hash_state == "failed"
    assert client.get(reverse("media_analysis:file", args=[html.sha256])).status_code == 404


def test_a_picture_with_many_copies_is_shown_a_page_at_a_time_with_the_first_seen_copy_pinned(client, cast, stored):
    """A viral picture has thousands of copies: its page shows the closest ones a page at a time, keeps the
    first-seen copy in view on every page, and folds away a copy's posts beyond the first five."""
    from media_analysis.views import MATCHES_PER_PAGE

    picture, good, _ = stored
    columns = {field: getattr(good, field) for field in ("phash", "phash_flip", "dhash", "pdq", "pdq_flip", "centre",
                                                           "pdq_quality", "signature", "signature_version", "format")}
    copies = [MediaAsset.objects.create(sha256=f"{n:064x}", file=good.file, size_bytes=1, hash_state="done", **columns)
              for n in range(MATCHES_PER_PAGE + 10)]
    platform = Platform.objects.get(slug="instagram")
    account = Account.objects.create(platform=platform, external_id="2", handle="spreader")
    for n, (asset, year) in enumerate([(copies[-1], 2017)] + [(copies[0], 2020)] * 8):
        post = Post.objects.create(platform=platform, external_id=f"c{n}", account=account,
                                   posted_at=datetime(year, 1, 1 + n, tzinfo=UTC))
        PostMedia.objects.create(post=post, media=asset)
    client.force_login(cast["investigator"])
    url = reverse("media_analysis:media", args=[good.pk])

    first = client.get(url).content.decode()
    assert f"{MATCHES_PER_PAGE + 11} matches" in first and f"Page 1 of 2 · {MATCHES_PER_PAGE + 11} in all" in first
    figures = first.split('<figure class="card match')[1:]
    assert len(figures) == MATCHES_PER_PAGE + 1  # the page, and the first-seen copy pinned before it
    assert figures[0].startswith(" first-seen") and copies[-1].sha256 in figures[0]
    assert sum(f.startswith(" first-seen") for f in figures) == 1
    crowded = next(f for f in figures if copies[0].sha256 in f)
    shown, folded = crowded.split("<details>")
    assert shown.count("<li>") == 5 and "3 more posts</summary>" in folded and folded.count("<li>") == 3

    second = client.get(url, {"page": 2}).content.decode()
    figures = second.split('<figure class="card match')[1:]
    assert len(figures) == 11 and "Page 2 of 2" in second
    assert [f.startswith(" first-seen") for f in figures].count(True) == 1 and copies[-1].sha256 in figures[-1]
    assert "pinned" not in second

    # An upload is not kept: its lookup shows the closest page, says so, and offers no further pages.
    form = {"image": SimpleUploadedFile("probe.jpg", picture.read_bytes()), "max_distance": 10}
    upload = client.post(reverse("media_analysis:lookup"), form, HTTP_HX_REQUEST="true").content.decode()
    assert f"{MATCHES_PER_PAGE + 11} matches" in upload and f"The closest {MATCHES_PER_PAGE} are shown" in upload
    assert upload.count('<figure class="card match') == MATCHES_PER_PAGE + 1 and "Page 1 of" not in upload
