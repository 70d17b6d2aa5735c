"""``POST /api/v1/manifests/NAME@DIGEST/-/restore``: the API's "Put it back" button, against a
real registry 2.8 behind a ``FaultProxy``.

A restore is offered only when a push landed on a tag while a delete was taking it and putting
the pushed image back failed; the fault proxy produces exactly that
(``cleanup_support.lose_a_push_to_the_delete``, as ``tests/faults/test_delete.py`` does). The
registry is read directly, never through the proxy.
"""

from __future__ import annotations

import pytest

from registryui.core.models import AuditEntry
from registryui.teams.models import Level
from tests.faults.cleanup_support import lose_a_push_to_the_delete, stage

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


@pytest.mark.django_db(transaction=True)
def test_a_tag_a_racing_delete_took_is_put_back_at_its_digest(app, personas):
    pushed = lose_a_push_to_the_delete(app, REPO, "t1")
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
