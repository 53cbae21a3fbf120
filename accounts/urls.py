from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("imports/", views.import_list, name="imports"),
    path("imports/<int:run_id>/", views.import_detail, name="import_detail"),
    path("imports/<int:run_id>/problems.csv", views.import_problems_download, name="import_problems"),
    path("clusters/", views.cluster_list, name="clusters"),
    path("clusters/<int:cluster_id>/", views.cluster_detail, name="cluster"),
    path("accounts/<int:account_id>/", views.account_detail, name="account"),
    path("accounts/<int:account_id>/posts/", views.account_posts_page, name="account_posts"),
    path("detections/", views.detection_list, name="detections"),
    path("detections/<int:run_id>/", views.detection_detail, name="detection"),
    path("detections/<int:run_id>/network.<str:format>", views.network_download, name="network"),
    path("search/", views.search, name="search"),
]
