from __future__ import annotations

from django.urls import path

from . import views

app_name = "overview"

urlpatterns = [
    path("r/<path:name>/-/overview", views.edit, name="edit"),
    path("r/<path:name>/-/star", views.star, name="star"),
]
