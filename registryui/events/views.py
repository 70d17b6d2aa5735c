"""The notification endpoint.

A thin view: the work is in ``handler``. The status page and ``/healthz`` are in
``registryui.ops``.
"""

from __future__ import annotations

import hmac
import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from registryui.catalog.upstream import get_client

from .handler import ENVELOPE_TYPES, EventHandler
from .models import EventStats
from .pulls import record_pulls

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


def _envelope(request: HttpRequest) -> list | JsonResponse:
    """The events of a delivery, or the answer that refuses it (the checks both endpoints
    share: the bearer token, the content type, the envelope, its size)."""
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
    return envelope["events"]


@csrf_exempt
@require_POST
def registry_events(request: HttpRequest) -> HttpResponse:
    """``POST /events/registry``: the registry's notifications (see ``handler``)."""
    events = _envelope(request)
    if isinstance(events, JsonResponse):
        return events
    counts = EventHandler(get_client(quick=True)).handle_envelope(events)
    return JsonResponse(counts)


@csrf_exempt
@require_POST
def registry_pulls(request: HttpRequest) -> HttpResponse:
    """``POST /events/registry/pulls``: the second endpoint, for pull events (see ``pulls``).

    With ``PULL_TRACKING`` off it answers 204 and stores nothing: an error would only make the
    registry retry the event forever.
    """
    events = _envelope(request)
    if isinstance(events, JsonResponse):
        return events
    if not settings.PULL_TRACKING:
        return HttpResponse(status=204)
    return JsonResponse(record_pulls(events))
