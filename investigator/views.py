from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import JobStatus
from accounts.selectors import (
    clusters_current,
    dataset_overview,
    detection_runs_visible,
    import_runs_visible,
    media_hash_progress,
)
from investigator.disarm import TECHNIQUES
from investigator.forms import (
    AnnotationForm,
    CaseAssignForm,
    CaseForm,
    CaseItemsForm,
    CaseMemberForm,
    CaseStatusForm,
    ItemsRemoveForm,
    ReviewForm,
)
from investigator.models import Case, CaseExport, CaseItem
from investigator.roles import INVESTIGATOR, LEAD, REVIEWER, has_role
from investigator.selectors import (
    audit_chain_verify,
    audit_events_visible,
    case_activity,
    case_exports_visible,
    case_items,
    case_timeline,
    cases_visible,
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
)


def _partial(request: HttpRequest) -> bool:
    return bool(request.htmx and not request.htmx.boosted)


def _require(request: HttpRequest, role: str) -> None:
    if not has_role(request.user, role):
        raise PermissionDenied(f"This needs the {role} role")


def _errors(exc: ValidationError) -> str:
    return " ".join(exc.messages)


def _back(request: HttpRequest, fallback: str) -> HttpResponse:
    target = request.POST.get("next") or request.headers.get("Referer") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return redirect(target)
    return redirect(fallback)


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    context = {"hash_progress": media_hash_progress(user=request.user)}
    if _partial(request):
        return render(request, "investigator/partials/hash_progress.html", context)
    context.update({
        "datasets": dataset_overview(user=request.user),
        "import_runs": import_runs_visible(user=request.user)[:8],
        "detection_runs": detection_runs_visible(user=request.user)[:8],
        "detection_under_way": detection_runs_visible(user=request.user).filter(
            status__in=[JobStatus.PENDING, JobStatus.RUNNING]).order_by("-created_at").first(),
        "top_clusters": clusters_current(user=request.user).order_by("-score", "id")[:10],
        "my_cases": cases_visible(user=request.user).filter(
            status__in=[Case.Status.OPEN, Case.Status.IN_REVIEW], members=request.user)[:10],
        "queue": review_queue(user=request.user)[:10] if has_role(request.user, REVIEWER) else None,
    })
    return render(request, "investigator/home.html", context)


# --- Cases -----------------------------------------------------------------------------------------

@login_required
@require_http_methods(["GET", "POST"])
def case_list(request: HttpRequest) -> HttpResponse:
    _require(request, INVESTIGATOR)
    form = CaseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        case = case_create(user=request.user, **form.cleaned_data)
        return redirect("case", case_id=case.pk)
    scope = request.GET.get("scope", "mine")
    cases = cases_visible(user=request.user)
    if scope == "mine":
        cases = cases.filter(created_by=request.user)
    elif scope == "assigned":
        cases = cases.filter(assigned_to=request.user)
    page = Paginator(cases.order_by("-updated_at", "-id"), 25).get_page(request.GET.get("page"))
    return render(request, "investigator/cases.html", {"form": form, "page": page, "scope": scope,
                                                       "is_lead": has_role(request.user, LEAD)})


@require_GET
@login_required
def case_detail(request: HttpRequest, case_id: int) -> HttpResponse:
    _require(request, INVESTIGATOR)
    case = get_object_or_404(cases_visible(user=request.user), pk=case_id)
    context = {
        "case": case,
        "items": case_items(case=case),
        "timeline": case_timeline(case=case)[:100],
        "activity": {"days": case_activity(case=case)},
        "members": case.members.order_by("username"),
        "status_form": CaseStatusForm(initial={"status": case.status}),
        "member_form": CaseMemberForm(),
        "assign_form": CaseAssignForm(initial={"assignee": case.assigned_to_id}) if has_role(request.user, LEAD) else None,
        "is_lead": has_role(request.user, LEAD),
        "exports": case.exports.select_related("requested_by")[:5] if has_role(request.user, LEAD) else [],
        "now": timezone.now(),
        "techniques": sorted(TECHNIQUES.items()),
    }
    return render(request, "investigator/case.html", context)


