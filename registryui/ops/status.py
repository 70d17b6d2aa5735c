"""What the status page and ``/healthz`` report, gathered in a few bounded queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import DatabaseError, connection
from django.db.models import Max, Q, Sum
from django.utils import timezone

from registryui.catalog.models import Layer, Manifest, Repository, SyncRun, SyncRunError, Tag
from registryui.events.models import EventStats, ProcessedEvent, SyncLock, SyncRequest, SyncWorker
from registryui.sync.lock import lock_holder
from registryui.teams.models import Level
from registryui.teams.permissions import access_for, can, visible_repositories, visible_tags

from .health import RegistryHealth, ping_registry

#: How many recent pushes the lag percentiles are taken over.
LAG_SAMPLE = 100
RECENT_EVENTS = 20
SYNC_ERRORS_SHOWN = 100


@dataclass(frozen=True)
class Lag:
    samples: int = 0
    last_ms: int | None = None
    p50_ms: int | None = None
    p95_ms: int | None = None
    max_ms: int | None = None


@dataclass(frozen=True)
class Totals:
    repositories: int
    tags: int
    manifests: int
    #: Distinct blobs (manifests, configs, layers) of what the tags hold, each counted once.
    bytes: int


@dataclass
class StatusReport:
    registry: RegistryHealth
    last_full_sync: SyncRun | None
    running: SyncRun | None
    sync_errors: list[SyncRunError]
    sync_errors_total: int
    lock: SyncLock | None
    workers: list[SyncWorker]
    pending_request: SyncRequest | None
    last_request: SyncRequest | None
    events: EventStats
    recent_events: list[ProcessedEvent]
    lag: Lag
    totals: Totals
    #: The user sees every repository: registry-wide figures and raw errors are theirs to read.
    sees_everything: bool = True
    generated_at: datetime = field(default_factory=timezone.now)

    @property
    def worker_alive(self) -> bool:
        return any(worker.alive for worker in self.workers)


def percentile(sorted_values: list[int], fraction: float) -> int:
    """Nearest-rank percentile of an ascending list (fraction 0.5 → median)."""
    index = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def push_lag(sample: int = LAG_SAMPLE) -> Lag:
    """Event timestamp → tag stored, over the latest pushes that changed a tag."""
    latest = list(
        ProcessedEvent.objects.filter(lag_ms__isnull=False)
        .order_by("-received_at", "-id")
        .values_list("lag_ms", flat=True)[:sample]
    )
    if not latest:
        return Lag()
    ordered = sorted(latest)
    return Lag(
        samples=len(latest),
        last_ms=latest[0],
        p50_ms=percentile(ordered, 0.5),
        p95_ms=percentile(ordered, 0.95),
        max_ms=ordered[-1],
    )


def totals(user=None) -> Totals:
    """The database's totals: the whole registry's without ``user`` (pass None for who sees
    every repository), else counted over the repositories ``user`` may see, so that a team admin
    does not learn the size of what is hidden from them.
    """
    tags = Tag.objects.all() if user is None else visible_tags(user)
    repositories = Repository.objects.all() if user is None else visible_repositories(user)
    tagged = tags.values("manifest_id")
    if user is None:
        live = Manifest.objects.filter(
            Q(tags__isnull=False) | Q(parent_links__index__tags__isnull=False)
        ).values("id")
        manifest_count = Manifest.objects.count()
    else:
        live = Manifest.objects.filter(
            Q(id__in=tagged) | Q(parent_links__index_id__in=tagged)
        ).values("id")
        manifest_count = Manifest.objects.filter(id__in=live).count()
    manifest_bytes = Manifest.objects.filter(id__in=live).aggregate(total=Sum("size"))["total"]
    config_bytes = (
        Manifest.objects.filter(id__in=live)
        .exclude(config_digest="")
        .values("config_digest")
        .annotate(size=Max("config_size"))
        .aggregate(total=Sum("size"))["total"]
    )
    layer_bytes = (
        Layer.objects.filter(manifest_id__in=live)
        .values("digest")
        .annotate(size=Max("size"))
        .aggregate(total=Sum("size"))["total"]
    )
    return Totals(
        repositories=repositories.count(),
        tags=tags.count(),
        manifests=manifest_count,
        bytes=(manifest_bytes or 0) + (config_bytes or 0) + (layer_bytes or 0),
    )


def last_full_sync() -> SyncRun | None:
    return (
        SyncRun.objects.filter(scope="", finished_at__isnull=False)
        .order_by("-finished_at", "-id")
        .first()
    )


def status_report(user) -> StatusReport:
    """Everything the status page shows to ``user``.

    Staff includes team admins (they manage their team's grants in the admin), so every
    repository name on the page goes through the resolver: failures, events and scopes of
    repositories the user may not see are left out. So are the figures that would tell them
    about those repositories: the totals are counted over what they may see, and the last
    sync's registry-wide counters and its run-level error (which may quote a hidden image's
    data) are shown only to who sees everything.
    """
    access = access_for(user)
    visible_q = access.q(Level.VIEW, field="repository")  # None: every repository
    sees_everything = visible_q is None
    last = last_full_sync()
    errors: list[SyncRunError] = []
    errors_total = 0
    if last is not None:
        shown = last.errors.all()
        if visible_q is not None:
            shown = shown.filter(Q(repository="") | visible_q)
        errors_total = shown.count()
        errors = list(shown[:SYNC_ERRORS_SHOWN])
    events = EventStats.load()
    if events.last_event_repository and not can(user, Level.VIEW, events.last_event_repository):
        events.last_event = "an event of a repository you cannot see"
    if events.last_deferred_repository and not can(
        user, Level.VIEW, events.last_deferred_repository
    ):
        events.last_deferred_reason = "an event of a repository you cannot see"
    recent = ProcessedEvent.objects.all()
    if visible_q is not None:
        recent = recent.filter(visible_q)
    running = (
        SyncRun.objects.filter(status=SyncRun.Status.RUNNING, finished_at__isnull=True)
        .order_by("-started_at")
        .first()
    )
    if running is not None and running.scope and not can(user, Level.VIEW, running.scope):
        running.scope = "a repository you cannot see"
    return StatusReport(
        registry=ping_registry(),
        last_full_sync=last,
        running=running,
        sync_errors=errors,
        sync_errors_total=errors_total,
        lock=lock_holder(),
        workers=list(
            SyncWorker.objects.filter(last_seen_at__gte=timezone.now() - timedelta(days=1))[:10]
        ),
        pending_request=SyncRequest.pending().select_related("requested_by").last(),
        last_request=SyncRequest.objects.select_related("requested_by", "run").first(),
        events=events,
        recent_events=list(recent[:RECENT_EVENTS]),
        lag=push_lag(),
        totals=totals(None if sees_everything else user),
        sees_everything=sees_everything,
    )


def database_answers() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone()[0] == 1


def health() -> tuple[int, dict]:
    """``/healthz``: 200 when the database answers, 503 otherwise; nothing secret in the body.

    The registry's state does not change the status code: pages render from the database even
    when the registry is down, so an orchestrator must not restart the UI for it.
    """
    body: dict = {"status": "ok", "database": "ok"}
    status = 200
    last = None
    try:
        database_answers()
        last = last_full_sync()
    except DatabaseError:
        body.update(status="error", database="unavailable")
        status = 503
    registry = ping_registry(max_age=5.0)
    body["registry"] = {
        "reachable": registry.reachable,
        "ok": registry.ok,
        "api_version": registry.api_version,
        "error": registry.code,
    }
    if last is not None:
        age = (timezone.now() - last.finished_at).total_seconds()
        body["last_sync"] = {
            "finished_at": last.finished_at.isoformat(),
            "age_seconds": round(age, 1),
            "status": last.status,
        }
    else:
        body["last_sync"] = None
    return status, body
