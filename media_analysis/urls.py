from django.urls import path

from media_analysis import views

app_name = "media_analysis"

urlpatterns = [
    path("media/lookup/", views.image_lookup, name="lookup"),
    path("media/file/<str:sha256>/", views.media_file, name="file"),
]
