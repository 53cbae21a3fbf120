"""Writes of the investigation domain: users and the audit trail."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.utils import timezone

from investigator import jobs
from investigator.disarm import DISARM_ID
from investigator.models import Annotation, AuditEvent, Case, CaseExport, CaseItem, ReviewDecision
from investigator.roles import ADMIN, INVESTIGATOR, LEAD, REVIEWER, ROLES, has_role

TAG_WORD = re.compile(r"[\w-]{1,64}")

GENESIS_HASH = "0" * 64
# Serialises appends so that each event links to the one before it.
_AUDIT_LOCK_KEY = 0x1A0D17


def audit_event_content(event: AuditEvent) -> dict[str, Any]:
    """The fields covered by an event's hash, in a stable form."""
    return {
        "id": event.id,
        "created_at": event.created_at.isoformat(),
        "actor": event.actor_username,
        "action": event.action,
        "subject_type": event.subject_type,
        "subject_id": event.subject_id,
        "case": event.case_id,
        "data": event.data,
    }


def audit_event_hash(*, prev_hash: str, content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(prev_hash.encode("ascii") + canonical.encode("utf-8")).hexdigest()


@transaction.atomic
def audit_record(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    subject_type: str = "",
    subject_id: str | int = "",
    case: Case | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_AUDIT_LOCK_KEY])
    last = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
    prev_hash = last or GENESIS_HASH
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence('investigator_auditevent', 'id'))")
        (next_id,) = cursor.fetchone()
    event = AuditEvent(
        id=next_id,
        created_at=timezone.now(),
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_username=actor.get_username() if actor is not None and actor.is_authenticated else "",
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        case=case,
        # Round-trip through JSON so the hashed content equals what the database returns later.
        data=json.loads(json.dumps(data or {}, default=str)),
        prev_hash=prev_hash,
    )
    event.hash = audit_event_hash(prev_hash=prev_hash, content=audit_event_content(event))
    event.save(force_insert=True)
    return event


@transaction.atomic
def user_create(
    *,
    username: str,
    password: str,
    role: str,
    email: str = "",
    created_by: AbstractBaseUser | None = None,
    validate: bool = True,
) -> AbstractBaseUser:
    if role not in ROLES:
        raise ValueError(f"Unknown role {role!r}; choose one of {', '.join(ROLES)}")
    user_model = get_user_model()
    user = user_model(username=username, email=email, is_staff=role == ADMIN, is_superuser=role == ADMIN)
    if validate:
        validate_password(password, user)
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    audit_record(actor=created_by, action="user.created", subject_type="user", subject_id=user.pk,
                 data={"username": username, "role": role})
    return user


# --- Cases -----------------------------------------------------------------------------------------

class CaseNotEditable(PermissionDenied):
    pass


def _case_check(case: Case, user: AbstractBaseUser) -> None:
    from investigator.selectors import case_can_edit

    if not case_can_edit(user=user, case=case):
        raise CaseNotEditable("You cannot change this case")


@transaction.atomic
def case_create(*, user: AbstractBaseUser, title: str, summary: str = "") -> Case:
    if not has_role(user, INVESTIGATOR):
        raise PermissionDenied("Building cases needs the investigator role")
    title = title.strip()
    if not title:
        raise ValidationError("A case needs a title")
    case = Case.objects.create(title=title[:300], summary=summary, created_by=user)
    case.members.add(user)
    audit_record(actor=user, action="case.created", subject_type="case", subject_id=case.pk, case=case,
                 data={"title": case.title})
    return case


@transaction.atomic
def case_status_set(*, case: Case, user: AbstractBaseUser, status: str) -> Case:
    _case_check(case, user)
    if status not in Case.Status.values:
        raise ValidationError(f"Unknown case status {status!r}")
    if status != case.status:
        old, case.status = case.status, status
        case.save(update_fields=["status", "updated_at"])
        audit_record(actor=user, action="case.status", subject_type="case", subject_id=case.pk, case=case,
                     data={"from": old, "to": status})
    return case


@transaction.atomic
def case_assign(*, case: Case, user: AbstractBaseUser, assignee: AbstractBaseUser | None) -> Case:
    """Leads (and admins) hand a case to someone; the assignee becomes a member."""
    if not has_role(user, LEAD):
        raise PermissionDenied("Assigning cases needs the lead role")
    if assignee is not None and not has_role(assignee, INVESTIGATOR):
        raise ValidationError("Cases can only be assigned to people with a role")
    case.assigned_to = assignee
    case.save(update_fields=["assigned_to", "updated_at"])
    if assignee is not None:
        case.members.add(assignee)
    audit_record(actor=user, action="case.assigned", subject_type="case", subject_id=case.pk, case=case,
                 data={"assignee": assignee.get_username() if assignee is not None else None})
    return case


