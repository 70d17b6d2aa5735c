"""The notification endpoint; ``registryui/urls.py`` includes it under the ``events`` namespace
with the pages of ``registryui.ops``."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("events/registry", views.registry_events, name="registry"),
    path("events/registry/pulls", views.registry_pulls, name="registry_pulls"),
]
