"""The social-media side: platforms, accounts, posts, imports and coordination results."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import models
from django.db.models import F, Q

from investigator.jobs import HeartbeatJob


class ReviewStatus(models.TextChoices):
    UNREVIEWED = "unreviewed", "Unreviewed"
    CONFIRMED = "confirmed", "Confirmed"
    CLEARED = "cleared", "Cleared"
    INCONCLUSIVE = "inconclusive", "Inconclusive"


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Platform(models.Model):
    slug = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=64)

    def __str__(self) -> str:
        return self.name


class Dataset(models.Model):
    """A named body of imported data (one investigation's exports), the unit detection runs on."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    def __str__(self) -> str:
        return self.name


class Account(models.Model):
    platform = models.ForeignKey(Platform, on_delete=models.PROTECT, related_name="accounts")
    external_id = models.CharField(max_length=128, help_text="The platform's own id")
    handle = models.CharField(max_length=255, db_index=True)
    display_name = models.CharField(max_length=500, blank=True)
    bio = models.TextField(blank=True)
    external_url = models.TextField(blank=True)
    location = models.CharField(max_length=500, blank=True)
    language = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(null=True, blank=True, help_text="When the platform says the account was created")
    follower_count = models.BigIntegerField(null=True, blank=True)
    following_count = models.BigIntegerField(null=True, blank=True)
    post_count = models.BigIntegerField(null=True, blank=True)
    is_private = models.BooleanField(null=True, blank=True)
    is_verified = models.BooleanField(null=True, blank=True)
    profile_image = models.ForeignKey(
        "media_analysis.MediaAsset", null=True, blank=True, on_delete=models.SET_NULL, related_name="avatar_of"
    )
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now=True)
    review_status = models.CharField(
        max_length=16, choices=ReviewStatus.choices, default=ReviewStatus.UNREVIEWED, db_index=True
    )
    datasets = models.ManyToManyField(Dataset, related_name="accounts", blank=True)
    extra = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["platform", "external_id"], name="account_unique_platform_id"),
        ]
        indexes = [
            models.Index(fields=["created_at"], name="account_created_idx"),
            models.Index(models.functions.Lower("handle"), name="account_handle_lower_idx"),
        ]

    def __str__(self) -> str:
        return f"@{self.handle}"


