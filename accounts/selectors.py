"""Reads of the social-media side. Every read a user sees takes the user."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Max, QuerySet

from accounts.models import Account, Dataset, ImportRun, Post
from investigator.roles import INVESTIGATOR, has_role
from media_analysis.selectors import media_hash_counts


def datasets_visible(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Dataset]:
    """Every role may see every dataset; outsiders (no role) see none."""
    if not has_role(user, INVESTIGATOR):
        return Dataset.objects.none()
    return Dataset.objects.all()


@dataclass(frozen=True)
class DatasetOverview:
    dataset: Dataset
    accounts: int
    posts: int
    last_import: object


def dataset_overview(*, user: AbstractBaseUser | AnonymousUser) -> list[DatasetOverview]:
    datasets = (
        datasets_visible(user=user)
        .annotate(last_import=Max("import_runs__finished_at"))
        .order_by("name")
    )
    account_counts = dict(
        Account.datasets.through.objects.filter(dataset__in=datasets)
        .values("dataset").annotate(n=Count("id")).values_list("dataset", "n")
    )
    post_counts = dict(
        Post.datasets.through.objects.filter(dataset__in=datasets)
        .values("dataset").annotate(n=Count("id")).values_list("dataset", "n")
    )
    return [
        DatasetOverview(d, account_counts.get(d.id, 0), post_counts.get(d.id, 0), d.last_import)
        for d in datasets
    ]


def media_hash_progress(*, user: AbstractBaseUser | AnonymousUser) -> dict[str, int]:
    if not has_role(user, INVESTIGATOR):
        return {}
    return media_hash_counts()


def import_runs_visible(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[ImportRun]:
    if not has_role(user, INVESTIGATOR):
        return ImportRun.objects.none()
    return ImportRun.objects.select_related("dataset", "started_by")
