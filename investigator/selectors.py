"""Reads of the investigation domain."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Max, Q, QuerySet

from accounts.models import Account, ClusterMember, ReviewStatus
from accounts.selectors import detection_runs_latest
from investigator.disarm import technique_name
from investigator.models import Annotation, AuditEvent, Case, CaseExport, CaseItem, ReviewDecision
from investigator.roles import INVESTIGATOR, LEAD, REVIEWER, has_role
from investigator.services import GENESIS_HASH, audit_event_content, audit_event_hash


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    broken_at: int | None = None
    problem: str = ""


def audit_chain_verify(*, batch_size: int = 5000) -> ChainReport:
    """Recompute every hash in order; report the first event whose link or content does not match."""
    prev_hash = GENESIS_HASH
    checked = 0
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=batch_size):
        if event.prev_hash != prev_hash:
            return ChainReport(False, checked, event.id, "links to a different previous event (one was removed or reordered)")
        expected = audit_event_hash(prev_hash=prev_hash, content=audit_event_content(event))
        if event.hash != expected:
            return ChainReport(False, checked, event.id, "content was changed after it was recorded")
        prev_hash = event.hash
        checked += 1
    return ChainReport(True, checked)


# --- Cases -----------------------------------------------------------------------------------------

def cases_visible(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Case]:
    """Leads and admins see every case; everyone else the cases they built, were given or joined."""
    if not has_role(user, INVESTIGATOR):
        return Case.objects.none()
    cases = Case.objects.select_related("created_by", "assigned_to")
    if has_role(user, LEAD):
        return cases
    return cases.filter(Q(created_by=user) | Q(assigned_to=user) | Q(members=user)).distinct()


def case_can_edit(*, user: AbstractBaseUser | AnonymousUser, case: Case) -> bool:
    return cases_visible(user=user).filter(pk=case.pk).exists()


def cases_for_picker(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Case]:
    """The open cases offered by every "add to case" control: the ones the user works on."""
    if not has_role(user, INVESTIGATOR):
        return Case.objects.none()
    return (Case.objects.filter(Q(created_by=user) | Q(assigned_to=user) | Q(members=user))
            .exclude(status=Case.Status.CLOSED).distinct().only("id", "title").order_by("-updated_at")[:30])


def case_items(*, case: Case) -> list[CaseItem]:
    items = list(case.items.select_related("account__platform", "post__account", "media", "cluster", "added_by")
                 .prefetch_related("annotations__author"))
    for item in items:
        item.techniques = [(tag, technique_name(tag)) for tag in item.tags]
    return items


def case_timeline(*, case: Case) -> QuerySet[AuditEvent]:
    return case.audit_events.order_by("-id")


def annotations_visible(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Annotation]:
    """Notes on the items of the cases the user can see."""
    return (Annotation.objects.filter(case_item__case__in=cases_visible(user=user).values("pk"))
            .select_related("author", "case_item").order_by("created_at", "id"))


def case_exports_visible(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[CaseExport]:
    """Case files are for leads (and admins): of every case they can see."""
    if not has_role(user, LEAD):
        return CaseExport.objects.none()
    return CaseExport.objects.filter(case__in=cases_visible(user=user).values("pk")).select_related("case", "requested_by")


# --- Review ----------------------------------------------------------------------------------------

def accounts_in_own_cases(*, user: AbstractBaseUser, account_ids: Iterable[int]) -> set[int]:
    """Accounts among these that sit in a case the user built, directly or as a cluster's member."""
    ids = list(account_ids)
    own = CaseItem.objects.filter(case__created_by=user)
    direct = own.filter(kind="account", account_id__in=ids).values_list("account_id", flat=True)
    via_cluster = ClusterMember.objects.filter(
        account_id__in=ids, cluster__in=own.filter(kind="cluster").values("cluster_id"),
    ).values_list("account_id", flat=True)
    return set(direct) | set(via_cluster)


def review_queue(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Account]:
    """Unreviewed accounts that a detection put in a cluster, most suspicious cluster first.
    Accounts the reviewer may not decide on (four eyes) are left out."""
    if not has_role(user, REVIEWER):
        return Account.objects.none()
    # The clusters of each dataset's latest run: running a detection again must not count an account twice.
    current = Q(clusters__detection_run__in=detection_runs_latest().values("pk"))
    queue = (Account.objects.filter(current, review_status=ReviewStatus.UNREVIEWED)
             .annotate(top_score=Max("clusters__score", filter=current),
                       cluster_count=Count("clusters", filter=current, distinct=True))
             .select_related("platform").order_by("-top_score", "handle"))
    if not settings.REVIEW_ALLOW_OWN_CASES:
        own_direct = CaseItem.objects.filter(case__created_by=user, kind="account").values("account_id")
        own_clusters = ClusterMember.objects.filter(
            cluster__in=CaseItem.objects.filter(case__created_by=user, kind="cluster").values("cluster_id")).values("account_id")
        queue = queue.exclude(pk__in=own_direct).exclude(pk__in=own_clusters)
    return queue


def decisions_visible(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[ReviewDecision]:
    if not has_role(user, INVESTIGATOR):
        return ReviewDecision.objects.none()
    return ReviewDecision.objects.select_related("reviewer")


def decisions_of(*, user: AbstractBaseUser | AnonymousUser, account: Account) -> QuerySet[ReviewDecision]:
    if not has_role(user, INVESTIGATOR):
        return ReviewDecision.objects.none()
    return account.decisions.select_related("reviewer")


# --- Audit -----------------------------------------------------------------------------------------

def audit_events_visible(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[AuditEvent]:
    """The whole trail is for leads, reviewers and admins; investigators see it through their cases."""
    if has_role(user, LEAD) or has_role(user, REVIEWER):
        return AuditEvent.objects.order_by("-id")
    return AuditEvent.objects.none()


def case_activity(*, case: Case) -> list[dict]:
    """Posts per day of the accounts in a case (its accounts, the authors of its posts and its clusters'
    members): the case's evidence over time."""
    from django.db.models.functions import TruncDate

    from accounts.models import Post

    items = case.items.all()
    accounts = (set(items.filter(kind="account").values_list("account_id", flat=True))
                | set(items.filter(kind="post").values_list("post__account_id", flat=True))
                | set(ClusterMember.objects.filter(cluster__in=items.filter(kind="cluster").values("cluster_id"))
                      .values_list("account_id", flat=True)))
    if not accounts:
        return []
    rows = (Post.objects.filter(account_id__in=accounts).annotate(day=TruncDate("posted_at")).values("day")
            .annotate(posts=Count("id")).order_by("day"))
    return [{"date": r["day"].isoformat(), "posts": r["posts"]} for r in rows]
