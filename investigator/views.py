from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.selectors import dataset_overview, import_runs_visible, media_hash_progress


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    progress = media_hash_progress(user=request.user)
    total = sum(progress.values())
    finished = progress.get("done", 0) + progress.get("failed", 0)
    context = {
        "datasets": dataset_overview(user=request.user),
        "import_runs": import_runs_visible(user=request.user)[:10],
        "hash_progress": progress,
        "hash_total": total,
        "hash_finished": finished,
        "hash_percent": round(100 * finished / total) if total else 100,
    }
    is_partial = request.htmx and not request.htmx.boosted
    return render(request, "investigator/partials/hash_progress.html" if is_partial else "investigator/home.html", context)
