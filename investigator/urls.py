from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from investigator import views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("cases/", views.case_list, name="cases"),
    path("cases/add-items/", views.case_items_add_view, name="case_items_add"),
    path("cases/<int:case_id>/", views.case_detail, name="case"),
    path("cases/<int:case_id>/remove-items/", views.case_items_remove_view, name="case_items_remove"),
    path("cases/<int:case_id>/items/<int:item_id>/annotate/", views.case_item_annotate_view, name="case_item_annotate"),
    path("cases/<int:case_id>/status/", views.case_status_view, name="case_status"),
    path("cases/<int:case_id>/members/", views.case_member_add_view, name="case_member_add"),
    path("cases/<int:case_id>/assign/", views.case_assign_view, name="case_assign"),
    path("cases/<int:case_id>/export/", views.case_export_view, name="case_export_request"),
    path("exports/<int:export_id>/", views.case_export_detail, name="case_export"),
    path("exports/<int:export_id>/download/", views.case_export_download, name="case_export_download"),
    path("review/", views.review_queue_view, name="review"),
    path("review/decide/", views.review_submit_view, name="review_submit"),
    path("audit/", views.audit, name="audit"),
    path("", include("accounts.urls")),
    path("", include("media_analysis.urls")),
    path("api/", include("investigator.api_urls")),
    path("admin/", admin.site.urls),
]
