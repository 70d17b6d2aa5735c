"""``POST /events/registry`` with crafted deliveries against a real registry's state.

The registry here sends no notifications: each test pushes for real, then delivers the events
itself, in the order (or disorder, or repetition) it wants to check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from django.test import Client

from registryui.catalog.models import Manifest, Repository, Tag
from registryui.events.models import EventStats, ProcessedEvent
from registryui.registry import RegistryClient
from registryui.registry.mediatypes import DOCKER_MANIFEST

from .support import (
    BASE_DIR,
    TOKEN,
    V1,
    V2,
    blob_push_event,
    delete_event,
    post_events,
    pull_event,
    push_event,
    stamp,
)

pytestmark = pytest.mark.django_db

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def app(events_token) -> Client:
    return Client()


@pytest.fixture
def upstream(use_registry, seeder_for):
    """The real registry the app talks to, and a seeder that pushes images through its API."""
    return seeder_for(use_registry.url)


def tags_of(repository: str) -> dict[str, str]:
    return dict(
        Tag.objects.filter(repository__name=repository).values_list("name", "manifest__digest")
    )


def outcome(event: dict) -> ProcessedEvent:
    return ProcessedEvent.objects.get(event_id=event["id"])


# -- authentication and format ----------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"],
    ids=["missing", "wrong", "basic-scheme", "longer", "empty"],
)
def test_a_missing_or_wrong_token_is_refused_and_changes_nothing(
    app, upstream, use_registry, authorization
):
    digest = upstream.put("team-a/api", "1.0")
    mark = use_registry.mark()
    headers = {"Authorization": authorization} if authorization else {}
    response = app.post(
        "/events/registry",
        data=json.dumps({"events": [push_event("team-a/api", "1.0", digest)]}),
        content_type=V1,
        headers=headers,
    )
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not Repository.objects.exists() and not Manifest.objects.exists()
    assert not ProcessedEvent.objects.exists()
    assert use_registry.requests_since(mark) == []
    stats = EventStats.load()
    assert stats.rejected == 1 and stats.received == 0


def test_without_a_configured_token_the_endpoint_accepts_nothing(app, settings):
    settings.REGISTRY_EVENTS_TOKEN = ""
    response = post_events(app, push_event("team-a/api", "1.0", DIGEST), token="")
    assert response.status_code == 503
    assert "REGISTRY_EVENTS_TOKEN" in response.json()["error"]
    assert not ProcessedEvent.objects.exists()


def test_the_token_can_come_from_a_file(tmp_path):
    secret = tmp_path / "events_token"
    secret.write_text("from-a-file\n")
    env = {**os.environ, "REGISTRY_EVENTS_TOKEN_FILE": str(secret)}
    env.pop("REGISTRY_EVENTS_TOKEN", None)
    done = subprocess.run(
        [
            sys.executable,
            str(BASE_DIR / "manage.py"),
            "shell",
            "-c",
            "from django.conf import settings; print(repr(settings.REGISTRY_EVENTS_TOKEN))",
        ],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "'from-a-file'" in done.stdout


def test_only_post_is_allowed(app):
    assert app.get("/events/registry").status_code == 405


@pytest.mark.parametrize("content_type", [V1, V2, "application/json"])
def test_every_envelope_media_type_is_accepted(app, upstream, content_type):
    digest = upstream.put("team-a/api", "1.0")
    response = post_events(app, push_event("team-a/api", "1.0", digest), content_type=content_type)
    assert response.status_code == 200
    assert response.json()["applied"] == 1
    assert tags_of("team-a/api") == {"1.0": digest}


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("{not json", V1, 400),
        ('{"events": {"id": "x"}}', V1, 400),
        ("[]", V1, 400),
        ('{"events": []}', "text/plain", 415),
        ("[" * 100_000, V1, 400),  # nested too deep for the JSON parser
    ],
    ids=["not-json", "events-not-a-list", "not-an-object", "wrong-type", "too-deep"],
)
def test_a_malformed_delivery_gets_a_clear_client_error(app, body, content_type, status):
    response = app.post(
        "/events/registry",
        data=body,
        content_type=content_type,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == status
    assert response.json()["error"]
    assert EventStats.load().rejected == 1


def test_an_invalid_event_is_rejected_alone_and_the_delivery_still_succeeds(app, upstream):
    digest = upstream.put("team-a/api", "1.0")
    bad_name = push_event("Team_A/API!", "1.0", digest)
    bad_digest = push_event("team-a/api", "2.0", "sha256:nothex")
    no_id = push_event("team-a/api", "3.0", digest)
    del no_id["id"]
    good = push_event("team-a/api", "1.0", digest)
    response = post_events(app, bad_name, bad_digest, no_id, good)
    assert response.status_code == 200
    assert response.json()["rejected"] == 3 and response.json()["applied"] == 1
    assert tags_of("team-a/api") == {"1.0": digest}


# -- cheap triage ------------------------------------------------------------------------------


def test_pulls_blob_pushes_and_untagged_manifests_are_ignored_cheaply(
    app, use_registry, django_assert_max_num_queries
):
    EventStats.bump({"received": 0}, last_event="warm-up")  # the counters' row exists
    mark = use_registry.mark()
    events = [
        pull_event("team-a/api", "1.0", DIGEST),
        blob_push_event("team-a/api", "sha256:" + "cd" * 32),
        # An index's platform image, pushed by digest: Docker's types name no ``subject``, so
        # no referrer either (OCI ones are read once: ``test_referrer_events.py``).
        push_event("team-a/api", None, DIGEST, media_type=DOCKER_MANIFEST),
        {**pull_event("team-a/api", "1.0", DIGEST), "action": "mount"},
    ]
    # One UPDATE of the counters, nothing else: no registry request, no event row.
    with django_assert_max_num_queries(1):
        response = post_events(app, *events)
    assert response.json()["ignored"] == 4
    assert use_registry.requests_since(mark) == []
    assert not ProcessedEvent.objects.exists()
    stats = EventStats.load()
    assert (stats.received, stats.ignored, stats.processed) == (4, 4, 0)
    assert stats.last_received_at is not None and "mount team-a/api" in stats.last_event


# -- idempotency -------------------------------------------------------------------------------


def test_the_same_event_twice_changes_nothing(app, upstream, use_registry):
    first = upstream.put("team-a/api", "1.0", note="first")
    event = push_event("team-a/api", "1.0", first, at=stamp(-2))
    assert post_events(app, event).json()["applied"] == 1
    changed_at = Tag.objects.get(name="1.0").changed_at

    # The tag moves on; then the first event is delivered again (a retry after a timeout).
    second = upstream.put("team-a/api", "1.0", note="second")
    assert post_events(app, push_event("team-a/api", "1.0", second)).json()["applied"] == 1
    mark = use_registry.mark()
    again = post_events(app, event).json()

    assert again["duplicates"] == 1 and again["applied"] == 0
    assert tags_of("team-a/api") == {"1.0": second}
    assert use_registry.requests_since(mark) == []
    assert ProcessedEvent.objects.filter(event_id=event["id"]).count() == 1
    assert Tag.objects.get(name="1.0").changed_at > changed_at
    assert EventStats.load().duplicates == 1


# -- order -------------------------------------------------------------------------------------


def test_an_older_push_arriving_late_does_not_win(app, upstream, use_registry):
    old = upstream.put("team-a/api", "1.0", note="old")
    older_event = push_event("team-a/api", "1.0", old, at=stamp(-5))
    new = upstream.put("team-a/api", "1.0", note="new")
    newer_event = push_event("team-a/api", "1.0", new, at=stamp(-1))

    mark = use_registry.mark()
    post_events(app, newer_event)
    trusted = use_registry.requests_since(mark)
    mark = use_registry.mark()
    post_events(app, older_event)
    asked = use_registry.requests_since(mark)

    assert tags_of("team-a/api") == {"1.0": new}
    # In order, the event is trusted (no HEAD); older than an event already applied to the
    # tag, it is superseded by that event's time (events.models.TagClock), without asking.
    assert not [r for r in trusted if r.method == "HEAD"]
    assert not [r for r in asked if r.method == "HEAD"]
    assert "out of order; superseded" in outcome(older_event).note


def test_a_push_older_than_a_handled_tag_delete_does_not_resurrect_the_tag(
    app, upstream, use_registry
):
    digest = upstream.put("team-a/api", "1.0", note="kept")
    upstream.put("team-a/api", "keep", note="kept")  # the manifest stays in the registry
    push = push_event("team-a/api", "1.0", digest, at=stamp(-5))
    # Delete just the tag, the 2.8 way: a throw-away manifest on it, then delete that.
    throwaway = upstream.put("team-a/api", "1.0", note="throwaway")
    upstream.client.delete_manifest("team-a/api", throwaway)
    tag_deleted = delete_event("team-a/api", tag="1.0", at=stamp(-1))

    post_events(app, tag_deleted)
    post_events(app, push)

    assert "1.0" not in tags_of("team-a/api")
    assert "no longer has this tag" in outcome(push).note


def test_a_late_delete_does_not_remove_a_tag_that_was_pushed_again(app, upstream):
    digest = upstream.put("team-a/api", "1.0", note="again")
    upstream.put("team-a/api", "latest", note="again")
    delete = delete_event("team-a/api", digest=digest, at=stamp(-5))
    push = push_event("team-a/api", "1.0", digest, at=stamp(-1))
    latest = push_event("team-a/api", "latest", digest, at=stamp(-1))

    # The pushes (newer) arrive before the delete (older) of the same digest.
    post_events(app, push, latest)
    post_events(app, delete)

    assert tags_of("team-a/api") == {"1.0": digest, "latest": digest}
    assert "back" in outcome(delete).note


def test_a_tag_delete_for_a_tag_that_moved_since_keeps_the_new_digest(app, upstream):
    digest = upstream.put("team-a/api", "1.0", note="moved")
    post_events(app, push_event("team-a/api", "1.0", digest, at=stamp(-1)))
    stale_delete = delete_event("team-a/api", tag="1.0", at=stamp(-10))

    post_events(app, stale_delete)

    assert tags_of("team-a/api") == {"1.0": digest}
    assert "still exists" in outcome(stale_delete).note


def test_in_order_deletes_by_digest_and_by_tag(app, upstream):
    digest = upstream.put("team-a/api", "1.0", note="doomed")
    other = upstream.put("team-a/api", "2.0", note="other")
    upstream.put("team-b/copy", "1.0", note="doomed")
    for repository, tag, value in [
        ("team-a/api", "1.0", digest),
        ("team-a/api", "2.0", other),
        ("team-b/copy", "1.0", digest),
    ]:
        post_events(app, push_event(repository, tag, value, at=stamp(-10)))
    upstream.client.delete_manifest("team-a/api", digest)

    body = post_events(
        app,
        delete_event("team-a/api", digest=digest),
        delete_event("team-a/api", tag="1.0"),
    ).json()

    assert body["applied"] == 1 and body["unchanged"] == 1
    assert tags_of("team-a/api") == {"2.0": other}
    assert tags_of("team-b/copy") == {"1.0": digest}
    assert Repository.objects.get(name="team-a/api").tag_count == 1


def test_a_repository_delete_removes_it_only_when_the_registry_confirms(app, upstream):
    """Registry 3.x sends a delete with only the repository when one is deleted."""
    upstream.put("team-a/kept", "1.0")
    Repository.objects.create(name="team-a/kept")
    Repository.objects.create(name="team-a/gone")

    post_events(app, delete_event("team-a/gone"), delete_event("team-a/kept"))

    assert set(Repository.objects.values_list("name", flat=True)) == {"team-a/kept"}


def test_a_push_with_a_very_old_timestamp_is_applied_and_its_lag_capped(app, upstream):
    """A registry whose clock is weeks behind (or a replayed event): the lag no longer fits
    the column, which on PostgreSQL failed the delivery with a 500 after the tag was set."""
    from registryui.events.handler import MAX_LAG_MS

    digest = upstream.put("team-a/api", "1.0")
    event = push_event("team-a/api", "1.0", digest, at=stamp(-60 * 86400))

    response = post_events(app, event)

    assert response.status_code == 200 and response.json()["applied"] == 1
    assert tags_of("team-a/api") == {"1.0": digest}
    assert (outcome(event).outcome, outcome(event).lag_ms) == ("applied", MAX_LAG_MS)


# -- the registry failing ----------------------------------------------------------------------


def test_an_upstream_failure_defers_the_event_answers_2xx_and_deletes_nothing(
    app, upstream, use_registry
):
    kept = upstream.put("team-a/api", "1.0", note="kept")
    post_events(app, push_event("team-a/api", "1.0", kept, at=stamp(-1)))
    new_digest = upstream.put("team-a/api", "2.0", note="new")
    use_registry.stop()

    started = time.monotonic()
    body = post_events(
        app,
        # A new digest: its manifest cannot be fetched.
        push_event("team-a/api", "2.0", new_digest),
        # An out-of-order tag delete: the registry cannot be asked, so nothing is removed.
        delete_event("team-a/api", tag="1.0", at=stamp(-30)),
    ).json()
    elapsed = time.monotonic() - started

    assert body["deferred"] == 2
    assert tags_of("team-a/api") == {"1.0": kept}
    stats = EventStats.load()
    assert stats.deferred == 2 and "cannot be reached" in stats.last_deferred_reason
    assert ProcessedEvent.objects.filter(outcome="deferred").count() == 2
    print(f"two deferred events answered in {elapsed * 1000:.0f} ms")


def test_a_deferred_event_is_not_retried_by_a_redelivery(app, upstream, use_registry):
    """Deferred means recorded: a redelivery is a duplicate; the sync reconciles instead."""
    digest = upstream.put("team-a/api", "1.0")
    event = push_event("team-a/api", "1.0", digest)
    use_registry.stop()
    assert post_events(app, event).json()["deferred"] == 1
    use_registry.start()
    assert post_events(app, event).json()["duplicates"] == 1
    assert not Tag.objects.exists()


def test_a_manifest_already_deleted_upstream_is_not_created(app, upstream):
    """The push of a 2.8 tag delete's throw-away manifest usually arrives after its delete."""
    throwaway = upstream.put("team-a/api", "1.0", note="throwaway")
    upstream.client.delete_manifest("team-a/api", throwaway)

    body = post_events(app, push_event("team-a/api", "1.0", throwaway)).json()

    assert body["unchanged"] == 1
    assert not Manifest.objects.exists() and not Tag.objects.exists()


def test_a_known_digest_is_not_fetched_again(app, upstream, use_registry):
    digest = upstream.put("team-a/api", "1.0", note="shared")
    upstream.put("team-b/api", "1.0", note="shared")
    post_events(app, push_event("team-a/api", "1.0", digest))
    mark = use_registry.mark()

    post_events(app, push_event("team-b/api", "1.0", digest))
    post_events(app, push_event("team-b/api", "2.0", digest))

    # Not fetched again. One HEAD checks that the registry has it in team-b/api before that
    # repository is created on the event's word; once the repository is known, none.
    requests = use_registry.requests_since(mark)
    assert [(r.method, r.path) for r in requests] == [
        ("HEAD", f"/v2/team-b/api/manifests/{digest}")
    ]
    assert tags_of("team-b/api") == {"1.0": digest, "2.0": digest}


def test_the_client_used_by_the_endpoint_has_short_timeouts():
    from registryui.catalog.upstream import QUICK_READ_TIMEOUT, get_client

    client = get_client(quick=True)
    assert isinstance(client, RegistryClient)
    assert client.timeout == (1.0, QUICK_READ_TIMEOUT) and QUICK_READ_TIMEOUT <= 3
