from __future__ import annotations

from django.urls import path, re_path

from .app import not_found, urlpatterns

urlpatterns = [
    path("v1/", urlpatterns()),
    re_path(r"^(?P<rest>.*)$", not_found, name="api_not_found"),
]
