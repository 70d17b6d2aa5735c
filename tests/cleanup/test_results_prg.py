"""Post/redirect/get for cleanup actions (issue 15 item 8): a POST acts once, then redirects to
a stored result that a reload shows again without acting, to its own user only."""

from __future__ import annotations

import re

import pytest

from registryui.cleanup.models import ActionResult, RetentionPolicy
from registryui.core.models import AuditEntry
from registryui.teams.models import Team
from tests.cleanup.support import manipulating_requests

pytestmark = pytest.mark.django_db

RESULT = re.compile(r"^/results/[0-9a-f-]{36}/$")


def unmasked(html: str) -> str:
    return re.sub(r"[A-Za-z0-9]{64}", "TOKEN", html)


@pytest.fixture
def app(world):
    world.image("one")
    world.image("two")
    world.push("one", "team-a/app:1.0")
    world.push("one", "team-a/app:stable")
    world.push("two", "team-a/app:2.0")
    world.push("two", "team-a/app:old")
    world.sync()
    return world


def reload_is_inert(world, client, location: str, expected: str, status: int = 200) -> str:
    """GET the result twice; the second time nothing reaches the registry or the audit log."""
    first = client.get(location)
    assert first.status_code == status and expected in first.content.decode()
    mark, entries = world.registry.mark(), AuditEntry.objects.count()
    again = client.get(location)
    assert again.status_code == status
    # The same page, but for the CSRF token, which is masked afresh on every response.
    assert unmasked(again.content.decode()) == unmasked(first.content.decode())
    assert manipulating_requests(world.registry.requests_since(mark)) == []
    assert AuditEntry.objects.count() == entries
    return first.content.decode()


def test_a_delete_redirects_to_a_result_that_survives_reload(app, personas):
    client = personas["a_deleter"].client()
    response = client.post(
        "/r/team-a/app:1.0/-/delete", {"confirm": f"1.0@{app.pushed['team-a/app:1.0']}"}
    )
    assert response.status_code == 302 and RESULT.match(response["Location"])
    html = reload_is_inert(app, client, response["Location"], "Done: 1 tag deleted")
    assert "<h1>Delete team-a/app:1.0</h1>" in html
    assert '<tr class="outcome done">' in html and "tag <code>1.0</code>" in html
    assert app.digest("team-a/app:stable") == app.pushed["team-a/app:stable"]
    row = ActionResult.objects.get()
    assert row.user == personas["a_deleter"].user and row.repository == "team-a/app"


def test_image_bulk_retag_and_retention_results_are_pages_too(app, personas):
    client = personas["a_deleter"].client()
    two = app.pushed["team-a/app:2.0"]
    image = client.post(
        f"/r/team-a/app@{two}/-/delete-image", {"confirm": [f"2.0@{two}", f"old@{two}"]}
    )
    html = reload_is_inert(app, client, image["Location"], "Done: 2 tags deleted")
    assert "Freed after garbage-collect" in html

    retag = client.post("/r/team-a/app:1.0/-/retag", {"new_tag": "blessed"})
    assert RESULT.match(retag["Location"])
    html = reload_is_inert(app, client, retag["Location"], "<code>team-a/app:blessed</code>")
    assert 'href="/r/team-a/app:blessed"' in html
    assert app.digest("team-a/app:blessed") == app.pushed["team-a/app:1.0"]

    one = app.pushed["team-a/app:1.0"]
    bulk = client.post("/r/team-a/app/-/bulk-delete", {"confirm": [f"1.0@{one}", f"blessed@{one}"]})
    reload_is_inert(app, client, bulk["Location"], "Done: 2 tags deleted")
    assert app.tags("team-a/app") == {"stable": one}

    policy = RetentionPolicy.objects.create(
        name="tidy",
        repository_pattern="team-a/*",
        keep_last=0,
        older_than_days=0,
        keep_regex="^nothing$",
        enabled=True,
    )
    preview = client.get(f"/retention/{policy.pk}/").content.decode()
    fingerprint = re.search(r'name="fingerprint" value="([0-9a-f]+)"', preview).group(1)
    run = client.post(f"/retention/{policy.pk}/apply", {"fingerprint": fingerprint})
    assert RESULT.match(run["Location"])
    html = reload_is_inert(app, client, run["Location"], "1 tag(s) deleted in 1 repositories")
    assert "<h1>Applied <q>tidy</q></h1>" in html
    assert re.search(r"image <code>[0-9a-f]+</code> with stable: deleted", html), html
    assert ActionResult.objects.count() == 4  # image, retag, bulk, retention


def test_a_result_is_shown_only_to_who_acted_and_only_while_they_may_see_it(app, personas):
    client = personas["a_deleter"].client()
    response = client.post(
        "/r/team-a/app:1.0/-/delete", {"confirm": f"1.0@{app.pushed['team-a/app:1.0']}"}
    )
    location = response["Location"]
    for other in ("a_viewer", "superuser", "b_admin"):
        assert personas[other].client().get(location).status_code == 404
    assert personas["anonymous"].client().get(location).status_code == 302
    assert client.get("/results/00000000-0000-4000-8000-000000000000/").status_code == 404
    assert client.get("/results/not-a-uuid/").status_code == 404
    assert client.post(location).status_code == 405
    # Losing access to the repository hides the result too (hidden → 404, as everywhere).
    deleter = personas["a_deleter"].fresh_user()
    for team in Team.objects.filter(members=deleter):
        team.members.remove(deleter)
    assert personas["a_deleter"].client().get(location).status_code == 404


def test_a_failed_result_keeps_its_status_on_reload(app, personas):
    """A refused delete (the registry's deletes switched off) is a result page with 409."""
    client = personas["a_deleter"].client()
    app.registry.stop()
    app.registry.delete_enabled = False
    app.registry.start()
    response = client.post(
        "/r/team-a/app:2.0/-/delete", {"confirm": f"2.0@{app.pushed['team-a/app:2.0']}"}
    )
    assert response.status_code == 302
    reload_is_inert(app, client, response["Location"], "does not allow deletes", status=409)
