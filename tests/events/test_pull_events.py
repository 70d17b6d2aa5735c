"""``POST /events/registry/pulls``: what counts as a pull, aggregated per image, tag, user and
day (issue 16). Deliveries here are crafted in the shape the real 2.8 sends (checked on the
real registry by ``test_pulls_live.py``): edge cases a real client cannot be made to send.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from registryui.events.models import EventStats, PullDay, PullTracking
from registryui.registry.client import USER_AGENT

from .support import TOKEN, V1, pull_event, stamp

pytestmark = pytest.mark.django_db

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32


@pytest.fixture(autouse=True)
def tracking(settings, events_token):
    settings.PULL_TRACKING = True
    settings.REGISTRY_USERNAME = "registryui-sync"


def pull(tag="1.0", digest=DIGEST, *, method="GET", agent="docker/27.0", actor=None, at=None):
    event = pull_event("team-a/api", tag, digest, at=at)
    event["request"] = {"method": method, "useragent": agent}
    event["actor"] = {"name": actor} if actor else {}
    return event


def deliver(client, *events, token=TOKEN):
    return client.post(
        "/events/registry/pulls",
        data=json.dumps({"events": list(events)}),
        content_type=V1,
        headers={"Authorization": f"Bearer {token}"},
    )


def rows():
    return sorted(PullDay.objects.values_list("digest", "tag", "actor", "day", "count").order_by())


def test_gets_by_clients_are_counted_into_one_row_per_image_tag_user_and_day(client):
    today = timezone.localdate()
    for _ in range(3):
        assert deliver(client, pull(actor="alice")).status_code == 200
    deliver(client, pull(actor="bob"), pull(tag="", actor="alice"), pull(digest=OTHER, tag="2.0"))
    assert rows() == [
        (DIGEST, "", "alice", today, 1),
        (DIGEST, "1.0", "alice", today, 3),
        (DIGEST, "1.0", "bob", today, 1),
        (OTHER, "2.0", "", today, 1),
    ]
    tracking = PullTracking.load()
    assert (tracking.received, tracking.counted, tracking.own, tracking.checks) == (6, 6, 0, 0)
    assert tracking.started_at is not None


def test_the_uis_own_requests_heads_and_blobs_are_not_pulls(client):
    blob = pull(digest=OTHER)
    blob["target"]["mediaType"] = "application/octet-stream"
    answer = deliver(
        client,
        pull(agent=USER_AGENT, actor="registryui-sync"),  # the sync's client, as the registry
        pull(agent=USER_AGENT, actor="registryui-sync", digest=OTHER),  # names its account
        pull(method="HEAD"),
        blob,
    )
    assert answer.json() == {"own": 2, "checks": 2}
    assert rows() == []
    # Either alone is somebody else: the UI's agent from another account (anyone can send
    # it), or a person pulling with the UI's account.
    answer = deliver(client, pull(agent=USER_AGENT, actor="mallory"), pull(actor="registryui-sync"))
    assert answer.json() == {"counted": 2}
    assert [(r[2], r[-1]) for r in rows()] == [("mallory", 1), ("registryui-sync", 1)]
    assert EventStats.load().received == 0  # the push endpoint's counters are not touched


def test_the_day_and_last_pull_follow_the_event_time(client):
    yesterday = timezone.now() - timedelta(days=1)
    deliver(client, pull(at=stamp(base=yesterday)), pull(at=stamp(base=yesterday, offset=60)))
    (row,) = PullDay.objects.all()
    assert row.day == timezone.localdate(yesterday) and row.count == 2
    assert abs((row.last_at - (yesterday + timedelta(seconds=60))).total_seconds()) < 1
    # An event dated in the future counts now: it cannot push "last pulled" ahead.
    deliver(client, pull(at=stamp(offset=86_400 * 30)))
    assert PullDay.objects.filter(day=timezone.localdate()).get().last_at <= timezone.now()


def test_invalid_events_are_ignored_alone(client):
    bad_name = pull()
    bad_name["target"]["repository"] = "UPPER/case"
    bad_digest = pull(digest="sha256:nothex")
    not_a_pull = pull()
    not_a_pull["action"] = "push"
    answer = deliver(client, bad_name, bad_digest, not_a_pull, "junk", pull())
    assert answer.status_code == 200 and answer.json() == {"ignored": 4, "counted": 1}
    assert [r[-1] for r in rows()] == [1]


def test_off_it_stores_nothing_and_still_answers_2xx(client, settings):
    settings.PULL_TRACKING = False
    answer = deliver(client, pull())
    assert answer.status_code == 204
    assert rows() == [] and PullTracking.load().pk is not None
    assert not PullTracking.objects.exists()


def test_it_needs_the_token(client):
    assert deliver(client, pull(), token="wrong").status_code == 401
    assert rows() == []
