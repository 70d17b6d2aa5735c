"""Deletes in the registry under faults and races (issue 12, items 1-3).

A real registry 2.8 stands behind ``FaultProxy``; the faults that need the registry to act
first (a 500 after a PUT was stored, a rewritten digest header, an answer held back while a push
lands) are ``registryui.devtools.faultrules`` routes. Every test asserts what the registry
itself holds afterwards (tags list, HEADs), read directly, not through the proxy.
"""

from __future__ import annotations

import pytest
from django.db import connections
from django.test import Client

from registryui.core.models import AuditEntry
from registryui.devtools.faultrules import AppliedThenFailed, Delay, RewriteHeader
from tests.personas import personas as _personas  # noqa: F401 (the fixture)

from .cleanup_support import EVENTS_TOKEN, lose_a_push_to_the_delete, push_notification, stage

REPO = "team-a/app"


@pytest.fixture
def people(_personas):  # noqa: F811 (the fixture imported above)
    """The personas of ``tests/personas.py`` (a_deleter may delete in team-a/*)."""
    return _personas


@pytest.fixture
def app(settings, registry_factory):
    """team-a/app: t1, t2, t3 on one image, ``other`` on another; synced."""
    s = stage(settings, registry_factory)
    s.image = s.put(REPO, "t1", "shared")
    for tag in ("t2", "t3"):
        assert s.put(REPO, tag, "shared") == s.image
    s.other = s.put(REPO, "other", "other")
    s.sync()
    yield s
    s.proxy.stop()


def confirm(client, app, tag="t1"):
    return client.post(f"/r/{REPO}:{tag}/-/delete", {"confirm": f"{tag}@{app.image}"}, follow=True)


# -- 1. trusting a header --------------------------------------------------------------------


@pytest.mark.django_db
def test_a_digest_header_naming_the_image_stops_the_delete_and_keeps_every_tag(app, people):
    """The proxy answers the placeholder's PUT with the image's own digest. Deleting by that
    header took t1, t2 and t3; now the app checks it against the bytes it sent and stops."""
    lie = RewriteHeader(app.proxy, method="PUT", path=rf"/v2/{REPO}/manifests/t1$", value=app.image)
    app.proxy.route(lie)

    response = confirm(people["a_deleter"].client(), app)

    html = response.content.decode()
    assert lie.hits == 1
    assert response.status_code == 502, html
    assert "Deleted t1" not in html
    assert "Nothing was deleted: t1 was put back on" in html
    assert "deletes only by a digest it can check" in html
    # The registry: every tag is there, on the image, and no placeholder is left tagged.
    assert app.tags(REPO) == ["other", "t1", "t2", "t3"]
    assert {app.head(REPO, t) for t in ("t1", "t2", "t3")} == {app.image}
    assert app.head(REPO, app.image) == app.image
    assert app.db_tags(REPO)["t1"] == app.image
    [entry] = AuditEntry.objects.filter(action="delete_tag")
    assert entry.result == "failed"
    assert app.head(REPO, entry.details["placeholder"]) is None  # cleaned up


# -- 2. a push during the delete --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_push_landing_while_the_fresh_head_is_answered_is_put_back(app, people):
    """The fresh HEAD before the placeholder's PUT reaches the client 2.5 s late; meanwhile
    t1 is pushed (to the registry itself) and the push's notification reaches the app. The
    placeholder overwrote that push and deleted it; now the app sees the recorded push and
    puts the pushed image back on t1."""
    pushed: dict[str, str] = {}

    def push_meanwhile() -> None:
        pushed["digest"] = app.put(REPO, "t1", "pushed meanwhile")
        size = app.direct.head_manifest(REPO, pushed["digest"]).size
        answer = Client().post(
            "/events/registry",
            push_notification(REPO, "t1", pushed["digest"], size),
            content_type="application/vnd.docker.distribution.events.v1+json",
            headers={"Authorization": f"Bearer {EVENTS_TOKEN}"},
        )
        assert answer.status_code == 200, answer.content
        connections.close_all()

    # The first HEAD of t1 is the re-check of the confirmation; the second is the fresh one.
    slow = Delay(
        app.proxy,
        method="HEAD",
        path=rf"/v2/{REPO}/manifests/t1$",
        after=1,
        seconds=2.5,
        during=push_meanwhile,
    )
    app.proxy.route(slow)

    response = confirm(people["a_deleter"].client(), app)

    html = response.content.decode()
    assert slow.hits == 1 and not slow.errors, slow.errors
    assert "pushed again" in html and "put back" in html, html
    assert response.status_code == 409
    # The registry: t1 serves what was pushed; the siblings never moved; no placeholder left.
    assert app.head(REPO, "t1") == pushed["digest"]
    assert app.tags(REPO) == ["other", "t1", "t2", "t3"]
    assert app.head(REPO, "t2") == app.head(REPO, "t3") == app.image
    for digest in app.placeholders_in(REPO):
        assert app.head(REPO, digest) is None
    assert app.db_tags(REPO)["t1"] == pushed["digest"]


