"""REST API of media analysis: stored pictures, their copies and near-copies, and lookup by upload."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from investigator.permissions import IsInvestigator
from media_analysis.hashing import UnreadableImage
from media_analysis.models import HashState, MediaAsset
from media_analysis.selectors import SimilarMedia, media_assets_visible, media_similar, media_similar_to_upload, stored_signature


class MediaAssetSerializer(serializers.ModelSerializer):
    file_url = serializers.SerializerMethodField()
    phash = serializers.CharField(read_only=True, allow_null=True, help_text="64 bits as 0/1 characters")
    dhash = serializers.CharField(read_only=True, allow_null=True)
    pdq = serializers.CharField(read_only=True, allow_null=True, help_text="256 bits as 0/1 characters")

    class Meta:
        model = MediaAsset
        fields = ["id", "sha256", "size_bytes", "original_name", "width", "height", "format", "hash_state", "hash_error",
                  "hashed_at", "phash", "dhash", "pdq", "pdq_quality", "created_at", "file_url"]

    def get_file_url(self, asset: MediaAsset) -> str | None:
        """Where the picture itself can be fetched (only pictures that decoded are served)."""
        from django.urls import reverse

        return reverse("media_analysis:file", args=[asset.sha256]) if asset.hash_state == HashState.DONE else None


class SightingSerializer(serializers.Serializer):
    post_id = serializers.IntegerField()
    post_url = serializers.CharField()
    posted_at = serializers.DateTimeField()
    account_id = serializers.IntegerField()
    handle = serializers.CharField()
    platform = serializers.CharField()


class SimilarMediaSerializer(serializers.Serializer):
    asset = MediaAssetSerializer()
    via = serializers.CharField(help_text="Which signature agreed: phash, phash-mirror, centre, trimmed, moved, pdq, …")
    distance = serializers.IntegerField(help_text="That signature's distance in bits")
    phash_distance = serializers.IntegerField()
    pdq_distance = serializers.IntegerField(allow_null=True)
    first_seen = serializers.BooleanField(help_text="The earliest posted copy")
    first_posted_at = serializers.DateTimeField(allow_null=True)
    sightings = SightingSerializer(many=True)
    avatar_of = serializers.ListField(child=serializers.CharField(), help_text="Handles using it as a profile picture")
    keypoints = serializers.IntegerField(
        allow_null=True, help_text="For a match on one coarse signature alone (the central region, or the whole-picture "
        "pHash near its threshold): keypoints the two pictures share under a copy's transform (-1: too plain to "
        "tell); null when no check was needed")


class LookupSerializer(serializers.Serializer):
    image = serializers.FileField(help_text="A picture to look for")
    max_distance = serializers.IntegerField(min_value=0, max_value=64, required=False,
                                            help_text="Whole-picture pHash threshold (default: the configured one)")


class MediaFilter(django_filters.FilterSet):
    hash_state = django_filters.ChoiceFilter(choices=HashState.choices)
    sha256 = django_filters.CharFilter(field_name="sha256", lookup_expr="iexact")

    class Meta:
        model = MediaAsset
        fields = ["hash_state", "sha256"]


def _matches(matches: list[SimilarMedia]) -> list[dict]:
    return SimilarMediaSerializer(matches, many=True).data


class MediaAssetViewSet(viewsets.ReadOnlyModelViewSet):
    """Stored pictures with their hashes and hashing state; every copy of one; lookup of an uploaded picture."""

    serializer_class = MediaAssetSerializer
    permission_classes = [IsInvestigator]
    filterset_class = MediaFilter

    def get_queryset(self) -> QuerySet[MediaAsset]:
        return media_assets_visible(user=self.request.user).order_by("id")

    @extend_schema(responses=SimilarMediaSerializer(many=True),
                   parameters=[OpenApiParameter("max_distance", int, description="Whole-picture pHash threshold")])
    @action(detail=True)
    def similar(self, request: Request, pk: str | None = None) -> Response:
        """Every stored copy and near-copy of this picture, closest first, with who posted each and when."""
        asset = self.get_object()
        signature = stored_signature(asset)
        if signature is None:
            raise serializers.ValidationError({"detail": asset.hash_error or "This picture is not hashed yet"})
        max_distance = serializers.IntegerField(min_value=0, max_value=64, required=False).run_validation(
            request.query_params.get("max_distance") or None) if request.query_params.get("max_distance") else None
        return Response(_matches(media_similar(user=request.user, signature=signature, picture=asset.pk,
                                                max_distance=max_distance)))

    @extend_schema(request={"multipart/form-data": LookupSerializer}, responses=SimilarMediaSerializer(many=True))
    @action(detail=False, methods=["post"], parser_classes=[MultiPartParser, FormParser], pagination_class=None,
            filter_backends=[])
    def lookup(self, request: Request) -> Response:
        """Upload a picture: every stored copy and near-copy of it. Nothing is stored."""
        form = LookupSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            matches = media_similar_to_upload(user=request.user, upload=form.validated_data["image"],
                                              max_distance=form.validated_data.get("max_distance"))
        except UnreadableImage as exc:
            raise serializers.ValidationError({"image": [f"Could not read that picture: {exc}"]}) from exc
        return Response(_matches(matches))
