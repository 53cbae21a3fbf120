"""REST API of the social-media side: platforms, datasets, accounts, posts, imports, detection runs and
clusters. Thin: selectors decide what the asker may see (the same querysets as the pages), services do
every write, serializers only shape."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.coordination.services import SIGNAL_CHOICES, detection_run_create
from accounts.forms import ImportUploadForm
from accounts.models import (
    Account,
    Cluster,
    CoordinationEdge,
    Dataset,
    DetectionRun,
    HandleChange,
    ImportRejection,
    ImportRun,
    JobStatus,
    Platform,
    Post,
    ReviewStatus,
)
from accounts.selectors import (
    accounts_visible,
    cluster_edges,
    cluster_members,
    clusters_filtered,
    datasets_visible,
    detection_runs_visible,
    import_run_sources,
    import_runs_visible,
    posts_visible,
)
from accounts.services import import_run_queue, upload_store
from investigator.permissions import IsInvestigator
from investigator.rest import UtcDateTimeFilter

# --- Serializers -----------------------------------------------------------------------------------


class PlatformSerializer(serializers.ModelSerializer):
    class Meta:
        model = Platform
        fields = ["id", "slug", "name"]


class DatasetSerializer(serializers.ModelSerializer):
    class Meta:
        model = Dataset
        fields = ["id", "name", "description", "created_at"]


class AccountSerializer(serializers.ModelSerializer):
    platform = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Account
        fields = ["id", "platform", "external_id", "handle", "display_name", "bio", "external_url", "location", "language",
                  "created_at", "follower_count", "following_count", "post_count", "is_private", "is_verified",
                  "profile_image", "review_status", "first_seen", "last_seen"]


class HandleChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = HandleChange
        fields = ["field", "old_value", "new_value", "observed_at"]


class AccountDetailSerializer(AccountSerializer):
    handle_changes = HandleChangeSerializer(many=True, read_only=True)
    clusters = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    datasets = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta(AccountSerializer.Meta):
        fields = [*AccountSerializer.Meta.fields, "handle_changes", "clusters", "datasets"]


class PostSerializer(serializers.ModelSerializer):
    platform = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    account_handle = serializers.CharField(source="account.handle", read_only=True)
    media = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Post
        fields = ["id", "platform", "external_id", "account", "account_handle", "posted_at", "text", "hashtags", "mentions",
                  "links", "post_type", "language", "url", "repost_of", "repost_of_external_id", "reply_to_external_id",
                  "like_count", "comment_count", "share_count", "view_count", "media"]


class ImportRejectionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ImportRejection
        fields = ["file", "line", "column", "reason", "kept"]


class ImportRunSerializer(serializers.ModelSerializer):
    dataset = serializers.CharField(source="dataset.name")
    started_by = serializers.CharField(source="started_by.username", default=None, allow_null=True)

    class Meta:
        model = ImportRun
        fields = ["id", "dataset", "format", "status", "source_count", "source_sha256", "read_count", "created_count",
                  "updated_count", "rejected_count", "media_count", "progress_done", "progress_total", "error",
                  "started_by", "created_at", "started_at", "finished_at"]


class ImportRunDetailSerializer(ImportRunSerializer):
    sources = serializers.SerializerMethodField()
    problems = serializers.SerializerMethodField()
    problem_count = serializers.SerializerMethodField()

    class Meta(ImportRunSerializer.Meta):
        fields = [*ImportRunSerializer.Meta.fields, "sources", "problems", "problem_count"]

    def get_sources(self, run: ImportRun) -> list[dict]:
        """The first 1,000 input files: name, bytes, SHA-256."""
        return import_run_sources(run=run, limit=1000)

    def get_problems(self, run: ImportRun) -> list[dict]:
        """The first 1,000 rejected rows and warnings (every one: GET /api/imports/{id}/problems/)."""
        return ImportRejectionSerializer(run.rejections.all()[:1000], many=True).data

    def get_problem_count(self, run: ImportRun) -> int:
        """How many rejected rows and warnings the run has in all."""
        return run.rejections.count()


class ImportUploadSerializer(serializers.Serializer):
    """For the schema only: the upload is checked by the page's own form (accounts.forms.ImportUploadForm)."""

    dataset = serializers.CharField(max_length=200)
    format = serializers.ChoiceField(choices=ImportRun.Format.choices, default=ImportRun.Format.AUTO)
    files = serializers.ListField(child=serializers.FileField())


