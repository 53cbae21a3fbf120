"""A detection with image signals waits for its dataset's pictures to be hashed, and says what it compared:
one queued right after an import would otherwise leave every picture not hashed yet out of the evidence."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts.coordination.services import detection_run_create, detection_run_execute, detection_run_wait
from accounts.models import DetectionRun
from accounts.selectors import PictureCounts, detection_pictures
from media_analysis.models import HashState, KnownSource, MediaAsset
from tests.accounts.test_coordination import account, flip, picture, post

BITS = "0110" * 16


def _pending(name: str, state: str = HashState.PENDING, **fields) -> MediaAsset:
    return MediaAsset.objects.create(sha256=name.encode().hex().ljust(64, "0")[:64], file=f"assets/{name}.jpg",
                                     size_bytes=1, hash_state=state, **fields)


@pytest.fixture
def dataset():
    from accounts.models import Dataset

    return Dataset.objects.create(name="waiting")


@pytest.mark.django_db
def test_the_pictures_a_detection_compares_are_counted_by_state(dataset):
    from accounts.models import Dataset

    a = account(dataset, "alpha")
    post(a, 0, media=[picture(BITS), _pending("new"), _pending("busy", HashState.PROCESSING)])
    post(a, 1, media=[_pending("broken", HashState.FAILED, hash_error="not an image")])
    a.profile_image = _pending("avatar")
    a.save()
    KnownSource.objects.create(asset=picture(flip(BITS, 1)), label="stock portrait")
    elsewhere = Dataset.objects.create(name="elsewhere")
    post(account(elsewhere, "bravo"), 0, media=[_pending("other dataset")])

    assert detection_pictures(dataset_id=dataset.pk) == PictureCounts(total=6, hashed=2, waiting=3, unreadable=1)
    assert detection_pictures(dataset_id=dataset.pk, waiting_only=True) == PictureCounts(waiting=3)
    assert detection_pictures(dataset_id=None) == PictureCounts(total=7, hashed=2, waiting=4, unreadable=1)


@pytest.mark.django_db
def test_a_queued_run_waits_while_its_pictures_are_hashed(dataset):
    pictures = [_pending("one"), _pending("two")]
    post(account(dataset, "alpha"), 0, media=pictures)
    run = detection_run_create(dataset=dataset, enqueue=False)

    waited = detection_run_wait(run=run)
    assert waited is not None and waited["mark"] == ["pictures", 2]
    run.refresh_from_db()
    assert run.status == "pending" and run.stage == "Waiting for 2 pictures to be hashed: the image signals compare them"

    # One is hashed: still waiting, for one, and that progress restarts the stall clock.
    MediaAsset.objects.filter(pk=pictures[0].pk).update(hash_state=HashState.DONE)
    later = detection_run_wait(run=run, waited={**waited, "since": time.time() - 100})
    assert later["mark"] == ["pictures", 1] and time.time() - later["since"] < 50
    run.refresh_from_db()
    assert run.stage == "Waiting for 1 picture to be hashed: the image signals compare them"

    MediaAsset.objects.filter(pk=pictures[1].pk).update(hash_state=HashState.FAILED)  # unreadable: nothing to wait for
    assert detection_run_wait(run=run, waited=later) is None

    # A run without image signals never waits for pictures.
    MediaAsset.objects.update(hash_state=HashState.PENDING)
    text_only = detection_run_create(dataset=dataset, signals=["co_text", "co_link"], enqueue=False)
    assert detection_run_wait(run=text_only) is None


@pytest.mark.django_db
def test_a_queued_run_waits_for_imports_into_its_dataset_first(dataset):
    from accounts.models import Dataset, ImportRun

    post(account(dataset, "alpha"), 0, media=[_pending("one")])
    importing = ImportRun.objects.create(dataset=dataset, format="jsonl", status="running", heartbeat_at=timezone.now(),
                                         progress_done=10)
    elsewhere = ImportRun.objects.create(dataset=Dataset.objects.create(name="elsewhere"), format="jsonl",
                                         status="pending")
    text_only = detection_run_create(dataset=dataset, signals=["co_text"], enqueue=False)

    waited = detection_run_wait(run=text_only)
    assert waited["mark"] == ["import", importing.pk, 10]
    text_only.refresh_from_db()
    assert text_only.stage == f"Waiting for import run {importing.pk} to finish: the detection reads what it stores"
    # A run over all data waits for every import; one on another dataset does not wait for this one.
    assert detection_run_wait(run=detection_run_create(dataset=None, enqueue=False))["mark"][:2] == ["import",
                                                                                                     importing.pk]
    ImportRun.objects.filter(pk=elsewhere.pk).update(status="succeeded")

    # The import's worker died: it is marked failed, and the run moves on to the pictures.
    ImportRun.objects.filter(pk=importing.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert detection_run_wait(run=text_only, waited=waited) is None
    assert ImportRun.objects.get(pk=importing.pk).status == "failed"
    with_images = detection_run_create(dataset=dataset, enqueue=False)
    assert detection_run_wait(run=with_images)["mark"] == ["pictures", 1]


@pytest.mark.django_db
def test_a_run_stops_waiting_once_nothing_has_moved_for_the_stall_time_and_nudges_the_hashing_before(dataset, settings):
    settings.DETECTION_WAIT_STALL_SECONDS = 600
    dead_claim = _pending("claimed by a dead worker", HashState.PROCESSING,
                          claimed_at=timezone.now() - timedelta(hours=1))
    post(account(dataset, "alpha"), 0, media=[dead_claim])
    run = detection_run_create(dataset=dataset, signals=["co_image"], enqueue=False)

    # No picture hashed since the last look, for less than the stall time: the dead worker's claim is given back.
    waited = detection_run_wait(run=run, waited={"mark": ["pictures", 1], "since": time.time() - 60})
    assert waited["mark"] == ["pictures", 1] and time.time() - waited["since"] >= 60
    assert MediaAsset.objects.get(pk=dead_claim.pk).hash_state == HashState.PENDING

    # Nothing for the whole stall time: the run starts.
    assert detection_run_wait(run=run, waited={"mark": ["pictures", 1], "since": time.time() - 601}) is None


@pytest.mark.django_db
def test_a_run_says_how_many_pictures_it_left_out(dataset, client, cast, capsys):
    a, b = account(dataset, "alpha"), account(dataset, "bravo")
    post(a, 0, media=[picture(BITS), _pending("late")])
    post(b, 1, media=[picture(flip(BITS, 2)), _pending("broken", HashState.FAILED, hash_error="truncated")])

    run = detection_run_execute(run=detection_run_create(dataset=dataset, enqueue=False))
    assert run.summary["pictures"] == {"total": 4, "hashed": 2, "waiting": 1, "unreadable": 1}
    text_only = detection_run_execute(run=detection_run_create(dataset=dataset, signals=["co_text"], enqueue=False))
    assert "pictures" not in text_only.summary

    client.force_login(cast["investigator"])
    page = client.get(reverse("accounts:detection", args=[run.pk])).content.decode()
    assert "The image signals compared 2 of 4 pictures" in page
    assert "<strong>1 not hashed yet is left out</strong>" in page
    assert f'1 could not be read (<a href="{reverse("media_analysis:unreadable")}">which</a>)' in page

    call_command("detect_coordination", "--dataset", dataset.name, "--here")
    captured = capsys.readouterr()
    assert "1 pictures are not hashed yet: the image signals leave them out" in captured.err
    assert "The image signals compared 2 of 4 pictures; 1 not hashed yet are left out; 1 could not be read." in captured.out


@pytest.mark.django_db
def test_the_dashboard_points_at_the_detection_under_way(dataset, client, cast):
    client.force_login(cast["investigator"])
    page = client.get("/").content.decode()
    assert f'on the <a href="{reverse("accounts:detections")}">detection page</a>' in page
    run = detection_run_create(dataset=dataset, enqueue=False)
    fragment = client.get(reverse("accounts:detection", args=[run.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "Pending · step 0 of 15 · queued for a worker" in fragment
    DetectionRun.objects.filter(pk=run.pk).update(stage="Waiting for 5 pictures to be hashed: <b>")
    page = client.get("/").content.decode()
    assert (f'No clusters yet: <a href="{reverse("accounts:detection", args=[run.pk])}">detection run {run.pk}</a> '
            "is pending (Waiting for 5 pictures to be hashed: &lt;b&gt;).") in page
    fragment = client.get(reverse("accounts:detection", args=[run.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "Pending · step 0 of 15 · Waiting for 5 pictures to be hashed: &lt;b&gt;" in fragment


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("celery_worker_process", ["filesystem"], indirect=True)
def test_a_detection_queued_before_the_pictures_are_hashed_waits_for_them_on_a_worker(celery_worker_process, tmp_path):
    """Three accounts post copies of two photographs. The pictures' hashing tasks were lost (a broker emptied):
    the waiting detection queues hashing again, and finds the cluster once every copy is hashed."""
    from accounts.models import Dataset
    from media_analysis.services import media_file_store
    from tests.media_analysis.pictures import jpeg, square

    dataset = Dataset.objects.create(name="queued early")
    accounts = [account(dataset, handle) for handle in ("alpha", "bravo", "charlie")]
    for minutes, name in ((0, "astronaut"), (90, "coffee")):
        original = square(name)
        for n, (owner, copy) in enumerate(zip(accounts, (original, jpeg(original, 30), original.resize((300, 300))),
                                              strict=True)):
            path = tmp_path / f"{name}-{n}.jpg"
            copy.save(path, quality=90)
            stored = media_file_store(path=path)
            asset = MediaAsset.objects.create(sha256=stored.sha256, file=stored.relative_path, size_bytes=stored.size)
            post(owner, minutes + n, media=[asset])

    run = detection_run_create(dataset=dataset, signals=["co_image"])
    stages, deadline = set(), time.monotonic() + 120
    while (current := DetectionRun.objects.get(pk=run.pk)).status not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, celery_worker_process.log.read_text()[-3000:]
        stages.add((current.status, current.stage))
        time.sleep(0.2)
    assert current.status == "succeeded", current.error
    assert ("pending", "Waiting for 6 pictures to be hashed: the image signals compare them") in stages
    assert current.summary["pictures"] == {"total": 6, "hashed": 6, "waiting": 0, "unreadable": 0}
    (cluster,) = current.clusters.all()
    assert {m.handle for m in cluster.members.all()} == {"alpha", "bravo", "charlie"}
