"""The notification endpoint, the status page with "sync now", and ``/healthz``.

Thin views: the work is in ``handler``, ``status`` and ``worker``.
"""

from __future__ import annotations

import hmac
import json

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from registryui.catalog.upstream import get_client
from registryui.core.audit import record
from registryui.teams.decorators import staff_required

from . import status as status_module
from .handler import ENVELOPE_TYPES, EventHandler
from .models import EventStats, SyncRequest, SyncWorker

#: Registries send one event per delivery; a body of thousands is not a registry's, and handling
#: it would outlast the registry's timeout for everyone queued behind it.
MAX_EVENTS_PER_DELIVERY = 100


def _problem(status: int, message: str, **headers: str) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _bearer_token(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@csrf_exempt
@require_POST
def registry_events(request: HttpRequest) -> HttpResponse:
    """``POST /events/registry``: the registry's notifications (see ``handler``)."""
    expected = settings.REGISTRY_EVENTS_TOKEN
    if not expected:
        # Accepting unauthenticated events would let anyone rewrite the catalog.
        return _problem(
            503,
            "Registry notifications are turned off on this server: set REGISTRY_EVENTS_TOKEN "
            "and send it from the registry as 'Authorization: Bearer <token>'.",
        )
    if not hmac.compare_digest(_bearer_token(request).encode(), expected.encode()):
        reason = "missing token" if not _bearer_token(request) else "wrong token"
        EventStats.bump(
            {"rejected": 1},
            last_rejected_at=timezone.now(),
            last_rejected_reason=f"{reason} from {request.META.get('REMOTE_ADDR', '?')}",
        )
        return _problem(
            401,
            "A valid 'Authorization: Bearer <REGISTRY_EVENTS_TOKEN>' header is required.",
            WWW_Authenticate='Bearer realm="registry notifications"',
        )
    if (request.content_type or "").lower() not in ENVELOPE_TYPES:
        EventStats.bump(
            {"rejected": 1},
            last_rejected_at=timezone.now(),
            last_rejected_reason=f"content type {request.content_type!r}",
        )
        return _problem(
            415, f"Send {', '.join(sorted(ENVELOPE_TYPES))}, not {request.content_type!r}."
        )
    try:
        envelope = json.loads(request.body)
    except RequestDataTooBig:
        return _problem(413, "The notification body is too large.")
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested beyond reason
        envelope = None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("events"), list):
        EventStats.bump(
            {"rejected": 1},
            last_rejected_at=timezone.now(),
            last_rejected_reason='body is not an {"events": [...]} envelope',
        )
        return _problem(400, 'The body must be a JSON object {"events": [...]}.')
    if len(envelope["events"]) > MAX_EVENTS_PER_DELIVERY:
        EventStats.bump(
            {"rejected": 1},
            last_rejected_at=timezone.now(),
            last_rejected_reason=f"{len(envelope['events'])} events in one delivery",
        )
        return _problem(
            413, f"At most {MAX_EVENTS_PER_DELIVERY} events per delivery (registries send one)."
        )
    counts = EventHandler(get_client(quick=True)).handle_envelope(envelope["events"])
    return JsonResponse(counts)


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
        "sync_now",
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
