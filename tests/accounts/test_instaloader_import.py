"""Importing Instaloader folders through the shared services: counts, idempotence, hostile files."""

import json
import lzma
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command

from accounts.importers import instaloader
from accounts.models import Account, HandleChange, ImportRun, Post, PostMedia
from accounts.services import import_paths
from media_analysis.models import MediaAsset

pytestmark = pytest.mark.django_db


def _import(paths: list[Path], name: str = "test") -> ImportRun:
    return import_paths(dataset_name=name, format="instaloader", paths=paths, user=None)


def _copy_accounts(small_demo, tmp_path: Path, usernames: list[str]) -> Path:
    outdir, _ = small_demo
    target = tmp_path / "export"
    for username in usernames:
        shutil.copytree(outdir / username, target / username)
    return target


def test_demo_import_matches_ground_truth_and_is_idempotent(small_demo):
    outdir, truth = small_demo
    run = _import([outdir])
    assert run.status == "succeeded"
    assert Account.objects.count() == truth["counts"]["accounts"]
    assert Post.objects.count() == truth["counts"]["posts"]
    assert run.rejected_count == 0
    assert run.created_count == truth["counts"]["accounts"] + truth["counts"]["posts"]
    # Every image is stored once per distinct content and linked to its post.
    assert PostMedia.objects.count() == truth["counts"]["images"] - truth["counts"]["accounts"]
    assert MediaAsset.objects.filter(hash_state="pending").count() == MediaAsset.objects.count()
    dumpchump = Account.objects.get(handle="dumpchump")
    assert dumpchump.profile_image is not None
    assert dumpchump.posts.filter(hashtags__contains=["impeachtrump"]).exists()
    assert len(run.sources) > 100 and all(len(s["sha256"]) == 64 for s in run.sources)
    assert run.source_count == len(run.sources)

    again = _import([outdir])
    assert (again.created_count, again.updated_count, again.rejected_count) == (0, 0, 0)
    assert Account.objects.count() == truth["counts"]["accounts"]
    assert Post.objects.count() == truth["counts"]["posts"]
    assert again.source_sha256 == run.source_sha256


def _rewrite_profile(folder: Path, **changes: object) -> None:
    (path,) = [p for p in folder.glob("*_*.json.xz") if not p.name[0].isdigit()]
    payload = json.loads(lzma.decompress(path.read_bytes()))
    payload["node"].update(changes)
    path.write_bytes(lzma.compress(json.dumps(payload).encode()))


def test_newer_export_updates_counts_and_records_handle_change(small_demo, tmp_path):
    export = _copy_accounts(small_demo, tmp_path, ["dumpchump"])
    _import([export])
    _rewrite_profile(export / "dumpchump", username="dumpchump_official", edge_followed_by={"count": 123456})
    run = _import([export])
    account = Account.objects.get(external_id=(export / "dumpchump" / "id").read_text())
    assert account.handle == "dumpchump_official"
    assert account.follower_count == 123456
    assert run.updated_count == 1
    change = HandleChange.objects.get(account=account, field="handle")
    assert (change.old_value, change.new_value, change.import_run_id) == ("dumpchump", "dumpchump_official", run.pk)


def test_hostile_and_broken_files_are_reported_not_fatal(small_demo, tmp_path):
    export = _copy_accounts(small_demo, tmp_path, ["dumpchump", "bluewave.now"])
    folder = export / "dumpchump"
    posts = sorted(folder.glob("*_UTC.json.xz"))
    posts[0].write_bytes(posts[0].read_bytes()[:40])  # truncated .xz
    posts[1].write_bytes(lzma.compress(b"{not json"))  # not JSON
    posts[2].write_bytes(lzma.compress(b"[1, 2, 3]"))  # JSON but not an object
    posts[3].write_bytes(lzma.compress(json.dumps({"node": {"id": "1"}, "instaloader": {"node_type": "Post"}}).encode()))
    # A decompression bomb: 200 MiB of zeros in a few kilobytes.
    (folder / "2019-01-01_00-00-00_UTC.json.xz").write_bytes(lzma.compress(b" " * (200 * 1024 * 1024), preset=1))
    # A post whose picture is missing, and one whose picture is not an image at all.
    image_of = {p: p.with_name(p.name.replace(".json.xz", ".jpg")) for p in posts[4:6]}
    image_of[posts[4]].unlink()
    image_of[posts[5]].write_bytes(b"<html>not a picture</html>")
    before_accounts = 0
    run = _import([export])
    assert run.status == "succeeded"
    reasons = {r.file.split("/")[-1]: r.reason for r in run.rejections.filter(kept=False)}
    assert "truncated" in reasons[posts[0].name] or "not a valid .xz" in reasons[posts[0].name]
    assert "not valid JSON" in reasons[posts[1].name]
    assert "not a JSON object" in reasons[posts[2].name]
    assert posts[3].name in reasons
    assert "expands past" in reasons["2019-01-01_00-00-00_UTC.json.xz"]
    assert run.rejected_count == 5
    warnings = list(run.rejections.filter(kept=True).values_list("file", "reason"))
    # Named with their profile folder: post files are timestamps, and two profiles can share one.
    assert any(f == f"dumpchump/{posts[4].name}" and "missing media" in r for f, r in warnings)
    assert all(f.startswith(("dumpchump/", "bluewave.now/")) for f in run.rejections.values_list("file", flat=True))
    # The good rows are in; the post with a junk picture is kept and its picture queued for hashing.
    good_posts = sum(1 for f in (export / "bluewave.now").glob("*_UTC.json.xz")) + len(posts) - 4
    assert Post.objects.count() == good_posts
    assert Account.objects.count() == before_accounts + 2


