"""Media assets, content-addressed by SHA-256, with perceptual hashes in pgvector bit columns."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from pgvector.django import BitField, HnswIndex


class HashState(models.TextChoices):
    PENDING = "pending", "Waiting to be hashed"
    PROCESSING = "processing", "Being hashed"
    DONE = "done", "Hashed"
    FAILED = "failed", "Could not be hashed"


def media_upload_path(asset: MediaAsset, filename: str) -> str:
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"assets/{asset.sha256[:2]}/{asset.sha256[2:4]}/{asset.sha256}.{extension}"


class MediaAsset(models.Model):
    sha256 = models.CharField(max_length=64, unique=True)
    file = models.FileField(upload_to=media_upload_path, max_length=300)
    size_bytes = models.BigIntegerField()
    original_name = models.CharField(max_length=500, blank=True)
    source_url = models.TextField(blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    format = models.CharField(max_length=16, blank=True)
    hash_state = models.CharField(max_length=16, choices=HashState.choices, default=HashState.PENDING)
    hash_error = models.TextField(blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    hashed_at = models.DateTimeField(null=True, blank=True)
    phash = BitField(length=64, null=True, blank=True)
    dhash = BitField(length=64, null=True, blank=True)
    pdq = BitField(length=256, null=True, blank=True)
    pdq_quality = models.PositiveSmallIntegerField(null=True, blank=True)
    # Robust matching (media_analysis.matching): the mirror image's hashes, the central region's
    # 128-bit signature (indexed: it finds cropped and captioned copies), and every signature for checking.
    phash_flip = BitField(length=64, null=True, blank=True)
    pdq_flip = BitField(length=256, null=True, blank=True)
    centre = BitField(length=128, null=True, blank=True)
    signature = models.JSONField(null=True, blank=True)
    # matching.SIGNATURE_VERSION when it was taken; lower means the workers hash the picture again when idle.
    signature_version = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            HnswIndex(name="media_phash_hnsw", fields=["phash"], opclasses=["bit_hamming_ops"], m=16, ef_construction=64),
            HnswIndex(name="media_dhash_hnsw", fields=["dhash"], opclasses=["bit_hamming_ops"], m=16, ef_construction=64),
            HnswIndex(name="media_pdq_hnsw", fields=["pdq"], opclasses=["bit_hamming_ops"], m=16, ef_construction=64),
            HnswIndex(name="media_centre_hnsw", fields=["centre"], opclasses=["bit_hamming_ops"], m=16,
                      ef_construction=64),
            # Workers claim pending assets oldest first.
            models.Index(fields=["id"], condition=Q(hash_state="pending"), name="media_pending_idx"),
            # Progress counts (media_hash_counts) and waiting detections read the few unfinished and failed
            # pictures from here instead of scanning a million hashed ones every few seconds.
            models.Index(fields=["hash_state"], condition=~Q(hash_state="done"), name="media_unfinished_idx"),
            # and, when none is pending, hashed ones with an older signature, oldest signature first.
            models.Index(fields=["signature_version", "id"], condition=Q(hash_state="done"),
                         name="media_signature_version_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(pdq_quality__isnull=True) | Q(pdq_quality__lte=100), name="media_pdq_quality_range"
            ),
        ]

    def __str__(self) -> str:
        return self.sha256[:12]


class KnownSource(models.Model):
    """A picture known to come from elsewhere (a stock photo, a stolen portrait): avatars matching it are flagged."""

    asset = models.OneToOneField(MediaAsset, on_delete=models.PROTECT, related_name="known_source")
    label = models.CharField(max_length=300)
    note = models.TextField(blank=True)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    added_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.label


class MediaCluster(models.Model):
    """Near-duplicate copies of one picture. Built leader-first: the earliest copy is the cluster's centre and
    every member is within the match threshold of that centre, so A~B~C chains cannot pull unrelated
    pictures together."""

    centre = models.OneToOneField(MediaAsset, on_delete=models.CASCADE, related_name="centre_of")
    size = models.PositiveIntegerField(default=1)
    first_posted_at = models.DateTimeField(null=True, blank=True)
    last_posted_at = models.DateTimeField(null=True, blank=True)
    account_count = models.PositiveIntegerField(default=0)
    post_count = models.PositiveIntegerField(default=0)
    parameters = models.JSONField(default=dict)
    built_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-account_count", "-post_count", "id"]


class MediaClusterMember(models.Model):
    cluster = models.ForeignKey(MediaCluster, on_delete=models.CASCADE, related_name="members")
    asset = models.OneToOneField(MediaAsset, on_delete=models.CASCADE, related_name="cluster_membership")
    distance = models.PositiveSmallIntegerField(default=0, help_text="Bits from the centre, of the signature in `via`")
    via = models.CharField(max_length=16, default="phash", help_text="Which signature placed it (media_analysis.matching)")
    keypoints = models.SmallIntegerField(
        null=True, blank=True,
        help_text="Keypoints in agreement with the centre, when the keypoint check was asked (-1: too plain to tell)")


class KeypointCheck(models.Model):
    """How many keypoints two stored pictures share under a copy's transform (media_analysis.keypoints), for a
    pair matched on one coarse signature alone. Kept so that the next media-cluster build or case file need not
    read the pictures again; a picture's content never changes under its id (content-addressed storage)."""

    first = models.ForeignKey(MediaAsset, on_delete=models.CASCADE, related_name="+")
    second = models.ForeignKey(MediaAsset, on_delete=models.CASCADE, related_name="+")
    mirrored = models.BooleanField(help_text="Whether one picture was mirrored for the comparison")
    agreement = models.SmallIntegerField(help_text="Keypoints in agreement; -1 when the pictures are too plain to tell")
    checked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["first", "second", "mirrored"], name="keypoint_check_pair"),
            models.CheckConstraint(condition=Q(first__lt=F("second")), name="keypoint_check_ordered_pair"),
        ]
