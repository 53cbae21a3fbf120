"""REST API of media analysis: stored pictures, their copies and near-copies, and lookup by upload."""

from __future__ import annotations

import math

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from investigator.permissions import IsInvestigator
from investigator.rest import Pages
from media_analysis.hashing import UnreadableImage
from media_analysis.models import HashState, MediaAsset
from media_analysis.selectors import (
    SimilarMediaList,
    media_assets_visible,
    media_similar,
    media_similar_to_upload,
    stored_signature,
)


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


class MatchesAsked(serializers.Serializer):
    """How many of a picture's copies to answer with. Without `page` or `page_size`, all of them (a picture
    posted tens of thousands of times answers with every copy); with either, one page of them, closest first,
    the total in the X-Total-Count header."""

    max_distance = serializers.IntegerField(min_value=0, max_value=64, required=False,
                                            help_text="Whole-picture pHash threshold (default: the configured one)")
    page = serializers.IntegerField(min_value=1, required=False,
                                    help_text="Answer with this page of the matches only (a page beyond the last is empty)")
    page_size = serializers.IntegerField(min_value=1, max_value=Pages.max_page_size, required=False,
                                         help_text=f"Matches per page (default {Pages.page_size})")


class LookupSerializer(MatchesAsked):
    image = serializers.FileField(help_text="A picture to look for")


# Paging of matches, documented for the schema; the body stays a list of matches either way.
TOTAL_HEADER = OpenApiParameter("X-Total-Count", int, OpenApiParameter.HEADER, response=True,
                                description="With `page` or `page_size`: how many matches there are in all")
LINK_HEADER = OpenApiParameter("Link", str, OpenApiParameter.HEADER, response=True,
                               description='With `page` or `page_size`: the next and previous pages\' URLs '
                                           '(rel="next", rel="prev"; RFC 8288)')


class MediaFilter(django_filters.FilterSet):
    hash_state = django_filters.ChoiceFilter(choices=HashState.choices)
    sha256 = django_filters.CharFilter(field_name="sha256", lookup_expr="iexact")

    class Meta:
        model = MediaAsset
        fields = ["hash_state", "sha256"]


def _answer(request: Request, matches: SimilarMediaList, asked: dict) -> Response:
    """The matches, or the page of them asked for (with the total, and for a GET the neighbouring pages' URLs)."""
    if "page" not in asked and "page_size" not in asked:
        return Response(SimilarMediaSerializer(matches, many=True).data)
    page, size = asked.get("page", 1), asked.get("page_size", Pages.page_size)
    shown = matches[(page - 1) * size:page * size]
    response = Response(SimilarMediaSerializer(shown, many=True).data, headers={"X-Total-Count": str(len(matches))})
    if request.method == "GET":
        url, last = request.build_absolute_uri(), max(1, math.ceil(len(matches) / size))
        links = [f'<{replace_query_param(url, "page", page + 1)}>; rel="next"'] if page < last else []
        if page > 1:  # from beyond the last page, back to the last
            links.append(f'<{replace_query_param(url, "page", min(page - 1, last))}>; rel="prev"')
        if links:
            response["Link"] = ", ".join(links)
    return response


class MediaAssetViewSet(viewsets.ReadOnlyModelViewSet):
    """Stored pictures with their hashes and hashing state; every copy of one; lookup of an uploaded picture."""

    serializer_class = MediaAssetSerializer
    permission_classes = [IsInvestigator]
    filterset_class = MediaFilter

    def get_queryset(self) -> QuerySet[MediaAsset]:
        return media_assets_visible(user=self.request.user).order_by("id")

    @extend_schema(responses=SimilarMediaSerializer(many=True), parameters=[MatchesAsked, TOTAL_HEADER, LINK_HEADER])
    @action(detail=True, filter_backends=[])  # the list's filters mean nothing for one picture's copies
    def similar(self, request: Request, pk: str | None = None) -> Response:
        """Every stored copy and near-copy of this picture, closest first, with who posted each and when; or one
        page of them (`page`, `page_size`)."""
        asset = self.get_object()
        signature = stored_signature(asset)
        if signature is None:
            raise serializers.ValidationError({"detail": asset.hash_error or "This picture is not hashed yet"})
        # An empty parameter is no parameter, as the filters take it.
        asked = MatchesAsked(data={key: value for key, value in request.query_params.items() if value})
        asked.is_valid(raise_exception=True)
        return _answer(request, media_similar(user=request.user, signature=signature, picture=asset.pk,
                                              max_distance=asked.validated_data.get("max_distance")), asked.validated_data)

    @extend_schema(request={"multipart/form-data": LookupSerializer}, responses=SimilarMediaSerializer(many=True),
                   parameters=[TOTAL_HEADER])
    @action(detail=False, methods=["post"], parser_classes=[MultiPartParser, FormParser], pagination_class=None,
            filter_backends=[])
    def lookup(self, request: Request) -> Response:
        """Upload a picture: every stored copy and near-copy of it, or one page of them (`page`, `page_size`).
        Nothing is stored."""
        form = LookupSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            matches = media_similar_to_upload(user=request.user, upload=form.validated_data["image"],
                                              max_distance=form.validated_data.get("max_distance"))
        except UnreadableImage as exc:
            raise serializers.ValidationError({"image": [f"Could not read that picture: {exc}"]}) from exc
        return _answer(request, matches, form.validated_data)
