"""Zip archives as import input: traversal, links and bombs are refused; the rest is imported."""

import json
import stat
import zipfile

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Post

pytestmark = pytest.mark.django_db

JSONL = (
    '{"type": "account", "platform": "twitter", "id": "7", "handle": "zed"}\n'
    '{"type": "post", "platform": "twitter", "id": "70", "account_id": "7", "posted_at": "2019-01-01T00:00:00Z"}\n'
)


def test_zip_with_traversal_and_symlink_imports_only_safe_members(tmp_path, capsys):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("data/export.jsonl", JSONL)
        bundle.writestr("../../evil.jsonl", JSONL)
        bundle.writestr("/etc/evil.jsonl", JSONL)
        link = zipfile.ZipInfo("data/link.jsonl")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        bundle.writestr(link, "/etc/passwd")
    call_command("import_data", str(archive), dataset="zip", json=True)
    summary = json.loads(capsys.readouterr().out)
    assert summary["format"] == "jsonl" and Post.objects.count() == 1
    reasons = [p["reason"] for p in summary["problems"]]
    assert sum("unsafe path" in r for r in reasons) == 2
    assert any("symbolic link" in r for r in reasons)
    assert not (tmp_path.parent / "evil.jsonl").exists()
    assert summary["sources"][0]["name"] == "export.zip"


def test_zip_bomb_is_refused_with_a_clear_error(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("big.jsonl", b" " * (300 * 1024 * 1024))
    assert archive.stat().st_size < 2 * 1024 * 1024
    with pytest.raises(CommandError, match="zip bomb"):
        call_command("import_data", str(archive), dataset="bomb")
    assert Post.objects.count() == 0


def test_not_a_zip(tmp_path, capsys):
    archive = tmp_path / "fake.zip"
    archive.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CommandError, match="not a readable zip"):
        call_command("import_data", str(archive), dataset="fake")


def test_members_that_cannot_be_written_are_reported_and_the_rest_imported(tmp_path, capsys):
    """Found by the generated archives of test_import_fuzz: each of these stopped the whole import."""
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("data/secret.jsonl", JSONL)  # first: marked encrypted below
        bundle.writestr("data/export.jsonl", JSONL)
        bundle.writestr("x" * 300 + ".jsonl", JSONL)  # longer than a file name may be
        bundle.writestr("a/b.jsonl/c.jsonl", JSONL)  # a folder named like a data file
        bundle.writestr("a/b.jsonl", JSONL)  # and a file where that folder is
    # Encrypted (the flag in the member's local and central headers): no password will open it.
    data = bytearray(archive.read_bytes())
    central = data.index(b"PK\x01\x02")
    data[6] |= 0x1
    data[central + 8] |= 0x1
    archive.write_bytes(bytes(data))
    call_command("import_data", str(archive), dataset="zip", json=True)
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "succeeded" and Post.objects.count() == 1
    reasons = {p["file"].split(":", 1)[1][:12]: p["reason"] for p in summary["problems"]}
    assert "unsafe path" in reasons["x" * 12]
    assert "damaged archive member" in reasons["a/b.jsonl"]
    assert "encrypted" in reasons["data/secret."]


def test_an_archive_with_nothing_readable_fails_with_a_reason(tmp_path):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("../only.jsonl", JSONL)
    with pytest.raises(CommandError, match="could not tell the format"):
        call_command("import_data", str(archive), dataset="zip")
