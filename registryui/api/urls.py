from __future__ import annotations

from django.urls import path, re_path

from .app import not_found, urlpatterns

urlpatterns = [
    path("v1/", urlpatterns()),
    # [\s\S], not ".": a newline (%0A) in the path is still a path under /api/, answered with JSON.
    re_path(r"^(?P<rest>[\s\S]*)$", not_found, name="api_not_found"),
]
