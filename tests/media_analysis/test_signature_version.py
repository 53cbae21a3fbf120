"""Pictures hashed with an older signature (matching.SIGNATURE_VERSION) keep matching with what they have while the
workers hash them again, new pictures first; one that cannot be hashed again keeps its hashes."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from importlib import import_module
from pathlib import Path

import pytest
from django.utils import timezone

from media_analysis.matching import SIGNATURE_VERSION
from tests.media_analysis.pictures import crop, square

pytestmark = pytest.mark.django_db


def _outdated(asset, version: int = 2) -> dict:
    """Make a hashed asset look as if hashed before the outer windows existed; returns its current signature."""
    from media_analysis.models import MediaAsset

    current = MediaAsset.objects.get(pk=asset.pk).signature
    old = {k: v for k, v in current.items() if k not in {"outer", "outer_flip"}}
    MediaAsset.objects.filter(pk=asset.pk).update(signature=old, signature_version=version)
    return current


@pytest.fixture
def pictures(tmp_path, settings):
    from tests.media_analysis.pictures import store_pictures

    settings.MEDIA_ROOT = str(tmp_path / "media")
    return store_pictures(tmp_path, {"original": square("astronaut"),
                                     "corner": crop(square("astronaut"), 0.1, 0.1, 0, 0),
                                     "other": square("coffee")})


def _found(cast, tmp_path: Path) -> set[str]:
    from media_analysis.hashing import compute_hashes
    from media_analysis.selectors import media_similar

    probe = tmp_path / "original.jpg"
    return {m.asset.original_name for m in media_similar(
        user=cast["investigator"], signature=compute_hashes(probe, max_pixels=10**7).signature, picture=probe)}


def test_an_outdated_picture_matches_while_it_waits_and_is_hashed_again_after_new_ones(pictures, cast, tmp_path):
    from media_analysis.models import MediaAsset
    from media_analysis.selectors import media_hash_counts
    from media_analysis.services import media_assets_register, media_file_store, media_rehash_claim
    from media_analysis.tasks import hash_pending_media

    assert _found(cast, tmp_path) == {"original.jpg", "corner.jpg"}
    assert all(a.signature_version == SIGNATURE_VERSION for a in MediaAsset.objects.all())
    current = _outdated(pictures["corner"])
    counts = media_hash_counts()
    assert (counts.done, counts.outdated, counts.finished, counts.total) == (3, 1, 2, 3)
    assert _found(cast, tmp_path) == {"original.jpg", "corner.jpg"}  # still hashed, still found

    new = tmp_path / "new.jpg"
    square("camera").save(new, quality=90)
    media_assets_register(files=[(media_file_store(path=new), new.name)])
    assert hash_pending_media() == {"done": 1, "failed": 0}  # the new picture first
    assert MediaAsset.objects.get(original_name="new.jpg").hash_state == "done"
    assert MediaAsset.objects.get(pk=pictures["corner"].pk).signature_version == 2

    # While a worker has it, it is still hashed and found, and no other worker takes it...
    assert media_rehash_claim(limit=10) == [pictures["corner"].pk]
    assert media_rehash_claim(limit=10) == []
    assert _found(cast, tmp_path) == {"original.jpg", "corner.jpg"}
    # ...unless the claim is a dead worker's.
    MediaAsset.objects.filter(pk=pictures["corner"].pk).update(claimed_at=timezone.now() - timedelta(minutes=31))
    assert media_rehash_claim(limit=10) == [pictures["corner"].pk]
    MediaAsset.objects.filter(pk=pictures["corner"].pk).update(claimed_at=None)

    assert hash_pending_media() == {"done": 1, "failed": 0}
    corner = MediaAsset.objects.get(pk=pictures["corner"].pk)
    assert (corner.hash_state, corner.signature_version, corner.claimed_at) == ("done", SIGNATURE_VERSION, None)
    assert corner.signature == current
    assert media_hash_counts().outdated == 0
    assert hash_pending_media() == {"done": 0, "failed": 0}  # nothing left to do


def test_oldest_signatures_are_hashed_again_first(pictures):
    from media_analysis.services import media_rehash_claim

    _outdated(pictures["other"], version=2)
    _outdated(pictures["corner"], version=1)
    assert media_rehash_claim(limit=1) == [pictures["corner"].pk]
    assert media_rehash_claim(limit=1) == [pictures["other"].pk]


def test_a_picture_that_cannot_be_hashed_again_keeps_its_hashes(pictures, settings, client, cast):
    from django.urls import reverse

    from media_analysis.models import MediaAsset
    from media_analysis.selectors import media_hash_counts
    from media_analysis.services import media_hash_batch, media_rehash_claim

    corner = pictures["corner"]
    _outdated(corner)
    (Path(settings.MEDIA_ROOT) / corner.file.name).unlink()
    assert media_hash_batch(asset_ids=media_rehash_claim(limit=10), again=True) == {"done": 0, "failed": 1}
    after = MediaAsset.objects.get(pk=corner.pk)
    assert after.hash_state == "done" and after.phash == corner.phash and after.centre == corner.centre
    assert after.signature_version == 2
    assert after.hash_error == "could not be hashed again (the stored file is missing); the earlier hashes stand"
    assert media_rehash_claim(limit=10) == []  # not tried again and again
    assert media_hash_counts().outdated == 0
    client.force_login(cast["investigator"])
    page = client.get(reverse("media_analysis:media", args=[corner.pk])).content.decode()
    assert "could not be hashed again (the stored file is missing); the earlier hashes stand" in page
    assert reverse("media_analysis:media", args=[pictures["original"].pk]) in page  # matched by its earlier hashes


def test_pictures_that_could_not_be_hashed_are_tried_again_on_request(pictures, settings, tmp_path, capsys):
    import shutil

    from django.core.management import call_command

    from media_analysis.models import MediaAsset
    from media_analysis.services import (
        media_assets_register,
        media_file_store,
        media_hash_batch,
        media_hash_claim,
        media_rehash_claim,
    )
    from media_analysis.tasks import hash_pending_media

    corner, stored = pictures["corner"], Path(settings.MEDIA_ROOT) / pictures["corner"].file.name
    _outdated(corner)
    stored.rename(tmp_path / "away")
    media_hash_batch(asset_ids=media_rehash_claim(limit=10), again=True)  # its file is gone for a while
    new = tmp_path / "new.jpg"
    square("camera").save(new, quality=90)
    (asset,) = media_assets_register(files=[(media_file_store(path=new), new.name)]).values()
    moved = Path(settings.MEDIA_ROOT) / asset.file.name
    shutil.move(moved, tmp_path / "new-away")
    assert media_hash_batch(asset_ids=media_hash_claim(limit=10)) == {"done": 0, "failed": 1}
    assert hash_pending_media() == {"done": 0, "failed": 0}  # without asking, neither is tried again

    shutil.move(tmp_path / "away", stored)  # the files are back
    shutil.move(tmp_path / "new-away", moved)
    call_command("hash_media", retry_failed=True)
    assert "Trying again 1 images that could not be hashed and 1 that could not be hashed again." in \
        capsys.readouterr().out
    assert hash_pending_media() == {"done": 1, "failed": 0}  # the new picture first
    assert hash_pending_media() == {"done": 1, "failed": 0}
    after = {a.pk: a for a in MediaAsset.objects.filter(pk__in=[corner.pk, asset.pk])}
    assert {(a.hash_state, a.signature_version, a.hash_error) for a in after.values()} == {
        ("done", SIGNATURE_VERSION, "")}


def test_the_pictures_that_could_not_be_hashed_are_listed_and_a_lead_can_have_them_tried_again(
        pictures, settings, tmp_path, client, cast):
    from django.urls import reverse

    from media_analysis.models import MediaAsset
    from media_analysis.services import (
        media_assets_register,
        media_file_store,
        media_hash_batch,
        media_hash_claim,
        media_rehash_claim,
    )

    corner = pictures["corner"]
    _outdated(corner)
    (Path(settings.MEDIA_ROOT) / corner.file.name).unlink()
    media_hash_batch(asset_ids=media_rehash_claim(limit=10), again=True)
    hostile = tmp_path / "<img src=x onerror=alert(1)>.jpg"
    hostile.write_bytes(b"not a picture at all")
    (broken,) = media_assets_register(files=[(media_file_store(path=hostile), hostile.name)]).values()
    media_hash_batch(asset_ids=media_hash_claim(limit=10))
    page_url = reverse("media_analysis:unreadable")

    client.force_login(cast["investigator"])
    home = client.get(reverse("home"), HTTP_HX_REQUEST="true").content.decode()
    assert f'<a href="{page_url}">1 could not be read</a>' in home
    page = client.get(page_url).content.decode()
    assert "not an image file (format not recognised)" in page
    assert "could not be hashed again (the stored file is missing); the earlier hashes stand" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;.jpg" in page
    assert reverse("media_analysis:media", args=[pictures["original"].pk]) not in page  # only those that failed
    assert "Try them all again" not in page
    assert client.post(reverse("media_analysis:unreadable_retry")).status_code == 403  # leads only
    assert MediaAsset.objects.get(pk=broken.pk).hash_state == "failed"
    client.force_login(cast["outsider"])
    assert client.get(page_url).status_code == 403

    client.force_login(cast["lead"])
    assert "Try them all again" in client.get(page_url).content.decode()
    done = client.post(reverse("media_analysis:unreadable_retry"), follow=True)
    assert "Trying again 1 picture(s) that could not be hashed and 1 that could not be hashed again." in \
        done.content.decode()
    assert "No picture failed hashing." in done.content.decode()
    assert (MediaAsset.objects.get(pk=broken.pk).hash_state, MediaAsset.objects.get(pk=corner.pk).hash_error) == (
        "pending", "")


def test_the_progress_says_how_many_wait_to_be_hashed_again(pictures, client, cast):
    from django.urls import reverse

    _outdated(pictures["corner"])
    client.force_login(cast["investigator"])
    body = client.get(reverse("home"), HTTP_HX_REQUEST="true").content.decode()
    assert "2 of 3 images processed (67%)" in body
    assert "1 being hashed again with the newer signature" in body
    assert 'hx-trigger="every 2s"' in body  # keeps polling until they are done
    client.force_login(cast["outsider"])
    assert "images processed" not in client.get(reverse("home"), HTTP_HX_REQUEST="true").content.decode()


def test_the_migration_gives_back_pictures_queued_for_hashing_again():
    from django.apps import apps

    from media_analysis.matching import signature
    from media_analysis.models import MediaAsset

    v3 = asdict(signature(square("rocket")))
    v2 = {k: v for k, v in v3.items() if k not in {"outer", "outer_flip"}}
    v1 = {k: v for k, v in v2.items() if k not in {"shifted", "shifted_flip"}}
    # As migrations 0009 and 0010 left them: hashed ones with an older signature set pending again.
    rows = {label: MediaAsset.objects.create(sha256=f"{n:064x}", file=f"m/{n}.jpg", size_bytes=1, hash_state=state,
                                             signature=value, phash="1" * 64 if value else None)
            for n, (label, state, value) in enumerate([("v1", "pending", v1), ("v2", "pending", v2),
                                                       ("v3", "done", v3), ("new", "pending", None),
                                                       ("failed", "failed", None)])}
    import_module("media_analysis.migrations.0011_signature_version").versions(apps, None)
    after = {label: MediaAsset.objects.get(pk=row.pk) for label, row in rows.items()}
    assert {label: (a.hash_state, a.signature_version) for label, a in after.items()} == {
        "v1": ("done", 1), "v2": ("done", 2), "v3": ("done", 3), "new": ("pending", 0), "failed": ("failed", 0)}
    assert after["v1"].phash == "1" * 64  # nothing hashed is lost


def test_a_start_queues_hashing_for_new_and_outdated_pictures_only_when_there_are_some(
        pictures, tmp_path, monkeypatch, django_capture_on_commit_callbacks):
    """`make run` queues hashing for what a previous start left (serve.prepare_queue): nothing when all is hashed."""
    from io import StringIO

    from investigator.management.commands.serve import Command
    from media_analysis.services import media_assets_register, media_file_store
    from media_analysis.tasks import hash_pending_media

    queued = []
    monkeypatch.setattr(hash_pending_media, "delay", lambda: queued.append(1))
    command = Command(stdout=StringIO())
    with django_capture_on_commit_callbacks(execute=True):
        command.prepare_queue()
    assert queued == [] and "Queued hashing" not in command.stdout.getvalue()

    _outdated(pictures["corner"])
    new = tmp_path / "new.jpg"
    square("camera").save(new, quality=90)
    media_assets_register(files=[(media_file_store(path=new), new.name)])
    with django_capture_on_commit_callbacks(execute=True):
        command.prepare_queue()
    assert "Queued hashing for 2 pictures (1 new, 1 to hash again with the newer signature)" in command.stdout.getvalue()
    assert queued == [1]  # one batch holds both
