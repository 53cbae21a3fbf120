"""Build a case file: the case's accounts, posts, edges, clusters, decisions and notes as CSV and JSON,
its pictures by content hash, its hash-chained audit events, a readable report, and a manifest with the
SHA-256 of every file."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import Account, Cluster, ClusterMember, CoordinationEdge, DetectionRun, Post, PostMedia
from accounts.services import file_sha256
from investigator.casefile import SCHEMA
from investigator.casefile.figures import copy_groups, network_figure, timeline_figure
from investigator.casefile.report import pdf_render, stix_bundle
from investigator.casefile.signing import SIGNATURE_FILE, key_fingerprint, manifest_sign, private_key_load
from investigator.models import Annotation, AuditEvent, Case, ReviewDecision
from investigator.roles import LEAD, has_role
from investigator.selectors import case_activity
from investigator.services import audit_event_content, audit_record
from investigator.text import spreadsheet_safe
from media_analysis.models import MediaAsset

MAX_EVIDENCE_POSTS = 20_000
REPORT_PICTURES = 200


def _csv(rows: list[dict[str, Any]], columns: list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([spreadsheet_safe(row.get(c)) for c in columns])
    return buffer.getvalue().encode("utf-8")


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True, default=str).encode("utf-8")


def case_evidence(case: Case) -> dict[str, Any]:
    """Everything a case file holds, as plain rows."""
    items = list(case.items.all())
    cluster_ids = [i.cluster_id for i in items if i.kind == "cluster"]
    item_posts = [i.post_id for i in items if i.kind == "post"]
    account_ids = ({i.account_id for i in items if i.kind == "account"}
                   | set(Post.objects.filter(pk__in=item_posts).values_list("account_id", flat=True))
                   | set(ClusterMember.objects.filter(cluster_id__in=cluster_ids).values_list("account_id", flat=True)))
    clusters = list(Cluster.objects.filter(pk__in=cluster_ids).order_by("pk"))
    run_ids = {c.detection_run_id for c in clusters}
    edges = list(CoordinationEdge.objects.filter(detection_run_id__in=run_ids, account_a_id__in=account_ids,
                                                 account_b_id__in=account_ids).order_by("pk"))
    evidence_posts = {p for e in edges for pair in e.evidence if isinstance(pair, list | tuple) for p in pair[:2]}
    post_ids = ({i.post_id for i in items if i.kind == "post"} | set(list(evidence_posts)[:MAX_EVIDENCE_POSTS]))
    posts = list(Post.objects.filter(pk__in=post_ids).select_related("account", "platform").order_by("posted_at", "pk"))
    media_ids = ({i.media_id for i in items if i.kind == "media"}
                 | set(PostMedia.objects.filter(post_id__in=post_ids).values_list("media_id", flat=True))
                 | set(Account.objects.filter(pk__in=account_ids, profile_image__isnull=False)
                       .values_list("profile_image_id", flat=True)))
    media = list(MediaAsset.objects.filter(pk__in=media_ids).order_by("sha256"))
    media_of_post: dict[int, list[str]] = {}
    for post_id, sha in PostMedia.objects.filter(post_id__in=post_ids).values_list("post_id", "media__sha256"):
        media_of_post.setdefault(post_id, []).append(sha)
    accounts = list(Account.objects.filter(pk__in=account_ids).select_related("platform", "profile_image").order_by("pk"))
    return {
        "items": items, "clusters": clusters, "edges": edges, "posts": posts, "media": media, "accounts": accounts,
        "media_of_post": media_of_post,
        "runs": list(DetectionRun.objects.filter(pk__in=run_ids).select_related("dataset").order_by("pk")),
        "decisions": list(ReviewDecision.objects.filter(account_id__in=account_ids).select_related("reviewer").order_by("pk")),
        "annotations": list(Annotation.objects.filter(case_item__case=case).select_related("author", "case_item").order_by("pk")),
    }


def _tables(e: dict[str, Any]) -> dict[str, tuple[list[dict], list[str]]]:
    accounts = [{"id": a.pk, "platform": a.platform.slug, "external_id": a.external_id, "handle": a.handle,
                 "display_name": a.display_name, "bio": a.bio, "created_at": a.created_at, "follower_count": a.follower_count,
                 "following_count": a.following_count, "post_count": a.post_count, "review_status": a.review_status,
                 "profile_image_sha256": a.profile_image.sha256 if a.profile_image else ""} for a in e["accounts"]]
    posts = [{"id": p.pk, "platform": p.platform.slug, "external_id": p.external_id, "account_id": p.account_id,
              "handle": p.account.handle, "posted_at": p.posted_at, "text": p.text, "hashtags": " ".join(p.hashtags),
              "links": " ".join(p.links), "url": p.url, "media_sha256": " ".join(e["media_of_post"].get(p.pk, []))}
             for p in e["posts"]]
    edges = [{"id": x.pk, "detection_run": x.detection_run_id, "account_a": x.account_a_id, "account_b": x.account_b_id,
              "signal": x.signal, "weight": x.weight, "explanation": x.explanation,
              "post_pairs": json.dumps(x.evidence[:200])} for x in e["edges"]]
    clusters = [{"id": c.pk, "detection_run": c.detection_run_id, "label": c.label, "score": c.score, "size": c.size,
                 "review_status": c.review_status, "explanation": c.explanation,
                 "members": " ".join(str(m) for m in c.members.order_by("pk").values_list("pk", flat=True))}
                for c in e["clusters"]]
    decisions = [{"id": d.pk, "account_id": d.account_id, "state": d.state, "reason": d.reason,
                  "reviewer": d.reviewer.get_username(), "created_at": d.created_at} for d in e["decisions"]]
    annotations = [{"id": n.pk, "case_item": n.case_item_id, "kind": n.case_item.kind,
                    "target": getattr(n.case_item, f"{n.case_item.kind}_id"), "author": n.author.get_username(),
                    "text": n.text, "tags": " ".join(n.case_item.tags), "created_at": n.created_at} for n in e["annotations"]]
    media = [{"sha256": m.sha256, "file": _media_name(m), "width": m.width, "height": m.height, "format": m.format,
              "phash": m.phash and str(m.phash), "dhash": m.dhash and str(m.dhash), "pdq": m.pdq and str(m.pdq),
              "pdq_quality": m.pdq_quality} for m in e["media"]]
    return {name: (rows, list(rows[0]) if rows else [])
            for name, rows in (("accounts", accounts), ("posts", posts), ("edges", edges), ("clusters", clusters),
                               ("decisions", decisions), ("annotations", annotations), ("media", media))}


def _media_name(asset: MediaAsset) -> str:
    extension = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}.get((asset.format or "").upper(), "bin")
    return f"media/{asset.sha256}.{extension}"


def audit_records(case: Case) -> list[dict[str, Any]]:
    """The case's audit events with their hashes, and between them a link record (id, prev_hash, hash, no
    content) for every other event of the trail, so the chain can be followed without other cases' content."""
    events = list(case.audit_events.order_by("id"))
    if not events:
        return []
    own = {ev.pk for ev in events}
    records = []
    for ev in AuditEvent.objects.filter(id__gte=events[0].pk, id__lte=events[-1].pk).order_by("id"):
        if ev.pk in own:
            records.append({"event": audit_event_content(ev), "prev_hash": ev.prev_hash, "hash": ev.hash})
        else:
            records.append({"link": ev.pk, "prev_hash": ev.prev_hash, "hash": ev.hash})
    return records


