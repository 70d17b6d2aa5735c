""" "Add tags": several new tags on one image in one form (``latest beta dev``), each checked
against the grammar and reported (added, moved after confirmation, refused); POST,
permission-checked, audited, post/redirect/get. A real registry 2.8 answers every step."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.cleanup.support import audit, manipulating_requests

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(world):
    world.image("one")
    world.image("two")
    world.push("one", "team-a/api:1.0")
    world.push("two", "team-a/api:2.0")
    world.push("two", "team-a/api:beta")
    world.sync()
    return world


def results(html: str) -> dict[str, str]:
    """tag → status word of the result table."""
    return dict(
        re.findall(
            r'<tr class="\w+" data-tag="([^"]+)">.*?<span class="badge[^"]*">([^<]+)</span>',
            html,
            re.S,
        )
    )


def test_several_tags_are_added_and_each_is_reported(api, personas):
    client = personas["a_deleter"].client()
    form = client.get("/r/team-a/api:1.0/-/add-tags")
    assert form.status_code == 200
    assert 'name="tags"' in form.content.decode()

    response = client.post(
        "/r/team-a/api:1.0/-/add-tags", {"tags": "latest dev, 1.0-lts latest -bad"}
    )

    # Post/redirect/get: the result is its own page, and a reload does not act again.
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith("/r/team-a/api:1.0/-/add-tags?result=")
    mark = api.registry.mark()
    page = client.get(location).content.decode()
    assert manipulating_requests(api.registry.requests_since(mark)) == []
    assert results(page) == {
        "-bad": "refused",
        "latest": "added",
        "dev": "added",
        "1.0-lts": "added",
    }
    one = api.pushed["team-a/api:1.0"]
    for tag in ("latest", "dev", "1.0-lts"):
        assert api.digest(f"team-a/api:{tag}") == one
        assert api.tags("team-a/api")[tag] == one
    assert api.digest("team-a/api:-bad") is None
    entries = audit("retag")
    assert sorted(e.reference for e in entries) == ["1.0-lts", "dev", "latest"]
    assert {e.digest for e in entries} == {one}
    assert all(e.details["source"] == "team-a/api:1.0" for e in entries)


def test_a_tag_on_another_image_moves_only_after_confirmation(api, personas):
    client = personas["a_deleter"].client()
    two = api.pushed["team-a/api:2.0"]
    one = api.pushed["team-a/api:1.0"]
    response = client.post("/r/team-a/api:1.0/-/add-tags", {"tags": "beta nightly"})
    page = client.get(response["Location"]).content.decode()
    assert results(page) == {"beta": "needs your confirmation to move", "nightly": "added"}
    assert api.digest("team-a/api:beta") == two  # not moved yet
    assert f'name="confirm" value="beta@{two}"' in page
    assert audit("move_tag") == []

    response = client.post(
        "/r/team-a/api:1.0/-/add-tags", {"tags": "beta", "confirm": f"beta@{two}"}
    )
    page = client.get(response["Location"]).content.decode()
    assert results(page) == {"beta": "moved"}
    assert api.digest("team-a/api:beta") == one
    [move] = audit("move_tag")
    assert (move.reference, move.digest, move.details["old_digest"]) == ("beta", one, two)


def test_a_move_confirmed_against_an_old_digest_asks_again(api, personas):
    client = personas["a_deleter"].client()
    one = api.pushed["team-a/api:1.0"]
    stale = "sha256:" + "0" * 64
    response = client.post(
        "/r/team-a/api:1.0/-/add-tags", {"tags": "beta", "confirm": f"beta@{stale}"}
    )
    page = client.get(response["Location"]).content.decode()
    assert results(page) == {"beta": "needs your confirmation to move"}
    assert "changed since you confirmed" in page
    assert api.digest("team-a/api:beta") != one


def test_add_tags_needs_push_and_csrf(api, personas):
    viewer = personas["a_viewer"].client()
    assert viewer.get("/r/team-a/api:1.0/-/add-tags").status_code == 403
    assert viewer.post("/r/team-a/api:1.0/-/add-tags", {"tags": "x"}).status_code == 403
    hidden = personas["b_admin"].client()
    assert hidden.get("/r/team-a/api:1.0/-/add-tags").status_code == 404
    assert hidden.post("/r/team-a/api:1.0/-/add-tags", {"tags": "x"}).status_code == 404
    anonymous = personas["anonymous"].client()
    assert anonymous.post("/r/team-a/api:1.0/-/add-tags", {"tags": "x"}).status_code in (
        302,
        403,
    )
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(personas["a_deleter"].user)
    assert strict.post("/r/team-a/api:1.0/-/add-tags", {"tags": "x"}).status_code == 403
    assert api.digest("team-a/api:x") is None
    assert audit("retag") == []


def test_bad_input_is_a_clear_400_or_404(api, personas):
    client = personas["a_deleter"].client()
    response = client.post("/r/team-a/api:1.0/-/add-tags", {"tags": "  "})
    assert response.status_code == 400
    assert "Type at least one tag." in response.content.decode()
    response = client.post(
        "/r/team-a/api:1.0/-/add-tags", {"tags": "x", "confirm": "x@not-a-digest"}
    )
    assert response.status_code == 400
    assert client.get("/r/team-a/api/-/add-tags").status_code == 400  # no image named
    assert client.get("/r/team-a/api:1.0/-/add-tags", {"result": "nope"}).status_code == 404
    # Another image's result id is not shown here.
    response = client.post("/r/team-a/api:1.0/-/add-tags", {"tags": "ok"})
    key = response["Location"].split("result=")[1]
    assert client.get("/r/team-a/api:2.0/-/add-tags", {"result": key}).status_code == 404
