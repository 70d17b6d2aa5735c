"""``/metrics``: Prometheus text format, for operators (prometheus-client).

Two sources:

- Request latency, measured in each web process by ``RequestMetricsMiddleware`` (a histogram
  per view name, method and status class). Under gunicorn every worker process writes its
  samples to ``PROMETHEUS_MULTIPROC_DIR`` (``gunicorn.conf.py`` makes one per server start) and
  a scrape adds them up, whichever worker answers it.
- Everything else is read at scrape time from the database, which every process shares (the
  sync worker runs in another process, so counters kept in memory would never reach a scrape):
  sync runs, totals, notification counters and lag, pull counts (with ``PULL_TRACKING``),
  webhook queues, and a live ``GET /v2/`` of
  the registry (cached a few seconds, so scrapes cannot turn into a request storm).

Access: ``Authorization: Bearer METRICS_TOKEN`` (when set) or a client address in
``METRICS_ALLOWED_NETWORKS`` (by default this host). The figures are registry-wide: they are
for operators, not for users, whose pages obey the resolver.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import threading
import time
from collections.abc import Iterator

from django.conf import settings
from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from registryui.catalog.models import SyncRun
from registryui.events.models import EventStats, PullTracking, SyncRequest, SyncWorker
from registryui.webhooks.models import Delivery

from .health import ping_registry
from .status import last_full_sync, push_lag, totals

#: Latency buckets (seconds): pages answer in milliseconds, actions on the registry in seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Seconds the database totals (a few aggregate queries) are reused between scrapes.
TOTALS_MAX_AGE = 30.0
REGISTRY_MAX_AGE = 5.0

REQUEST_LATENCY = Histogram(
    "registryui_http_request_duration_seconds",
    "Time to answer an HTTP request, by view (URL name), method and status class.",
    ["view", "method", "status"],
    buckets=BUCKETS,
)


class RequestMetricsMiddleware:
    """Times every request; the view label is the URL pattern's name (bounded), never the path."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name or "unnamed") if match is not None else "unmatched"
        REQUEST_LATENCY.labels(
            view=view,
            method=request.method if request.method in _METHODS else "other",
            status=f"{response.status_code // 100}xx",
        ).observe(time.perf_counter() - started)
        return response


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


# -- read from the database at scrape time -------------------------------------------------


class _Cached:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.value = None
        self.at = 0.0

    def get(self, compute, max_age: float):
        with self.lock:
            if self.value is None or time.monotonic() - self.at > max_age:
                self.value, self.at = compute(), time.monotonic()
            return self.value


_totals = _Cached()


def forget() -> None:
    """Drop the cached totals (tests; the next scrape reads the database)."""
    with _totals.lock:
        _totals.value = None


def _timestamp(value) -> float:
    return value.timestamp() if value is not None else 0.0