@pytest.mark.django_db(transaction=True)
def test_a_push_that_cannot_be_put_back_gets_a_one_click_restore(app, people):
    """As above, but putting the pushed image back fails (the proxy refuses that PUT): the page
    says so plainly and offers a button; the button (a POST, CSRF, audited) puts it back."""
    pushed = lose_a_push_to_the_delete(app, REPO, "t1")
    client = Client(enforce_csrf_checks=True)
    client.force_login(people["a_deleter"].user)
    page = client.get(f"/r/{REPO}:t1/-/delete")
    token = page.cookies["csrftoken"].value

    response = client.post(
        f"/r/{REPO}:t1/-/delete",
        {"confirm": f"t1@{app.image}", "csrfmiddlewaretoken": token},
        follow=True,
    )

    html = response.content.decode()
    assert "putting it back failed" in html, html
    assert f'action="/r/{REPO}@{pushed["digest"]}/-/restore"' in html
    assert app.head(REPO, "t1") is None  # the registry really lost the tag: said, not hidden
    app.proxy.clear()

    restored = client.post(
        f"/r/{REPO}@{pushed['digest']}/-/restore",
        {"tag": "t1", "csrfmiddlewaretoken": token},
        follow=True,
    )

    assert restored.status_code == 200, restored.content.decode()
    assert app.head(REPO, "t1") == pushed["digest"]
    assert app.db_tags(REPO)["t1"] == pushed["digest"]
    [entry] = AuditEntry.objects.filter(action="restore_tag")
    assert (entry.result, entry.reference, entry.digest) == ("ok", "t1", pushed["digest"])
    # Without the CSRF token, or for a restore nobody offered, nothing happens.
    assert (
        client.post(
            f"/r/{REPO}@{pushed['digest']}/-/restore", {"tag": "t1"}, follow=True
        ).status_code
        == 403
    )
    refused = client.post(
        f"/r/{REPO}@{app.image}/-/restore", {"tag": "t1", "csrfmiddlewaretoken": token}, follow=True
    )
    assert refused.status_code == 409
    assert app.head(REPO, "t1") == pushed["digest"]


# -- 3. a failure after a step was applied -----------------------------------------------------


@pytest.mark.django_db
def test_a_500_after_the_placeholder_was_stored_rolls_the_tag_back(app, people):
    """The registry stores the placeholder on t1, then the client hears 500. t1 served the
    placeholder while the page said "Nothing was changed"; now the app reads the tag back,
    puts the image back on it and deletes the placeholder."""
    fault = AppliedThenFailed(app.proxy, method="PUT", path=rf"/v2/{REPO}/manifests/t1$")
    app.proxy.route(fault)

    response = confirm(people["a_deleter"].client(), app)

    html = response.content.decode()
    assert fault.hits == 1
    assert response.status_code == 502
    assert "Nothing was deleted: t1 was put back on" in html, html
    assert app.head(REPO, "t1") == app.image
    assert app.tags(REPO) == ["other", "t1", "t2", "t3"]
    [entry] = AuditEntry.objects.filter(action="delete_tag")
    assert entry.details["rolled_back"] is True
    assert app.head(REPO, entry.details["placeholder"]) is None


@pytest.mark.django_db
def test_a_failed_placeholder_delete_leaves_no_placeholder_behind(app, people):
    """The DELETE of the placeholder is refused once (503). The tag is rolled back, and the
    placeholder, untagged then, is deleted after all (it used to be left behind unsaid)."""
    # DELETEs: t1 by tag (2.8 refuses), the probe digest, then the placeholder.
    app.proxy.fail(503, method="DELETE", path=rf"/v2/{REPO}/manifests/sha256:", after=1, times=1)

    response = confirm(people["a_deleter"].client(), app)

    html = response.content.decode()
    assert "Nothing was deleted: t1 was put back on" in html, html
    assert "the placeholder was removed" in html
    assert app.head(REPO, "t1") == app.image
    throwaway = app.placeholders_in(REPO)[1]  # after the probe's random digest
    assert app.head(REPO, throwaway) is None


