from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("imports/", views.import_list, name="imports"),
    path("imports/<int:run_id>/", views.import_detail, name="import_detail"),
]
