"""Outgoing webhooks, end to end against real parts: a real registry, the real cleanup code
(its audit entries queue the deliveries), and a real HTTP receiver on loopback."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from registryui.catalog.models import Repository
from registryui.catalog.upstream import get_client
from registryui.cleanup.actions import Actor, delete_tags
from registryui.devtools.seed import Seeder
from registryui.registry import RegistryClient
from registryui.sync.syncer import Syncer
from registryui.teams.models import Team
from registryui.webhooks.delivery import Dispatcher, build_request
from registryui.webhooks.emit import Occurrence, emit
from registryui.webhooks.forms import EndpointForm
from registryui.webhooks.models import Delivery, Endpoint

from .support import wait_for

pytestmark = pytest.mark.django_db


_capture = None


@pytest.fixture(autouse=True)
def _commits(django_capture_on_commit_callbacks):
    """The test's transaction never commits: ``queued`` runs what emit() defers to the commit."""
    global _capture
    _capture = django_capture_on_commit_callbacks
    yield
    _capture = None


def queued(occurrence: Occurrence) -> None:
    with _capture(execute=True):
        emit(occurrence)


@pytest.fixture
def world(settings, registry, personas):
    """team-a/api (two images), team-b/app, synced; the personas' teams and grants."""
    settings.REGISTRY_URL = registry.url
    settings.REGISTRY_PUBLIC_HOST = "registry.example.com"
    settings.REGISTRY_RETRIES = 0
    settings.WEBHOOK_BACKOFF_BASE = 0.01
    with RegistryClient(registry.url, retries=0) as client:
        seeder = Seeder(client)
        digests = {
            "old": seeder.put("team-a/api", "old"),
            "new": seeder.put("team-a/api", "new"),
            "app": seeder.put("team-b/app", "1"),
        }
    run = Syncer(get_client(), concurrency=2).run()
    assert run.ok, run.error
    return digests


def endpoint(receiver, team: str = "team-a", **fields) -> Endpoint:
    defaults = {
        "name": "ci",
        "url": receiver.url,
        "events": ["push", "delete", "retention"],
        "repository_pattern": "team-a/*",
    }
    return Endpoint.objects.create(team=Team.objects.get(name=team), **{**defaults, **fields})


def delete(repository: str, tag: str, digest: str, who) -> None:
    with _capture(execute=True):
        execution = delete_tags(
            Repository.objects.get(name=repository), {tag: digest}, Actor(user=who.user)
        )
    assert execution.ok, execution.error


def test_a_delete_is_delivered_signed_as_a_cloudevent_and_retried_after_a_500(
    world, receiver_factory, personas
):
    receiver = receiver_factory(script=[500])
    hook = endpoint(receiver)

    delete("team-a/api", "old", world["old"], personas["a_deleter"])

    [delivery] = Delivery.objects.all()
    assert (delivery.event_type, delivery.repository, delivery.state) == (
        "io.registryui.image.deleted",
        "team-a/api",
        Delivery.State.PENDING,
    )
    dispatcher = Dispatcher()
    assert dispatcher.step(inline=True) == 1
    delivery.refresh_from_db()
    # The receiver answered 500: kept, counted, and due again later (not yet delivered).
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("pending", 1, 500)
    assert delivery.last_response == "answered 500"
    assert delivery.next_attempt_at > delivery.last_attempt_at
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert dispatcher.step(inline=True) == 1
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("delivered", 2, 200)

    first, second = receiver.received
    assert first.json["id"] == second.json["id"]  # a retry is the same event
    for request in (first, second):
        assert request.signature_ok(hook.secret)
        assert not request.signature_ok("another-secret")
        assert request.headers["content-type"].startswith("application/cloudevents+json")
    event = second.json
    assert event["specversion"] == "1.0"
    assert event["type"] == "io.registryui.image.deleted"
    assert event["subject"] == f"team-a/api@{world['old']}"
    assert event["source"] == "urn:registryui:registry.example.com"
    assert event["data"]["digest"] == world["old"]
    assert event["data"]["tags"] == ["old"]
    assert event["data"]["actor"] == personas["a_deleter"].user.username
    assert event["data"]["registry"] == "registry.example.com"