@pytest.mark.django_db
def test_a_500_after_the_placeholder_delete_was_applied_finishes(app, people):
    """The placeholder's DELETE is applied, then answered 500: the tag is gone as asked, so
    the app says it deleted t1 (not "nothing changed", and without pushing t1 back)."""
    app.proxy.route(
        AppliedThenFailed(
            app.proxy, method="DELETE", path=rf"/v2/{REPO}/manifests/sha256:", after=1
        )
    )

    response = confirm(people["a_deleter"].client(), app)

    html = response.content.decode()
    assert response.status_code == 200, html
    assert "Deleted t1; kept t2, t3." in html
    assert app.tags(REPO) == ["other", "t2", "t3"]
    assert app.head(REPO, "t2") == app.image
    assert "t1" not in app.db_tags(REPO)


@pytest.mark.django_db
def test_a_500_after_an_image_delete_was_applied_reports_the_deletion(app, people):
    """Deleting the image ``other`` is applied, then answered 500: the page and the database
    say it is deleted (they said "Nothing was changed" while the registry had lost it)."""
    app.proxy.route(
        AppliedThenFailed(app.proxy, method="DELETE", path=rf"/v2/{REPO}/manifests/{app.other}$")
    )
    client = people["a_deleter"].client()

    response = client.post(
        f"/r/{REPO}:other/-/delete", {"confirm": f"other@{app.other}"}, follow=True
    )

    html = response.content.decode()
    assert app.head(REPO, app.other) is None
    assert response.status_code == 200, html
    assert "Nothing was changed" not in html
    assert "the image is gone" in html
    assert "other" not in app.db_tags(REPO)
    assert app.tags(REPO) == ["t1", "t2", "t3"]


@pytest.mark.django_db
def test_a_500_after_a_retag_was_applied_reports_the_new_tag(app, people):
    """Adding tag ``copy`` is stored, then answered 500: the page says it was tagged."""
    app.proxy.route(AppliedThenFailed(app.proxy, method="PUT", path=rf"/v2/{REPO}/manifests/copy$"))
    client = people["a_deleter"].client()

    response = client.post(f"/r/{REPO}:other/-/retag", {"new_tag": "copy"}, follow=True)

    html = response.content.decode()
    assert app.head(REPO, "copy") == app.other
    assert response.status_code == 200, html
    assert "Nothing was changed" not in html
    assert app.db_tags(REPO)["copy"] == app.other


@pytest.mark.django_db(transaction=True)
def test_a_tag_pushed_onto_an_image_while_it_is_deleted_is_put_back(app, people):
    """Delete-image reads the tags list; its answer reaches the client late, and meanwhile
    ``late`` is pushed onto the same image (and notified). Deleting the digest took ``late``
    too, unconfirmed; now the app puts the image back under ``late`` and says so."""

    def push_meanwhile() -> None:
        assert app.put(REPO, "late", "other") == app.other
        size = app.direct.head_manifest(REPO, app.other).size
        Client().post(
            "/events/registry",
            push_notification(REPO, "late", app.other, size),
            content_type="application/vnd.docker.distribution.events.v1+json",
            headers={"Authorization": f"Bearer {EVENTS_TOKEN}"},
        )
        connections.close_all()

    slow = Delay(
        app.proxy, method="GET", path=rf"/v2/{REPO}/tags/list", seconds=1.5, during=push_meanwhile
    )
    app.proxy.route(slow)

    response = (
        people["a_deleter"]
        .client()
        .post(
            f"/r/{REPO}@{app.other}/-/delete-image", {"confirm": f"other@{app.other}"}, follow=True
        )
    )

    html = response.content.decode()
    assert slow.hits == 1 and not slow.errors, slow.errors
    assert "late was pushed onto" in html and "put back under that tag" in html, html
    assert app.head(REPO, "other") is None  # the confirmed tag is gone
    assert app.head(REPO, "late") == app.other  # the unconfirmed one is back
    assert app.tags(REPO) == ["late", "t1", "t2", "t3"]
    assert app.db_tags(REPO).get("late") == app.other
