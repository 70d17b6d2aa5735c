"""Issue 16 in cleanup: the retention rules on pulls and push times, each verdict explained with
its dates, and the stale images view, through the resolver. A real registry holds the images
(pushed with skopeo, synced); pulls reach the app through its pull endpoint in the shape 2.8
posts them (``tests/events/test_pulls_live.py`` drives the real registry end to end), then
their ages are set in the database."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from registryui.catalog.models import Tag
from registryui.cleanup import retention
from registryui.cleanup.models import RetentionPolicy
from registryui.events.models import PullDay, PullTracking
from tests.events.support import TOKEN, V1, pull_event

pytestmark = pytest.mark.django_db

TAGS = {"a": "team-a/app:a", "b": "team-a/app:b", "c": "team-a/app:c", "d": "team-a/app:d"}


def day(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d")


def pull(repository: str, tag: str, digest: str, *, days_ago: float) -> None:
    """One pull of ``repository:tag`` through the endpoint, then dated ``days_ago``."""
    event = pull_event(repository, tag, digest)
    event["request"] = {"method": "GET", "useragent": "containerd/1.7"}
    answer = Client().post(
        "/events/registry/pulls",
        data=json.dumps({"events": [event]}),
        content_type=V1,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert answer.json() == {"counted": 1}
    when = timezone.now() - timedelta(days=days_ago)
    PullDay.objects.filter(repository=repository, digest=digest, tag=tag).update(
        last_at=when, day=timezone.localdate(when)
    )


@pytest.fixture
def shop(world, settings):
    settings.PULL_TRACKING = True
    settings.REGISTRY_EVENTS_TOKEN = TOKEN
    for name in TAGS:
        world.image(name, size=3000 + ord(name))
        world.push(name, TAGS[name])
    world.image("x")
    world.push("x", "team-b/other:x")
    world.sync()
    now = timezone.now()
    Tag.objects.update(
        first_seen=now - timedelta(days=60),
        first_seen_at=now - timedelta(days=60),
        changed_at=now - timedelta(days=60),
    )
    # d was pushed two days ago (recorded by a push event).
    Tag.objects.filter(name="d").update(pushed_at=now - timedelta(days=2))
    pull("team-a/app", "a", world.digest(TAGS["a"]), days_ago=1)
    pull("team-a/app", "b", world.digest(TAGS["b"]), days_ago=20)
    pull("team-b/other", "x", world.digest("team-b/other:x"), days_ago=1)
    PullTracking.objects.update(started_at=now - timedelta(days=40))
    return world


def verdicts(**rules) -> dict[str, retention.Verdict]:
    policy = RetentionPolicy(name="p", repository_pattern="team-a/*", keep_last=0, **rules)
    (item,) = retention.preview(policy).repositories
    return {v.tag: v for v in item.verdicts}


def going(found: dict[str, retention.Verdict]) -> set[str]:
    return {tag for tag, v in found.items() if v.delete}


def test_not_pulled_in_n_days_explains_each_verdict_with_its_dates(shop):
    now = timezone.now()
    found = verdicts(not_pulled_days=10)
    assert going(found) == {"b", "c", "d"}
    assert found["a"].reasons == [f"pulled {day(now - timedelta(days=1))}, less than 10 days ago"]
    assert found["b"].evidence == [f"last pulled {day(now - timedelta(days=20))}"]
    assert found["c"].evidence == [f"never pulled since {day(now - timedelta(days=40))}"]


def test_while_pull_tracking_is_younger_than_the_rule_every_image_stays(shop):
    started = timezone.now() - timedelta(days=3)
    PullTracking.objects.update(started_at=started)
    found = verdicts(not_pulled_days=10)
    assert going(found) == set()
    assert found["c"].reasons == [f"pull tracking started {day(started)}, less than 10 days ago"]


def test_keep_the_n_most_recently_pulled_images(shop):
    found = verdicts(keep_pulled=2)
    assert going(found) == {"c", "d"}
    assert found["b"].reasons[0].startswith("one of the 2 most recently pulled images (last pulled")
    assert going(verdicts(keep_pulled=1)) == {"b", "c", "d"}


def test_pushed_more_than_n_days_ago_uses_the_push_time_or_its_bound(shop):
    now = timezone.now()
    found = verdicts(pushed_before_days=7)
    assert going(found) == {"a", "b", "c"}
    assert found["d"].reasons == [f"pushed {day(now - timedelta(days=2))}, less than 7 days ago"]
    # No push event for a: it was pushed no later than when the UI first saw it.
    assert found["a"].evidence == [f"pushed before {day(now - timedelta(days=60))}"]


def test_rules_combine_and_the_dry_run_page_shows_the_dates(shop, personas):
    policy = RetentionPolicy.objects.create(
        name="stale", repository_pattern="team-a/*", keep_last=0, not_pulled_days=10,
        pushed_before_days=7,
    )  # fmt: skip
    html = personas["a_deleter"].client().get(f"/retention/{policy.pk}/").content.decode()
    assert set(re.findall(r'<tr class="delete" data-tag="([^"]+)"', html)) == {"b", "c"}
    assert set(re.findall(r'<tr class="keep" data-tag="([^"]+)"', html)) == {"a", "d"}
    c_row = re.search(r'data-tag="c">.*?</tr>', html, re.S).group(0)
    started = day(timezone.now() - timedelta(days=40))
    assert f"never pulled since {started}" in c_row and "pushed before" in c_row
    assert "images pulled in the last 10 days" in html and "tags pushed in the last 7 days" in html


def test_a_policy_with_only_pull_rules_is_valid():
    RetentionPolicy(name="p", repository_pattern="*", keep_last=0, not_pulled_days=30).clean()


# -- the stale images view ----------------------------------------------------------------


def stale_rows(html: str) -> set[str]:
    return set(re.findall(r'<tr data-digest="([^"]+)"', html))


def test_the_stale_view_lists_images_not_pulled_and_not_pushed_recently(shop, personas):
    html = personas["a_deleter"].client().get("/stale/", {"pulled": 10, "pushed": 7}).content
    html = html.decode()
    assert stale_rows(html) == {shop.digest(TAGS["b"]), shop.digest(TAGS["c"])}
    # Selectable into the bulk delete of their repository, and into a retention preview.
    assert 'action="/r/team-a/app/-/bulk-delete"' in html
    assert re.search(r'<input type="checkbox" name="tag" value="b" form="stale-delete-1"', html)
    assert 'href="/stale/preview?pulled=10&amp;pushed=7"' in html
    assert "never since" in html and "before " in html
    freed = int(re.search(r'class="bytes-freed" data-bytes="(\d+)"', html).group(1))
    assert freed > 2 * 3000  # both images' own layers, configs and manifests


def test_the_stale_view_goes_through_the_resolver(shop, personas):
    viewer = personas["a_viewer"].client().get("/stale/", {"pulled": 0, "pushed": 0})
    html = viewer.content.decode()
    assert stale_rows(html) == {shop.digest(ref) for ref in TAGS.values()}
    assert "bulk-delete" not in html and "/stale/preview" not in html  # may not delete
    other = personas["b_admin"].client().get("/stale/", {"pulled": 0, "pushed": 0})
    assert stale_rows(other.content.decode()) == {shop.digest("team-b/other:x")}
    assert "team-a" not in other.content.decode()


def test_the_stale_preview_is_a_retention_dry_run_that_cannot_be_applied(shop, personas):
    html = personas["a_deleter"].client().get("/stale/preview", {"pulled": 10, "pushed": 7})
    text = html.content.decode()
    assert set(re.findall(r'<tr class="delete" data-tag="([^"]+)"', text)) == {"b", "c"}
    assert "/apply" not in text and "nothing can be applied from here" in text


@pytest.mark.parametrize(
    "query", [{"pulled": "x"}, {"pushed": "-1"}, {"pulled": "99999999"}, {"page": "0"}]
)
def test_bad_numbers_are_a_400(shop, personas, query):
    response = personas["a_deleter"].client().get("/stale/", query)
    assert response.status_code == 400


def test_pages_of_stale_images(shop, personas, monkeypatch):
    from registryui.cleanup import stale

    monkeypatch.setattr(stale, "PER_PAGE", 3)
    client = personas["a_deleter"].client()
    first = client.get("/stale/", {"pulled": 0, "pushed": 0}).content.decode()
    second = client.get("/stale/", {"pulled": 0, "pushed": 0, "page": 2}).content.decode()
    assert len(stale_rows(first)) == 3 and len(stale_rows(second)) == 1
    assert stale_rows(first) | stale_rows(second) == {shop.digest(r) for r in TAGS.values()}
    assert 'data-count="4"' in first and 'data-count="4"' in second  # the whole list
    assert client.get("/stale/", {"page": 3, "pulled": 0, "pushed": 0}).status_code == 404


# -- after the pull history is pruned (PULL_HISTORY_DAYS) -------------------------------------


def test_after_pruning_a_rule_reaching_past_the_history_keeps_every_image(shop, settings):
    """b was pulled 20 days ago; with 10 days of history its pull is forgotten. A 30-day rule
    must not take it for never pulled: tracking counts from the oldest day kept."""
    from registryui.sync import worker

    settings.PULL_HISTORY_DAYS = 10
    worker.prune()  # the sync worker's housekeeping
    first_kept = timezone.localdate() - timedelta(days=10)
    assert set(PullDay.objects.values_list("tag", flat=True)) == {"a", "x"}
    found = verdicts(not_pulled_days=30)
    assert going(found) == set()
    assert found["b"].reasons == [
        f"pull tracking started {first_kept:%Y-%m-%d}, less than 30 days ago"
    ]
    # Within the history the rule reads what it needs, and says since when.
    found = verdicts(not_pulled_days=5)
    assert going(found) == {"b", "c", "d"}
    assert found["a"].reasons == [
        f"pulled {day(timezone.now() - timedelta(days=1))}, less than 5 days ago"
    ]
    assert found["b"].evidence == [f"never pulled since {first_kept:%Y-%m-%d}"]


def test_after_pruning_the_stale_view_says_since_when_pulls_are_known(shop, personas, settings):
    from registryui.sync import worker

    settings.PULL_HISTORY_DAYS = 10
    worker.prune()
    client = personas["a_deleter"].client()
    html = client.get("/stale/", {"pulled": 30, "pushed": 7}).content.decode()
    first_kept = timezone.localdate() - timedelta(days=10)
    assert f"Pulls are recorded since {first_kept:%Y-%m-%d} 00:00, less than 30 days" in html
    # a was pulled yesterday: still known, so not stale; b's pull is beyond the history.
    assert stale_rows(html) == {shop.digest(TAGS["b"]), shop.digest(TAGS["c"])}
    preview = client.get("/stale/preview", {"pulled": 30, "pushed": 7}).content.decode()
    assert not re.findall(r'<tr class="delete" data-tag="([^"]+)"', preview)
