from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from sliders import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls()),
    # Every other address under /api/ answers in the API's JSON too, never an HTML page.
    re_path(r"^api(?:/|$)", api.not_found),
    # Sign-in for everyone (the admin's own login only admits staff).
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("sliders.urls")),
]