@require_POST
@login_required
def case_items_add_view(request: HttpRequest) -> HttpResponse:
    """The one-click "add to case" of every page. HTMX gets a short confirmation in place."""
    _require(request, INVESTIGATOR)
    form = CaseItemsForm(request.POST)
    message, ok, case = "", False, None
    if form.is_valid():
        case = get_object_or_404(cases_visible(user=request.user), pk=form.cleaned_data["case"])
        try:
            added = case_items_add(case=case, user=request.user, kind=form.cleaned_data["kind"], ids=form.cleaned_data["ids"])
        except ValidationError as exc:
            message = _errors(exc)
        else:
            ok = True
            message = f"Added {added} to" if added else "Already in"
    else:
        message = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
    if _partial(request):
        return render(request, "investigator/partials/add_to_case_result.html", {"ok": ok, "message": message, "case": case},
                      status=200 if ok else 400)
    if ok:
        messages.success(request, f"{message} case “{case.title}”.")
    else:
        messages.error(request, message)
    return _back(request, reverse("cases"))


@require_POST
@login_required
def case_items_remove_view(request: HttpRequest, case_id: int) -> HttpResponse:
    _require(request, INVESTIGATOR)
    case = get_object_or_404(cases_visible(user=request.user), pk=case_id)
    form = ItemsRemoveForm(request.POST)
    if form.is_valid():
        removed = case_items_remove(case=case, user=request.user, item_ids=form.cleaned_data["items"])
        messages.success(request, f"Removed {removed} item(s).")
    else:
        messages.error(request, "Choose the items to remove.")
    return redirect("case", case_id=case.pk)


@require_POST
@login_required
def case_item_annotate_view(request: HttpRequest, case_id: int, item_id: int) -> HttpResponse:
    _require(request, INVESTIGATOR)
    case = get_object_or_404(cases_visible(user=request.user), pk=case_id)
    item = get_object_or_404(CaseItem.objects.select_related("case"), pk=item_id, case=case)
    form = AnnotationForm(request.POST)
    error = ""
    if form.is_valid():
        tags = form.cleaned_data["tags"] if "tags" in request.POST else None
        try:
            case_item_annotate(item=item, user=request.user, text=form.cleaned_data["text"], tags=tags)
        except ValidationError as exc:
            error = _errors(exc)
    else:
        error = "; ".join(" ".join(v) for v in form.errors.values())
    if _partial(request):
        fresh = next(i for i in case_items(case=case) if i.pk == item.pk)
        return render(request, "investigator/partials/case_item.html", {"case": case, "item": fresh, "error": error},
                      status=400 if error else 200)
    if error:
        messages.error(request, error)
    return redirect(f"{reverse('case', args=[case.pk])}#item-{item.pk}")


@require_POST
@login_required
def case_status_view(request: HttpRequest, case_id: int) -> HttpResponse:
    _require(request, INVESTIGATOR)
    case = get_object_or_404(cases_visible(user=request.user), pk=case_id)
    form = CaseStatusForm(request.POST)
    if form.is_valid():
        case_status_set(case=case, user=request.user, status=form.cleaned_data["status"])
    return redirect("case", case_id=case.pk)


@require_POST
@login_required
def case_assign_view(request: HttpRequest, case_id: int) -> HttpResponse:
    _require(request, LEAD)
    case = get_object_or_404(cases_visible(user=request.user), pk=case_id)
    form = CaseAssignForm(request.POST)
    if form.is_valid():
        try:
            case_assign(case=case, user=request.user, assignee=form.cleaned_data["assignee"])
        except ValidationError as exc:
            messages.error(request, _errors(exc))
    else:
        messages.error(request, "Choose someone to assign the case to.")
    return redirect("case", case_id=case.pk)


# --- Review ----------------------------------------------------------------------------------------