def test_a_tampered_body_fails_the_signature(world, receiver, personas):
    hook = endpoint(receiver)
    delete("team-a/api", "old", world["old"], personas["a_deleter"])
    Dispatcher().step(inline=True)
    [request] = receiver.received
    request.body = request.body.replace(b"team-a/api", b"team-a/apj")
    assert not request.signature_ok(hook.secret)


def test_an_endpoint_hears_only_of_what_its_team_covers_and_subscribed_to(
    world, receiver_factory, personas
):
    everything, pushes_only = receiver_factory(), receiver_factory()
    # Saved past the form: a pattern wider than the team's grants still never leaks team-b.
    endpoint(everything, repository_pattern="*")
    endpoint(pushes_only, name="pushes", events=["push"])
    superuser = personas["superuser"]

    delete("team-b/app", "1", world["app"], superuser)
    delete("team-a/api", "new", world["new"], superuser)
    Dispatcher().step(inline=True)

    assert [e["subject"] for e in everything.events()] == [f"team-a/api@{world['new']}"]
    assert pushes_only.events() == []
    assert Delivery.objects.count() == 1


def test_the_admin_form_keeps_the_pattern_inside_the_teams_grants(world):
    team = Team.objects.get(name="team-a")
    data = {
        "team": team.pk,
        "name": "ci",
        "url": "https://ci.example.com/hook",
        "format": "cloudevents",
        "events": ["push"],
        "secret": "s" * 40,
        "active": "on",
    }
    wide = EndpointForm(data={**data, "repository_pattern": "*"})
    assert not wide.is_valid()
    [message] = wide.errors["repository_pattern"]
    assert "its team's grants cover" in message
    assert "use one of hello, team-a/* or a narrower pattern" in message
    narrow = EndpointForm(data={**data, "repository_pattern": "team-a/api*"})
    assert narrow.is_valid(), narrow.errors
    no_events = EndpointForm(data={**data, "events": [], "repository_pattern": "team-a/*"})
    assert not no_events.is_valid() and "events" in no_events.errors


def test_slack_format_is_a_text_message(world, receiver, personas):
    hook = endpoint(receiver, format=Endpoint.Format.SLACK)
    delete("team-a/api", "old", world["old"], personas["a_deleter"])
    Dispatcher().step(inline=True)
    [request] = receiver.received
    assert request.headers["content-type"] == "application/json"
    text = request.json["text"]
    assert f"registry.example.com/team-a/api@{world['old']}" in text
    assert f"deleted by {personas['a_deleter'].user.username}" in text
    assert request.signature_ok(hook.secret)


def test_a_blocked_address_is_refused_and_logged(world, receiver, settings):
    settings.WEBHOOK_BLOCKED_NETWORKS = ["127.0.0.0/8"]
    endpoint(receiver)
    queued(Occurrence(type="io.registryui.tag.pushed", repository="team-a/api", subject="x"))
    Dispatcher().step(inline=True)
    delivery = Delivery.objects.get()
    assert receiver.received == []
    assert "blocked network" in delivery.last_error
    assert (delivery.state, delivery.attempts) == ("pending", 1)


