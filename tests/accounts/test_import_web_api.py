"""Uploading an export on the page and through the API: roles, progress, a real worker doing the import."""

import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import ImportRun, Post

JSONL = (
    b'{"type": "account", "platform": "twitter", "id": "7", "handle": "zed"}\n'
    b'{"type": "post", "platform": "twitter", "id": "70", "account_id": "7", "posted_at": "2019-01-01T00:00:00Z"}\n'
    b'{"type": "post", "platform": "twitter", "id": "71"}\n'
)


def _wait_for(run_id: int, timeout: float = 90) -> ImportRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = ImportRun.objects.get(pk=run_id)
        if run.status in {"succeeded", "failed"}:
            return run
        time.sleep(0.3)
    raise AssertionError(f"import {run_id} still {run.status}")


@pytest.mark.django_db
@pytest.mark.parametrize("role", [None, "investigator", "lead", "reviewer", "admin"])
def test_import_pages_need_the_investigator_role(client, cast, role):
    client.force_login(cast[role or "outsider"])
    expected = 403 if role is None else 200
    assert client.get(reverse("accounts:imports")).status_code == expected
    run = ImportRun.objects.create(dataset_id=_dataset().pk, format="jsonl")
    response = client.get(reverse("accounts:import_detail", args=[run.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == expected


def _dataset():
    from accounts.services import dataset_get_or_create

    return dataset_get_or_create(name="d")


@pytest.mark.django_db
def test_anonymous_is_sent_to_login_and_api_refuses(client):
    assert client.get(reverse("accounts:imports")).status_code == 302
    assert APIClient().get(reverse("api:import-list")).status_code in {401, 403}


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("celery_worker_process", ["filesystem"], indirect=True)
def test_upload_page_queues_an_import_that_a_worker_runs(client, cast, celery_worker_process):
    client.force_login(cast["investigator"])
    upload = SimpleUploadedFile("../../../etc/evil name.jsonl", JSONL, content_type="application/octet-stream")
    response = client.post(reverse("accounts:imports"), {"dataset": "upload", "format": "auto", "files": [upload]})
    assert response.status_code == 302
    run = ImportRun.objects.get()
    assert response["Location"] == reverse("accounts:import_detail", args=[run.pk])
    stored = run.input_paths[0]
    assert "/uploads/" in stored and ".." not in stored and stored.endswith("evil_name.jsonl")
    run = _wait_for(run.pk)
    assert run.status == "succeeded" and run.format == "jsonl"
    assert (run.created_count, run.rejected_count) == (2, 1)
    assert run.started_by == cast["investigator"] and run.sources[0]["sha256"]
    assert Post.objects.filter(external_id="70").exists()
    page = client.get(reverse("accounts:import_detail", args=[run.pk])).content.decode()
    assert "Succeeded" in page and "is a required property" in page and 'hx-trigger="every 1s"' not in page


@pytest.mark.django_db
def test_progress_partial_polls_while_running(client, cast):
    client.force_login(cast["lead"])
    run = ImportRun.objects.create(dataset=_dataset(), format="jsonl", status="running", progress_total=200,
                                   progress_done=50)
    body = client.get(reverse("accounts:import_detail", args=[run.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert body.lstrip().startswith('<div id="import-progress"') and 'hx-trigger="every 1s"' in body
    assert '<progress max="100" value="25">' in body


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("celery_worker_process", ["filesystem"], indirect=True)
def test_api_upload_and_status(cast, celery_worker_process):
    api = APIClient()
    token = Token.objects.create(user=cast["reviewer"])
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    response = api.post(reverse("api:import-list"),
                        {"dataset": "api", "format": "jsonl", "files": [SimpleUploadedFile("x.jsonl", JSONL)]},
                        format="multipart")
    assert response.status_code == 202
    run_id = response.json()["id"]
    _wait_for(run_id)
    detail = api.get(reverse("api:import-detail", args=[run_id])).json()
    assert detail["status"] == "succeeded" and detail["dataset"] == "api" and detail["rejected_count"] == 1
    assert detail["problems"][0]["line"] == 3
    assert [r["id"] for r in api.get(reverse("api:import-list")).json()["results"]] == [run_id]


@pytest.mark.django_db
def test_api_refuses_outsider_and_bad_upload(cast):
    api = APIClient()
    api.force_authenticate(cast["outsider"])
    assert api.get(reverse("api:import-list")).status_code == 403
    assert api.post(reverse("api:import-list"), {"dataset": "x"}, format="multipart").status_code == 403
    api.force_authenticate(cast["investigator"])
    response = api.post(reverse("api:import-list"), {"dataset": "x", "format": "nope"}, format="multipart")
    assert response.status_code == 400 and {"format", "files"} <= set(response.json())
    assert ImportRun.objects.count() == 0


@pytest.mark.django_db
def test_runs_with_many_files_show_a_page_of_them(client, cast):
    """An Instaloader export lists every picture it read: lists and progress polls must not load them all."""
    sources = [{"name": f"p{i}.jpg", "bytes": i, "sha256": f"{i:064x}"} for i in range(250)]
    run = ImportRun.objects.create(dataset=_dataset(), format="instaloader", status="succeeded", sources=sources,
                                   source_count=len(sources))
    client.force_login(cast["investigator"])
    page = client.get(reverse("accounts:import_detail", args=[run.pk])).content.decode()
    assert "The first 200 of 250 files." in page and "p199.jpg" in page and "p200.jpg" not in page
    api = APIClient()
    api.force_authenticate(cast["investigator"])
    listed = api.get(reverse("api:import-list")).json()["results"][0]
    assert listed["source_count"] == 250 and "sources" not in listed
    detail = api.get(reverse("api:import-detail", args=[run.pk])).json()
    assert len(detail["sources"]) == 250 and detail["sources"][-1]["name"] == "p249.jpg"


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["\u00e9" * 200 + ".jsonl", "\U0001f600" * 100 + ".jsonl", "../../" + "x" * 400,
                                  "a\\b\\..\\c.jsonl", "nul\x00.jsonl", "   "])
def test_hostile_upload_names_are_stored_under_safe_names_the_file_system_takes(cast, settings, tmp_path, name):
    from accounts.services import upload_store

    settings.UPLOAD_ROOT = tmp_path / "uploads"
    (stored,) = upload_store(files=[SimpleUploadedFile(name, JSONL)])
    assert stored.parent.parent == settings.UPLOAD_ROOT and stored.read_bytes() == JSONL
    assert len(stored.name.encode()) <= 255 and "/" not in stored.name and "\x00" not in stored.name


@pytest.fixture
def many_problems(tmp_path):
    """An import with 600 rejected rows from a file whose name a spreadsheet would run as a formula."""
    from accounts.services import import_paths

    folder = tmp_path / "export"
    folder.mkdir()
    lines = ["userid,user_screen_name,tweetid,tweet_time"] + [f",nobody,{n},2019-01-01 00:00" for n in range(600)]
    (folder / "=HYPERLINK(1).csv").write_text("\n".join(lines) + "\n")
    return import_paths(dataset_name="broken", format="twitter-io", paths=[folder], user=None)


def _problem_rows(text: str) -> list[list[str]]:
    import csv
    import io

    return list(csv.reader(io.StringIO(text)))


@pytest.mark.django_db
def test_every_problem_of_an_import_can_be_had_from_the_page_and_the_api(client, cast, many_problems):
    run = many_problems
    assert run.rejected_count == 600
    client.force_login(cast["investigator"])
    page = client.get(reverse("accounts:import_detail", args=[run.pk])).content.decode()
    assert "600 problems, the first 500 shown" in page
    assert page.count("empty userid") == 500
    download = client.get(reverse("accounts:import_problems", args=[run.pk]))
    assert download.status_code == 200 and download["Content-Type"].startswith("text/csv")
    assert f'filename="import-{run.pk}-problems.csv"' in download["Content-Disposition"]
    rows = _problem_rows(b"".join(download.streaming_content).decode())
    assert rows[0] == ["kind", "file", "line", "column", "reason"]
    assert len(rows) == 601
    assert rows[1] == ["rejected", "'=HYPERLINK(1).csv", "2", "userid", "empty userid"]  # never run as a formula
    assert [int(r[2]) for r in rows[1:]] == list(range(2, 602))
    client.force_login(cast["outsider"])
    assert client.get(reverse("accounts:import_problems", args=[run.pk])).status_code == 403

    api = APIClient()
    api.force_authenticate(cast["investigator"])
    detail = api.get(reverse("api:import-detail", args=[run.pk])).json()
    assert (detail["problem_count"], len(detail["problems"])) == (600, 600)
    listed, url = [], reverse("api:import-problems", args=[run.pk])
    while url:
        page = api.get(url).json()
        listed += page["results"]
        url = page["next"]
    assert len(listed) == 600 and listed[-1]["line"] == 601
    api.force_authenticate(cast["outsider"])
    assert api.get(reverse("api:import-problems", args=[run.pk])).status_code == 403


@pytest.mark.django_db
def test_import_command_writes_every_problem_to_a_report(tmp_path, capsys):
    from django.core.management import CommandError, call_command

    folder = tmp_path / "export"
    folder.mkdir()
    lines = ["userid,user_screen_name,tweetid,tweet_time"] + [f",nobody,{n},2019-01-01 00:00" for n in range(80)]
    (folder / "tweets.csv").write_text("\n".join(lines) + "\n")
    report = tmp_path / "problems.csv"
    call_command("import_data", str(folder), format="twitter-io", report=report)
    out = capsys.readouterr().out
    assert out.count("rejected: tweets.csv:") == 50
    assert f"… and 30 more problems (all of them in {report})" in out
    rows = _problem_rows(report.read_text())
    assert len(rows) == 81 and rows[-1] == ["rejected", "tweets.csv", "81", "userid", "empty userid"]
    call_command("import_data", str(folder), format="twitter-io")
    assert "; --report FILE.csv writes every one" in capsys.readouterr().out
    with pytest.raises(CommandError, match="no such folder"):
        call_command("import_data", str(folder), format="twitter-io", report=tmp_path / "nowhere" / "r.csv")
    assert ImportRun.objects.count() == 2  # refused before importing


@pytest.mark.django_db
def test_a_failed_import_shows_where_it_stopped_not_a_full_bar(client, cast):
    run = ImportRun.objects.create(dataset_id=_dataset().pk, format="jsonl", status="failed", progress_done=30,
                                   progress_total=120, error="could not tell the format")
    client.force_login(cast["investigator"])
    page = client.get(reverse("accounts:import_detail", args=[run.pk])).content.decode()
    assert '<progress max="100" value="25" class="failed">' in page and "could not tell the format" in page
    ImportRun.objects.filter(pk=run.pk).update(status="succeeded")
    page = client.get(reverse("accounts:import_detail", args=[run.pk])).content.decode()
    assert '<progress max="100" value="100">' in page


@pytest.mark.django_db
def test_instaloader_files_uploaded_one_by_one_are_imported_as_their_profile(small_demo, settings, tmp_path):
    """Selecting a profile folder's files in the upload form (no zip): they keep their names, which is how the
    posts, pictures and profile find each other."""
    from accounts.models import Account
    from accounts.services import import_paths, upload_store

    settings.UPLOAD_ROOT = tmp_path / "uploads"
    outdir, _ = small_demo
    folder = outdir / "dumpchump"
    stored = upload_store(files=[SimpleUploadedFile(p.name, p.read_bytes()) for p in sorted(folder.iterdir())])
    assert sorted(p.name for p in stored) == sorted(p.name for p in folder.iterdir())
    run = import_paths(dataset_name="uploaded", format="instaloader", paths=stored, user=None)
    assert (run.status, run.rejected_count, run.rejections.count()) == ("succeeded", 0, 0)
    assert Account.objects.filter(handle="dumpchump").exists()
    assert Post.objects.count() == len(list(folder.glob("*_UTC.json.xz")))
    assert Post.objects.filter(media__isnull=False).distinct().count() == Post.objects.count()


def test_uploads_with_the_same_name_are_all_kept(settings, tmp_path):
    from accounts.services import upload_store

    settings.UPLOAD_ROOT = tmp_path / "uploads"
    names = ["posts.csv", "posts.csv", "Posts.CSV", "a.json.xz", "a.json.xz", ".hidden", ".hidden", "   ", "   ",
             "posts (2).csv"]
    stored = upload_store(files=[SimpleUploadedFile(name, name.encode() + bytes([n])) for n, name in enumerate(names)])
    assert [p.name for p in stored] == ["posts.csv", "posts (2).csv", "Posts (3).CSV", "a.json.xz", "a (2).json.xz",
                                        ".hidden", ".hidden (2)", "upload", "upload (2)", "posts_2.csv"]
    assert [p.read_bytes()[-1] for p in stored] == list(range(len(names)))


@pytest.mark.django_db
def test_the_checks_before_the_first_row_say_what_they_are_doing(tmp_path, client, cast):
    """Reading every input file for its SHA-256 takes minutes on a large export: the run's page says so
    (and the worker's heartbeat goes on), and the command line hears every file."""
    import re

    from accounts.services import import_paths

    folder = tmp_path / "export"
    folder.mkdir()
    for n in range(5):
        (folder / f"part{n}.jsonl").write_bytes(JSONL)
    heard, pages = [], []
    client.force_login(cast["investigator"])

    def seen(done, total):
        heard.append((done, total))
        run = ImportRun.objects.order_by("-id").first()
        if done == 3:
            ImportRun.objects.filter(pk=run.pk).update(status="running")
            pages.append(client.get(reverse("accounts:import_detail", args=[run.pk])).content.decode())
            assert run.heartbeat_at is not None

    run = import_paths(dataset_name="staged", format="jsonl", paths=[folder], user=None, checking=seen)
    assert heard == [(n, 5) for n in range(1, 6)]
    # Written at most twice a second (and for the last file): here the first file's, as the third is read.
    assert re.search(r"Running · Reading the input files for their SHA-256: [12] of 5 ·", pages[0]), pages[0]
    assert run.stage == "" and run.status == "succeeded" and len(run.sources) == 5


def test_a_large_upload_is_kept_by_a_rename_not_a_copy(settings, tmp_path):
    """Uploads over FILE_UPLOAD_MAX_MEMORY_SIZE stream to FILE_UPLOAD_TEMP_DIR, beside UPLOAD_ROOT (not /tmp,
    often a small tmpfs): keeping a multi-gigabyte export is then a rename, without a second copy on disk."""
    import os

    from django.core.files.uploadedfile import TemporaryUploadedFile

    from accounts.services import upload_store

    assert Path(settings.FILE_UPLOAD_TEMP_DIR).parent == Path(settings.UPLOAD_ROOT).parent
    settings.UPLOAD_ROOT = tmp_path / "uploads"
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "upload-tmp")
    Path(settings.FILE_UPLOAD_TEMP_DIR).mkdir()
    upload = TemporaryUploadedFile("export.jsonl", "application/octet-stream", len(JSONL), None)
    upload.write(JSONL)
    upload.flush()
    temporary, inode = Path(upload.temporary_file_path()), os.stat(upload.temporary_file_path()).st_ino
    assert temporary.parent == tmp_path / "upload-tmp"
    (stored,) = upload_store(files=[upload])
    upload.close()  # as Django does after the request: the moved file is not an error
    assert stored.name == "export.jsonl" and stored.read_bytes() == JSONL
    assert os.stat(stored).st_ino == inode and not temporary.exists()
