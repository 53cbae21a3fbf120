"""Reads of the investigation domain."""

from __future__ import annotations

from dataclasses import dataclass

from investigator.models import AuditEvent
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