class DatabaseCollector(Collector):
    """The product's state, read when Prometheus scrapes."""

    def describe(self):  # no registration-time collect (it would query the database)
        return []

    def collect(self) -> Iterator:
        yield from self._registry()
        yield from self._totals()
        yield from self._sync()
        yield from self._notifications()
        yield from self._pulls()
        yield from self._webhooks()

    def _registry(self):
        health = ping_registry(max_age=REGISTRY_MAX_AGE)
        yield GaugeMetricFamily(
            "registryui_registry_up",
            "1 when the registry answered GET /v2/ and accepted the UI's credentials.",
            value=1 if health.ok else 0,
        )
        yield GaugeMetricFamily(
            "registryui_registry_reachable",
            "1 when the registry answered HTTP at all (it may still refuse the credentials).",
            value=1 if health.reachable else 0,
        )
        yield GaugeMetricFamily(
            "registryui_registry_latency_seconds",
            "Time the last GET /v2/ took.",
            value=health.latency_ms / 1000,
        )

    def _totals(self):
        figures = _totals.get(lambda: totals(None), TOTALS_MAX_AGE)
        for name, help_text, value in (
            ("registryui_repositories", "Repositories in the catalog.", figures.repositories),
            ("registryui_tags", "Tags in the catalog.", figures.tags),
            (
                "registryui_manifests",
                "Manifests (images and indexes) in the catalog.",
                figures.manifests,
            ),
            (
                "registryui_stored_bytes",
                "Bytes of the distinct blobs the tags hold (manifests, configs, layers).",
                figures.bytes,
            ),
        ):
            yield GaugeMetricFamily(name, help_text, value=value)

    def _sync(self):
        last = last_full_sync()
        latest = SyncRun.objects.filter(scope="").order_by("-started_at").first()
        running = SyncRun.objects.filter(status=SyncRun.Status.RUNNING, finished_at__isnull=True)
        yield GaugeMetricFamily(
            "registryui_sync_running", "1 while a sync is running.", value=int(running.exists())
        )
        yield GaugeMetricFamily(
            "registryui_sync_last_success_timestamp_seconds",
            "When the last full sync that succeeded finished (0: never).",
            value=_timestamp(
                SyncRun.objects.filter(scope="", status=SyncRun.Status.SUCCEEDED)
                .order_by("-finished_at")
                .values_list("finished_at", flat=True)
                .first()
            ),
        )
        finished = last or latest
        outcome = GaugeMetricFamily(
            "registryui_sync_last_run_info",
            "The last finished full sync: 1, labelled with its outcome.",
            labels=["status", "trigger"],
        )
        duration = GaugeMetricFamily(
            "registryui_sync_last_run_duration_seconds",
            "How long the last finished full sync took.",
        )
        requests = GaugeMetricFamily(
            "registryui_sync_last_run_requests",
            "Registry requests the last finished full sync made, by kind.",
            labels=["kind"],
        )
        changes = GaugeMetricFamily(
            "registryui_sync_last_run_changes",
            "What the last finished full sync changed.",
            labels=["change"],
        )
        if finished is not None and finished.finished_at is not None:
            outcome.add_metric([finished.status, finished.trigger], 1)
            duration.add_metric([], finished.duration.total_seconds())
            for kind, count in sorted((finished.requests_by_kind or {}).items()):
                if isinstance(count, int):
                    requests.add_metric([str(kind)], count)
            for change, value in (
                ("tags_added", finished.tags_added),
                ("tags_updated", finished.tags_updated),
                ("tags_removed", finished.tags_removed),
                ("repositories_removed", finished.repositories_removed),
                ("repositories_failed", finished.repositories_failed),
                ("manifests_fetched", finished.manifests_fetched),
            ):
                changes.add_metric([change], value)
        yield from (outcome, duration, requests, changes)
        recent = GaugeMetricFamily(
            "registryui_sync_runs_recorded",
            "Sync runs the database keeps (30 days), by status.",
            labels=["status"],
        )
        counts = dict(SyncRun.objects.values_list("status").annotate(n=Count("id")))
        for status in SyncRun.Status.values:
            recent.add_metric([status], counts.get(status, 0))
        yield recent
        yield GaugeMetricFamily(
            "registryui_sync_workers_alive",
            "Sync workers that sent a heartbeat recently.",
            value=sum(1 for worker in SyncWorker.objects.all() if worker.alive),
        )
        yield GaugeMetricFamily(
            "registryui_sync_requests_pending",
            '"Sync now" requests waiting for a worker.',
            value=SyncRequest.pending().count(),
        )

    def _notifications(self):
        stats = EventStats.load()
        events = CounterMetricFamily(
            "registryui_notification_events",
            "Registry notification events received, by what became of them.",
            labels=["outcome"],
        )
        for outcome in ("applied", "unchanged", "ignored", "duplicates", "deferred", "rejected"):
            events.add_metric([outcome], getattr(stats, outcome))
        yield events
        yield CounterMetricFamily(
            "registryui_notification_received",
            "Registry notification events received in all.",
            value=stats.received,
        )
        yield GaugeMetricFamily(
            "registryui_notification_last_received_timestamp_seconds",
            "When the registry last delivered an event (0: never).",
            value=_timestamp(stats.last_received_at),
        )
        lag = push_lag()
        gauge = GaugeMetricFamily(
            "registryui_notification_lag_seconds",
            "Push event time → tag stored, over the latest 100 pushes (quantile 1 = max).",
            labels=["quantile"],
        )
        for quantile, value in (("0.5", lag.p50_ms), ("0.95", lag.p95_ms), ("1", lag.max_ms)):
            if value is not None:
                gauge.add_metric([quantile], value / 1000)
        yield gauge

    def _pulls(self):
        """The pull endpoint's counters (PULL_TRACKING): none while tracking is off."""
        if not settings.PULL_TRACKING:
            return
        tracking = PullTracking.load()
        events = CounterMetricFamily(
            "registryui_pull_events",
            "Events on the pull notification endpoint, by what they were: counted pulls "
            "(client manifest GETs), the UI's own requests, checks (HEADs, blob pulls), ignored.",
            labels=["kind"],
        )
        for kind in ("counted", "own", "checks", "ignored"):
            events.add_metric([kind], getattr(tracking, kind))
        yield events
        yield GaugeMetricFamily(
            "registryui_pull_last_received_timestamp_seconds",
            "When the registry last delivered a pull event (0: never).",
            value=_timestamp(tracking.last_received_at),
        )

    def _webhooks(self):
        by_state = dict(Delivery.objects.values_list("state").annotate(n=Count("id")))
        queued = GaugeMetricFamily(
            "registryui_webhook_deliveries",
            "Webhook deliveries in the log, by state (pending is the backlog).",
            labels=["state"],
        )
        for state in Delivery.State.values:
            queued.add_metric([state], by_state.get(state, 0))
        yield queued
        oldest = Delivery.objects.filter(state=Delivery.State.PENDING).aggregate(
            oldest=Min("created_at")
        )["oldest"]
        yield GaugeMetricFamily(
            "registryui_webhook_oldest_pending_age_seconds",
            "Age of the oldest webhook delivery not yet delivered (0: none).",
            value=(timezone.now() - oldest).total_seconds() if oldest else 0.0,
        )


_database = DatabaseCollector()


def render() -> bytes:
    """The exposition: this process's (or all web processes') request metrics + the database's.

    The classic text format (0.0.4), which every Prometheus since 2.0 reads.
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_ProcessMetrics())
    registry.register(_database)
    return generate_latest(registry)


class _ProcessMetrics(Collector):
    """This process's own metrics (request latency, Python and process figures)."""

    def collect(self):
        yield from REGISTRY.collect()


# -- access -------------------------------------------------------------------------------------


def allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header[7:].strip().encode(), token.encode())
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(
        address in ipaddress.ip_network(network, strict=False)
        for network in settings.METRICS_ALLOWED_NETWORKS
    )


def response() -> HttpResponse:
    return HttpResponse(render(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
