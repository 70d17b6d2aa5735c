"""``POST /api/v1/manifests/NAME@DIGEST/-/restore``: the API's "Put it back" button, against a
real registry 2.8 behind a ``FaultProxy``.

A restore is offered only when a push landed on a tag while a delete was taking it and putting
the pushed image back failed; the fault proxy produces exactly that (the push is held back
into the delete by ``Delay``, the put-back PUT is refused), as in
``tests/faults/test_delete.py``. The registry is read directly, never through the proxy.
"""

from __future__ import annotations

import pytest
from django.db import connections
from django.test import Client

from registryui.core.models import AuditEntry
from registryui.devtools.faultrules import Delay
from registryui.teams.models import Level
from tests.faults.cleanup_support import EVENTS_TOKEN, push_notification, stage

from .support import Bearer, assert_problem, personal_token

REPO = "team-a/app"


@pytest.fixture
def app(settings, registry_factory):
    """team-a/app: t1, t2 on one image; synced."""
    s = stage(settings, registry_factory)
    s.image = s.put(REPO, "t1", "shared")
    assert s.put(REPO, "t2", "shared") == s.image
    s.sync()
    yield s
    s.proxy.stop()


def lose_a_push_to_the_delete(app) -> dict[str, str]:
    """Hold the delete's fresh HEAD of t1 back while t1 is pushed (and notified), and refuse
    every later PUT of t1: the placeholder takes the tag from the push, which is not put back."""
    pushed: dict[str, str] = {}

    def push_meanwhile() -> None:
        pushed["digest"] = app.put(REPO, "t1", "pushed meanwhile")
        size = app.direct.head_manifest(REPO, pushed["digest"]).size
        Client().post(
            "/events/registry",
            push_notification(REPO, "t1", pushed["digest"], size),
            content_type="application/vnd.docker.distribution.events.v1+json",
            headers={"Authorization": f"Bearer {EVENTS_TOKEN}"},
        )
        connections.close_all()

    # The first HEAD of t1 is the re-check of the digest sent; the second is the fresh one.
    app.proxy.route(
        Delay(
            app.proxy,
            method="HEAD",
            path=rf"/v2/{REPO}/manifests/t1$",
            after=1,
            seconds=1.0,
            during=push_meanwhile,
        )
    )
    app.proxy.fail(503, method="PUT", path=rf"/v2/{REPO}/manifests/t1$", after=1)
    return pushed


@pytest.mark.django_db(transaction=True)
def test_a_tag_a_racing_delete_took_is_put_back_at_its_digest(app, personas):
    pushed = lose_a_push_to_the_delete(app)
    api = Bearer(personal_token(personas["a_deleter"].user))

    body = assert_problem(api.delete(f"/tags/{REPO}:t1?digest={app.image}"), 502, "registry_failed")

    [outcome] = body["execution"]["outcomes"]
    assert outcome["result"] == "failed"
    assert outcome["restore"] == {"tag": "t1", "digest": pushed["digest"]}
    assert app.head(REPO, "t1") is None  # the registry really lost the tag
    app.proxy.clear()
    restore = f"/manifests/{REPO}@{pushed['digest']}/-/restore"

    # A pull-only token of the same user, and a restore no delete offered: nothing changes.
    viewer = Bearer(personal_token(personas["a_deleter"].user, level=Level.VIEW, name="ro"))
    assert_problem(viewer.post(restore, {"tag": "t1"}), 403, "forbidden")
    assert_problem(
        api.post(f"/manifests/{REPO}@{app.image}/-/restore", {"tag": "t1"}),
        409,
        "nothing_to_restore",
    )
    assert_problem(api.post(restore, {"tag": "t2"}), 409, "nothing_to_restore")
    assert app.head(REPO, "t1") is None
    assert not AuditEntry.objects.filter(action="restore_tag").exists()

    response = api.post(restore, {"tag": "t1"})

    assert response.status_code == 200, response.content
    assert response.json() == {
        "repository": REPO,
        "tag": "t1",
        "digest": pushed["digest"],
        "status": "done",
        "message": response.json()["message"],
        "now_digest": None,
    }
    assert app.head(REPO, "t1") == pushed["digest"]
    assert app.head(REPO, "t2") == app.image
    assert app.db_tags(REPO) == {"t1": pushed["digest"], "t2": app.image}
    [entry] = AuditEntry.objects.filter(action="restore_tag")
    assert (entry.result, entry.reference, entry.digest) == ("ok", "t1", pushed["digest"])
    assert (entry.via, entry.actor) == ("api", personas["a_deleter"].user)

    # Pushed again since: a restore never overwrites the tag.
    later = app.put(REPO, "t1", "pushed later")
    body = assert_problem(api.post(restore, {"tag": "t1"}), 409, "changed")
    assert body["now_digest"] == later
    assert app.head(REPO, "t1") == later
