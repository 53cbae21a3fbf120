from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from investigator import views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("accounts.urls")),
    path("", include("media_analysis.urls")),
    path("api/", include("accounts.api_urls")),
    path("admin/", admin.site.urls),
]
