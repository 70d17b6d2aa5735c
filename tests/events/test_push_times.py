"""Push times (issue 16): a tag's push time comes from its push event, distinct from the
image's build time; a tag seen only by a sync shows "before <when the UI first saw it>", and a
move only a sync saw forgets the old push time. A real registry holds the images; the push
events are delivered by the test in the shape 2.8 posts them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from registryui.catalog.models import Tag
from tests.personas import personas  # noqa: F401

from .support import post_events, push_event, stamp

pytestmark = pytest.mark.django_db


@pytest.fixture
def upstream(use_registry, seeder_for, events_token):
    return seeder_for(use_registry.url)


def sync():
    from registryui.catalog.upstream import get_client
    from registryui.sync.syncer import Syncer

    run = Syncer(get_client()).run()
    assert run.ok, run.error


def tag(name: str) -> Tag:
    return Tag.objects.select_related("manifest").get(repository__name="team-a/api", name=name)


def test_a_push_event_records_the_push_time_apart_from_the_build_time(upstream):
    digest = upstream.put("team-a/api", "1.0")  # built 2026-06-01 (the Seeder's config)
    pushed = datetime.now(UTC) - timedelta(seconds=30)
    answer = post_events(Client(), push_event("team-a/api", "1.0", digest, at=stamp(base=pushed)))
    assert answer.json()["applied"] == 1
    stored = tag("1.0")
    assert abs((stored.pushed_at - pushed).total_seconds()) < 0.01
    assert stored.manifest.created.year == 2026 and stored.manifest.created < stored.pushed_at
    assert stored.push_time_known and stored.pushed_by == stored.pushed_at
    # The same digest pushed again later: the push time moves, the tag does not "change".
    again = pushed + timedelta(seconds=20)
    post_events(Client(), push_event("team-a/api", "1.0", digest, at=stamp(base=again)))
    assert abs((tag("1.0").pushed_at - again).total_seconds()) < 0.01
    assert tag("1.0").changed_at == stored.changed_at


def test_a_synced_tag_has_no_made_up_push_time(upstream, settings):
    upstream.put("team-a/api", "old")
    sync()
    stored = tag("old")
    assert stored.pushed_at is None
    # Pushed no later than the first sync saw it, whatever the build time says.
    assert stored.pushed_by == stored.first_seen_at
    assert stored.changed_at < stored.first_seen_at  # the build time of a first import


def test_a_move_only_the_sync_saw_forgets_the_push_time(upstream):
    first = upstream.put("team-a/api", "1.0")
    post_events(Client(), push_event("team-a/api", "1.0", first))
    assert tag("1.0").pushed_at is not None
    upstream.put("team-a/api", "1.0", note="moved")  # no event reaches the UI
    sync()
    moved = tag("1.0")
    assert moved.manifest.digest != first and moved.pushed_at is None
    assert moved.pushed_by == moved.changed_at > moved.first_seen_at


def test_the_tag_table_shows_both_times_and_sorts_by_push(upstream, personas):  # noqa: F811
    upstream.put("team-a/api", "synced")
    sync()
    for name, minutes in (("late", 1), ("early", 5)):
        digest = upstream.put("team-a/api", name, note=name)
        at = stamp(base=datetime.now(UTC) - timedelta(minutes=minutes))
        post_events(Client(), push_event("team-a/api", name, digest, at=at))
    # The synced tag was first seen before both pushes were recorded.
    Tag.objects.filter(name="synced").update(first_seen_at=timezone.now() - timedelta(days=2))
    client = personas["a_viewer"].client()

    def order(sort: str) -> list[str]:
        html = client.get("/r/team-a/api", {"sort": sort}).content.decode()
        return re.findall(r'<th scope="row" class="tag-name"><a href="[^"]+">([^<]+)</a>', html)

    assert order("pushed") == ["synced", "early", "late"]
    assert order("-pushed") == ["late", "early", "synced"]
    html = client.get("/r/team-a/api", {"sort": "pushed"}).content.decode()
    cells = re.findall(r'<td class="pushed">(.*?)</td>', html, re.S)
    before = (timezone.localdate() - timedelta(days=2)).isoformat()
    assert f"before {before}" in cells[0] and "<time" not in cells[0]
    assert all("<time" in cell for cell in cells[1:])
    page = client.get("/r/team-a/api:synced").content.decode()
    assert re.search(
        rf"<dt>Pushed</dt><dd><span class=\"pushed-before\"[^>]*>before {before}<", page
    )
