"""REST API of the investigation side: cases and their items, notes, review decisions, case-file exports
and the audit trail. The same selectors and services as the pages, so the same rules: reviewers decide
(four eyes included), leads assign and export."""

from __future__ import annotations

from pathlib import Path

import django_filters
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import FileResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response

from investigator.forms import people
from investigator.models import Annotation, AuditEvent, Case, CaseExport, CaseItem, ReviewDecision
from investigator.permissions import IsAuditor, IsInvestigator, IsLead, IsReviewer
from investigator.selectors import (
    annotations_visible,
    audit_chain_verify,
    audit_events_visible,
    case_exports_visible,
    cases_visible,
    decisions_visible,
    review_queue,
)
from investigator.services import (
    audit_record,
    case_assign,
    case_create,
    case_export_request,
    case_item_annotate,
    case_items_add,
    case_items_remove,
    case_member_add,
    case_status_set,
    review_submit,
    tags_parse,
)

User = get_user_model()


class _Username(serializers.SlugRelatedField):
    """Someone with a role, by username."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(slug_field="username", queryset=User.objects.none(), **kwargs)

    def get_queryset(self) -> QuerySet:
        return people()


# --- Serializers -----------------------------------------------------------------------------------


class CaseSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    assigned_to = serializers.CharField(source="assigned_to.username", read_only=True, default=None, allow_null=True)
    members = serializers.SlugRelatedField(slug_field="username", many=True, read_only=True)

    class Meta:
        model = Case
        fields = ["id", "title", "summary", "status", "created_by", "assigned_to", "members", "created_at", "updated_at"]
        read_only_fields = ["status", "created_at", "updated_at"]
        extra_kwargs = {"title": {"max_length": 300}}


class AnnotationSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", read_only=True)
    case = serializers.IntegerField(source="case_item.case_id", read_only=True)

    class Meta:
        model = Annotation
        fields = ["id", "case", "case_item", "author", "text", "created_at"]


class CaseItemSerializer(serializers.ModelSerializer):
    added_by = serializers.CharField(source="added_by.username", read_only=True)
    target = serializers.SerializerMethodField()
    annotations = AnnotationSerializer(many=True, read_only=True)

    class Meta:
        model = CaseItem
        fields = ["id", "kind", "target", "account", "post", "media", "cluster", "tags", "added_by", "added_at", "annotations"]

    def get_target(self, item: CaseItem) -> int:
        """The id of the account, post, picture or cluster (by kind)."""
        return getattr(item, f"{item.kind}_id")


class CaseStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Case.Status.choices)


class CaseAssignSerializer(serializers.Serializer):
    assignee = _Username(allow_null=True, help_text="A username; null takes the case back")


class CaseMemberSerializer(serializers.Serializer):
    member = _Username()


class ItemsAddSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=CaseItem.Kind.choices)
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), min_length=1,
                                max_length=5000)


class ItemsRemoveSerializer(serializers.Serializer):
    items = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), min_length=1,
                                  max_length=5000, help_text="Case item ids")


class ItemsAddedSerializer(serializers.Serializer):
    added = serializers.IntegerField()


class ItemsRemovedSerializer(serializers.Serializer):
    removed = serializers.IntegerField()


class AnnotateSerializer(serializers.Serializer):
    case_item = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    text = serializers.CharField(required=False, allow_blank=True, max_length=20000, default="")
    tags = serializers.CharField(required=False, max_length=2000,
                                 help_text="Replaces the item's tags: DISARM ids (T0049, T0143.002) or words")


class ReviewDecisionSerializer(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="reviewer.username", read_only=True)

    class Meta:
        model = ReviewDecision
        fields = ["id", "account", "cluster", "state", "reason", "reviewer", "created_at"]


class ReviewSubmitSerializer(serializers.Serializer):
    accounts = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), min_length=1,
                                     max_length=5000)
    state = serializers.ChoiceField(choices=ReviewDecision.State.choices)
    reason = serializers.CharField(max_length=5000)
    cluster = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=2**63 - 1,
                                       help_text="The cluster the decision was taken from, for the record")


class CaseExportSerializer(serializers.ModelSerializer):
    requested_by = serializers.CharField(source="requested_by.username", read_only=True)
    download = serializers.SerializerMethodField()

    class Meta:
        model = CaseExport
        fields = ["id", "case", "status", "progress_done", "progress_total", "size_bytes", "error", "requested_by",
                  "created_at", "finished_at", "expires_at", "download"]
        read_only_fields = fields

    def get_download(self, export: CaseExport) -> str | None:
        """The ZIP's address while it can be downloaded."""
        from django.urls import reverse

        if export.status != "succeeded" or not export.file or export.expires_at <= timezone.now():
            return None
        return reverse("api:export-download", args=[export.pk])


class ExportRequestSerializer(serializers.Serializer):
    case = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["id", "created_at", "actor_username", "action", "subject_type", "subject_id", "case", "data", "prev_hash",
                  "hash"]


class ChainReportSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    checked = serializers.IntegerField()
    broken_at = serializers.IntegerField(allow_null=True)
    problem = serializers.CharField()


# --- Filters ---------------------------------------------------------------------------------------


class CaseFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Case.Status.choices)
    scope = django_filters.ChoiceFilter(method="_scope", choices=[("mine", "mine"), ("assigned", "assigned"), ("all", "all")],
                                        help_text="mine: built by me; assigned: given to me; all: every case I can see")

    class Meta:
        model = Case
        fields = ["status", "scope"]

    def _scope(self, queryset: QuerySet[Case], name: str, value: str) -> QuerySet[Case]:
        if value == "mine":
            return queryset.filter(created_by=self.request.user)
        if value == "assigned":
            return queryset.filter(assigned_to=self.request.user)
        return queryset


class DecisionFilter(django_filters.FilterSet):
    account = django_filters.NumberFilter(field_name="account")
    state = django_filters.ChoiceFilter(choices=ReviewDecision.State.choices)
    reviewer = django_filters.CharFilter(field_name="reviewer__username")

    class Meta:
        model = ReviewDecision
        fields = ["account", "state", "reviewer"]


class AnnotationFilter(django_filters.FilterSet):
    case = django_filters.NumberFilter(field_name="case_item__case")
    case_item = django_filters.NumberFilter(field_name="case_item")

    class Meta:
        model = Annotation
        fields = ["case", "case_item"]


class AuditFilter(django_filters.FilterSet):
    action = django_filters.CharFilter(field_name="action")
    case = django_filters.NumberFilter(field_name="case")
    subject_type = django_filters.CharFilter(field_name="subject_type")
    subject_id = django_filters.CharFilter(field_name="subject_id")

    class Meta:
        model = AuditEvent
        fields = ["action", "case", "subject_type", "subject_id"]


# --- Views -----------------------------------------------------------------------------------------


class CaseViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Cases: the ones I built, was given or joined (leads: every case). Create one, then change its status,
    members, assignment (leads) and items through the actions below."""

    serializer_class = CaseSerializer
    permission_classes = [IsInvestigator]
    filterset_class = CaseFilter

    def get_queryset(self) -> QuerySet[Case]:
        return cases_visible(user=self.request.user).prefetch_related("members").order_by("-updated_at", "-id")

    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        data = CaseSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        case = case_create(user=request.user, title=data.validated_data["title"],
                           summary=data.validated_data.get("summary", ""))
        return Response(CaseSerializer(case).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=CaseStatusSerializer, responses=CaseSerializer)
    @action(detail=True, methods=["post"], url_path="status")
    def set_status(self, request: Request, pk: str | None = None) -> Response:
        """Open → in review → closed (any order)."""
        case = self.get_object()
        data = CaseStatusSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(CaseSerializer(case_status_set(case=case, user=request.user, status=data.validated_data["status"])).data)

    @extend_schema(request=CaseAssignSerializer, responses=CaseSerializer)
    @action(detail=True, methods=["post"], permission_classes=[IsLead])
    def assign(self, request: Request, pk: str | None = None) -> Response:
        """Leads only: give the case to someone (who becomes a member)."""
        case = self.get_object()
        data = CaseAssignSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(CaseSerializer(case_assign(case=case, user=request.user, assignee=data.validated_data["assignee"])).data)

    @extend_schema(request=CaseMemberSerializer, responses=CaseSerializer)
    @action(detail=True, methods=["post"])
    def members(self, request: Request, pk: str | None = None) -> Response:
        """Add someone with a role to the case."""
        case = self.get_object()
        data = CaseMemberSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(CaseSerializer(case_member_add(case=case, user=request.user, member=data.validated_data["member"])).data)

    @extend_schema(methods=["get"], responses=CaseItemSerializer(many=True))
    @extend_schema(methods=["post"], request=ItemsAddSerializer, responses={201: ItemsAddedSerializer})
    @action(detail=True, methods=["get", "post"])
    def items(self, request: Request, pk: str | None = None) -> Response:
        """GET: the case's items with their notes and tags. POST: add accounts, posts, media or clusters by id
        (items already there are left as they are)."""
        case = self.get_object()
        if request.method == "GET":
            items = (case.items.select_related("added_by").prefetch_related("annotations__author").order_by("added_at", "id"))
            page = self.paginate_queryset(items)
            return self.get_paginated_response(CaseItemSerializer(page, many=True).data)
        data = ItemsAddSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        added = case_items_add(case=case, user=request.user, kind=data.validated_data["kind"], ids=data.validated_data["ids"])
        return Response({"added": added}, status=status.HTTP_201_CREATED)

    @extend_schema(request=ItemsRemoveSerializer, responses=ItemsRemovedSerializer)
    @action(detail=True, methods=["post"], url_path="remove-items")
    def remove_items(self, request: Request, pk: str | None = None) -> Response:
        """Remove items (and their notes) from the case."""
        case = self.get_object()
        data = ItemsRemoveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response({"removed": case_items_remove(case=case, user=request.user, item_ids=data.validated_data["items"])})


@extend_schema_view(create=extend_schema(request=AnnotateSerializer,
                                         responses={201: AnnotationSerializer, 200: CaseItemSerializer}))
class AnnotationViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Notes on case items. POST a note and/or a new tag set for an item (201 with the note; 200 with the
    item when only the tags changed)."""

    serializer_class = AnnotationSerializer
    permission_classes = [IsInvestigator]
    filterset_class = AnnotationFilter

    def get_queryset(self) -> QuerySet[Annotation]:
        return annotations_visible(user=self.request.user)

    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        data = AnnotateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = get_object_or_404(CaseItem.objects.select_related("case").filter(case__in=cases_visible(user=request.user)),
                                 pk=data.validated_data["case_item"])
        tags = tags_parse(data.validated_data["tags"]) if "tags" in data.validated_data else None
        note = case_item_annotate(item=item, user=request.user, text=data.validated_data["text"], tags=tags)
        if note is None:
            return Response(CaseItemSerializer(item).data)
        return Response(AnnotationSerializer(note).data, status=status.HTTP_201_CREATED)


