from django.urls import path

from accounts import api

app_name = "accounts-api"

urlpatterns = [
    path("imports/", api.import_runs, name="imports"),
    path("imports/<int:run_id>/", api.import_run_detail, name="import_detail"),
]
