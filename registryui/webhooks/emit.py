"""Turning what happened into deliveries: one row per interested endpoint.

``emit`` is called where a change is known to have happened: the notification handler after it
applied a registry event (a push, a delete made outside the UI), and the audit log for what the
UI did itself (``signals.py``: deletes, retags, retention runs). The UI's own deletes come back
from the registry as events the handler finds already applied, so each change is sent once.

An endpoint hears of a repository only when its own pattern matches it and one of its team's
grants covers it: a team admin cannot point a webhook at repositories their team cannot see.
Writing the rows is a few inserts; sending them is the worker's job (``delivery.py``), so a
slow receiver never slows a notification or a page.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from registryui.teams.models import Grant
from registryui.teams.patterns import matches

from .models import Delivery, Endpoint, EventKind

log = logging.getLogger(__name__)

#: CloudEvents ``type`` of each event this product sends, and the kind that subscribes to it.
EVENT_TYPES: dict[str, EventKind] = {
    "io.registryui.tag.pushed": EventKind.PUSH,
    "io.registryui.tag.moved": EventKind.PUSH,
    "io.registryui.tag.deleted": EventKind.DELETE,
    "io.registryui.image.deleted": EventKind.DELETE,
    "io.registryui.repository.deleted": EventKind.DELETE,
    "io.registryui.retention.run": EventKind.RETENTION,
}


@dataclass(frozen=True)
class Occurrence:
    """Something that happened to one repository."""

    type: str
    repository: str
    #: ``repo:tag`` or ``repo@digest``: CloudEvents' ``subject``.
    subject: str
    data: dict[str, Any] = field(default_factory=dict)
    time: datetime = field(default_factory=timezone.now)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def kind(self) -> EventKind:
        return EVENT_TYPES[self.type]

    def cloudevent(self) -> dict[str, Any]:
        """The event in CloudEvents 1.0 structured JSON form."""
        return {
            "specversion": "1.0",
            "id": self.id,
            "source": source(),
            "type": self.type,
            "subject": self.subject,
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "datacontenttype": "application/json",
            "data": {"registry": settings.REGISTRY_PUBLIC_HOST, **self.data},
        }


def source() -> str:
    """The events' ``source``: this UI, named by the registry host it shows."""
    return f"urn:registryui:{settings.REGISTRY_PUBLIC_HOST or 'registry'}"


def team_covers(grant_patterns: Iterable[str], repository: str) -> bool:
    return any(matches(pattern, repository) for pattern in grant_patterns)


#: Seconds a process trusts "no endpoint is active" before asking the database again. Saving or
#: deleting an endpoint clears it at once in the process that did it; other processes notice
#: a new endpoint within this time. (Without it every audited delete of a large bulk delete
#: would cost a query even on a site with no webhooks.)
NONE_ACTIVE_TTL = 5.0
_none_active_until = 0.0


def forget_endpoints(**kwargs) -> None:
    global _none_active_until
    _none_active_until = 0.0


def _maybe_active() -> bool:
    global _none_active_until
    if time.monotonic() < _none_active_until:
        return False
    if Endpoint.objects.filter(active=True).exists():
        return True
    _none_active_until = time.monotonic() + NONE_ACTIVE_TTL
    return False


def interested(occurrence: Occurrence) -> list[Endpoint]:
    """Active endpoints subscribed to this kind whose pattern and team's grants match."""
    endpoints = [
        endpoint
        for endpoint in Endpoint.objects.filter(active=True).select_related("team")
        if occurrence.kind in (endpoint.events or [])
        and matches(endpoint.repository_pattern, occurrence.repository)
    ]
    if not endpoints:
        return []
    patterns: dict[int, list[str]] = {}
    for team_id, pattern in Grant.objects.filter(
        team_id__in={e.team_id for e in endpoints}
    ).values_list("team_id", "pattern"):
        patterns.setdefault(team_id, []).append(pattern)
    return [e for e in endpoints if team_covers(patterns.get(e.team_id, ()), occurrence.repository)]


def emit(occurrence: Occurrence) -> int:
    """Queue a delivery of ``occurrence`` to every interested endpoint; returns how many.

    Never raises: a webhook table in trouble must not fail the push or delete it reports.
    Inside a transaction the rows are written once it commits (so that a change rolled back is
    never reported, and an endpoint deleted meanwhile cannot fail the caller's commit).
    """
    if connection.in_atomic_block:
        transaction.on_commit(lambda: _emit(occurrence), robust=True)
        return 0
    return _emit(occurrence)


def _emit(occurrence: Occurrence) -> int:
    try:
        if not _maybe_active():
            return 0
        with transaction.atomic():
            endpoints = interested(occurrence)
            payload = occurrence.cloudevent()
            Delivery.objects.bulk_create(
                Delivery(
                    endpoint=endpoint,
                    event_id=occurrence.id,
                    event_type=occurrence.type,
                    kind=occurrence.kind,
                    repository=occurrence.repository[:255],
                    payload=payload,
                    created_at=timezone.now(),
                    next_attempt_at=timezone.now(),
                )
                for endpoint in endpoints
            )
            return len(endpoints)
    except DatabaseError:
        log.exception("could not queue webhook deliveries for %s", occurrence.type)
        return 0
