"""Registry notifications under hostile data, forgeries and races (issues #11 and #12).

Every test runs against a real registry (Debian's ``docker-registry``): images are pushed for
real, and the events are then delivered the way the registry delivers them (one POST each to
``/events/registry``), crafted where the case is a forgery, a hostile body or a race that a
single registry cannot produce on demand.
"""

from __future__ import annotations

import json
import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registryui.catalog.models import Repository, Tag
from registryui.catalog.upstream import get_client
from registryui.devtools.seed import Seeder
from registryui.events.models import EventStats, ProcessedEvent
from registryui.registry import RegistryClient
from registryui.sync.syncer import Syncer
from tests.events.support import (  # noqa: F401 (fixtures)
    TOKEN,
    V1,
    EventServer,
    _fresh_quick_clients,
    delete_event,
    django_state,
    events_token,
    post_events,
    pull_event,
    push_event,
    seeder_for,
    stamp,
    subprocess_env,
    worker_database,
)

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def app(events_token) -> Client:  # noqa: F811
    return Client()


@pytest.fixture
def upstream(use_registry, seeder_for) -> Seeder:  # noqa: F811
    return seeder_for(use_registry.url)


def tags_of(repository: str) -> dict[str, str]:
    return dict(
        Tag.objects.filter(repository__name=repository).values_list("name", "manifest__digest")
    )


def outcome(event: dict) -> ProcessedEvent:
    return ProcessedEvent.objects.get(event_id=event["id"])


def deliver(client: Client, *events: dict):
    """One delivery as the registry makes it; the body is sent as given (surrogates and all)."""
    body = json.dumps({"events": list(events)})  # ensure_ascii: "\ud800" stays an escape
    return client.post(
        "/events/registry",
        data=body,
        content_type=V1,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )


# -- #11: a registry's data is untrusted input ----------------------------------------------


def _hostile_cases(digest: str) -> dict[str, dict]:
    push = push_event("team-a/api", "1.0", digest)
    cases = {
        "nul-in-id": {**push, "id": "evt\x00-1"},
        "surrogate-in-id": {**push, "id": "evt\ud800-2"},
        "surrogate-in-pulled-repository": pull_event("team-a/\ud800x", "1.0", digest),
        "nul-in-pulled-tag": pull_event("team-a/api", "1.0\x00", digest),
        "surrogate-in-media-type": {
            **push,
            "target": {**push["target"], "mediaType": "application/\udfff"},
        },
        "media-type-is-a-list": {**push, "target": {**push["target"], "mediaType": ["x"]}},
        "media-type-is-an-object": {**push, "target": {**push["target"], "mediaType": {}}},
        "url-is-a-number": {**push, "target": {**push["target"], "url": 10**30}},
        "action-is-a-list": {**push, "action": ["push"]},
        "action-with-nul": {**push, "action": "delete\x00"},
        "tag-is-a-number": {**push, "target": {**push["target"], "tag": 7}},
        "repository-is-null": {**push, "target": {**push["target"], "repository": None}},
        "huge-id": {**push, "id": "x" * 200_000},
        "huge-media-type": {**push, "target": {**push["target"], "mediaType": "a/" + "b" * 10**5}},
        "timestamp-overflows": {**push, "timestamp": "9999-12-31T23:59:59-23:59"},
        "timestamp-malformed": {**push, "timestamp": "2026-13-45T99:99:99Z"},
        "timestamp-huge-number": {**push, "timestamp": 10**40},
        "timestamp-is-an-object": {**push, "timestamp": {"seconds": 1}},
        "timestamp-year-zero": {**push, "timestamp": "0000-01-01T00:00:00Z"},
        "timestamp-far-future": {**push, "timestamp": "9999-01-01T00:00:00Z"},
        "target-is-a-string": {**push, "target": "team-a/api:1.0"},
        "event-is-a-list": [push],
    }
    # Each case is its own event: a fresh id unless the case is about the id.
    for name, event in cases.items():
        if isinstance(event, dict) and "id" not in name:
            event["id"] = f"case-{name}"
    return cases


