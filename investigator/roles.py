"""Roles are Django groups, created by a data migration. Higher roles include lower ones."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

INVESTIGATOR = "investigator"
LEAD = "lead"
REVIEWER = "reviewer"
ADMIN = "admin"
ROLES = (INVESTIGATOR, LEAD, REVIEWER, ADMIN)

# What each group grants: a lead and a reviewer can do all an investigator can.
_IMPLIED: dict[str, frozenset[str]] = {
    INVESTIGATOR: frozenset({INVESTIGATOR}),
    LEAD: frozenset({INVESTIGATOR, LEAD}),
    REVIEWER: frozenset({INVESTIGATOR, REVIEWER}),
    ADMIN: frozenset(ROLES),
}


def roles_of(user: AbstractBaseUser | AnonymousUser) -> frozenset[str]:
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    if user.is_superuser:
        return frozenset(ROLES)
    cached = getattr(user, "_investigator_roles", None)
    if cached is None:
        groups = user.groups.values_list("name", flat=True)
        cached = frozenset().union(*(_IMPLIED.get(name, frozenset()) for name in groups))
        user._investigator_roles = cached  # noqa: SLF001 - per-request cache on the user object
    return cached


def has_role(user: AbstractBaseUser | AnonymousUser, role: str) -> bool:
    return role in roles_of(user)
