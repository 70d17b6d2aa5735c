"""The status page with "sync now", and ``/healthz``.

Thin views: the work is in ``status`` and ``health``; the worker that answers "sync now" is
``registryui.sync.worker``.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from registryui.core.audit import record
from registryui.core.models import AuditEntry
from registryui.events.models import SyncRequest, SyncWorker
from registryui.teams.decorators import staff_required

from . import metrics as metrics_module
from . import status as status_module


@staff_required
def status(request: HttpRequest) -> HttpResponse:
    report = status_module.status_report(request.user)
    return render(
        request,
        "events/status.html",
        {"report": report, "interval": settings.SYNC_INTERVAL},
    )


@require_POST
@staff_required
def sync_now(request: HttpRequest) -> HttpResponse:
    """Ask the worker for a full sync now (it runs under the same lock as every sync)."""
    pending = SyncRequest.pending().order_by("requested_at").first()
    created = pending is None
    if created:
        pending = SyncRequest.objects.create(requested_by=request.user)
    worker_alive = any(worker.alive for worker in SyncWorker.objects.all()[:10])
    record(
        AuditEntry.Action.SYNC_NOW,
        request=request,
        via="ui",
        details={"request": pending.pk, "new": created, "worker_alive": worker_alive},
    )
    if not created:
        messages.info(request, "A sync was already requested; the worker runs it next.")
    elif worker_alive:
        messages.success(request, "Sync requested: the worker starts it within a few seconds.")
    else:
        messages.warning(
            request,
            "Sync requested, but no sync worker is running: start one with "
            "'python manage.py sync_registry --loop'.",
        )
    return redirect("events:status")


@never_cache
@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    code, body = status_module.health()
    return JsonResponse(body, status=code)


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format, for a bearer token or an allowed network (``ops/metrics.py``)."""
    if not metrics_module.allowed(request):
        return HttpResponse(
            "Forbidden: /metrics needs Authorization: Bearer METRICS_TOKEN, or a client address "
            "in METRICS_ALLOWED_NETWORKS.\n",
            status=403,
            content_type="text/plain; charset=utf-8",
        )
    return metrics_module.response()