def case_file_build(*, case: Case, user: AbstractBaseUser, out: Path,
                    progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Write the case file to `out` (a ZIP) and record the export in the audit trail. Leads only."""
    if not has_role(user, LEAD):
        raise PermissionDenied("Exporting case files needs the lead role")
    signing_key = private_key_load(Path(settings.CASEFILE_SIGNING_KEY)) if settings.CASEFILE_SIGNING_KEY else None
    evidence = case_evidence(case)
    tables = _tables(evidence)
    files: dict[str, bytes] = {}
    for name, (rows, columns) in tables.items():
        files[f"{name}.csv"] = _csv(rows, columns)
        files[f"{name}.json"] = _json(rows)
    records = audit_records(case)
    files["audit.jsonl"] = b"".join(json.dumps(r, sort_keys=True, ensure_ascii=False, default=str).encode() + b"\n"
                                    for r in records)
    exported_at = timezone.now()
    copies = copy_groups(evidence["media"], evidence["posts"], evidence["media_of_post"])
    for group in copies:
        for asset in (group.original, *(c["asset"] for c in group.copies)):
            asset.casefile_name = _media_name(asset)
    report = render_to_string("investigator/casefile_report.html", {
        "case": case, "exported_by": user.get_username(), "exported_at": exported_at, "e": evidence,
        "tables": {k: v[0] for k, v in tables.items()},
        "network": network_figure(evidence["accounts"], evidence["edges"]),
        "timeline": timeline_figure(case_activity(case=case)),
        "copies": copies,
    })
    files["report.html"] = report.encode("utf-8")
    # The PDF embeds the pictures the report shows: every side-by-side copy, then the first REPORT_PICTURES of
    # the rest (media/ holds them all).
    shown = [a for g in copies for a in (g.original, *(c["asset"] for c in g.copies))] + evidence["media"][:REPORT_PICTURES]
    pictures = {}
    for asset in shown:
        path = Path(settings.MEDIA_ROOT) / asset.file.name
        if _media_name(asset) not in pictures and path.is_file() and asset.format and path.stat().st_size <= 20 * 1024**2:
            pictures[_media_name(asset)] = path.read_bytes()
    omitted = {}
    try:
        files["report.pdf"] = pdf_render(html=report, pictures=pictures)
    except (OSError, ImportError) as exc:  # WeasyPrint needs the Pango system library
        omitted["report.pdf"] = f"PDF rendering is unavailable on this server ({exc.__class__.__name__}: {exc})"
    files["stix.json"] = stix_bundle(case=case, evidence=evidence, exported_at=exported_at).encode("utf-8")
    total = len(evidence["media"]) + 1
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    hashes: dict[str, str] = {}
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, body in files.items():
            archive.writestr(name, body)
            hashes[name] = hashlib.sha256(body).hexdigest()
        for done, asset in enumerate(evidence["media"], 1):
            path = Path(settings.MEDIA_ROOT) / asset.file.name
            if path.is_file():
                archive.write(path, _media_name(asset), compress_type=zipfile.ZIP_STORED)
                hashes[_media_name(asset)] = file_sha256(path)
            if progress:
                progress(done, total)
        manifest = {
            "schema": SCHEMA,
            "case": {"id": case.pk, "title": case.title, "summary": case.summary, "status": case.status,
                     "created_by": case.created_by.get_username(), "created_at": case.created_at,
                     "assigned_to": case.assigned_to.get_username() if case.assigned_to else None,
                     "members": sorted(case.members.values_list("username", flat=True))},
            "exported_by": user.get_username(),
            "exported_at": exported_at,
            "detection_runs": [{"id": r.pk, "dataset": r.dataset.name if r.dataset else None, "signals": r.signals,
                                "parameters": {k: v for k, v in r.parameters.items()}, "finished_at": r.finished_at}
                               for r in evidence["runs"]],
            "counts": {name: len(rows) for name, (rows, _) in tables.items()},
            "omitted": omitted,
            "audit": {"records": len(records), "last_hash": records[-1]["hash"] if records else None},
            "files": dict(sorted(hashes.items())),
            "signing_key": key_fingerprint(signing_key.public_key()) if signing_key else None,
        }
        manifest_bytes = _json(manifest)
        manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()
        archive.writestr("manifest.json", manifest_bytes)
        if signing_key is not None:
            archive.writestr(SIGNATURE_FILE, manifest_sign(signing_key, manifest_bytes))
    partial.replace(out)
    # The manifest's own hash stays in this instance's audit trail: verify_casefile run here can prove
    # the manifest unchanged too.
    audit_record(actor=user, action="case.exported", subject_type="case", subject_id=case.pk, case=case,
                 data={"files": len(hashes), "manifest_sha256": manifest_sha256})
    if progress:
        progress(total, total)
    return manifest
