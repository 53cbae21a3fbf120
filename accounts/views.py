from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from accounts.forms import ImportUploadForm
from accounts.selectors import import_runs_visible
from accounts.services import import_run_queue, upload_store
from investigator.roles import INVESTIGATOR, has_role


def _require_investigator(request: HttpRequest) -> None:
    if not has_role(request.user, INVESTIGATOR):
        raise PermissionDenied("Importing needs the investigator role")


@login_required
@require_http_methods(["GET", "POST"])
def import_list(request: HttpRequest) -> HttpResponse:
    _require_investigator(request)
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        paths = upload_store(files=form.cleaned_data["files"])
        run = import_run_queue(dataset_name=form.cleaned_data["dataset"], format=form.cleaned_data["format"],
                               paths=paths, user=request.user)
        return redirect("accounts:import_detail", run_id=run.pk)
    runs = import_runs_visible(user=request.user)[:50]
    return render(request, "accounts/imports.html", {"form": form, "runs": runs})


@login_required
@require_http_methods(["GET"])
def import_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    _require_investigator(request)
    run = get_object_or_404(import_runs_visible(user=request.user), pk=run_id)
    context = {"run": run, "problems": run.rejections.all()[:500], "percent": _percent(run)}
    is_partial = request.htmx and not request.htmx.boosted
    return render(request, "accounts/partials/import_progress.html" if is_partial else "accounts/import_detail.html", context)


def _percent(run: object) -> int:
    total = getattr(run, "progress_total", 0)
    if getattr(run, "status", "") in {"succeeded", "failed"}:
        return 100
    return min(99, round(100 * run.progress_done / total)) if total else 0  # type: ignore[attr-defined]
