from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from investigator.roles import INVESTIGATOR, LEAD, has_role
from investigator.selectors import cases_for_picker
from media_analysis.forms import ImageLookupForm
from media_analysis.hashing import UnreadableImage
from media_analysis.models import HashState, MediaAsset
from media_analysis.selectors import (
    SimilarMediaList,
    media_similar,
    media_similar_to_upload,
    media_unreadable,
    stored_signature,
)
from media_analysis.services import media_hash_retry_failed, media_hashing_schedule

CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}
MATCHES_PER_PAGE = 60  # a viral picture has thousands of copies: a page shows the closest, the first seen pinned


def _matches_page(matches: SimilarMediaList | None, number: str | None) -> dict:
    """The page of matches shown, closest first, and the first-seen copy when it is on another page. Only those are
    read: a viral picture has thousands of copies."""
    if matches is None:
        return {"matches": None}
    page = Paginator(matches, MATCHES_PER_PAGE).get_page(number)
    first = matches.first_seen
    pinned = first if first is not None and all(m is not first for m in page.object_list) else None
    return {"matches": matches, "page": page, "pinned": pinned}


def _require_investigator(request: HttpRequest) -> None:
    if not has_role(request.user, INVESTIGATOR):
        raise PermissionDenied("Needs the investigator role")


@require_GET
@login_required
def media_file(request: HttpRequest, sha256: str) -> FileResponse:
    """A stored picture. Only files that decoded as images are served, always with an image type."""
    _require_investigator(request)
    asset = get_object_or_404(MediaAsset, sha256=sha256, hash_state=HashState.DONE)
    content_type = CONTENT_TYPES.get(asset.format.upper())
    if content_type is None:
        raise Http404("no viewable picture")
    response = FileResponse((Path(settings.MEDIA_ROOT) / asset.file.name).open("rb"), content_type=content_type)
    response["Content-Disposition"] = f'inline; filename="{asset.sha256}"'
    response["Cache-Control"] = "private, max-age=86400"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def image_lookup(request: HttpRequest) -> HttpResponse:
    _require_investigator(request)
    form = ImageLookupForm(request.POST or None, request.FILES or None)
    matches, error = None, ""
    if request.method == "POST" and form.is_valid():
        try:
            matches = media_similar_to_upload(user=request.user, upload=form.cleaned_data["image"],
                                              max_distance=form.cleaned_data["max_distance"])
        except UnreadableImage as exc:
            error = f"Could not read that picture: {exc}"
    is_partial = request.htmx and not request.htmx.boosted
    template = "media_analysis/partials/lookup_results.html" if is_partial else "media_analysis/lookup.html"
    # An upload is not kept, so its results have no further pages: the closest are shown (find_similar and the API
    # list every one).
    return render(request, template, {"form": form, "error": error, **_matches_page(matches, None)})


@require_GET
@login_required
def media_detail(request: HttpRequest, asset_id: int) -> HttpResponse:
    """One stored picture: every copy and near-copy, who posted each and when, the first appearance marked."""
    _require_investigator(request)
    asset = get_object_or_404(MediaAsset, pk=asset_id)
    signature = stored_signature(asset)
    matches = media_similar(user=request.user, signature=signature, picture=asset.pk) if signature is not None else None
    return render(request, "media_analysis/media.html", {
        **_matches_page(matches, request.GET.get("page")), "pager": True,
        "asset": asset, "error": "" if signature else asset.hash_error or "Not hashed yet.",
        "cases": cases_for_picker(user=request.user),
    })


@require_GET
@login_required
def unreadable(request: HttpRequest) -> HttpResponse:
    """Pictures that could not be hashed, each with its reason; a lead can have them all tried again."""
    _require_investigator(request)
    page = Paginator(media_unreadable(user=request.user), 50).get_page(request.GET.get("page"))
    return render(request, "media_analysis/unreadable.html", {"page": page, "is_lead": has_role(request.user, LEAD)})


@require_POST
@login_required
def unreadable_retry(request: HttpRequest) -> HttpResponse:
    if not has_role(request.user, LEAD):
        raise PermissionDenied("Needs the lead role")
    failed, rehash = media_hash_retry_failed()
    media_hashing_schedule(count=failed + rehash)
    messages.success(request, f"Trying again {failed} picture(s) that could not be hashed and {rehash} that could not "
                              "be hashed again.")
    return redirect("media_analysis:unreadable")
