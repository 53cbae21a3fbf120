"""DRF permission classes built on the same role helpers the pages use."""

from __future__ import annotations

from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from investigator.roles import INVESTIGATOR, LEAD, REVIEWER, has_role


class _HasRole(BasePermission):
    role = ""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return has_role(request.user, self.role)


class IsInvestigator(_HasRole):
    role = INVESTIGATOR


class IsLead(_HasRole):
    role = LEAD


class IsReviewer(_HasRole):
    role = REVIEWER


class IsAuditor(BasePermission):
    """The whole audit trail: leads, reviewers and admins."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return has_role(request.user, LEAD) or has_role(request.user, REVIEWER)