class DetectionRunSerializer(serializers.ModelSerializer):
    started_by = serializers.CharField(source="started_by.username", default=None, read_only=True, allow_null=True)

    class Meta:
        model = DetectionRun
        fields = ["id", "dataset", "status", "stage", "signals", "parameters", "summary", "progress_done",
                  "progress_total", "error", "started_by", "created_at", "started_at", "finished_at"]
        read_only_fields = fields


class DetectionStartSerializer(serializers.Serializer):
    dataset = serializers.IntegerField(min_value=1, max_value=2**31 - 1)
    signals = serializers.ListField(child=serializers.ChoiceField(choices=SIGNAL_CHOICES), required=False, allow_empty=False,
                                    help_text="Default: every signal")
    window = serializers.IntegerField(min_value=1, max_value=30 * 86400, required=False,
                                      help_text="Seconds between two posts that count as together (default 600)")


class ClusterSerializer(serializers.ModelSerializer):
    class Meta:
        model = Cluster
        fields = ["id", "detection_run", "label", "score", "size", "signal_breakdown", "review_status", "explanation"]


class ClusterMemberSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    platform = serializers.CharField(source="platform.slug")
    handle = serializers.CharField()
    display_name = serializers.CharField()
    created_at = serializers.DateTimeField(allow_null=True)
    follower_count = serializers.IntegerField(allow_null=True)
    review_status = serializers.CharField()
    centrality = serializers.FloatField()


class EdgeSerializer(serializers.ModelSerializer):
    class Meta:
        model = CoordinationEdge
        fields = ["account_a", "account_b", "signal", "weight", "parameters", "evidence", "explanation"]


class ClusterDetailSerializer(ClusterSerializer):
    members = serializers.SerializerMethodField()
    edges = serializers.SerializerMethodField()

    class Meta(ClusterSerializer.Meta):
        fields = [*ClusterSerializer.Meta.fields, "timeline", "members", "edges"]

    def get_members(self, cluster: Cluster) -> list[dict]:
        return ClusterMemberSerializer(cluster_members(cluster=cluster), many=True).data

    def get_edges(self, cluster: Cluster) -> list[dict]:
        """Every evidence edge between members, per signal, strongest first, each with its post pairs."""
        return EdgeSerializer(cluster_edges(cluster=cluster)[:5000], many=True).data


# --- Filters ---------------------------------------------------------------------------------------


class AccountFilter(django_filters.FilterSet):
    platform = django_filters.CharFilter(field_name="platform__slug")
    dataset = django_filters.NumberFilter(field_name="datasets")
    handle = django_filters.CharFilter(field_name="handle", lookup_expr="iexact")
    handle_contains = django_filters.CharFilter(field_name="handle", lookup_expr="icontains")
    review_status = django_filters.ChoiceFilter(choices=ReviewStatus.choices)
    cluster = django_filters.NumberFilter(field_name="clusters")
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Account
        fields = ["platform", "dataset", "handle", "handle_contains", "review_status", "cluster", "created_after",
                  "created_before"]


class PostFilter(django_filters.FilterSet):
    account = django_filters.NumberFilter(field_name="account")
    dataset = django_filters.NumberFilter(field_name="datasets")
    platform = django_filters.CharFilter(field_name="platform__slug")
    hashtag = django_filters.CharFilter(method="_hashtag")
    link = django_filters.CharFilter(method="_link")
    media = django_filters.NumberFilter(field_name="media")
    posted_after = UtcDateTimeFilter(field_name="posted_at", lookup_expr="gte")
    posted_before = UtcDateTimeFilter(field_name="posted_at", lookup_expr="lt")

    class Meta:
        model = Post
        fields = ["account", "dataset", "platform", "hashtag", "link", "media", "posted_after", "posted_before"]

    def _hashtag(self, queryset: QuerySet[Post], name: str, value: str) -> QuerySet[Post]:
        return queryset.filter(hashtags__contains=[value.lstrip("#").lower()])

    def _link(self, queryset: QuerySet[Post], name: str, value: str) -> QuerySet[Post]:
        from accounts.normalize import normalize_url

        return queryset.filter(links__contains=[normalize_url(value) or value])


