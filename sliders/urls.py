from __future__ import annotations

from django.urls import path

from sliders import views

app_name = "sliders"

urlpatterns = [
    path("", views.index, name="index"),
    path("b/<slug:slug>/", views.board, name="board"),
    path("s/<str:token>/", views.share, name="share"),
    path("presence", views.presence, name="presence"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
]
