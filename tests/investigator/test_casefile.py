"""Case files: export by leads, verification, and every kind of tampering reported precisely."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from investigator.casefile.verify import case_file_verify
from investigator.services import case_create, case_item_annotate, case_items_add, review_submit
from tests.workbench import build_investigation

pytestmark = pytest.mark.django_db


@pytest.fixture
def exported(cast, tmp_path, settings):
    from PIL import Image

    from accounts.models import PostMedia
    from media_analysis.models import MediaAsset
    from media_analysis.services import media_assets_register, media_file_store, media_hash_batch, media_hash_claim

    settings.MEDIA_ROOT = str(tmp_path / "media")
    inv = build_investigation()
    inv.accounts[2].handle = "=HYPERLINK(\"http://evil\")"
    inv.accounts[2].save()
    picture = tmp_path / "evidence.png"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(picture)
    media_assets_register(files=[(media_file_store(path=picture), picture.name)])
    media_hash_batch(asset_ids=media_hash_claim(limit=5))
    PostMedia.objects.create(post=inv.posts[1], media=MediaAsset.objects.get())
    investigator = cast["investigator"]
    case = case_create(user=investigator, title="Dump chump <network>")
    case_items_add(case=case, user=investigator, kind="cluster", ids=[inv.cluster.pk])
    case_create(user=cast["lead"], title="Another team's secret case")  # interleaved events of another case
    case_items_add(case=case, user=investigator, kind="account", ids=[inv.accounts[1].pk])
    item = case.items.get(kind="account")
    case_item_annotate(item=item, user=investigator, text="Same caption a minute apart", tags=["T0143.002"])
    review_submit(user=cast["reviewer"], account_ids=[inv.accounts[1].pk], state="confirmed", reason="Copied captions")
    out = tmp_path / "case.zip"
    call_command("export_case", case.pk, str(out), "--as", "lead")
    return out, case, inv


def _rewrite(source: Path, target: Path, *, change: dict[str, bytes] | None = None, drop: set[str] = frozenset(),
             add: dict[str, bytes] | None = None, rehash: bool = False) -> Path:
    """A copy of a case file with members changed, dropped or added; rehash=True also updates the manifest's
    hashes (what a careful forger would do)."""
    change, add = change or {}, add or {}
    with zipfile.ZipFile(source) as old:
        members = {name: old.read(name) for name in old.namelist() if name not in drop}
    members.update(change)
    members.update(add)
    if rehash:
        manifest = json.loads(members["manifest.json"])
        for name in change:
            manifest["files"][name] = hashlib.sha256(members[name]).hexdigest()
        members["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(target, "w") as new:
        for name, body in members.items():
            new.writestr(name, body)
    return target


def test_export_holds_every_part_and_verifies(exported, capsys):
    out, case, inv = exported
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        accounts = list(csv.DictReader(io.StringIO(archive.read("accounts.csv").decode())))
        annotations = json.loads(archive.read("annotations.json"))
        decisions = json.loads(archive.read("decisions.json"))
        report = archive.read("report.html").decode()
        audit = [json.loads(line) for line in archive.read("audit.jsonl").splitlines()]
    for table in ("accounts", "posts", "edges", "clusters", "decisions", "annotations", "media"):
        assert {f"{table}.csv", f"{table}.json"} <= names
    assert any(n.startswith("media/") and n.endswith(".png") for n in names)
    assert set(manifest["files"]) == names - {"manifest.json"}
    assert manifest["case"]["title"] == "Dump chump <network>" and manifest["exported_by"] == "lead"
    assert manifest["detection_runs"][0]["id"] == inv.run.pk and manifest["detection_runs"][0]["parameters"]["window"] == 600
    assert {a["handle"] for a in accounts} >= {"dumpchump1", "'=HYPERLINK(\"http://evil\")"}  # no formula in a spreadsheet
    assert annotations[0]["text"] == "Same caption a minute apart" and annotations[0]["tags"] == "T0143.002"
    assert decisions[0]["state"] == "confirmed" and decisions[0]["reason"] == "Copied captions"
    assert "Dump chump &lt;network&gt;" in report and "Fabricated Persona" in report and "<script>alert(" not in report
    assert [r["event"]["action"] for r in audit if "event" in r] == ["case.created", "case.items_added", "case.items_added",
                                                                     "case.item_annotated"]
    assert all(r["event"]["case"] == case.pk for r in audit if "event" in r)
    links = [r for r in audit if "link" in r]
    assert len(links) == 1 and set(links[0]) == {"link", "prev_hash", "hash"}  # the chain, not the other case's content
    assert b"secret" not in zipfile.ZipFile(out).read("audit.jsonl")
    assert case.audit_events.filter(action="case.exported").exists()
    call_command("verify_casefile", str(out))
    printed = capsys.readouterr().out
    assert manifest["omitted"] == {} and {"report.pdf", "stix.json"} <= names
    assert "OK:" in printed and "the manifest is the one exported here" in printed


def test_only_leads_export(exported, tmp_path):
    _, case, _ = exported
    with pytest.raises(CommandError, match="lead role"):
        call_command("export_case", case.pk, str(tmp_path / "x.zip"), "--as", "investigator")
    assert not (tmp_path / "x.zip").exists()


def test_tampering_is_reported_precisely(exported, tmp_path):
    out, _, _ = exported
    with zipfile.ZipFile(out) as archive:
        accounts_csv = archive.read("accounts.csv")
        audit_lines = archive.read("audit.jsonl").splitlines()
    edited = accounts_csv.replace(b"dumpchump1", b"someoneelse")

    changed = case_file_verify(_rewrite(out, tmp_path / "a.zip", change={"accounts.csv": edited}))
    assert changed.problems == [changed.problems[0]] and changed.problems[0].startswith("accounts.csv: changed")

    missing = case_file_verify(_rewrite(out, tmp_path / "b.zip", drop={"decisions.json"}))
    assert missing.problems == ["decisions.json: listed in the manifest but missing from the archive"]

    added = case_file_verify(_rewrite(out, tmp_path / "c.zip", add={"media/extra.jpg": b"not evidence"}))
    assert added.problems == ["media/extra.jpg: not in the manifest (added after export)"]

    forged = case_file_verify(_rewrite(out, tmp_path / "d.zip", change={"accounts.csv": edited}, rehash=True))
    assert len(forged.problems) == 1 and forged.problems[0].startswith("manifest.json: differs from every export")

    event = json.loads(audit_lines[1])
    event["event"]["data"]["ids"] = [999]
    lines = [*audit_lines[:1], json.dumps(event).encode(), *audit_lines[2:]]
    rewritten = case_file_verify(_rewrite(out, tmp_path / "e.zip", change={"audit.jsonl": b"\n".join(lines) + b"\n"},
                                          rehash=True))
    assert any(p.startswith("audit.jsonl line 2 (event #") and "content changed" in p for p in rewritten.problems)

    cut = [*audit_lines[:1], *audit_lines[2:]]
    removed = case_file_verify(_rewrite(out, tmp_path / "f.zip", change={"audit.jsonl": b"\n".join(cut) + b"\n"}, rehash=True))
    assert any("does not follow line 1" in p for p in removed.problems)
    assert any("the manifest says" in p for p in removed.problems)


def test_verify_refuses_non_case_files(tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04 broken")
    assert case_file_verify(junk).problems[0].startswith("not a readable ZIP file")
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("x.txt", "x")
    assert case_file_verify(empty).problems == ["manifest.json is missing"]
    with pytest.raises(CommandError, match="not as it was exported"):
        call_command("verify_casefile", str(empty))


def _wait_for_export(export_id: int, timeout: float = 90):  # noqa: ANN202
    import time

    from investigator.models import CaseExport

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        export = CaseExport.objects.get(pk=export_id)
        if export.status in ("succeeded", "failed"):
            return export
        time.sleep(0.3)
    raise AssertionError("the export did not finish")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("celery_worker_process", ["filesystem"], indirect=True)
def test_lead_builds_a_case_file_on_a_worker_and_downloads_it(client, cast, celery_worker_process, tmp_path):
    from django.urls import reverse

    from investigator.models import CaseExport

    inv = build_investigation()
    case = case_create(user=cast["investigator"], title="Hand-off")
    case_items_add(case=case, user=cast["investigator"], kind="cluster", ids=[inv.cluster.pk])
    client.force_login(cast["investigator"])
    assert client.post(reverse("case_export_request", args=[case.pk])).status_code == 403
    client.force_login(cast["lead"])
    assert "Build case file" in client.get(reverse("case", args=[case.pk])).content.decode()
    response = client.post(reverse("case_export_request", args=[case.pk]))
    export = CaseExport.objects.get()
    assert response["Location"] == reverse("case_export", args=[export.pk])
    export = _wait_for_export(export.pk)
    assert export.status == "succeeded", export.error
    page = client.get(reverse("case_export", args=[export.pk])).content.decode()
    assert "Download" in page and "every 1s" not in page
    client.force_login(cast["investigator"])
    assert client.get(reverse("case_export", args=[export.pk])).status_code == 403
    assert client.get(reverse("case_export_download", args=[export.pk])).status_code == 403
    client.force_login(cast["lead"])
    download = client.get(reverse("case_export_download", args=[export.pk]))
    target = tmp_path / "download.zip"
    target.write_bytes(b"".join(download.streaming_content))
    assert download.status_code == 200 and case_file_verify(target).ok
    assert case.audit_events.filter(action="case.export_downloaded", actor=cast["lead"]).exists()


def test_expired_case_files_are_gone(client, cast, settings, tmp_path):
    from datetime import timedelta

    from django.urls import reverse
    from django.utils import timezone

    from investigator.models import CaseExport
    from investigator.services import case_export_run, case_exports_prune

    settings.EXPORT_ROOT = str(tmp_path / "exports")
    case = case_create(user=cast["lead"], title="Old")
    export = CaseExport.objects.create(case=case, requested_by=cast["lead"], expires_at=timezone.now() + timedelta(hours=1))
    export = case_export_run(export_id=export.pk)
    assert export.status == "succeeded" and case_export_run(export_id=export.pk) is None  # claimed once
    path = tmp_path / "exports" / export.file
    assert path.is_file()
    CaseExport.objects.filter(pk=export.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    client.force_login(cast["lead"])
    assert client.get(reverse("case_export_download", args=[export.pk])).status_code == 410
    assert case_exports_prune() == 1 and not path.exists()
    assert "Expired on" in client.get(reverse("case_export", args=[export.pk])).content.decode()


def test_stix_bundle_validates_and_names_the_techniques(exported):
    import stix2

    out, case, inv = exported
    with zipfile.ZipFile(out) as archive:
        bundle = stix2.parse(archive.read("stix.json"), allow_custom=False, version="2.1")
    by_type: dict[str, list] = {}
    for obj in bundle.objects:
        by_type.setdefault(obj.type, []).append(obj)
    assert {"identity", "campaign", "user-account", "observed-data", "attack-pattern", "relationship", "note"} <= set(by_type)
    assert by_type["campaign"][0].name == "Dump chump <network>"
    assert {a.account_login for a in by_type["user-account"]} >= {"dumpchump1", '=HYPERLINK("http://evil")'}
    (pattern,) = by_type["attack-pattern"]
    assert pattern.name == "Fabricated Persona" and pattern.external_references[0].external_id == "T0143.002"
    uses = [r for r in by_type["relationship"] if r.relationship_type == "uses"]
    assert uses[0].source_ref == by_type["campaign"][0].id and uses[0].target_ref == pattern.id
    assert {n.content for n in by_type["note"]} == {"Same caption a minute apart", "Copied captions"}
    observed = by_type["observed-data"][0]
    assert set(observed.object_refs) == {a.id for a in by_type["user-account"]}


def test_pdf_report_renders_a_readable_first_page(exported, tmp_path):
    import os
    import shutil
    import subprocess

    import numpy as np
    from PIL import Image

    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        if os.environ.get("CI"):
            pytest.fail("pdftoppm is required on CI: `make test` installs poppler-utils")
        pytest.skip("pdftoppm is not installed (sudo apt-get install poppler-utils)")
    out, _, _ = exported
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(zipfile.ZipFile(out).read("report.pdf"))
    assert pdf.read_bytes().startswith(b"%PDF-")
    subprocess.run([pdftoppm, "-png", "-r", "50", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")], check=True)
    page = np.asarray(Image.open(next(tmp_path.glob("page*.png"))).convert("L"), dtype=np.float64)
    dark = (page < 128).mean()
    assert page.std() > 10 and 0.005 < dark < 0.5  # text on a white page, neither blank nor solid


def test_report_draws_the_network_the_timeline_and_copies_side_by_side(cast, tmp_path, settings):
    import re

    import skimage.data
    from PIL import Image

    from accounts.models import PostMedia
    from media_analysis.models import MediaAsset
    from media_analysis.services import media_assets_register, media_file_store, media_hash_batch, media_hash_claim

    settings.MEDIA_ROOT = str(tmp_path / "media")
    inv = build_investigation()
    original = Image.fromarray(skimage.data.chelsea())
    files = {"original.jpg": original, "mirrored.jpg": original.transpose(Image.Transpose.FLIP_LEFT_RIGHT).resize((225, 150)),
             "unrelated.jpg": Image.fromarray(skimage.data.astronaut())}
    for name, image in files.items():
        image.save(tmp_path / name, quality=85)
    media_assets_register(files=[(media_file_store(path=tmp_path / n), n) for n in files])
    media_hash_batch(asset_ids=media_hash_claim(limit=5))
    assets = {a.original_name: a for a in MediaAsset.objects.all()}
    # The original is posted first (post 0, 12:00); the mirrored copy a minute later; the unrelated picture last.
    for post, name in zip(inv.posts, files):
        PostMedia.objects.create(post=post, media=assets[name])
    case = case_create(user=cast["investigator"], title="Copies")
    case_items_add(case=case, user=cast["investigator"], kind="cluster", ids=[inv.cluster.pk])
    out = tmp_path / "case.zip"
    call_command("export_case", case.pk, str(out), "--as", "lead")
    with zipfile.ZipFile(out) as archive:
        report = archive.read("report.html").decode()
    network = report[report.index("<h2>Network</h2>"):report.index("<h2>Activity over time</h2>")]
    assert network.count("<circle") == 3 and network.count("<line") == 3  # three members, every pair linked
    assert "@dumpchump1" in network and "&lt;script&gt;alert(" in network and "<script>" not in network
    assert "Identical text" in network  # each line in the colour of its strongest signal (here a tie: the first)
    timeline = report[report.index("<h2>Activity over time</h2>"):report.index("<h2>Evidence items")]
    assert timeline.count("<rect") == 2 and "2018-09-01: 3" in timeline and "2018-09-02: 1" in timeline
    copies = report[report.index("<h2>Pictures and their altered copies</h2>"):report.index("<h2>Pictures</h2>")]
    groups = re.findall(r'<div class="copies">(.*?)</div>', copies, re.S)
    assert len(groups) == 1 and "mirrored" in groups[0]
    assert groups[0].index(assets["original.jpg"].sha256) < groups[0].index(assets["mirrored.jpg"].sha256)
    assert assets["unrelated.jpg"].sha256 not in groups[0]
    assert case_file_verify(out).ok


def test_signed_case_files(cast, tmp_path, settings, capsys):
    from investigator.casefile.signing import public_key_load

    call_command("casefile_keygen", str(tmp_path / "signing.pem"))
    assert "Fingerprint: ed25519:" in capsys.readouterr().out
    assert (tmp_path / "signing.pem").stat().st_mode & 0o077 == 0  # the private key is its owner's only
    with pytest.raises(CommandError, match="never overwritten"):
        call_command("casefile_keygen", str(tmp_path / "signing.pem"))
    call_command("casefile_keygen", str(tmp_path / "other.pem"))
    settings.CASEFILE_SIGNING_KEY = str(tmp_path / "signing.pem")
    inv = build_investigation()
    case = case_create(user=cast["investigator"], title="Signed")
    case_items_add(case=case, user=cast["investigator"], kind="cluster", ids=[inv.cluster.pk])
    out = tmp_path / "case.zip"
    call_command("export_case", case.pk, str(out), "--as", "lead")
    public, other = public_key_load(tmp_path / "signing.pub.pem"), public_key_load(tmp_path / "other.pub.pem")
    with zipfile.ZipFile(out) as archive:
        assert "manifest.sig" in archive.namelist()
        assert json.loads(archive.read("manifest.json"))["signing_key"].startswith("ed25519:")

    good = case_file_verify(out, public_key=public)
    assert good.ok and "valid signature" in good.signature
    assert "give the exporter's public key" in case_file_verify(out).signature
    wrong_key = case_file_verify(out, public_key=other)
    assert not wrong_key.ok and "manifest.sig: not a valid signature" in wrong_key.problems[0]
    # A forger changes a file and updates the manifest's hash: the signature no longer matches.
    with zipfile.ZipFile(out) as archive:
        accounts = archive.read("accounts.csv")
    forged = _rewrite(out, tmp_path / "forged.zip", change={"accounts.csv": accounts + b"9,x\n"}, rehash=True)
    assert any("manifest.sig: not a valid signature" in p for p in case_file_verify(forged, public_key=public).problems)
    unsigned = _rewrite(out, tmp_path / "unsigned.zip", drop={"manifest.sig"})
    assert "manifest.sig: missing" in case_file_verify(unsigned, public_key=public).problems[0]

    # The command checks against this instance's key by default, or the key it is given.
    call_command("verify_casefile", str(out))
    assert "valid signature by ed25519:" in capsys.readouterr().out
    with pytest.raises(CommandError):
        call_command("verify_casefile", str(out), "--public-key", str(tmp_path / "other.pub.pem"))
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(CommandError, match="no Ed25519 public key"):
        call_command("verify_casefile", str(out), "--public-key", str(tmp_path / "junk.pem"))


def _export_left_running(case, lead, *, heard_ago):
    from datetime import timedelta

    from django.utils import timezone

    from investigator.models import CaseExport

    now = timezone.now()
    return CaseExport.objects.create(case=case, requested_by=lead, status="running", started_at=now - timedelta(hours=1),
                                     heartbeat_at=now - timedelta(seconds=heard_ago), progress_done=3,
                                     expires_at=now + timedelta(hours=1))


def test_a_case_file_build_whose_worker_died_is_built_again(client, cast, settings, tmp_path):
    """A build left "running" by a worker that died is taken up again once its worker is silent; one whose worker
    is alive is left to it, by the task as by the service."""
    from django.urls import reverse

    from investigator.services import case_export_run, case_exports_resume
    from investigator.tasks import run_case_export

    settings.EXPORT_ROOT = str(tmp_path / "exports")
    inv = build_investigation()
    case = case_create(user=cast["lead"], title="Hand-off")
    case_items_add(case=case, user=cast["lead"], kind="cluster", ids=[inv.cluster.pk])
    alive = _export_left_running(case, cast["lead"], heard_ago=5)
    dead = _export_left_running(case, cast["lead"], heard_ago=600)
    assert case_exports_resume() == 2

    assert case_export_run(export_id=alive.pk) is None
    assert run_case_export.run(alive.pk) == "running on another worker"
    client.force_login(cast["lead"])
    page = client.get(reverse("case_export", args=[dead.pk])).content.decode()
    assert "No word from its worker since" in page
    assert "No word from its worker" not in client.get(reverse("case_export", args=[alive.pk])).content.decode()

    built = case_export_run(export_id=dead.pk)
    assert built.status == "succeeded" and case_file_verify(Path(settings.EXPORT_ROOT) / built.file).ok
    assert run_case_export.run(dead.pk) == "already done"


def test_a_build_claimed_again_while_its_worker_was_silent_keeps_only_the_latest_file(cast, settings, tmp_path,
                                                                                         monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from investigator.casefile import export as casefile_export
    from investigator.models import CaseExport
    from investigator.services import case_export_run

    settings.EXPORT_ROOT = str(tmp_path / "exports")
    inv = build_investigation()
    case = case_create(user=cast["lead"], title="Hand-off")
    case_items_add(case=case, user=cast["lead"], kind="cluster", ids=[inv.cluster.pk])
    export = CaseExport.objects.create(case=case, requested_by=cast["lead"], expires_at=timezone.now() + timedelta(hours=1))
    build = casefile_export.case_file_build

    def build_while_another_worker_claims_it(**kwargs):  # the real build; meanwhile the run was claimed again
        build(**kwargs)
        CaseExport.objects.filter(pk=export.pk).update(started_at=timezone.now() + timedelta(seconds=1))

    monkeypatch.setattr(casefile_export, "case_file_build", build_while_another_worker_claims_it)
    assert case_export_run(export_id=export.pk) is None
    export.refresh_from_db()
    assert export.status == "running" and export.file == ""  # the other claim's to finish
    assert not list(Path(settings.EXPORT_ROOT).glob("*.zip"))  # this worker's file is gone
