"""Reads of media analysis."""

from __future__ import annotations

from django.db.models import Count

from media_analysis.models import HashState, MediaAsset


def media_hash_counts() -> dict[str, int]:
    """How many assets are in each hashing state (operational; shown to every role)."""
    counts = dict(MediaAsset.objects.values("hash_state").annotate(n=Count("id")).values_list("hash_state", "n"))
    return {state: counts.get(state, 0) for state in HashState.values}
