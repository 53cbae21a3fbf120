"""The case file's PDF report (WeasyPrint) and STIX 2.1 bundle (stix2)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from investigator.disarm import technique_name

# Deterministic STIX ids: the same case exported twice names the same objects.
_NAMESPACE = uuid.UUID("6f1a8a0e-4b8e-4c8e-9d5e-2f4a3c1b7d90")


def pdf_render(*, html: str, pictures: dict[str, bytes]) -> bytes:
    """The report as PDF. Pictures come from the case file itself (`media/...`); nothing is fetched from the
    network or the disk: every other URL is refused."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class CaseFileFetcher(URLFetcher):
        def fetch(self, url: str, headers: object = None) -> URLFetcherResponse:
            name = url.removeprefix("casefile:/")  # relative names may arrive unjoined
            if name in pictures:
                return URLFetcherResponse(url, body=pictures[name])
            raise ValueError(f"refused: {url[:80]}")

    return HTML(string=html, base_url="casefile:/", url_fetcher=CaseFileFetcher()).write_pdf()


def _id(kind: str, key: object) -> str:
    return f"{kind}--{uuid.uuid5(_NAMESPACE, f'{kind}:{key}')}"


def stix_bundle(*, case: Any, evidence: dict[str, Any], exported_at: datetime) -> str:
    """A STIX 2.1 bundle: our identity, the case as a campaign, accounts as user-account observables with
    observed-data, notes and decisions as notes, DISARM techniques as attack-patterns used by the campaign."""
    import stix2

    now = exported_at.astimezone(UTC)
    identity = stix2.Identity(id=_id("identity", "investigator"), name="Investigator", identity_class="system",
                              created=now, modified=now)
    campaign = stix2.Campaign(id=_id("campaign", case.pk), name=case.title, description=case.summary or None,
                              created_by_ref=identity.id, created=case.created_at, modified=now)
    objects: list[Any] = [identity, campaign]
    accounts = {}
    for account in evidence["accounts"]:
        observable = stix2.UserAccount(
            id=_id("user-account", f"{account.platform.slug}:{account.external_id}"), user_id=account.external_id,
            account_login=account.handle, display_name=account.display_name or None, account_type=account.platform.slug,
            account_created=account.created_at)
        accounts[account.pk] = observable
        objects.append(observable)
    if accounts:
        first = min((p.posted_at for p in evidence["posts"]), default=now)
        last = max((p.posted_at for p in evidence["posts"]), default=now)
        observed = stix2.ObservedData(
            id=_id("observed-data", case.pk), created_by_ref=identity.id, first_observed=first, last_observed=max(first, last),
            number_observed=max(1, len(evidence["posts"])), object_refs=[o.id for o in accounts.values()],
            created=now, modified=now)
        objects += [observed, stix2.Relationship(id=_id("relationship", f"{case.pk}:observed"), relationship_type="related-to",
                                                 source_ref=campaign.id, target_ref=observed.id, created=now, modified=now)]
    techniques = sorted({tag for item in evidence["items"] for tag in item.tags if tag.startswith("T")})
    for tag in techniques:
        pattern = stix2.AttackPattern(
            id=_id("attack-pattern", tag), name=technique_name(tag) or tag, created=now, modified=now,
            external_references=[{"source_name": "DISARM", "external_id": tag,
                                  "url": "https://github.com/DISARMFoundation/DISARMframeworks"}])
        objects += [pattern, stix2.Relationship(id=_id("relationship", f"{case.pk}:uses:{tag}"), relationship_type="uses",
                                                source_ref=campaign.id, target_ref=pattern.id, created=now, modified=now)]
    for note in evidence["annotations"]:
        target = accounts.get(note.case_item.account_id) if note.case_item.kind == "account" else None
        objects.append(stix2.Note(id=_id("note", f"annotation:{note.pk}"), content=note.text,
                                  authors=[note.author.get_username()], object_refs=[(target or campaign).id],
                                  created=note.created_at, modified=note.created_at))
    for decision in evidence["decisions"]:
        target = accounts.get(decision.account_id)
        if target is None:
            continue
        objects.append(stix2.Note(id=_id("note", f"decision:{decision.pk}"), abstract=f"Review: {decision.state}",
                                  content=decision.reason, authors=[decision.reviewer.get_username()],
                                  object_refs=[target.id], created=decision.created_at, modified=decision.created_at))
    return stix2.Bundle(objects=objects, id=_id("bundle", f"{case.pk}:{now.isoformat()}")).serialize(pretty=True)
