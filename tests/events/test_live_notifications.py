"""A real registry notifies a live server of the app: pushes and deletes show up without a sync."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from registryui.catalog.models import Manifest, Repository, SyncRun, Tag
from registryui.devtools.images import ImageSpec, Platform, skopeo_copy, skopeo_digest
from registryui.events.models import EventStats, ProcessedEvent
from registryui.registry import RegistryClient
from registryui.registry.mediatypes import MANIFEST_ACCEPT

from .support import DB_LOCK, TOKEN, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def tag_digest(repository: str, tag: str) -> str | None:
    return (
        Tag.objects.filter(repository__name=repository, name=tag)
        .values_list("manifest__digest", flat=True)
        .first()
    )


def tags_of(repository: str) -> dict[str, str]:
    return dict(
        Tag.objects.filter(repository__name=repository).values_list("name", "manifest__digest")
    )


def stats() -> EventStats:
    return EventStats.load()


def test_a_push_is_in_the_database_within_five_seconds_without_a_sync(notifying_registry, layout):
    registry = notifying_registry
    descriptor = layout.add_image(
        "v1",
        ImageSpec(
            files={"app.py": b"print('hello')\n"},
            labels={"org.opencontainers.image.version": "1.0"},
            cmd=["python", "app.py"],
            created="2026-11-20T10:00:00Z",
        ),
    )
    mark = registry.process.mark()
    skopeo_copy(layout, "v1", f"{registry.host}/team-a/api:1.0")
    pushed = time.monotonic()

    # The acceptance: visible within 5 s of the push, with no sync at all.
    wait_for(lambda: tag_digest("team-a/api", "1.0"), timeout=5, what="the pushed tag")
    visible_after = time.monotonic() - pushed
    print(f"push → visible: {visible_after * 1000:.0f} ms")
    registry.settle()

    digest = descriptor["digest"]
    assert (
        tag_digest("team-a/api", "1.0")
        == digest
        == skopeo_digest(f"{registry.host}/team-a/api:1.0")
    )
    manifest = Manifest.objects.get(digest=digest)
    assert manifest.kind == Manifest.Kind.IMAGE
    assert manifest.labels == {"org.opencontainers.image.version": "1.0"}
    assert manifest.config["Cmd"] == ["python", "app.py"]
    assert manifest.layers.count() == 1
    repository = Repository.objects.get(name="team-a/api")
    assert repository.namespace == "team-a"
    assert repository.tag_count == 1 and repository.size > 0
    assert SyncRun.objects.count() == 0

    # The handler fetched the new manifest and its config once, and listed nothing.
    handled = wait_for(
        lambda: ProcessedEvent.objects.exclude(outcome="received").filter(tag="1.0").first()
    )
    assert handled.outcome == "applied" and handled.lag_ms is not None
    served = registry.process.requests_since(mark)
    assert not [r for r in served if "_catalog" in r.path or "/tags/list" in r.path]
    manifest_gets = [r for r in served if r.method == "GET" and r.path.endswith(digest)]
    assert len(manifest_gets) == 1
    config_digest = manifest.config_digest
    assert len([r for r in served if r.method == "GET" and r.path.endswith(config_digest)]) == 1
    counters = wait_for(lambda: (s := stats()).applied == 1 and s)
    # With the README's `ignore`, neither the blob pushes nor the pulls of the handler's own
    # GETs come back as events: the manifest push is the only delivery.
    assert (counters.received, counters.ignored, counters.rejected, counters.deferred) == (
        1,
        0,
        0,
        0,
    )


def test_a_retag_adds_the_tag_without_fetching_the_manifest_again(notifying_registry, layout):
    registry = notifying_registry
    digest = layout.add_image("img", ImageSpec(files={"a": b"retag"}))["digest"]
    skopeo_copy(layout, "img", f"{registry.host}/team-a/web:1.0")
    wait_for(lambda: tag_digest("team-a/web", "1.0"))
    mark = registry.process.mark()

    skopeo_copy(layout, "img", f"{registry.host}/team-a/web:latest")
    wait_for(lambda: tag_digest("team-a/web", "latest"))
    registry.settle()

    assert tags_of("team-a/web") == {"1.0": digest, "latest": digest}
    assert Manifest.objects.filter(digest=digest).count() == 1
    served = registry.process.requests_since(mark)
    assert not [r for r in served if r.method == "GET" and "/manifests/" in r.path]
    assert Repository.objects.get(name="team-a/web").tag_count == 2


def test_a_repush_moves_the_tag_to_the_new_digest(notifying_registry, layout):
    registry = notifying_registry
    old = layout.add_image("old", ImageSpec(files={"v": b"1"}))["digest"]
    new = layout.add_image("new", ImageSpec(files={"v": b"2"}))["digest"]
    skopeo_copy(layout, "old", f"{registry.host}/team-b/worker:stable")
    wait_for(lambda: tag_digest("team-b/worker", "stable") == old)
    registry.settle()
    before = Tag.objects.get(repository__name="team-b/worker", name="stable").changed_at

    skopeo_copy(layout, "new", f"{registry.host}/team-b/worker:stable")
    wait_for(lambda: tag_digest("team-b/worker", "stable") == new, what="the moved tag")
    registry.settle()

    tag = Tag.objects.get(repository__name="team-b/worker", name="stable")
    assert tag.changed_at > before
    assert Manifest.objects.filter(digest__in=[old, new]).count() == 2


def test_deleting_one_tag_removes_only_that_tag(notifying_registry, layout, seeder_for):
    registry = notifying_registry
    digest = layout.add_image("img", ImageSpec(files={"d": b"one tag"}))["digest"]
    for tag in ("1.0", "latest"):
        skopeo_copy(layout, "img", f"{registry.host}/team-a/api:{tag}")
    wait_for(lambda: len(tags_of("team-a/api")) == 2)

    # Registry 2.8 cannot delete a tag by name: point it at a throw-away manifest, then delete
    # that manifest (which removes only the tags on it).
    seeder = seeder_for(registry.url)
    throwaway = seeder.put("team-a/api", "latest", note=f"throwaway-{time.time_ns()}")
    seeder.client.delete_manifest("team-a/api", throwaway)

    wait_for(lambda: tags_of("team-a/api") == {"1.0": digest}, what="only 1.0 left")
    registry.settle()
    assert Repository.objects.get(name="team-a/api").tag_count == 1
    wait_for(
        lambda: (
            stats().deferred == 0
            and ProcessedEvent.objects.filter(action="delete", digest=throwaway)
            .exclude(outcome="received")
            .exists()
        )
    )


def test_deleting_an_image_removes_its_tags_in_that_repository_only(notifying_registry, layout):
    registry = notifying_registry
    digest = layout.add_image("img", ImageSpec(files={"x": b"image"}))["digest"]
    other = layout.add_image("other", ImageSpec(files={"x": b"other"}))["digest"]
    for reference in ("team-a/api:1.0", "team-a/api:latest", "team-b/copy:1.0"):
        skopeo_copy(layout, "img", f"{registry.host}/{reference}")
    skopeo_copy(layout, "other", f"{registry.host}/team-a/api:2.0")
    wait_for(lambda: len(tags_of("team-a/api")) == 3 and tags_of("team-b/copy"))

    with RegistryClient(registry.url, retries=1) as client:
        client.delete_manifest("team-a/api", digest)

    wait_for(lambda: tags_of("team-a/api") == {"2.0": other}, what="the image's tags gone")
    registry.settle()
    assert tags_of("team-b/copy") == {"1.0": digest}
    # The repository stays, as it does in the registry's catalog.
    assert Repository.objects.get(name="team-a/api").tag_count == 1


def test_a_multi_platform_index_is_stored_with_its_children(notifying_registry, layout):
    registry = notifying_registry
    index = layout.add_index(
        "multi",
        [
            ImageSpec(files={"p": b"amd64"}, platform=Platform("linux", "amd64")),
            ImageSpec(files={"p": b"arm64"}, platform=Platform("linux", "arm64", "v8")),
        ],
    )
    skopeo_copy(layout, "multi", f"{registry.host}/team-a/multi:2.0", all_platforms=True)

    wait_for(lambda: tag_digest("team-a/multi", "2.0") == index["digest"])
    registry.settle()
    manifest = Manifest.objects.get(digest=index["digest"])
    assert manifest.kind == Manifest.Kind.INDEX
    platforms = set(manifest.child_links.values_list("child__platforms", flat=True))
    assert platforms == {"linux/amd64", "linux/arm64/v8"}
    # The children were pushed by digest: those events are ignored, the index's event fetched
    # them; none is tagged.
    assert Tag.objects.filter(repository__name="team-a/multi").count() == 1


def test_a_wrong_token_is_refused_and_changes_nothing(notifying_registry_factory, layout):
    registry = notifying_registry_factory(token="not-the-token")
    layout.add_image("img", ImageSpec(files={"w": b"wrong"}))
    skopeo_copy(layout, "img", f"{registry.host}/team-a/api:1.0")

    metrics = wait_for(
        lambda: (m := registry.endpoint_metrics())["Statuses"].get("401 Unauthorized") and m,
        what="the registry to see a 401",
    )
    assert metrics["Successes"] == 0
    with DB_LOCK:  # the registry keeps retrying while we look
        assert not Repository.objects.exists() and not Tag.objects.exists()
        assert not ProcessedEvent.objects.exists()
        refused = stats()
    assert refused.rejected >= 1 and refused.received == 0
    assert refused.last_rejected_reason.startswith("wrong token")


def test_a_burst_of_500_events_is_answered_first_time_and_the_queue_drains(
    notifying_registry_factory, layout, record_property
):
    """Every manifest HEAD makes the registry send a pull event: 500 HEADs are a burst of 500
    events through its single in-memory queue. The registry's own metrics (``/debug/vars``)
    show whether anything failed or was retried, and how far the queue backed up: it sends one
    event at a time on a new connection each, so its backlog while HEADs pour in depends on
    the machine (see docs/BENCHMARKS.md, "Events"); what must hold is that every event is
    answered 2xx the first time and the queue is empty right after."""
    registry = notifying_registry_factory(ignore_pulls=False)
    layout.add_image("img", ImageSpec(files={"b": b"burst"}))
    skopeo_copy(layout, "img", f"{registry.host}/team-a/burst:1")
    before = registry.settle()["Successes"]
    received_before = stats().received

    peak, watching = [0], threading.Event()

    def watch() -> None:
        while not watching.is_set():
            peak[0] = max(peak[0], registry.endpoint_metrics()["Pending"])
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    url = f"{registry.url}/v2/team-a/burst/manifests/1"
    started = time.monotonic()
    with requests.Session() as session, ThreadPoolExecutor(4) as pool:

        def head(_: int) -> int:
            return session.head(url, headers={"Accept": MANIFEST_ACCEPT}, timeout=10).status_code

        assert set(pool.map(head, range(500))) == {200}
    sent = time.monotonic() - started
    metrics = wait_for(
        lambda: (m := registry.endpoint_metrics())["Successes"] - before >= 500 and m,
        timeout=120,
        what="500 events delivered",
    )
    drained = time.monotonic() - started
    watching.set()
    watcher.join()
    rate = 500 / drained
    print(
        f"500 pull events made in {sent:.2f}s ({500 / sent:.0f}/s), all answered after "
        f"{drained:.2f}s: {rate:.0f}/s; largest backlog {peak[0]}"
    )
    record_property("events_per_second", round(rate))
    record_property("peak_pending", peak[0])

    assert metrics["Pending"] == 0
    assert metrics["Failures"] == 0 and metrics["Errors"] == 0
    assert set(metrics["Statuses"]) == {"200 OK"}
    counters = wait_for(lambda: (s := stats()).received - received_before >= 500 and s)
    assert counters.ignored >= 500 and counters.rejected == 0
    assert tag_digest("team-a/burst", "1")


def test_the_endpoint_is_off_without_a_token(live_server, settings):
    settings.REGISTRY_EVENTS_TOKEN = ""
    response = requests.post(
        f"{live_server.url}/events/registry",
        json={"events": []},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert response.status_code == 503
    assert "REGISTRY_EVENTS_TOKEN" in response.json()["error"]