class HandleChange(models.Model):
    """A handle or display name seen to change between two imports."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="handle_changes")
    field = models.CharField(max_length=16, choices=[("handle", "Handle"), ("display_name", "Display name")])
    old_value = models.CharField(max_length=500)
    new_value = models.CharField(max_length=500)
    observed_at = models.DateTimeField(auto_now_add=True)
    import_run = models.ForeignKey("ImportRun", null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["observed_at", "id"]


class Post(models.Model):
    # Foreign keys without their own index where a composite index below leads with them: fewer indexes to
    # maintain on bulk loads.
    platform = models.ForeignKey(Platform, on_delete=models.PROTECT, related_name="posts", db_index=False)
    external_id = models.CharField(max_length=128, help_text="The platform's own id")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="posts", db_index=False)
    posted_at = models.DateTimeField()
    text = models.TextField(blank=True)
    hashtags = ArrayField(models.CharField(max_length=300), default=list, blank=True, help_text="Normalised, in order")
    mentions = ArrayField(models.CharField(max_length=300), default=list, blank=True)
    links = ArrayField(models.TextField(), default=list, blank=True, help_text="Normalised URLs")
    post_type = models.CharField(max_length=32, blank=True)
    language = models.CharField(max_length=32, blank=True)
    url = models.TextField(blank=True)
    repost_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reposts", db_index=False
    )
    repost_of_external_id = models.CharField(max_length=128, blank=True)
    reply_to_external_id = models.CharField(max_length=128, blank=True)
    like_count = models.BigIntegerField(null=True, blank=True)
    comment_count = models.BigIntegerField(null=True, blank=True)
    share_count = models.BigIntegerField(null=True, blank=True)
    view_count = models.BigIntegerField(null=True, blank=True)
    media = models.ManyToManyField("media_analysis.MediaAsset", through="PostMedia", related_name="posts", blank=True)
    datasets = models.ManyToManyField(Dataset, related_name="posts", blank=True)
    imported_at = models.DateTimeField(auto_now_add=True)
    extra = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["platform", "external_id"], name="post_unique_platform_id"),
        ]
        indexes = [
            # Time-window queries per account and across the dataset.
            models.Index(fields=["account", "posted_at"], name="post_account_time_idx"),
            models.Index(fields=["posted_at"], name="post_time_idx"),
            # Co-occurrence joins: posts sharing a hashtag or a link.
            GinIndex(fields=["hashtags"], name="post_hashtags_gin"),
            GinIndex(fields=["links"], name="post_links_gin"),
            # Caption search (accounts.selectors.search_posts); 'simple' so no language is favoured.
            GinIndex(SearchVector("text", config="simple"), name="post_text_search_gin"),
            # Reposts only: most posts are not, and partial indexes keep bulk loads fast.
            models.Index(fields=["platform", "repost_of_external_id"], name="post_repost_source_idx",
                         condition=~Q(repost_of_external_id="")),
            models.Index(fields=["repost_of"], name="post_repost_of_idx", condition=Q(repost_of__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.external_id} by {self.account_id}"


class PostMedia(models.Model):
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="post_media")
    media = models.ForeignKey("media_analysis.MediaAsset", on_delete=models.PROTECT, related_name="post_media")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["post", "position"]
        constraints = [
            models.UniqueConstraint(fields=["post", "position"], name="post_media_unique_position"),
        ]
        indexes = [models.Index(fields=["media", "post"], name="post_media_media_idx")]


class ImportRun(models.Model):
    class Format(models.TextChoices):
        AUTO = "auto", "Detect from content"
        INSTALOADER = "instaloader", "Instaloader profile folders"
        TWITTER_IO = "twitter-io", "Twitter/X information-operations archive"
        IRA_CSV = "ira-csv", "FiveThirtyEight/Clemson IRA tweets"
        CROWDTANGLE = "crowdtangle", "CrowdTangle CSV"
        JSONL = "jsonl", "Investigator JSONL"

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="import_runs")
    format = models.CharField(max_length=32, choices=Format.choices)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING, db_index=True)
    sources = models.JSONField(default=list, help_text="[{name, sha256, bytes}] of every input file")
    source_count = models.PositiveIntegerField(default=0, help_text="len(sources), kept so lists need not read them")
    input_paths = models.JSONField(default=list, help_text="Where the files wait on the server until a worker imports them")
    source_sha256 = models.CharField(max_length=64, blank=True, help_text="SHA-256 over the sorted source hashes")
    read_count = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)
    media_count = models.PositiveIntegerField(default=0)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life of the worker running it")
    stage = models.CharField(max_length=200, blank=True,
                             help_text="What the worker is doing before the rows, for the progress bar")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["source_sha256"], name="import_run_source_idx")]


class ImportRejection(models.Model):
    import_run = models.ForeignKey(ImportRun, on_delete=models.CASCADE, related_name="rejections")
    file = models.CharField(max_length=1000)
    line = models.PositiveIntegerField(null=True, blank=True)
    column = models.CharField(max_length=200, blank=True)
    reason = models.TextField()
    kept = models.BooleanField(default=False, help_text="A warning: the row was imported despite this problem")

    class Meta:
        ordering = ["id"]


class DetectionRun(HeartbeatJob):  # started_at, heartbeat_at: investigator.jobs
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.PROTECT, related_name="detection_runs")
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING, db_index=True)
    signals = ArrayField(models.CharField(max_length=32), default=list)
    parameters = models.JSONField(default=dict, help_text="Everything needed to reproduce the run")
    summary = models.JSONField(default=dict, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    stage = models.CharField(max_length=200, blank=True, help_text="What the worker is doing now, for the progress bar")
    error = models.TextField(blank=True)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]


class CoordinationEdge(models.Model):
    """Evidence that two accounts acted together, by one signal. account_a < account_b."""

    detection_run = models.ForeignKey(DetectionRun, on_delete=models.CASCADE, related_name="edges")
    account_a = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    account_b = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    signal = models.CharField(max_length=32)
    parameters = models.JSONField(default=dict)
    weight = models.FloatField()
    evidence = models.JSONField(default=list, help_text="The post pairs behind the edge: [[post_a_id, post_b_id], …]")
    explanation = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(account_a__lt=F("account_b")), name="edge_ordered_pair"),
            models.CheckConstraint(condition=Q(weight__gt=0), name="edge_positive_weight"),
            models.UniqueConstraint(
                fields=["detection_run", "account_a", "account_b", "signal"], name="edge_unique_per_signal"
            ),
        ]
        indexes = [
            models.Index(fields=["detection_run", "account_b"], name="edge_run_b_idx"),
        ]


class Cluster(models.Model):
    detection_run = models.ForeignKey(DetectionRun, on_delete=models.CASCADE, related_name="clusters")
    label = models.CharField(max_length=200)
    score = models.FloatField(default=0)
    size = models.PositiveIntegerField(default=0)
    signal_breakdown = models.JSONField(default=dict)
    explanation = models.TextField(blank=True)
    timeline = models.JSONField(default=list, blank=True)
    review_status = models.CharField(max_length=16, choices=ReviewStatus.choices, default=ReviewStatus.UNREVIEWED)
    members = models.ManyToManyField(Account, through="ClusterMember", related_name="clusters")

    class Meta:
        ordering = ["-score"]
        indexes = [models.Index(fields=["detection_run", "-score"], name="cluster_run_score_idx")]

    def __str__(self) -> str:
        return self.label


class ClusterMember(models.Model):
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE)
    account = models.ForeignKey(Account, on_delete=models.CASCADE)
    centrality = models.FloatField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cluster", "account"], name="cluster_member_unique")]


class Watchlist(models.Model):
    """A named list of handles or platform ids: a takedown disclosure, a list an operation published."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=500, blank=True, help_text="Where the list comes from (file name, URL)")
    source_sha256 = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class WatchlistEntry(models.Model):
    """One listed account. Matching is done at read time, so accounts imported later are flagged too."""

    class Kind(models.TextChoices):
        HANDLE = "handle", "Handle"
        ID = "id", "Platform id"

    watchlist = models.ForeignKey(Watchlist, on_delete=models.CASCADE, related_name="entries")
    platform = models.ForeignKey(Platform, null=True, blank=True, on_delete=models.PROTECT,
                                 help_text="Empty: the entry matches on every platform")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    value = models.CharField(max_length=255, help_text="Handles lower-cased without @; ids as given")
    line = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["watchlist", "platform", "kind", "value"], name="watchlist_entry_unique",
                                    nulls_distinct=False),
        ]
        indexes = [models.Index(fields=["kind", "value"], name="watchlist_entry_value_idx")]