@pytest.mark.django_db
def test_hostile_notification_fields_never_fail_a_delivery(app, upstream):
    """NUL, lone surrogates, wrong types, huge and out-of-range values: each event is rejected,
    ignored or applied on its own, the delivery gets a 2xx, and nothing unsafe is stored."""
    digest = upstream.put("team-a/api", "1.0")
    cases = _hostile_cases(digest)

    for name, event in cases.items():
        response = deliver(app, event)
        assert response.status_code == 200, (name, response.content)
        counts = response.json()
        assert sum(v for k, v in counts.items()) == 1, (name, counts)

    # Ids with NUL or a surrogate are stored cleaned (U+FFFD), never as given.
    stored_ids = set(ProcessedEvent.objects.values_list("event_id", flat=True))
    assert {"evt\ufffd-1", "evt\ufffd-2"} <= stored_ids
    for text in [*stored_ids, *EventStats.objects.values_list("last_event", flat=True)]:
        assert "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text)
    # A far-future time is unknown (it would outrank every real event on the tag until then).
    future = ProcessedEvent.objects.get(event_id="case-timestamp-far-future")
    assert future.timestamp is None
    assert tags_of("team-a/api") == {"1.0": digest}


@pytest.mark.django_db
def test_a_delivery_of_thousands_of_events_is_refused_whole(app, upstream):
    """Registries send one event per delivery; thousands in one body would outlast the
    registry's timeout for every event queued behind it."""
    digest = upstream.put("team-a/api", "1.0")
    events = [push_event("team-a/api", f"t{n}", digest) for n in range(2000)]

    response = deliver(app, *events)

    assert response.status_code == 413
    assert "At most 100 events" in response.json()["error"]
    assert not ProcessedEvent.objects.exists() and not Tag.objects.exists()
    assert EventStats.load().last_rejected_reason == "2000 events in one delivery"


_HOSTILE_TEXT = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["\x00", "\ud800", "\udfff", "a\x00b", "x" * 5000, "", " ", "push"]),
)
_ANY = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(allow_nan=False),
        _HOSTILE_TEXT,
    ),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(_HOSTILE_TEXT, children, max_size=3)
    ),
    max_leaves=8,
)
_TIMESTAMPS = st.one_of(
    _ANY,
    st.sampled_from(
        [
            "9999-12-31T23:59:59-23:59",
            "0001-01-01T00:00:00+23:59",
            "1970-01-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-06-01T12:00:00.1234567890123Z",
            "9999-01-01T00:00:00Z",
        ]
    ),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
)


def _event_strategy(digest: str):
    repository = st.one_of(st.sampled_from(["team-a/api", "team-a/new", "Bad Name"]), _ANY)
    tag = st.one_of(st.sampled_from(["1.0", "2.0", None]), _ANY)
    target = st.fixed_dictionaries(
        {
            "repository": repository,
            "tag": tag,
            "digest": st.one_of(st.sampled_from([digest, DIGEST, "sha256:zz"]), _ANY),
            "mediaType": st.one_of(
                st.sampled_from(["application/vnd.oci.image.manifest.v1+json"]), _ANY
            ),
            "url": _ANY,
        }
    )
    return st.fixed_dictionaries(
        {
            "id": st.one_of(st.uuids().map(str), _ANY),
            "action": st.one_of(st.sampled_from(["push", "delete", "pull", "mount"]), _ANY),
            "timestamp": _TIMESTAMPS,
            "target": st.one_of(target, _ANY),
        }
    )


@pytest.mark.django_db
def test_fuzzed_notification_bodies_never_get_a_500(app, upstream):
    """Events built from hostile values in every field, against a real registry: the endpoint
    answers 2xx or 4xx, each event is accounted for, and every stored string is safe."""
    digest = upstream.put("team-a/api", "1.0")

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(events=st.lists(_event_strategy(digest), max_size=3))
    def check(events: list[dict]) -> None:
        response = deliver(app, *events)
        assert response.status_code < 500, response.content
        if response.status_code == 200:
            assert sum(response.json().values()) == len(events)

    check()
    for text in ProcessedEvent.objects.values_list("event_id", "repository", "note"):
        joined = "".join(text)
        assert "\x00" not in joined and not any("\ud800" <= c <= "\udfff" for c in joined)
    # Whatever the fuzzer claimed, the tag the registry has is still shown.
    assert tags_of("team-a/api").get("1.0") == digest


