"""The REST API under /api/: one router for every resource, the OpenAPI schema and its docs page."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from accounts import api as accounts_api
from investigator import api as investigator_api
from media_analysis import api as media_api

app_name = "api"

router = DefaultRouter()
router.register("platforms", accounts_api.PlatformViewSet, basename="platform")
router.register("datasets", accounts_api.DatasetViewSet, basename="dataset")
router.register("accounts", accounts_api.AccountViewSet, basename="account")
router.register("posts", accounts_api.PostViewSet, basename="post")
router.register("media", media_api.MediaAssetViewSet, basename="media")
router.register("imports", accounts_api.ImportRunViewSet, basename="import")
router.register("detections", accounts_api.DetectionRunViewSet, basename="detection")
router.register("clusters", accounts_api.ClusterViewSet, basename="cluster")
router.register("cases", investigator_api.CaseViewSet, basename="case")
router.register("annotations", investigator_api.AnnotationViewSet, basename="annotation")
router.register("decisions", investigator_api.ReviewDecisionViewSet, basename="decision")
router.register("exports", investigator_api.CaseExportViewSet, basename="export")
router.register("audit", investigator_api.AuditEventViewSet, basename="audit")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    *router.urls,
]
