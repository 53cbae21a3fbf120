"""The investigation domain: cases, their items and notes, review decisions and the audit trail."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from accounts.models import ReviewStatus
from investigator.jobs import HeartbeatJob


class Case(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_REVIEW = "in_review", "In review"
        CLOSED = "closed", "Closed"

    title = models.CharField(max_length=300)
    summary = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="cases_created")
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="cases_assigned"
    )
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="cases", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.title


class CaseItem(models.Model):
    """One piece of evidence in a case: exactly one of account, post, media asset or cluster."""

    class Kind(models.TextChoices):
        ACCOUNT = "account", "Account"
        POST = "post", "Post"
        MEDIA = "media", "Media asset"
        CLUSTER = "cluster", "Cluster"

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="items")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.PROTECT)
    post = models.ForeignKey("accounts.Post", null=True, blank=True, on_delete=models.PROTECT)
    media = models.ForeignKey("media_analysis.MediaAsset", null=True, blank=True, on_delete=models.PROTECT)
    cluster = models.ForeignKey("accounts.Cluster", null=True, blank=True, on_delete=models.PROTECT)
    note = models.TextField(blank=True)
    tags = ArrayField(models.CharField(max_length=64), default=list, blank=True, help_text="e.g. DISARM T0143.002")
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["added_at", "id"]
        constraints = [
            models.CheckConstraint(
                name="case_item_one_target",
                condition=(
                    Q(kind="account", account__isnull=False, post__isnull=True, media__isnull=True, cluster__isnull=True)
                    | Q(kind="post", account__isnull=True, post__isnull=False, media__isnull=True, cluster__isnull=True)
                    | Q(kind="media", account__isnull=True, post__isnull=True, media__isnull=False, cluster__isnull=True)
                    | Q(kind="cluster", account__isnull=True, post__isnull=True, media__isnull=True, cluster__isnull=False)
                ),
            ),
            models.UniqueConstraint(fields=["case", "account"], condition=Q(kind="account"), name="case_item_account_once"),
            models.UniqueConstraint(fields=["case", "post"], condition=Q(kind="post"), name="case_item_post_once"),
            models.UniqueConstraint(fields=["case", "media"], condition=Q(kind="media"), name="case_item_media_once"),
            models.UniqueConstraint(fields=["case", "cluster"], condition=Q(kind="cluster"), name="case_item_cluster_once"),
        ]


class Annotation(models.Model):
    case_item = models.ForeignKey(CaseItem, on_delete=models.CASCADE, related_name="annotations")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]


class ReviewDecision(models.Model):
    """A reviewer's verdict on an account or a cluster; never edited, superseded by a newer one."""

    class State(models.TextChoices):
        CONFIRMED = ReviewStatus.CONFIRMED.value, "Confirmed"
        CLEARED = ReviewStatus.CLEARED.value, "Cleared"
        INCONCLUSIVE = ReviewStatus.INCONCLUSIVE.value, "Inconclusive"

    account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.PROTECT, related_name="decisions")
    cluster = models.ForeignKey("accounts.Cluster", null=True, blank=True, on_delete=models.PROTECT, related_name="decisions")
    state = models.CharField(max_length=16, choices=State.choices)
    reason = models.TextField()
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                name="decision_one_subject",
                condition=Q(account__isnull=False, cluster__isnull=True) | Q(account__isnull=True, cluster__isnull=False),
            ),
            models.CheckConstraint(name="decision_has_reason", condition=~Q(reason="")),
        ]
        indexes = [models.Index(fields=["account", "-created_at"], name="decision_account_idx")]


class AuditEvent(models.Model):
    """Append-only, hash-chained record of every decision, case change and export.

    ``hash`` = SHA-256 of ``prev_hash`` and this row's canonical content, so any edit,
    deletion or reordering of earlier rows breaks the chain. A database trigger
    (migration 0002) refuses UPDATE and DELETE.
    """

    created_at = models.DateTimeField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    actor_username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    subject_type = models.CharField(max_length=64, blank=True)
    subject_id = models.CharField(max_length=64, blank=True)
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_events")
    data = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["subject_type", "subject_id"], name="audit_subject_idx")]


class CaseExport(HeartbeatJob):  # started_at, heartbeat_at: investigator.jobs
    """A case file being built on a worker, then downloadable by leads until it expires."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="exports")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    status = models.CharField(max_length=16, default="pending", db_index=True)  # accounts.models.JobStatus values
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    file = models.CharField(max_length=500, blank=True, help_text="Path under EXPORT_ROOT")
    size_bytes = models.BigIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
