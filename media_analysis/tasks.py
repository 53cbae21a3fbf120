"""Celery tasks of media analysis: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from media_analysis.services import media_hash_batch, media_hash_claim, media_rehash_claim


@shared_task(bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def hash_pending_media(self, limit: int | None = None) -> dict[str, int]:  # noqa: ANN001 - bound task
    """Claim a batch of pending assets and hash them; when none is pending, hash again a batch of assets whose
    signature is older than the workers' (new pictures first, always)."""
    limit = limit or settings.MEDIA_HASH_BATCH_SIZE
    if asset_ids := media_hash_claim(limit=limit):
        return media_hash_batch(asset_ids=asset_ids)
    if asset_ids := media_rehash_claim(limit=limit):
        return media_hash_batch(asset_ids=asset_ids, again=True)
    return {"done": 0, "failed": 0}
