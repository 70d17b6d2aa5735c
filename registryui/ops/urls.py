"""The status page, "sync now" and ``/healthz``.

Included from ``registryui/urls.py`` under the ``events`` namespace together with the
notification endpoint, so that their URL names (``events:status``, ``events:healthz``) stayed
the same when these pages moved out of ``events``.
"""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("status/", views.status, name="status"),
    path("status/sync-now", views.sync_now, name="sync_now"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
]
