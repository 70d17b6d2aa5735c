"""Retention policies start off, and are switched on only from their dry run (issue 15 item 6)."""

from __future__ import annotations

import re

import pytest

from registryui.cleanup.models import RetentionPolicy
from registryui.core.models import AuditEntry

from .support import manipulating_requests


@pytest.fixture
def many(world, personas):
    world.image("a", size=2100)
    world.image("b", size=2200)
    world.push("a", "team-a/many:old-1")
    world.push("b", "team-a/many:new-2")
    world.sync()
    policy = RetentionPolicy.objects.create(name="tidy", repository_pattern="team-a/*", keep_last=1)
    return world, policy


def test_a_new_policy_starts_off_and_the_list_reads_as_a_sentence(many, personas):
    _, policy = many
    assert policy.enabled is False
    html = personas["a_deleter"].client().get("/retention/").content.decode()
    row = html.split("<tbody>", 1)[1].split("</tr>", 1)[0]
    assert "matches 1 repository you may delete in" in row
    assert '<span class="badge warning">off</span>' in row
    RetentionPolicy.objects.create(name="all", repository_pattern="*", keep_last=3)
    html = personas["superuser"].client().get("/retention/").content.decode()
    assert "matches 2 repositories you may delete in" not in html  # only team-a/many exists
    assert html.count("matches 1 repository you may delete in") == 2


def test_the_admin_cannot_switch_a_policy_on(db, personas):
    client = personas["superuser"].client()
    created = client.post(
        "/admin/cleanup/retentionpolicy/add/",
        {
            "name": "weekly",
            "repository_pattern": "team-a/*",
            "keep_last": "5",
            "older_than_days": "",
            "keep_regex": "",
            "enabled": "on",
            "description": "",
        },
    )
    assert created.status_code == 302
    policy = RetentionPolicy.objects.get(name="weekly")
    assert policy.enabled is False
    change = client.get(f"/admin/cleanup/retentionpolicy/{policy.pk}/change/").content.decode()
    assert 'name="enabled"' not in change
    assert f'href="/retention/{policy.pk}/"' in change


def test_switching_on_shows_the_dry_run_and_only_its_post_enables(many, personas):
    world, policy = many
    client = personas["superuser"].client()
    preview = client.get(f"/retention/{policy.pk}/").content.decode()
    assert f'href="/retention/{policy.pk}/enable"' in preview and "Switch on…" in preview
    mark = world.registry.mark()

    page = client.get(f"/retention/{policy.pk}/enable")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Switch on <q>tidy</q>?" in html
    assert "it would delete 1 tag from 1 repository" in html
    assert re.search(r'<tr class="delete" data-tag="old-1">', html)
    assert re.search(r'<tr class="keep" data-tag="new-2">', html)
    fingerprint = re.search(r'name="fingerprint" value="([0-9a-f]+)"', html).group(1)
    assert RetentionPolicy.objects.get().enabled is False  # a GET changes nothing

    stale = client.post(f"/retention/{policy.pk}/enable", {"fingerprint": "0" * 32})
    assert stale.status_code == 409 and "the policy is still off" in stale.content.decode()
    assert RetentionPolicy.objects.get().enabled is False

    done = client.post(f"/retention/{policy.pk}/enable", {"fingerprint": fingerprint})
    assert done.status_code == 302 and done["Location"] == f"/retention/{policy.pk}/"
    assert RetentionPolicy.objects.get().enabled is True
    after = client.get(done["Location"]).content.decode()
    assert "tidy is switched on" in after and "Switch off" in after
    [entry] = AuditEntry.objects.filter(action=AuditEntry.Action.RETENTION_ENABLED)
    assert entry.reference == "tidy" and entry.details["previewed_tags"] == 1
    # Switching on deleted nothing.
    assert manipulating_requests(world.registry.requests_since(mark)) == []
    assert world.tags("team-a/many").keys() == {"old-1", "new-2"}

    off = client.post(f"/retention/{policy.pk}/disable")
    assert off.status_code == 302 and RetentionPolicy.objects.get().enabled is False
    assert AuditEntry.objects.filter(action=AuditEntry.Action.RETENTION_DISABLED).count() == 1


def test_who_may_switch(many, personas):
    _, policy = many
    deleter = personas["a_deleter"].client()
    # Deleters preview and apply, but switching is for who may change policies.
    assert "Switch on…" not in deleter.get(f"/retention/{policy.pk}/").content.decode()
    assert deleter.get(f"/retention/{policy.pk}/enable").status_code == 403
    assert deleter.post(f"/retention/{policy.pk}/enable", {"fingerprint": "x"}).status_code == 403
    assert deleter.post(f"/retention/{policy.pk}/disable").status_code == 403
    assert personas["b_admin"].client().get(f"/retention/{policy.pk}/enable").status_code == 404
    assert personas["no_team"].client().get(f"/retention/{policy.pk}/enable").status_code == 403
    assert personas["anonymous"].client().get(f"/retention/{policy.pk}/enable").status_code == 302
    assert RetentionPolicy.objects.get().enabled is False
