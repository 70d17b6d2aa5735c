"""``/status/`` (staff only), the "sync now" button and ``/healthz``."""

from __future__ import annotations

import re
import socket
import time
from datetime import timedelta

import pytest
from django.db import DatabaseError
from django.test import Client
from django.utils import timezone

from registryui.catalog.models import Layer, Manifest, SyncRun, SyncRunError
from registryui.catalog.upstream import get_client
from registryui.core.models import AuditEntry
from registryui.events.models import EventStats, ProcessedEvent, SyncRequest, SyncWorker
from registryui.sync.syncer import Syncer
from registryui.sync.worker import Worker

from .support import TOKEN, post_events, push_event, stamp

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(django_user_model):
    """The operator: staff and superuser, so every repository is theirs to see. (A staff
    member in a team sees the names the resolver allows: see the team admin's test.)"""
    return django_user_model.objects.create_user(
        "operator", password="pw", is_staff=True, is_superuser=True
    )


@pytest.fixture
def staff_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def synced(use_registry, seeder_for):
    """Two repositories pushed through the API and fully synced."""
    seeder = seeder_for(use_registry.url)
    seeder.put("team-a/api", "1.0", note="a")
    seeder.put("team-a/api", "latest", note="a")
    seeder.put("team-b/worker", "v1", note="b")
    return Syncer(get_client()).run()