@require_GET
@login_required
def review_queue_view(request: HttpRequest) -> HttpResponse:
    _require(request, REVIEWER)
    page = Paginator(review_queue(user=request.user), 25).get_page(request.GET.get("page"))
    return render(request, "investigator/review.html", {"page": page})


@require_POST
@login_required
def review_submit_view(request: HttpRequest) -> HttpResponse:
    _require(request, REVIEWER)
    form = ReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A decision needs the accounts, a verdict and a reason.")
        return _back(request, reverse("review"))
    data = form.cleaned_data
    try:
        decisions = review_submit(user=request.user, account_ids=data["accounts"], state=data["state"],
                                  reason=data["reason"], cluster_id=data.get("cluster"))
    except PermissionDenied as exc:
        messages.error(request, str(exc))
        return _back(request, reverse("review"))
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return _back(request, reverse("review"))
    messages.success(request, f"Recorded {len(decisions)} decision(s): {data['state']}.")
    return _back(request, reverse("review"))


# --- Audit -----------------------------------------------------------------------------------------

@require_GET
@login_required
def audit(request: HttpRequest) -> HttpResponse:
    if not (has_role(request.user, LEAD) or has_role(request.user, REVIEWER)):
        raise PermissionDenied("The audit trail is for leads, reviewers and admins")
    report = audit_chain_verify()
    page = Paginator(audit_events_visible(user=request.user), 50).get_page(request.GET.get("page"))
    return render(request, "investigator/audit.html", {"report": report, "page": page})


@require_POST
@login_required
def case_member_add_view(request: HttpRequest, case_id: int) -> HttpResponse:
    _require(request, INVESTIGATOR)
    case = get_object_or_404(cases_visible(user=request.user), pk=case_id)
    form = CaseMemberForm(request.POST)
    if form.is_valid():
        try:
            case_member_add(case=case, user=request.user, member=form.cleaned_data["member"])
        except ValidationError as exc:
            messages.error(request, _errors(exc))
    else:
        messages.error(request, "Choose someone to add.")
    return redirect("case", case_id=case.pk)


# --- Case file exports -----------------------------------------------------------------------------

def _exports_visible(request: HttpRequest) -> QuerySet[CaseExport]:
    _require(request, LEAD)
    return case_exports_visible(user=request.user)


@require_POST
@login_required
def case_export_view(request: HttpRequest, case_id: int) -> HttpResponse:
    _require(request, LEAD)
    case = get_object_or_404(cases_visible(user=request.user), pk=case_id)
    export = case_export_request(case=case, user=request.user)
    return redirect("case_export", export_id=export.pk)


@require_GET
@login_required
def case_export_detail(request: HttpRequest, export_id: int) -> HttpResponse:
    export = get_object_or_404(_exports_visible(request), pk=export_id)
    total = export.progress_total or 0
    percent = min(99, round(100 * export.progress_done / total)) if total else 0
    if export.status in ("succeeded", "failed"):
        percent = 100
    context = {"export": export, "percent": percent, "expired": export.expires_at <= timezone.now() or not export.file}
    template = "investigator/partials/export_progress.html" if _partial(request) else "investigator/export.html"
    return render(request, template, context)


@require_GET
@login_required
def case_export_download(request: HttpRequest, export_id: int) -> HttpResponse:
    export = get_object_or_404(_exports_visible(request), pk=export_id, status="succeeded")
    path = Path(settings.EXPORT_ROOT) / export.file
    if not export.file or export.expires_at <= timezone.now() or not path.is_file():
        return HttpResponse("This case file has expired; build a new one from the case page.", status=410,
                            content_type="text/plain; charset=utf-8")
    audit_record(actor=request.user, action="case.export_downloaded", subject_type="case", subject_id=export.case_id,
                 case=export.case, data={"export": export.pk, "bytes": export.size_bytes})
    return FileResponse(path.open("rb"), as_attachment=True, filename=export.file, content_type="application/zip")