# -- #11 "Events": the registry decides, not the event --------------------------------------


@pytest.mark.django_db
def test_a_delete_the_registry_contradicts_is_rejected_and_removes_nothing(
    app, upstream, use_registry
):
    digest = upstream.put("team-a/api", "1.0", note="kept")
    other = upstream.put("team-a/api", "2.0", note="other")
    post_events(app, push_event("team-a/api", "1.0", digest, at=stamp(-10)))
    post_events(app, push_event("team-a/api", "2.0", other, at=stamp(-10)))
    forged_tag = delete_event("team-a/api", tag="1.0")
    forged_digest = delete_event("team-a/api", digest=other)

    mark = use_registry.mark()
    body = post_events(app, forged_tag, forged_digest).json()
    asked = [(r.method, r.path) for r in use_registry.requests_since(mark)]

    assert tags_of("team-a/api") == {"1.0": digest, "2.0": other}
    assert body["rejected"] == 2 and body["applied"] == 0
    assert ("HEAD", "/v2/team-a/api/manifests/1.0") in asked
    assert ("HEAD", f"/v2/team-a/api/manifests/{other}") in asked
    assert outcome(forged_tag).outcome == "rejected"
    assert "still exists" in outcome(forged_tag).note
    assert outcome(forged_digest).outcome == "rejected"
    stats = EventStats.load()
    assert stats.rejected == 2
    # Shown to all staff: says what happened without naming the repository.
    assert stats.last_rejected_reason == "a delete event the registry contradicts"


@pytest.mark.django_db
def test_a_push_into_a_repository_the_registry_does_not_have_is_rejected(
    app, upstream, use_registry
):
    digest = upstream.put("team-a/api", "1.0")
    post_events(app, push_event("team-a/api", "1.0", digest))
    forged = push_event("team-x/invented", "latest", digest)  # a digest we know, elsewhere

    mark = use_registry.mark()
    body = post_events(app, forged).json()
    asked = [(r.method, r.path) for r in use_registry.requests_since(mark)]

    assert body["rejected"] == 1
    assert not Repository.objects.filter(name="team-x/invented").exists()
    assert ("HEAD", f"/v2/team-x/invented/manifests/{digest}") in asked
    assert outcome(forged).outcome == "rejected"
    assert "no such repository" in outcome(forged).note


@pytest.mark.django_db
def test_real_deletes_are_still_applied_once_the_registry_confirms(app, upstream, use_registry):
    digest = upstream.put("team-a/api", "1.0", note="doomed")
    upstream.put("team-a/api", "2.0", note="stays")
    post_events(app, push_event("team-a/api", "1.0", digest, at=stamp(-10)))
    upstream.client.delete_manifest("team-a/api", digest)

    body = post_events(app, delete_event("team-a/api", digest=digest)).json()

    assert body["applied"] == 1
    assert "1.0" not in tags_of("team-a/api")


# -- #12 item 11: forged deletes dated back, judged by the UI's own history ------------------


@pytest.mark.django_db
@pytest.mark.parametrize("by", ["digest", "tag"])
def test_forged_deletes_dated_an_hour_back_ask_the_registry_first(app, upstream, use_registry, by):
    """Tags imported by a sync carry their image's build time (2026-06-01 here, months ago);
    an event dated an hour back is newer than that but older than when the UI saw the tags.
    Either way nothing is removed before the registry says the target is gone."""
    digest = upstream.put("team-a/api", "1.0", note="synced")
    upstream.put("team-a/api", "latest", note="synced")
    run = Syncer(get_client()).run()
    assert run.ok and tags_of("team-a/api") == {"1.0": digest, "latest": digest}
    hour_ago = stamp(-3600)
    forged = (
        delete_event("team-a/api", digest=digest, at=hour_ago)
        if by == "digest"
        else delete_event("team-a/api", tag="1.0", at=hour_ago)
    )

    mark = use_registry.mark()
    post_events(app, forged)
    heads = [r for r in use_registry.requests_since(mark) if r.method == "HEAD"]

    assert tags_of("team-a/api") == {"1.0": digest, "latest": digest}
    assert heads, "the registry was not asked before removing rows"
    record = outcome(forged)
    assert record.outcome == "rejected"
    assert record.note.startswith("out of order"), record.note


