from __future__ import annotations

from django.http import HttpRequest

from investigator.roles import roles_of


def roles(request: HttpRequest) -> dict[str, frozenset[str]]:
    return {"user_roles": roles_of(request.user)}
