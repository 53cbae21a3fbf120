"""Prove a case file unaltered: every file against the manifest's SHA-256, nothing added or removed, the
audit chain unbroken, and (where this instance exported it) the manifest itself as exported."""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from investigator.casefile import SCHEMA
from investigator.casefile.signing import SIGNATURE_FILE, key_fingerprint, manifest_signature_valid
from investigator.services import audit_event_hash

MAX_UNPACKED_BYTES = 50 * 1024**3


@dataclass
class Verification:
    problems: list[str] = field(default_factory=list)
    checked_files: int = 0
    audit_records: int = 0
    manifest_origin: str = ""
    signature: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems


def case_file_verify(path: Path, *, public_key: Ed25519PublicKey | None = None) -> Verification:
    """Check a case file; with public_key, its manifest must also carry a valid signature by that key."""
    result = Verification()
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        result.problems.append(f"not a readable ZIP file: {exc}")
        return result
    with archive:
        infos = {info.filename: info for info in archive.infolist()}
        if sum(info.file_size for info in infos.values()) > MAX_UNPACKED_BYTES:
            result.problems.append("refused: the archive claims more than 50 GB unpacked")
            return result
        if "manifest.json" not in infos:
            result.problems.append("manifest.json is missing")
            return result
        manifest_bytes = archive.read("manifest.json")
        try:
            manifest = json.loads(manifest_bytes)
            files = dict(manifest["files"])
        except (ValueError, KeyError, TypeError):
            result.problems.append("manifest.json is not a case-file manifest")
            return result
        if manifest.get("schema") != SCHEMA:
            result.problems.append(f"manifest.json: unknown schema {manifest.get('schema')!r} (expected {SCHEMA})")
        for name, expected in sorted(files.items()):
            if name not in infos:
                result.problems.append(f"{name}: listed in the manifest but missing from the archive")
                continue
            actual = _member_sha256(archive, name)
            result.checked_files += 1
            if actual != expected:
                result.problems.append(f"{name}: changed (SHA-256 {actual[:16]}…, the manifest says {str(expected)[:16]}…)")
        for name in sorted(set(infos) - set(files) - {"manifest.json", SIGNATURE_FILE}):
            if not name.endswith("/"):
                result.problems.append(f"{name}: not in the manifest (added after export)")
        if "audit.jsonl" in infos:
            _verify_audit(archive.read("audit.jsonl"), manifest, result)
        _manifest_origin(manifest, hashlib.sha256(manifest_bytes).hexdigest(), result)
        signature = archive.read(SIGNATURE_FILE) if SIGNATURE_FILE in infos else None
        _verify_signature(manifest, manifest_bytes, signature, public_key, result)
    return result


def _verify_signature(manifest: dict, manifest_bytes: bytes, signature: bytes | None, public_key: Ed25519PublicKey | None,
                      result: Verification) -> None:
    if public_key is None:
        if signature is not None:
            result.signature = (f"signed by {manifest.get('signing_key') or 'an unnamed key'}; give the exporter's public "
                                "key (--public-key) to check the signature")
        return
    fingerprint = key_fingerprint(public_key)
    if signature is None:
        result.problems.append(f"{SIGNATURE_FILE}: missing, but the case file should be signed by {fingerprint}")
    elif manifest_signature_valid(public_key, manifest_bytes, signature):
        result.signature = f"the manifest carries a valid signature by {fingerprint}"
    else:
        result.problems.append(f"{SIGNATURE_FILE}: not a valid signature of this manifest by {fingerprint} "
                               "(the manifest was changed, or another key signed it)")


def _member_sha256(archive: zipfile.ZipFile, name: str) -> str:
    digest = hashlib.sha256()
    with archive.open(name) as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _verify_audit(body: bytes, manifest: dict, result: Verification) -> None:
    previous: dict | None = None
    lines = body.decode("utf-8", errors="replace").splitlines()
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            prev_hash, own_hash = record["prev_hash"], record["hash"]
        except (ValueError, KeyError, TypeError):
            result.problems.append(f"audit.jsonl line {number}: not an audit record")
            return
        label = f"event #{record['event'].get('id')}" if isinstance(record.get("event"), dict) else f"link #{record.get('link')}"
        if "event" in record and audit_event_hash(prev_hash=prev_hash, content=record["event"]) != own_hash:
            result.problems.append(f"audit.jsonl line {number} ({label}): content changed after it was recorded")
        if previous is not None and prev_hash != previous["hash"]:
            result.problems.append(f"audit.jsonl line {number} ({label}): does not follow line {number - 1} "
                                   "(an event was removed, inserted or reordered)")
        previous = record
        result.audit_records += 1
    expected = (manifest.get("audit") or {})
    if expected.get("records") is not None and expected.get("records") != len(lines):
        result.problems.append(f"audit.jsonl: {len(lines)} records, the manifest says {expected.get('records')}")
    if previous is not None and expected.get("last_hash") and previous["hash"] != expected["last_hash"]:
        result.problems.append("audit.jsonl: the last record is not the one the manifest names (records cut off)")


def _manifest_origin(manifest: dict, digest: str, result: Verification) -> None:
    """Where this instance recorded exports of the case, the manifest must be one of them."""
    from django.db import DatabaseError

    from investigator.models import AuditEvent

    case_id = (manifest.get("case") or {}).get("id")
    try:
        exports = list(AuditEvent.objects.filter(action="case.exported", subject_type="case", subject_id=str(case_id))
                       .values_list("pk", "data"))
    except DatabaseError:
        return
    if not exports:
        result.manifest_origin = "not exported here: the manifest can only be checked against its own hashes"
        return
    match = next((pk for pk, data in exports if data.get("manifest_sha256") == digest), None)
    if match is None:
        result.problems.append(f"manifest.json: differs from every export of case {case_id} recorded here (it was changed)")
    else:
        result.manifest_origin = f"the manifest is the one exported here (audit event #{match})"
