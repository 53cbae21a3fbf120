"""REST API of the social-media side (thin: serializers for shape, services for writes)."""

from __future__ import annotations

from rest_framework import serializers, status
from rest_framework.decorators import api_view, parser_classes, permission_classes
from rest_framework.generics import get_object_or_404
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.forms import ImportUploadForm
from accounts.models import ImportRejection, ImportRun
from accounts.selectors import import_runs_visible
from accounts.services import import_run_queue, upload_store
from investigator.permissions import IsInvestigator


class ImportRejectionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ImportRejection
        fields = ["file", "line", "column", "reason", "kept"]


class ImportRunSerializer(serializers.ModelSerializer):
    dataset = serializers.CharField(source="dataset.name")
    started_by = serializers.CharField(source="started_by.username", default=None)

    class Meta:
        model = ImportRun
        fields = ["id", "dataset", "format", "status", "sources", "source_sha256", "read_count", "created_count",
                  "updated_count", "rejected_count", "media_count", "progress_done", "progress_total", "error",
                  "started_by", "created_at", "started_at", "finished_at"]


class ImportRunDetailSerializer(ImportRunSerializer):
    problems = serializers.SerializerMethodField()

    class Meta(ImportRunSerializer.Meta):
        fields = [*ImportRunSerializer.Meta.fields, "problems"]

    def get_problems(self, run: ImportRun) -> list[dict]:
        return ImportRejectionSerializer(run.rejections.all()[:1000], many=True).data


@api_view(["GET", "POST"])
@permission_classes([IsAuthenticated, IsInvestigator])
@parser_classes([MultiPartParser, FormParser])
def import_runs(request: Request) -> Response:
    """GET: import runs, newest first. POST (multipart: dataset, format, files…): queue an import; 202."""
    if request.method == "GET":
        return Response(ImportRunSerializer(import_runs_visible(user=request.user)[:200], many=True).data)
    form = ImportUploadForm(request.data, request.FILES)
    if not form.is_valid():
        return Response(form.errors.get_json_data(), status=status.HTTP_400_BAD_REQUEST)
    paths = upload_store(files=form.cleaned_data["files"])
    run = import_run_queue(dataset_name=form.cleaned_data["dataset"], format=form.cleaned_data["format"],
                           paths=paths, user=request.user)
    return Response(ImportRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


@api_view(["GET"])
@permission_classes([IsAuthenticated, IsInvestigator])
def import_run_detail(request: Request, run_id: int) -> Response:
    run = get_object_or_404(import_runs_visible(user=request.user), pk=run_id)
    return Response(ImportRunDetailSerializer(run).data)
