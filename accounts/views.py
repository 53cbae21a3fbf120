from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from accounts.coordination.exports import FORMATS as NETWORK_FORMATS
from accounts.coordination.exports import network_export
from accounts.coordination.services import detection_run_create
from accounts.forms import ClusterFilterForm, DetectionForm, ImportUploadForm, SearchForm
from accounts.selectors import (
    account_activity,
    account_clusters,
    account_links,
    account_posts,
    accounts_visible,
    cluster_evidence,
    cluster_graph,
    cluster_members,
    cluster_shared_media,
    clusters_filtered,
    clusters_visible,
    datasets_visible,
    detection_runs_visible,
    import_run_problems_csv,
    import_run_sources,
    import_runs_visible,
    search_accounts,
    search_hashtag,
    search_link,
    search_posts,
)
from accounts.services import import_run_queue, upload_store
from accounts.watchlists import cluster_watchlist_overlap, watchlist_hits
from investigator.models import ReviewDecision
from investigator.roles import INVESTIGATOR, LEAD, REVIEWER, has_role
from investigator.selectors import cases_for_picker, decisions_of
from investigator.services import audit_record

PROBLEMS_SHOWN = 500  # on an import's page; the CSV download has them all


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
    context = {"run": run, "problems": run.rejections.all()[:PROBLEMS_SHOWN], "problem_count": run.rejections.count(),
               "problems_shown": PROBLEMS_SHOWN, "percent": _percent(run), "sources": import_run_sources(run=run)}
    is_partial = request.htmx and not request.htmx.boosted
    return render(request, "accounts/partials/import_progress.html" if is_partial else "accounts/import_detail.html", context)


@login_required
@require_GET
def import_problems_download(request: HttpRequest, run_id: int) -> StreamingHttpResponse:
    """Every rejected row and warning of a run as CSV (the page shows the first PROBLEMS_SHOWN)."""
    _require_investigator(request)
    run = get_object_or_404(import_runs_visible(user=request.user), pk=run_id)
    response = StreamingHttpResponse(import_run_problems_csv(run=run), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{run.pk}-problems.csv"'
    return response


def _percent(run: object) -> int:
    """How far a run got: all the way once it succeeded; a failed one shows where it stopped."""
    total = getattr(run, "progress_total", 0)
    if getattr(run, "status", "") == "succeeded":
        return 100
    return min(99, round(100 * run.progress_done / total)) if total else 0  # type: ignore[attr-defined]


# --- Clusters, accounts and search -----------------------------------------------------------------

def _partial(request: HttpRequest) -> bool:
    return bool(request.htmx and not request.htmx.boosted)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


@require_GET
@login_required
def cluster_list(request: HttpRequest) -> HttpResponse:
    _require_investigator(request)
    form = ClusterFilterForm(request.GET or None, user=request.user)
    filters = form.cleaned_data if form.is_valid() else {}
    clusters = clusters_filtered(
        user=request.user, dataset=_int(filters.get("dataset")), run=_int(filters.get("run")),
        every_run=filters.get("run") == "all",
        signal=filters.get("signal") or "", min_size=filters.get("min_size"), min_score=filters.get("min_score"),
        review=filters.get("review") or "", sort=filters.get("sort") or "score",
    )
    page = Paginator(clusters, 25).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode()}
    return render(request, "accounts/partials/cluster_table.html" if _partial(request) else "accounts/clusters.html", context)


@require_GET
@login_required
def cluster_detail(request: HttpRequest, cluster_id: int) -> HttpResponse:
    _require_investigator(request)
    cluster = get_object_or_404(clusters_visible(user=request.user), pk=cluster_id)
    members = cluster_members(cluster=cluster)
    watch = watchlist_hits(user=request.user, account_ids=[a.pk for a in members])
    for account in members:
        account.watchlists = watch.get(account.pk, [])
    context = {
        "cluster": cluster,
        "members": members,
        "member_ids": ",".join(str(a.pk) for a in members),
        "evidence": cluster_evidence(cluster=cluster),
        "graph": cluster_graph(cluster=cluster, members=members),
        "timeline": cluster.timeline if isinstance(cluster.timeline, dict) else {"days": []},
        "shared_media": cluster_shared_media(cluster=cluster),
        "overlap": cluster_watchlist_overlap(user=request.user, cluster=cluster),
        "density": (cluster.signal_breakdown or {}).get("_density"),
        "cases": cases_for_picker(user=request.user),
        "can_review": has_role(request.user, REVIEWER),
        "decision_states": ReviewDecision.State.choices,
    }
    return render(request, "accounts/cluster.html", context)