@transaction.atomic
def case_member_add(*, case: Case, user: AbstractBaseUser, member: AbstractBaseUser) -> Case:
    _case_check(case, user)
    if not has_role(member, INVESTIGATOR):
        raise ValidationError("Only people with a role can join a case")
    case.members.add(member)
    audit_record(actor=user, action="case.member_added", subject_type="case", subject_id=case.pk, case=case,
                 data={"member": member.get_username()})
    return case


@transaction.atomic
def case_items_add(*, case: Case, user: AbstractBaseUser, kind: str, ids: list[int]) -> int:
    """Add accounts, posts, media or clusters to a case; items already there are left as they are.
    Returns how many were new."""
    _case_check(case, user)
    if kind not in CaseItem.Kind.values:
        raise ValidationError(f"Unknown item kind {kind!r}")
    model = apps.get_model(_ITEM_MODELS[kind])
    wanted = set(model.objects.filter(pk__in=ids).values_list("pk", flat=True))
    if len(wanted) != len(set(ids)):
        raise ValidationError(f"Unknown {kind} id(s): {sorted(set(ids) - wanted)[:10]}")
    present = set(case.items.filter(kind=kind).values_list(f"{kind}_id", flat=True))
    new = sorted(wanted - present)
    CaseItem.objects.bulk_create([CaseItem(case=case, kind=kind, added_by=user, **{f"{kind}_id": pk}) for pk in new])
    if new:
        case.save(update_fields=["updated_at"])
        audit_record(actor=user, action="case.items_added", subject_type="case", subject_id=case.pk, case=case,
                     data={"kind": kind, "ids": new})
    return len(new)


@transaction.atomic
def case_items_remove(*, case: Case, user: AbstractBaseUser, item_ids: list[int]) -> int:
    _case_check(case, user)
    items = list(case.items.filter(pk__in=item_ids).values("pk", "kind", "account_id", "post_id", "media_id", "cluster_id"))
    if not items:
        return 0
    Annotation.objects.filter(case_item_id__in=[i["pk"] for i in items]).delete()
    case.items.filter(pk__in=[i["pk"] for i in items]).delete()
    case.save(update_fields=["updated_at"])
    audit_record(actor=user, action="case.items_removed", subject_type="case", subject_id=case.pk, case=case,
                 data={"items": [{"kind": i["kind"], "id": i[f"{i['kind']}_id"]} for i in items]})
    return len(items)


def tags_parse(raw: str) -> list[str]:
    """Tags are separated by commas or spaces. DISARM technique ids (T0143.002) are upper-cased;
    anything else must be a short word."""
    tags: list[str] = []
    for token in re.split(r"[,\s]+", raw.strip()):
        if not token:
            continue
        if DISARM_ID.fullmatch(token.upper()):
            token = token.upper()
        elif not TAG_WORD.fullmatch(token):
            raise ValidationError(f"{token[:40]!r} is not a tag: use letters, digits, '-', '_' or a DISARM id like T0049")
        if token not in tags:
            tags.append(token)
    if len(tags) > 20:
        raise ValidationError("At most 20 tags per item")
    return tags


@transaction.atomic
def case_item_annotate(*, item: CaseItem, user: AbstractBaseUser, text: str = "",
                       tags: list[str] | None = None) -> Annotation | None:
    """A note on an item and/or a new tag set for it."""
    _case_check(item.case, user)
    note = None
    if text.strip():
        note = Annotation.objects.create(case_item=item, author=user, text=text.strip())
    if tags is not None and tags != item.tags:
        item.tags = tags
        item.save(update_fields=["tags"])
    if note is None and tags is None:
        raise ValidationError("Write a note or change the tags")
    item.case.save(update_fields=["updated_at"])
    audit_record(actor=user, action="case.item_annotated", subject_type="case_item", subject_id=item.pk, case=item.case,
                 data={"note": note.text if note else None, "tags": item.tags})
    return note


_ITEM_MODELS = {"account": "accounts.Account", "post": "accounts.Post", "media": "media_analysis.MediaAsset",
                "cluster": "accounts.Cluster"}


# --- Review ----------------------------------------------------------------------------------------

class FourEyes(PermissionDenied):
    pass


