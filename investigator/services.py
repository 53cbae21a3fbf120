"""Writes of the investigation domain: users and the audit trail."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.contrib.auth.password_validation import validate_password
from django.db import connection, transaction
from django.utils import timezone

from investigator.models import AuditEvent, Case
from investigator.roles import ADMIN, ROLES

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