def test_files_that_are_not_instaloader_files_are_reported_not_their_folder_read(small_demo, tmp_path):
    """A stray file names no profile folder: naming it must not import the folder it sits in, and --format auto
    must not take it for Instaloader."""
    from accounts.importers import guess_format

    export = _copy_accounts(small_demo, tmp_path, ["dumpchump"])
    stray = export / "dumpchump" / "notes.csv"
    stray.write_text("a,b\n1,2\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    run = _import([stray, empty])
    assert (run.status, Post.objects.count(), Account.objects.count()) == ("succeeded", 0, 0)
    assert sorted(run.rejections.values_list("file", flat=True)) == ["empty", "notes.csv"]
    assert all("no Instaloader files here" in r for r in run.rejections.values_list("reason", flat=True))
    with pytest.raises(ValueError, match="could not tell the format"):
        guess_format([stray])
    # A post file named on its own still stands for its profile folder.
    (post,) = sorted((export / "dumpchump").glob("*_UTC.json.xz"))[:1]
    assert guess_format([post]) == "instaloader"
    run = _import([post])
    assert run.rejected_count == 0 and Account.objects.filter(handle="dumpchump").exists()
    assert Post.objects.count() == len(list((export / "dumpchump").glob("*_UTC.json.xz")))


def test_import_command_prints_json_summary(small_demo, tmp_path, capsys):
    export = _copy_accounts(small_demo, tmp_path, ["resistdaily"])
    call_command("import_data", str(export), format="instaloader", dataset="cli", json=True)
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "succeeded"
    assert summary["dataset"] == "cli"
    assert summary["created"] == 1 + len(list((export / "resistdaily").glob("*_UTC.json.xz")))
    assert summary["rejected"] == 0 and len(summary["source_sha256"]) == 64


def test_offline_context_never_reaches_instagram():
    context = instaloader.OfflineContext()
    with pytest.raises(instaloader.OfflineError):
        context.get_json("graphql/query", {})


def test_media_that_cannot_be_stored_is_named_with_its_profile_folder(small_demo, tmp_path, settings):
    """Two profiles' pictures can share a name (a timestamp), so a warning about one names its folder too."""
    export = _copy_accounts(small_demo, tmp_path, ["dumpchump"])
    (picture,) = sorted((export / "dumpchump").glob("*_UTC.jpg"))[:1]
    settings.MEDIA_MAX_FILE_BYTES = picture.stat().st_size - 1
    run = _import([export])
    assert run.status == "succeeded"
    warnings = dict(run.rejections.filter(kept=True, column="media").values_list("file", "reason"))
    assert warnings[f"dumpchump/{picture.name}"].startswith("media not imported:")
    assert Post.objects.count() == len(list((export / "dumpchump").glob("*_UTC.json.xz")))


def test_a_batch_ends_once_it_brings_enough_pictures(small_demo, tmp_path, monkeypatch):
    """Storing pictures is most of a picture-heavy batch's time: batches end at BATCH_PICTURES pictures, so the
    progress bar moves every few seconds on an Instaloader export, not after ten thousand posts."""
    from accounts import services

    export = _copy_accounts(small_demo, tmp_path, ["dumpchump", "bluewave.now"])
    pictures = len([p for p in export.rglob("*.jpg")])
    monkeypatch.setattr(services, "BATCH_PICTURES", 4)
    steps: list[int] = []
    run = import_paths(dataset_name="small batches", format="instaloader", paths=[export], user=None,
                       progress=steps.append)
    assert run.status == "succeeded" and run.rejected_count == 0
    assert len(steps) >= pictures // 5 and sum(steps) == run.read_count
    assert Post.objects.count() == len(list(export.rglob("*_UTC.json.xz")))
