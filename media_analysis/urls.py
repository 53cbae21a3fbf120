from django.urls import path

from media_analysis import views

app_name = "media_analysis"

urlpatterns = [
    path("media/lookup/", views.image_lookup, name="lookup"),
    path("media/<int:asset_id>/", views.media_detail, name="media"),
    path("media/file/<str:sha256>/", views.media_file, name="file"),
    path("media/unreadable/", views.unreadable, name="unreadable"),
    path("media/unreadable/retry/", views.unreadable_retry, name="unreadable_retry"),
]
