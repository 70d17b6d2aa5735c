"""Retention acting on a build date (issue 12, item 4), against a real registry 2.8.

A tag first imported by a sync took its image's build time as its change time, so "older than
30 days" deleted a tag pushed minutes earlier (an old build tagged again is common). Age now
counts from when the UI first saw the tag (``Tag.first_seen``), or a later move or push; a tag
whose age is unknown is kept, and the dry run says so.
"""

from __future__ import annotations

import importlib
import re
from datetime import timedelta

import pytest
from django.apps import apps
from django.utils import timezone

from registryui.catalog.models import Tag
from registryui.cleanup.models import RetentionPolicy
from registryui.devtools.seed import Seeder
from tests.personas import personas as _personas  # noqa: F401 (the fixture)

from .cleanup_support import stage

pytestmark = pytest.mark.django_db
REPO = "team-a/builds"


@pytest.fixture
def people(_personas):  # noqa: F811 (the fixture imported above)
    return _personas


@pytest.fixture
def builds(settings, registry_factory):
    """team-a/builds: ``zz-new`` (an image built in 2020, pushed just now) and ``old`` (a
    2020 build the UI has known for 90 days); a policy deleting tags older than 30 days."""
    s = stage(settings, registry_factory)
    old_builds = Seeder(s.direct, created="2020-01-01T00:00:00Z")
    s.new = old_builds.put(REPO, "zz-new", note="rebuilt-from-2020")
    s.old = old_builds.put(REPO, "old", note="really-old")
    s.sync()
    long_ago = timezone.now() - timedelta(days=90)
    Tag.objects.filter(repository__name=REPO, name="old").update(
        first_seen=long_ago, first_seen_at=long_ago, changed_at=long_ago
    )
    s.policy = RetentionPolicy.objects.create(
        name="month",
        repository_pattern="team-a/*",
        keep_last=0,
        older_than_days=30,
        enabled=True,
    )
    yield s
    s.proxy.stop()


def preview_page(people, policy) -> str:
    response = people["a_deleter"].client().get(f"/retention/{policy.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def apply(people, policy, html: str):
    fingerprint = re.search(r'name="fingerprint" value="([0-9a-f]+)"', html).group(1)
    return (
        people["a_deleter"]
        .client()
        .post(f"/retention/{policy.pk}/apply", {"fingerprint": fingerprint}, follow=True)
    )


def test_a_tag_pushed_minutes_ago_with_an_old_build_date_is_not_old(builds, people):
    # The first import still records the build time as the last change (the repository
    # page's "Last change"), but retention counts from when the UI first saw the tag.
    tag = Tag.objects.get(repository__name=REPO, name="zz-new")
    assert tag.changed_at.year == 2020
    assert tag.first_seen > timezone.now() - timedelta(minutes=5)

    html = preview_page(people, builds.policy)

    assert re.search(r'data-tag="zz-new">.*?keep: seen or changed less than 30 days', html, re.S)
    assert re.search(r'data-tag="old">.*?<strong>delete</strong>', html, re.S)
    response = apply(people, builds.policy, html)

    assert response.status_code == 200, response.content.decode()
    # The registry: the fresh tag stays, the really old one is gone.
    assert builds.tags(REPO) == ["zz-new"]
    assert builds.head(REPO, "zz-new") == builds.new
    assert builds.head(REPO, builds.old) is None


def test_a_tag_of_unknown_age_is_kept_and_the_dry_run_says_so(builds, people):
    # No trustworthy first-seen time: a row the migration could not date, or a clock that
    # ran ahead when the row was written.
    Tag.objects.filter(repository__name=REPO, name="old").update(first_seen=None)
    Tag.objects.filter(repository__name=REPO, name="zz-new").update(
        first_seen=timezone.now() + timedelta(days=3)
    )

    html = preview_page(people, builds.policy)

    assert "2 tags kept because their age is unknown" in html
    assert html.count("<strong>unknown</strong>") == 2
    assert "age unknown" in html
    assert "Apply: delete" not in html  # nothing to delete: no button
    assert builds.tags(REPO) == ["old", "zz-new"]


def test_the_migration_dates_existing_rows_by_their_own_creation_never_later_than_now(builds):
    migration = importlib.import_module("registryui.catalog.migrations.0005_tag_first_seen")
    ahead = timezone.now() + timedelta(days=1)
    Tag.objects.filter(repository__name=REPO, name="zz-new").update(
        first_seen=None, first_seen_at=ahead
    )
    imported = timezone.now() - timedelta(days=10)
    Tag.objects.filter(repository__name=REPO, name="old").update(
        first_seen=None, first_seen_at=imported, changed_at=timezone.now() - timedelta(days=2000)
    )

    migration.fill_first_seen(apps, None)

    rows = dict(Tag.objects.filter(repository__name=REPO).values_list("name", "first_seen"))
    assert rows["old"] == imported  # its own creation time, not its build time
    assert timezone.now() - timedelta(minutes=1) < rows["zz-new"] <= timezone.now()


def test_the_most_recent_tags_are_the_most_recently_seen_not_the_newest_builds(builds, people):
    """A "keep the last 1" policy kept the tag with the newest build date, and deleted the
    one pushed minutes ago with an old build."""
    builds.policy.older_than_days, builds.policy.keep_last = None, 1
    builds.policy.save()

    html = preview_page(people, builds.policy)

    assert re.search(r'data-tag="zz-new">.*?keep: one of the 1 most recent', html, re.S)
    assert apply(people, builds.policy, html).status_code == 200
    assert builds.tags(REPO) == ["zz-new"]