@extend_schema_view(create=extend_schema(request=ReviewSubmitSerializer, responses={201: ReviewDecisionSerializer(many=True)}))
class ReviewDecisionViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Every role reads decisions (an account's history); only reviewers record them, always with a reason,
    never on accounts in a case they built (four eyes) unless the setting allows it."""

    serializer_class = ReviewDecisionSerializer
    filterset_class = DecisionFilter

    def get_permissions(self) -> list:
        return [IsReviewer()] if self.action in ("create", "queue") else [IsInvestigator()]

    def get_queryset(self) -> QuerySet[ReviewDecision]:
        return decisions_visible(user=self.request.user)

    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        data = ReviewSubmitSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        decisions = review_submit(user=request.user, account_ids=data.validated_data["accounts"],
                                  state=data.validated_data["state"], reason=data.validated_data["reason"],
                                  cluster_id=data.validated_data.get("cluster"))
        return Response(ReviewDecisionSerializer(decisions, many=True).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=False)
    def queue(self, request: Request) -> Response:
        """Reviewers: the accounts awaiting a decision, most suspicious cluster first (four eyes applied)."""
        from accounts.api import AccountSerializer

        page = self.paginate_queryset(review_queue(user=request.user))
        return self.get_paginated_response(AccountSerializer(page, many=True).data)


@extend_schema_view(create=extend_schema(request=ExportRequestSerializer, responses={202: CaseExportSerializer}))
class CaseExportViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Leads only: build a case file on a worker (202 with the pending export), follow it, download the ZIP
    until it expires."""

    serializer_class = CaseExportSerializer
    permission_classes = [IsLead]

    def get_queryset(self) -> QuerySet[CaseExport]:
        return case_exports_visible(user=self.request.user)

    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        data = ExportRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        case = get_object_or_404(cases_visible(user=request.user), pk=data.validated_data["case"])
        return Response(CaseExportSerializer(case_export_request(case=case, user=request.user)).data,
                        status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY,
                              410: OpenApiResponse(description="Expired: build a new one")})
    @action(detail=True)
    def download(self, request: Request, pk: str | None = None) -> FileResponse:
        """The case file (audited)."""
        export = self.get_object()
        path = Path(settings.EXPORT_ROOT) / export.file
        if export.status != "succeeded":
            raise exceptions.NotFound("This case file is not ready")
        if not export.file or export.expires_at <= timezone.now() or not path.is_file():
            raise _Gone()
        audit_record(actor=request.user, action="case.export_downloaded", subject_type="case", subject_id=export.case_id,
                     case=export.case, data={"export": export.pk, "bytes": export.size_bytes})
        return FileResponse(path.open("rb"), as_attachment=True, filename=export.file, content_type="application/zip")


class _Gone(exceptions.APIException):
    status_code = status.HTTP_410_GONE
    default_detail = "This case file has expired; build a new one."
    default_code = "gone"


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """Leads, reviewers and admins: the hash-chained audit trail, and a check of the whole chain."""

    serializer_class = AuditEventSerializer
    permission_classes = [IsAuditor]
    filterset_class = AuditFilter

    def get_queryset(self) -> QuerySet[AuditEvent]:
        return audit_events_visible(user=self.request.user)

    @extend_schema(responses=ChainReportSerializer)
    @action(detail=False)
    def verify(self, request: Request) -> Response:
        """Recompute every hash: where the chain breaks, if it does."""
        report = audit_chain_verify()
        return Response({"ok": report.ok, "checked": report.checked, "broken_at": report.broken_at,
                         "problem": report.problem})