@pytest.mark.django_db
def test_a_forged_delete_dated_after_the_last_sync_is_rejected_too(app, upstream, use_registry):
    """Dated after everything the UI recorded (so "in order"), it is still checked."""
    digest = upstream.put("team-a/api", "1.0", note="synced")
    Syncer(get_client()).run()
    Tag.objects.update(first_seen_at=datetime.now(UTC) - timedelta(days=2))
    forged = delete_event("team-a/api", tag="1.0", at=stamp(-3600))

    post_events(app, forged)

    assert tags_of("team-a/api") == {"1.0": digest}
    assert outcome(forged).outcome == "rejected"
    assert not outcome(forged).note.startswith("out of order")


# -- #12 item 12: deliveries racing on one tag (registry replicas) ---------------------------


ROUNDS = 10
REPLICAS = 4


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_deliveries_racing_on_one_tag_end_with_the_newest_event(
    worker_database,  # noqa: F811
    registry,
    tmp_path,
):
    """Registry replicas deliver pushes of the same tag at the same moment, to several app
    processes (gunicorn), in any order. Each race ends with the newest event's digest (the one
    the registry has), no delivery fails, none is deferred, on SQLite and PostgreSQL."""
    with RegistryClient(registry.url, retries=1) as client:
        seeder = Seeder(client)
        races = []
        for n in range(ROUNDS):
            repository = f"race/r{n}"
            # Pushed in order: the last one is what the registry's tag points at.
            digests = [
                seeder.put(repository, "t", note=f"{repository}-{i}") for i in range(REPLICAS)
            ]
            races.append((repository, digests))
    env = subprocess_env(worker_database, registry.url)
    server = EventServer(env, tmp_path / "gunicorn.log").start()
    shuffle = random.Random(12)
    statuses: list[int] = []
    base = datetime.now(UTC) - timedelta(seconds=30)
    try:
        for n, (repository, digests) in enumerate(races):
            events = [
                push_event(repository, "t", digest, at=stamp(n + i * 0.01, base))
                for i, digest in enumerate(digests)
            ]
            shuffle.shuffle(events)
            start = threading.Barrier(len(events))

            def deliver_one(event: dict, start=start) -> None:
                start.wait()
                statuses.append(server.post(event).status_code)

            threads = [threading.Thread(target=deliver_one, args=(e,)) for e in events]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
    finally:
        server.stop()

    assert statuses == [200] * (ROUNDS * REPLICAS), (statuses, (tmp_path / "gunicorn.log"))
    state = django_state(
        env,
        "from registryui.catalog.models import Tag\n"
        "from registryui.events.models import ProcessedEvent\n"
        "result = dict(\n"
        "    tags={t.repository.name: t.manifest.digest\n"
        "          for t in Tag.objects.select_related('repository', 'manifest')},\n"
        "    outcomes=sorted({e.outcome for e in ProcessedEvent.objects.all()}),\n"
        "    notes=[e.note for e in ProcessedEvent.objects.filter(outcome='deferred')],\n"
        ")\n",
    )
    assert state["notes"] == [], (state["notes"], (tmp_path / "gunicorn.log").read_text())
    wrong = {
        repository: (state["tags"].get(repository), digests[-1])
        for repository, digests in races
        if state["tags"].get(repository) != digests[-1]
    }
    assert wrong == {}, f"the newest event lost {len(wrong)} of {ROUNDS} races"
    assert set(state["outcomes"]) <= {"applied", "unchanged"}