def test_gives_up_after_the_last_attempt(world, receiver_factory, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    receiver = receiver_factory(default=503)
    endpoint(receiver)
    queued(Occurrence(type="io.registryui.tag.pushed", repository="team-a/api", subject="x"))
    dispatcher = Dispatcher()
    dispatcher.step(inline=True)
    Delivery.objects.update(next_attempt_at=timezone.now())
    dispatcher.step(inline=True)
    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("failed", 2, 503)
    assert len(receiver.received) == 2


def test_one_endpoints_deliveries_go_out_in_order(world, receiver):
    endpoint(receiver)
    for tag in ("a", "b", "c"):
        queued(
            Occurrence(
                type="io.registryui.tag.pushed", repository="team-a/api", subject=tag, data={}
            )
        )
    dispatcher = Dispatcher()
    while dispatcher.step(inline=True):
        pass
    assert [e["subject"] for e in receiver.events()] == ["a", "b", "c"]


@pytest.mark.django_db(transaction=True)
def test_a_hanging_endpoint_does_not_hold_up_another(settings, receiver_factory, personas):
    """Each endpoint is sent from its own thread: the fast one is answered while the slow one
    is still waiting for its receiver."""
    settings.WEBHOOK_TIMEOUT = 8
    slow = receiver_factory(hang=8, hang_first=1)
    fast = receiver_factory()
    team = Team.objects.get(name="team-a")
    for name, receiver in (("slow", slow), ("fast", fast)):
        Endpoint.objects.create(
            team=team, name=name, url=receiver.url, events=["push"], repository_pattern="team-a/*"
        )
    queued(Occurrence(type="io.registryui.tag.pushed", repository="team-a/api", subject="1"))
    dispatcher = Dispatcher(poll=0.05)
    thread = dispatcher.start_thread()
    try:
        wait_for(
            lambda: Delivery.objects.get(endpoint__name="fast").state == "delivered",
            what="the fast endpoint's delivery",
        )
        assert len(fast.received) == 1
        assert slow.received == [] and slow.in_flight == 1  # still hanging
        assert Delivery.objects.get(endpoint__name="slow").state == "pending"
    finally:
        dispatcher.stop_event.set()
        thread.join(15)


def test_build_request_names_the_event(world, receiver):
    hook = endpoint(receiver)
    queued(Occurrence(type="io.registryui.retention.run", repository="team-a/api", subject="p"))
    delivery = Delivery.objects.get()
    body, headers = build_request(hook, delivery)
    assert headers["X-RegistryUI-Event"] == "io.registryui.retention.run"
    assert headers["X-RegistryUI-Delivery"] == str(delivery.pk)
    assert b'"type":"io.registryui.retention.run"' in body


def test_old_deliveries_are_pruned(world, receiver):
    hook = endpoint(receiver)
    old = timezone.now() - timedelta(days=30)
    Delivery.objects.create(
        endpoint=hook,
        event_id="x",
        event_type="io.registryui.tag.pushed",
        kind="push",
        payload={},
        state=Delivery.State.DELIVERED,
        created_at=old,
    )
    Dispatcher().step(inline=True)
    assert Delivery.objects.count() == 0


def test_the_admin_shows_a_teams_endpoints_and_their_log_to_its_admins_only(world, personas):
    team_b = Team.objects.get(name="team-b")
    hook = Endpoint.objects.create(
        team=team_b,
        name="b-ci",
        url="https://ci.example.com/b",
        events=["push"],
        repository_pattern="team-b/*",
    )
    Endpoint.objects.create(
        team=Team.objects.get(name="team-a"),
        name="a-ci",
        url="https://ci.example.com/a",
        events=["push"],
        repository_pattern="team-a/*",
    )
    queued(Occurrence(type="io.registryui.tag.pushed", repository="team-b/app", subject="s"))
    client = personas["b_admin"].client()
    listing = client.get("/admin/webhooks/endpoint/").content.decode()
    assert "b-ci" in listing and "a-ci" not in listing
    page = client.get(f"/admin/webhooks/endpoint/{hook.pk}/change/").content.decode()
    assert "tag.pushed" in page and "team-b/app" in page and "pending" in page
    other = Endpoint.objects.get(name="a-ci")
    assert client.get(f"/admin/webhooks/endpoint/{other.pk}/change/").status_code in (302, 403, 404)
    assert personas["a_viewer"].client().get("/admin/webhooks/endpoint/").status_code == 302
