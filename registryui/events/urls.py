from __future__ import annotations

from django.urls import path

from . import views

app_name = "events"

urlpatterns = [
    path("events/registry", views.registry_events, name="registry"),
    path("status/", views.status, name="status"),
    path("status/sync-now", views.sync_now, name="sync_now"),
    path("healthz", views.healthz, name="healthz"),
]