def text_of(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


# -- who may see it ----------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get("/status/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_users_who_are_not_staff_get_403(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("someone", password="pw"))
    assert client.get("/status/").status_code == 403
    assert client.post("/status/sync-now").status_code == 403
    assert not SyncRequest.objects.exists() and not AuditEntry.objects.exists()


# -- what it shows -----------------------------------------------------------------------------


def test_it_shows_the_registry_the_last_sync_events_totals_and_lag(
    staff_client, synced, settings, events_token
):
    run = SyncRun.objects.get()
    SyncRunError.objects.create(
        run=run,
        repository="team-c/broken",
        code="DENIED",
        message="The registry denied access to this resource.",
    )
    SyncRun.objects.filter(pk=run.pk).update(repositories_failed=1)
    digest = get_client().head_manifest("team-a/api", "1.0").digest
    post_events(Client(), push_event("team-a/api", "2.0", digest, at=stamp(-0.5)))
    post_events(Client(), push_event("team-a/api", "3.0", digest), token="wrong")

    response = staff_client.get("/status/")
    assert response.status_code == 200
    text = text_of(response)
    report = response.context["report"]

    assert report.registry.ok and report.registry.api_version == "registry/2.0"
    assert "Reachable yes" in text and "registry/2.0" in text
    assert report.last_full_sync.pk == run.pk
    assert "2 synced of 2" in text and "3 seen: 3 added" in text
    assert "team-c/broken" in text and "DENIED" in text  # failures per repository
    assert report.events.applied == 1 and report.events.rejected == 1
    assert "wrong token" in text
    assert "push team-a/api:2.0" in text  # the last event received
    assert report.lag.samples == 1 and report.lag.last_ms >= 500
    assert f"last {report.lag.last_ms:,} ms" in text
    totals = report.totals
    assert (totals.repositories, totals.tags, totals.manifests) == (2, 4, 2)
    # The two seeded manifests share one config and one layer: each blob counted once.
    manifests = list(Manifest.objects.all())
    assert len({m.config_digest for m in manifests}) == 1
    assert Layer.objects.values("digest").distinct().count() == 1
    assert totals.bytes == (
        sum(m.size for m in manifests) + manifests[0].config_size + Layer.objects.first().size
    )
    assert "Sync now" in text


@pytest.fixture
def hung_registry():
    """A registry that accepts connections and never answers (a hung process): a fault a real
    registry does not produce on demand, so a bare listening socket stands in for it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_a_hung_registry_is_reported_after_a_short_timeout(staff_client, settings, hung_registry):
    settings.REGISTRY_URL = hung_registry
    started = time.monotonic()
    response = staff_client.get("/status/")
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    report = response.context["report"]
    assert not report.registry.reachable and report.registry.code == "TIMEOUT"
    assert "Reachable no" in text_of(response)
    assert "No full sync has finished yet" in text_of(response)
    # The short-timeout client gave up; the sync's client would have waited 30 s and retried.
    assert report.registry.latency_ms < 10_000
    print(f"status page with a hung registry: {elapsed:.2f}s")


def test_a_team_admin_sees_no_repository_names_outside_their_grants(
    client, django_user_model, events_token
):
    """Team admins are staff (they manage their grants in the admin); the page must not name
    repositories the resolver hides from them."""
    from registryui.teams.models import Grant, Level, Team

    admin = django_user_model.objects.create_user("b-admin", password="pw", is_staff=True)
    team = Team.objects.create(name="team-b", slug="team-b")
    team.members.add(admin)
    Grant.objects.create(team=team, pattern="team-b/*", level=Level.ADMIN)
    run = SyncRun.objects.create(
        status=SyncRun.Status.FAILED, finished_at=timezone.now(), repositories_failed=2
    )
    for name in ("team-b/worker", "secret/vault"):
        SyncRunError.objects.create(run=run, repository=name, code="DENIED", message="denied")
    SyncRun.objects.create(trigger="command", scope="secret/vault")  # running
    for i, name in enumerate(("team-b/worker", "secret/vault")):
        ProcessedEvent.objects.create(
            event_id=f"e{i}",
            action="push",
            repository=name,
            tag="1",
            outcome="applied",
            received_at=timezone.now() + timedelta(seconds=i),
        )
    EventStats.bump(
        {"received": 2, "deferred": 1},
        last_event="push secret/vault:1 (applied)",
        last_event_repository="secret/vault",
        last_deferred_at=timezone.now(),
        last_deferred_reason="push secret/vault:2: The registry cannot be reached.",
        last_deferred_repository="secret/vault",
    )
    client.force_login(admin)

    response = client.get("/status/")

    assert response.status_code == 200
    text = text_of(response)
    assert "secret" not in text
    assert "team-b/worker" in text  # their own failure and event are there
    assert [e.repository for e in response.context["report"].sync_errors] == ["team-b/worker"]
    assert "an event of a repository you cannot see" in text
    # Registry-wide counters would tell of hidden failures (issue 11): only theirs are counted.
    assert "2 failed" not in text and "Failures you can see 1" in text


def test_a_team_admin_gets_totals_over_what_they_can_see(client, django_user_model, synced):
    """Issue 11: the totals and the last sync's counters and error were registry-wide."""
    from registryui.teams.models import Grant, Level, Team

    admin = django_user_model.objects.create_user("b-admin", password="pw", is_staff=True)
    team = Team.objects.create(name="team-b", slug="team-b")
    team.members.add(admin)
    Grant.objects.create(team=team, pattern="team-b/*", level=Level.ADMIN)
    SyncRun.objects.filter(pk=synced.pk).update(
        status=SyncRun.Status.FAILED, error="label org.example.secret=hunter2 of team-a/api"
    )
    client.force_login(admin)

    response = client.get("/status/")

    text = text_of(response)
    totals = response.context["report"].totals
    assert (totals.repositories, totals.tags, totals.manifests) == (1, 1, 1)
    worker = Manifest.objects.get(tags__repository__name="team-b/worker")
    assert totals.bytes == worker.size + worker.config_size + worker.layers.get().size
    assert "Repositories 1 Tags 1 Manifests 1" in text
    assert "Counted over the repositories you can see" in text
    assert "hunter2" not in text and "team-a" not in text
    assert "2 synced of 2" not in text and "3 seen" not in text
    assert "Failed (the error is in the log)" in text


def test_an_unreachable_registry_is_reported(staff_client, settings):
    settings.REGISTRY_URL = "http://127.0.0.1:9"  # nothing listens on the discard port
    response = staff_client.get("/status/")
    assert response.status_code == 200
    assert response.context["report"].registry.code == "UNREACHABLE"


def test_a_running_sync_and_workers_are_shown(staff_client):
    SyncRun.objects.create(trigger="worker")
    SyncWorker.objects.create(name="host-a:12", state=SyncWorker.State.SYNCING)
    SyncWorker.objects.create(
        name="host-b:34",
        state=SyncWorker.State.IDLE,
        last_seen_at=timezone.now() - timedelta(minutes=30),
    )
    text = text_of(staff_client.get("/status/"))
    assert "full sync (worker) has been running since" in text
    assert "host-a:12 Syncing" in text and "host-b:34 Not responding" in text


# -- sync now ----------------------------------------------------------------------------------


def test_sync_now_requires_post_and_a_csrf_token(staff):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    assert client.get("/status/sync-now").status_code == 405
    assert client.post("/status/sync-now").status_code == 403  # no CSRF token
    assert not SyncRequest.objects.exists()


def test_sync_now_records_a_request_that_the_worker_runs(staff_client, staff, use_registry):
    SyncWorker.objects.create(name="host:1")
    # A full sync just ran: the worker would not sync again for an hour on its own.
    Syncer(get_client(), trigger="worker").run()

    response = staff_client.post("/status/sync-now", follow=True)

    assert response.redirect_chain == [("/status/", 302)]
    request = SyncRequest.objects.get()
    assert request.status == SyncRequest.Status.PENDING and request.requested_by == staff
    assert "Sync requested" in text_of(response)
    assert "A sync was requested" in text_of(response)
    entry = AuditEntry.objects.get(action="sync_now")
    assert entry.actor == staff and entry.via == "ui" and entry.details["request"] == request.pk

    worker = Worker(interval=3600)
    run = worker.step()

    assert run is not None and run.trigger == "sync_now" and run.ok
    request.refresh_from_db()
    assert request.status == SyncRequest.Status.DONE and request.run_id == run.pk
    assert worker.step() is None  # nothing due any more


def test_pressing_twice_makes_one_request(staff_client):
    staff_client.post("/status/sync-now")
    response = staff_client.post("/status/sync-now", follow=True)
    assert SyncRequest.objects.count() == 1
    assert "already requested" in text_of(response)
    assert AuditEntry.objects.filter(action="sync_now").count() == 2


def test_without_a_worker_the_page_says_how_to_start_one(staff_client):
    response = staff_client.post("/status/sync-now", follow=True)
    assert "no sync worker is running" in text_of(response)
    assert "sync_registry --loop" in text_of(response)


# -- /healthz ----------------------------------------------------------------------------------


def test_healthz_answers_without_login_with_registry_and_sync_age(client, synced, settings):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["registry"] == {
        "reachable": True,
        "ok": True,
        "api_version": "registry/2.0",
        "error": "",
    }
    assert body["last_sync"]["status"] == "succeeded"
    assert 0 <= body["last_sync"]["age_seconds"] < 600
    assert response["Cache-Control"].startswith("max-age=0")
    # Nothing secret or internal: not the registry's address, not the events token.
    raw = response.content.decode()
    assert settings.REGISTRY_URL.split("//")[1] not in raw and TOKEN not in raw


def test_healthz_stays_200_when_the_registry_is_down(client, settings):
    settings.REGISTRY_URL = "http://127.0.0.1:9"  # nothing listens on the discard port
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["registry"]["reachable"] is False and body["registry"]["error"] == "UNREACHABLE"
    assert body["last_sync"] is None


def test_healthz_is_503_when_the_database_does_not_answer(client, monkeypatch):
    """A database that stops answering cannot be produced on demand under a test transaction;
    the check's query is made to fail instead."""
    from registryui.ops import status

    def broken() -> bool:
        raise DatabaseError("connection refused")

    monkeypatch.setattr(status, "database_answers", broken)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unavailable"


def test_healthz_reuses_a_recent_registry_check(client, use_registry):
    mark = use_registry.mark()
    for _ in range(5):
        assert client.get("/healthz").status_code == 200
    pings = [r for r in use_registry.requests_since(mark) if r.path == "/v2/"]
    assert len(pings) == 1


def test_the_lag_percentiles_cover_the_latest_pushes():
    from registryui.ops.status import push_lag

    for i, lag in enumerate([100, 200, 300, 400, 5000]):
        ProcessedEvent.objects.create(
            event_id=f"e{i}",
            action="push",
            repository="a/b",
            tag=str(i),
            lag_ms=lag,
            outcome="applied",
            received_at=timezone.now() + timedelta(seconds=i),
        )
    lag = push_lag()
    assert (lag.samples, lag.last_ms, lag.p50_ms, lag.p95_ms, lag.max_ms) == (
        5,
        5000,
        300,
        5000,
        5000,
    )
    assert EventStats.load().received == 0