@transaction.atomic
def review_submit(*, user: AbstractBaseUser, account_ids: list[int], state: str, reason: str,
                  cluster_id: int | None = None) -> list[ReviewDecision]:
    """Record a reviewer's decision on one or more accounts, with the reason, audited per account.

    Four eyes: accounts in a case the reviewer built are refused (all of them, before anything is
    written) unless REVIEW_ALLOW_OWN_CASES is set."""
    from accounts.models import Account, Cluster, ReviewStatus
    from investigator.selectors import accounts_in_own_cases

    if not has_role(user, REVIEWER):
        raise PermissionDenied("Decisions need the reviewer role")
    if state not in ReviewDecision.State.values:
        raise ValidationError(f"Unknown decision {state!r}")
    reason = reason.strip()
    if not reason:
        raise ValidationError("A decision needs a reason")
    ids = sorted(set(account_ids))
    accounts = list(Account.objects.filter(pk__in=ids).select_for_update())
    if len(accounts) != len(ids) or not ids:
        raise ValidationError("Choose at least one existing account")
    if not settings.REVIEW_ALLOW_OWN_CASES:
        own = accounts_in_own_cases(user=user, account_ids=ids)
        if own:
            handles = ", ".join(sorted(a.handle for a in accounts if a.pk in own)[:5])
            raise FourEyes(f"You built a case holding {handles}; another reviewer must decide (four eyes)")
    decisions = ReviewDecision.objects.bulk_create(
        [ReviewDecision(account=a, state=state, reason=reason, reviewer=user) for a in accounts])
    Account.objects.filter(pk__in=ids).update(review_status=state)
    for decision in decisions:
        audit_record(actor=user, action="review.decided", subject_type="account", subject_id=decision.account_id,
                     data={"state": state, "reason": reason, "decision": decision.pk, "cluster": cluster_id})
    clusters = Cluster.objects.filter(members__in=ids).distinct()
    for cluster in clusters:
        states = set(cluster.members.values_list("review_status", flat=True))
        new_state = states.pop() if len(states) == 1 else ReviewStatus.UNREVIEWED
        if cluster.review_status != new_state:
            Cluster.objects.filter(pk=cluster.pk).update(review_status=new_state)
    return decisions


# --- Case file exports -----------------------------------------------------------------------------

@transaction.atomic
def case_export_request(*, case: Case, user: AbstractBaseUser) -> CaseExport:
    """Queue a case file build; a worker runs it after commit."""
    from datetime import timedelta

    from django.utils import timezone

    from investigator.tasks import run_case_export

    if not has_role(user, LEAD):
        raise PermissionDenied("Exporting case files needs the lead role")
    export = CaseExport.objects.create(case=case, requested_by=user,
                                       expires_at=timezone.now() + timedelta(hours=settings.EXPORT_TTL_HOURS))
    transaction.on_commit(lambda: run_case_export.delay(export.pk))
    return export


def case_export_run(*, export_id: int) -> CaseExport | None:
    """Claim and build one export (a second delivery of the task finds it claimed and does nothing)."""
    from pathlib import Path

    from django.utils import timezone

    from investigator.casefile.export import case_file_build

    now = timezone.now()
    if not CaseExport.objects.filter(jobs.claimable(), pk=export_id).update(
            status="running", started_at=now, heartbeat_at=now, progress_done=0):
        return None
    export = CaseExport.objects.select_related("case", "requested_by").get(pk=export_id)
    name = f"case{export.case_id}-{export.pk}-{timezone.now():%Y%m%dT%H%M%S%f}.zip"
    out = Path(settings.EXPORT_ROOT) / name
    this_claim = CaseExport.objects.filter(pk=export.pk, started_at=export.started_at)

    def progress(done: int, total: int) -> None:
        this_claim.update(progress_done=done, progress_total=total)

    try:
        with jobs.heartbeat(CaseExport, export.pk):
            case_file_build(case=export.case, user=export.requested_by, out=out, progress=progress)
    except Exception as exc:
        this_claim.update(status="failed", error=f"{exc.__class__.__name__}: {exc}", finished_at=timezone.now())
        raise
    # This worker may have been silent long enough for another to claim the build again: only the latest claim's
    # file is kept.
    if not this_claim.filter(status="running").update(status="succeeded", file=name, size_bytes=out.stat().st_size,
                                                      finished_at=timezone.now()):
        out.unlink(missing_ok=True)
        return None
    case_exports_prune()
    export.refresh_from_db()
    return export


def case_exports_resume() -> int:
    """Queue every case file build not finished (at start-up; investigator.jobs.resume); returns how many."""
    from investigator.tasks import run_case_export

    return jobs.resume(CaseExport, run_case_export)


def case_exports_prune() -> int:
    """Delete the files of expired exports (the rows stay, as the record of what was handed out)."""
    from pathlib import Path

    from django.utils import timezone

    removed = 0
    for export in CaseExport.objects.filter(expires_at__lt=timezone.now()).exclude(file=""):
        (Path(settings.EXPORT_ROOT) / export.file).unlink(missing_ok=True)
        CaseExport.objects.filter(pk=export.pk).update(file="")
        removed += 1
    return removed
