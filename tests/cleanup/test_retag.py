"""Retag: add a tag to an image (its exact manifest bytes PUT under the new tag); moving an
existing tag needs a confirmation showing the old and the new digest."""

from __future__ import annotations

import pytest

from tests.cleanup.support import audit, manipulating_requests

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(world):
    world.image("one")
    world.image("two")
    world.push("one", "team-a/api:1.0")
    world.push("two", "team-a/api:2.0")
    world.push("two", "team-a/api:latest")
    world.index("multi", [("linux", "amd64", None), ("linux", "arm64", "v8")])
    world.push("multi", "team-a/multi:1", all_platforms=True)
    world.push("one", "team-a/docker:v1", docker_format=True)
    world.sync()
    return world


def test_adding_a_tag_puts_the_same_digest_under_it(api, personas):
    client = personas["a_deleter"].client()
    assert client.get("/r/team-a/api:1.0/-/retag").status_code == 200

    response = client.post("/r/team-a/api:1.0/-/retag", {"new_tag": "1.0-lts"}, follow=True)

    assert response.status_code == 200, response.content.decode()
    assert "Tagged" in response.content.decode()
    assert api.digest("team-a/api:1.0-lts") == api.pushed["team-a/api:1.0"]
    assert api.tags("team-a/api")["1.0-lts"] == api.pushed["team-a/api:1.0"]
    [entry] = audit("retag")
    assert (entry.reference, entry.digest, entry.result) == (
        "1.0-lts",
        api.pushed["team-a/api:1.0"],
        "ok",
    )
    assert entry.details["source"] == "team-a/api:1.0"


@pytest.mark.parametrize("reference", ["team-a/multi:1", "team-a/docker:v1"])
def test_indexes_and_docker_images_keep_their_digest_and_media_type(api, personas, reference):
    response = (
        personas["a_deleter"]
        .client()
        .post(f"/r/{reference}/-/retag", {"new_tag": "copy"}, follow=True)
    )
    assert response.status_code == 200
    repository = reference.split(":")[0]
    assert api.digest(f"{repository}:copy") == api.pushed[reference]


def test_retag_from_a_digest(api, personas):
    digest = api.pushed["team-a/api:2.0"]
    response = (
        personas["a_deleter"]
        .client()
        .post(f"/r/team-a/api@{digest}/-/retag", {"new_tag": "blessed"}, follow=True)
    )
    assert response.status_code == 200
    assert api.digest("team-a/api:blessed") == digest


def test_moving_a_tag_needs_a_confirmation_with_both_digests(api, personas):
    client = personas["a_deleter"].client()
    old, new = api.pushed["team-a/api:latest"], api.pushed["team-a/api:1.0"]
    mark = api.registry.mark()

    asked = client.post("/r/team-a/api:1.0/-/retag", {"new_tag": "latest"}, follow=True)

    assert asked.status_code == 200
    html = asked.content.decode()
    assert f'<code class="old-digest">{old}</code>' in html
    assert f'<code class="new-digest">{new}</code>' in html
    assert f'name="confirmed_old" value="{old}"' in html
    assert "has no other tag" not in html  # 2.0 stays on the old image
    assert manipulating_requests(api.registry.requests_since(mark)) == []
    assert api.digest("team-a/api:latest") == old

    moved = client.post(
        "/r/team-a/api:1.0/-/retag", {"new_tag": "latest", "confirmed_old": old}, follow=True
    )

    assert moved.status_code == 200, moved.content.decode()
    assert api.digest("team-a/api:latest") == new
    assert api.digest("team-a/api:2.0") == old
    assert api.tags("team-a/api")["latest"] == new
    [entry] = audit("move_tag")
    assert entry.details["old_digest"] == old and entry.digest == new
    assert entry.details["old_digest_untagged"] is False


def test_moving_the_last_tag_of_an_image_warns_that_it_stays_untagged(api, personas):
    html = (
        personas["a_deleter"]
        .client()
        .post("/r/team-a/api:2.0/-/retag", {"new_tag": "1.0"}, follow=True)
        .content.decode()
    )
    assert "has no other tag in this repository" in html


def test_a_tag_moved_again_after_the_confirmation_is_not_clobbered(api, personas):
    client = personas["a_deleter"].client()
    old = api.pushed["team-a/api:latest"]
    client.post("/r/team-a/api:1.0/-/retag", {"new_tag": "latest"}, follow=True)
    api.image("three")
    repushed = api.push("three", "team-a/api:latest")  # someone pushes meanwhile

    response = client.post(
        "/r/team-a/api:1.0/-/retag", {"new_tag": "latest", "confirmed_old": old}, follow=True
    )

    assert response.status_code == 409
    html = response.content.decode()
    assert "changed since you confirmed" in html
    assert f'name="confirmed_old" value="{repushed}"' in html
    assert api.digest("team-a/api:latest") == repushed
    assert audit("move_tag") == []


def test_retagging_onto_the_same_image_changes_nothing(api, personas):
    mark = api.registry.mark()
    response = (
        personas["a_deleter"]
        .client()
        .post("/r/team-a/api:2.0/-/retag", {"new_tag": "latest"}, follow=True)
    )
    assert response.status_code == 200
    assert "already points at" in response.content.decode()
    assert manipulating_requests(api.registry.requests_since(mark)) == []
    assert api.tags("team-a/api")["latest"] == api.pushed["team-a/api:latest"]


def test_retag_permissions_and_bad_input(api, personas):
    mark = api.registry.mark()
    viewer = personas["a_viewer"].client()
    assert viewer.get("/r/team-a/api:1.0/-/retag").status_code == 403
    assert (
        viewer.post("/r/team-a/api:1.0/-/retag", {"new_tag": "x"}, follow=True).status_code == 403
    )
    assert (
        personas["b_admin"]
        .client()
        .post("/r/team-a/api:1.0/-/retag", {"new_tag": "x"}, follow=True)
        .status_code
        == 404
    )
    client = personas["a_deleter"].client()
    bad = client.post("/r/team-a/api:1.0/-/retag", {"new_tag": "-nope"}, follow=True)
    assert bad.status_code == 400
    assert "A tag is 1 to 128" in bad.content.decode()
    bad_old = client.post(
        "/r/team-a/api:1.0/-/retag",
        {"new_tag": "latest", "confirmed_old": "sha256:xyz"},
        follow=True,
    )
    assert bad_old.status_code == 400
    assert manipulating_requests(api.registry.requests_since(mark)) == []
    assert api.digest("team-a/api:x") is None
    assert audit() == []


def test_an_unreachable_registry_changes_nothing(api, personas):
    api.registry.stop()
    response = (
        personas["a_deleter"]
        .client()
        .post("/r/team-a/api:1.0/-/retag", {"new_tag": "1.0-lts"}, follow=True)
    )
    assert response.status_code == 502
    assert "cannot be reached" in response.content.decode()
    assert "1.0-lts" not in api.tags("team-a/api")
    assert audit("retag")[0].result == "failed"