class _JobFilter(django_filters.FilterSet):
    """Imports and detections: by dataset and state."""

    dataset = django_filters.NumberFilter(field_name="dataset")
    status = django_filters.ChoiceFilter(choices=JobStatus.choices)


class ImportRunFilter(_JobFilter):
    class Meta:
        model = ImportRun
        fields = ["dataset", "status"]


class DetectionRunFilter(_JobFilter):
    class Meta:
        model = DetectionRun
        fields = ["dataset", "status"]


class ClusterFilter(django_filters.FilterSet):
    """The cluster list page's filters, through the same selector (accounts.selectors.clusters_filtered)."""

    dataset = django_filters.NumberFilter(method="_noop")
    detection_run = django_filters.NumberFilter(method="_noop")
    runs = django_filters.ChoiceFilter(method="_noop", choices=[("latest", "latest"), ("all", "all")],
                                       help_text="Without detection_run: each dataset's latest run (the default) or all")
    signal = django_filters.ChoiceFilter(method="_noop", choices=[(s, s) for s in SIGNAL_CHOICES])
    min_size = django_filters.NumberFilter(method="_noop", min_value=1)
    min_score = django_filters.NumberFilter(method="_noop", min_value=0)
    review = django_filters.ChoiceFilter(method="_noop", choices=[(r, r) for r in ("unreviewed", "in_progress", "reviewed")])
    sort = django_filters.ChoiceFilter(method="_noop", choices=[(s, s) for s in ("score", "size", "newest", "label")])

    class Meta:
        model = Cluster
        fields = ["dataset", "detection_run", "runs", "signal", "min_size", "min_score", "review", "sort"]

    def _noop(self, queryset: QuerySet, name: str, value: object) -> QuerySet:
        return queryset  # applied together in filter_queryset

    def filter_queryset(self, queryset: QuerySet[Cluster]) -> QuerySet[Cluster]:
        data = self.form.cleaned_data
        return clusters_filtered(
            user=self.request.user, dataset=data.get("dataset"), run=data.get("detection_run"),
            every_run=data.get("runs") == "all",
            signal=data.get("signal") or "", min_size=data.get("min_size"), min_score=data.get("min_score"),
            review=data.get("review") or "", sort=data.get("sort") or "score")


# --- Views -----------------------------------------------------------------------------------------


class PlatformViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = PlatformSerializer
    permission_classes = [IsInvestigator]
    pagination_class = None

    def get_queryset(self) -> QuerySet[Platform]:
        return Platform.objects.order_by("slug")  # not user data: the role check above is the whole rule


class DatasetViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = DatasetSerializer
    permission_classes = [IsInvestigator]

    def get_queryset(self) -> QuerySet[Dataset]:
        return datasets_visible(user=self.request.user).order_by("name")


class AccountViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [IsInvestigator]
    filterset_class = AccountFilter

    def get_queryset(self) -> QuerySet[Account]:
        accounts = accounts_visible(user=self.request.user).order_by("id")
        if self.action == "retrieve":
            accounts = accounts.prefetch_related("handle_changes", "clusters", "datasets")
        # Filters across many-to-many links can repeat a row.
        joined = self.request.query_params.get("dataset") or self.request.query_params.get("cluster")
        return accounts.distinct() if joined else accounts

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return AccountDetailSerializer if self.action == "retrieve" else AccountSerializer


class PostViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = PostSerializer
    permission_classes = [IsInvestigator]
    filterset_class = PostFilter

    def get_queryset(self) -> QuerySet[Post]:
        posts = (posts_visible(user=self.request.user).select_related("platform").prefetch_related("media")
                 .order_by("posted_at", "id"))
        joined = self.request.query_params.get("dataset") or self.request.query_params.get("media")
        return posts.distinct() if joined else posts


@extend_schema_view(
    create=extend_schema(request={"multipart/form-data": ImportUploadSerializer},
                         responses={202: ImportRunSerializer, 400: OpenApiResponse(description="The form's errors")}),
)
class ImportRunViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Upload files to import (multipart: dataset, format, files…; 202 with the queued run), then follow it."""

    permission_classes = [IsInvestigator]
    parser_classes = [MultiPartParser, FormParser]
    filterset_class = ImportRunFilter

    def get_queryset(self) -> QuerySet[ImportRun]:
        return import_runs_visible(user=self.request.user).order_by("-created_at", "-id")

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return ImportRunDetailSerializer if self.action == "retrieve" else ImportRunSerializer

    @extend_schema(responses=ImportRejectionSerializer(many=True))
    @action(detail=True)
    def problems(self, request: Request, pk: str | None = None) -> Response:
        """Every rejected row and warning of the run, in the order they were found, paged."""
        run = self.get_object()
        page = self.paginate_queryset(run.rejections.order_by("id"))
        return self.get_paginated_response(ImportRejectionSerializer(page, many=True).data)

    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        form = ImportUploadForm(request.data, request.FILES)
        if not form.is_valid():
            return Response(form.errors.get_json_data(), status=status.HTTP_400_BAD_REQUEST)
        paths = upload_store(files=form.cleaned_data["files"])
        run = import_run_queue(dataset_name=form.cleaned_data["dataset"], format=form.cleaned_data["format"],
                               paths=paths, user=request.user)
        return Response(ImportRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(create=extend_schema(request=DetectionStartSerializer, responses={202: DetectionRunSerializer}))
class DetectionRunViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Start a detection on a dataset (it runs on a worker; 202 with the pending run), then follow it."""

    serializer_class = DetectionRunSerializer
    permission_classes = [IsInvestigator]
    filterset_class = DetectionRunFilter

    def get_queryset(self) -> QuerySet[DetectionRun]:
        return detection_runs_visible(user=self.request.user)

    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        start = DetectionStartSerializer(data=request.data)
        start.is_valid(raise_exception=True)
        dataset = get_object_or_404(datasets_visible(user=request.user), pk=start.validated_data["dataset"])
        try:
            run = detection_run_create(dataset=dataset, signals=start.validated_data.get("signals"),
                                       window=start.validated_data.get("window"), user=request.user)
        except ValueError as exc:
            raise serializers.ValidationError({"detail": str(exc)}) from exc
        return Response(DetectionRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class ClusterViewSet(viewsets.ReadOnlyModelViewSet):
    """Clusters with their score and per-signal breakdown; one cluster with its members, timeline and every
    evidence edge (with the post pairs behind it)."""

    permission_classes = [IsInvestigator]
    filterset_class = ClusterFilter

    def get_queryset(self) -> QuerySet[Cluster]:
        return clusters_filtered(user=self.request.user, every_run=self.action == "retrieve")

    def filter_queryset(self, queryset: QuerySet[Cluster]) -> QuerySet[Cluster]:
        # The list's filters (each dataset's latest run by default) never hide one cluster asked for by its id.
        return queryset if self.action == "retrieve" else super().filter_queryset(queryset)

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return ClusterDetailSerializer if self.action == "retrieve" else ClusterSerializer

    @extend_schema(responses=AccountSerializer(many=True))
    @action(detail=True)
    def accounts(self, request: Request, pk: str | None = None) -> Response:
        """The members as full account records, paged."""
        cluster = self.get_object()
        page = self.paginate_queryset(accounts_visible(user=request.user).filter(clusters=cluster).order_by("id"))
        return self.get_paginated_response(AccountSerializer(page, many=True).data)