@require_GET
@login_required
def account_detail(request: HttpRequest, account_id: int) -> HttpResponse:
    _require_investigator(request)
    account = get_object_or_404(accounts_visible(user=request.user), pk=account_id)
    context = {
        "account": account,
        "handle_changes": account.handle_changes.order_by("observed_at"),
        "activity_data": {"days": account_activity(account=account)},
        "page": Paginator(account_posts(account=account), 20).get_page(request.GET.get("page")),
        "links": account_links(account=account),
        "clusters": account_clusters(account=account),
        "decisions": decisions_of(user=request.user, account=account),
        "watchlists": watchlist_hits(user=request.user, account_ids=[account.pk]).get(account.pk, []),
        "cases": cases_for_picker(user=request.user),
        "can_review": has_role(request.user, REVIEWER),
        "decision_states": ReviewDecision.State.choices,
    }
    return render(request, "accounts/account.html", context)


@require_GET
@login_required
def account_posts_page(request: HttpRequest, account_id: int) -> HttpResponse:
    _require_investigator(request)
    account = get_object_or_404(accounts_visible(user=request.user), pk=account_id)
    page = Paginator(account_posts(account=account), 20).get_page(request.GET.get("page"))
    if not _partial(request):
        return redirect(f"{reverse('accounts:account', args=[account.pk])}?page={page.number}")
    return render(request, "accounts/partials/post_list.html",
                  {"account": account, "page": page, "cases": cases_for_picker(user=request.user)})


@require_GET
@login_required
def search(request: HttpRequest) -> HttpResponse:
    _require_investigator(request)
    form = SearchForm(request.GET or None)
    page = None
    kind = "accounts"
    if form.is_valid():
        kind, query = form.cleaned_data["kind"] or "accounts", form.cleaned_data["q"]
        finder = {"accounts": search_accounts, "posts": search_posts, "hashtags": search_hashtag, "links": search_link}[kind]
        page = Paginator(finder(user=request.user, query=query), 25).get_page(request.GET.get("page"))
    query_string = request.GET.copy()
    query_string.pop("page", None)
    context = {"form": form, "page": page, "kind": kind, "query": query_string.urlencode(),
               "cases": cases_for_picker(user=request.user)}
    return render(request, "accounts/partials/search_results.html" if _partial(request) else "accounts/search.html", context)


@require_GET
@login_required
def network_download(request: HttpRequest, run_id: int, format: str) -> HttpResponse:
    """A detection run's network, or one cluster of it (?cluster=ID), for Gephi or a spreadsheet. Data leaving
    the tool is a hand-off: leads only, and audited."""
    if not has_role(request.user, LEAD):
        raise PermissionDenied("Exports need the lead role")
    run = get_object_or_404(detection_runs_visible(user=request.user), pk=run_id, status="succeeded")
    if format not in NETWORK_FORMATS:
        raise Http404("unknown format")
    cluster = None
    if request.GET.get("cluster"):
        cluster = get_object_or_404(clusters_visible(user=request.user), pk=_int(request.GET["cluster"]) or 0, detection_run=run)
    body = network_export(run=run, format=format, cluster=cluster)
    audit_record(actor=request.user, action="export.network", subject_type="cluster" if cluster else "detection_run",
                 subject_id=cluster.pk if cluster else run.pk, data={"format": format, "run": run.pk, "bytes": len(body)})
    name = f"run{run.pk}" + (f"-cluster{cluster.pk}" if cluster else "") + f".{format}"
    response = HttpResponse(body, content_type={"csv": "text/csv", "gexf": "application/xml"}.get(format, "application/xml"))
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def detection_list(request: HttpRequest) -> HttpResponse:
    """Start a detection (it runs on a worker) and follow the runs."""
    _require_investigator(request)
    form = DetectionForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        dataset = get_object_or_404(datasets_visible(user=request.user), pk=form.cleaned_data["dataset"])
        run = detection_run_create(dataset=dataset, signals=form.cleaned_data["signals"],
                                   window=form.cleaned_data["window"], user=request.user)
        return redirect("accounts:detection", run_id=run.pk)
    runs = detection_runs_visible(user=request.user)[:50]
    return render(request, "accounts/detections.html", {"form": form, "runs": runs})


@require_GET
@login_required
def detection_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    _require_investigator(request)
    run = get_object_or_404(detection_runs_visible(user=request.user), pk=run_id)
    context = {"run": run, "percent": _percent(run), "clusters": run.clusters.order_by("-score")[:50]}
    return render(request, "accounts/partials/detection_progress.html" if _partial(request) else "accounts/detection.html",
                  context)
