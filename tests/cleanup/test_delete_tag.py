"""Deleting one tag keeps its siblings (registry 2.8: a throw-away manifest on the tag, then
that digest deleted); the only tag of an image takes the image with it."""

from __future__ import annotations

import pytest

from registryui.catalog.models import Tag
from registryui.cleanup import placeholder
from tests.cleanup.support import audit, manipulating_requests, repository

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(world):
    """team-a/api: 1.0 and stable on one image, 2.0 alone; team-b/api-copy shares 2.0."""
    world.image("one")
    world.image("two")
    world.push("one", "team-a/api:1.0")
    world.push("one", "team-a/api:stable")
    world.push("two", "team-a/api:2.0")
    world.sync()
    return world


def confirm_value(world, reference: str) -> str:
    tag = reference.rpartition(":")[2]
    return f"{tag}@{world.pushed[reference]}"


def test_deleting_one_of_two_tags_keeps_the_other(api, personas):
    client = personas["a_deleter"].client()
    page = client.get("/r/team-a/api:1.0/-/delete")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Only the tag <code>1.0</code> goes" in html
    assert '<code class="sibling">stable</code>' in html
    assert f'value="1.0@{api.pushed["team-a/api:1.0"]}"' in html
    assert 'data-bytes="0"' in html  # the image stays: nothing to reclaim

    response = client.post(
        "/r/team-a/api:1.0/-/delete", {"confirm": confirm_value(api, "team-a/api:1.0")}, follow=True
    )

    assert response.status_code == 200, response.content.decode()
    assert "Deleted 1.0; kept stable." in response.content.decode()
    # The registry: the sibling still serves the very same digest, the deleted tag is gone.
    assert api.digest("team-a/api:stable") == api.pushed["team-a/api:1.0"]
    assert api.digest("team-a/api:1.0") is None
    assert api.registry_tags("team-a/api") == ["2.0", "stable"]
    # The database, at once (no sync in between).
    assert api.tags("team-a/api") == {
        "stable": api.pushed["team-a/api:stable"],
        "2.0": api.pushed["team-a/api:2.0"],
    }
    assert repository("team-a/api").tag_count == 2
    [entry] = audit("delete_tag")
    assert (entry.actor_name, entry.via, entry.result) == ("a-deleter", "ui", "ok")
    assert (entry.repository, entry.reference) == ("team-a/api", "1.0")
    assert entry.digest == api.pushed["team-a/api:1.0"]
    assert entry.details["siblings_kept"] == ["stable"]
    assert entry.details["method"] == "placeholder"


def test_the_placeholder_leaves_nothing_behind_after_garbage_collect(api, personas):
    before = api.registry.blob_bytes()
    personas["a_deleter"].client().post(
        "/r/team-a/api:1.0/-/delete", {"confirm": confirm_value(api, "team-a/api:1.0")}, follow=True
    )
    assert api.blob_bytes_after_gc() == before
    assert api.digest("team-a/api:stable") == api.pushed["team-a/api:1.0"]


def test_the_only_tag_of_an_image_takes_the_image_and_frees_what_was_predicted(api, personas):
    # Another repository shares one image's layer: that blob must stay.
    api.push("two", "team-b/mirror:2.0")
    api.sync()
    api.image("three", size=7000)
    api.push("three", "team-a/api:3.0")
    api.sync()
    client = personas["a_deleter"].client()

    page = client.get("/r/team-a/api:3.0/-/delete")
    html = page.content.decode()
    assert "This is the only tag of image" in html
    predicted = int(html.split('class="bytes-freed" data-bytes="')[1].split('"')[0])
    assert predicted > 7000  # its layer, config and manifest
    # team-b/mirror:2.0 keeps every blob of 2.0: who sees it is told nothing is freed; the
    # deleter, who cannot see team-b/*, gets a bound that does not reveal it (issue 11).
    shared = "/r/team-a/api:2.0/-/delete"
    assert 'data-bytes="0"' in personas["superuser"].client().get(shared).content.decode()
    shared_page = client.get(shared).content.decode()
    assert 'data-bytes="0"' not in shared_page
    assert "blobs may be shared with images you cannot see" in shared_page

    before = api.registry.blob_bytes()
    response = client.post(
        "/r/team-a/api:3.0/-/delete", {"confirm": confirm_value(api, "team-a/api:3.0")}, follow=True
    )
    assert response.status_code == 200
    assert api.digest("team-a/api:3.0") is None
    assert f'data-bytes="{predicted}"' in response.content.decode()
    [entry] = audit("delete_image")
    assert entry.details["tags"] == ["3.0"]
    assert entry.details["freed_bytes"] == predicted

    assert before - api.blob_bytes_after_gc() == predicted


def test_a_tag_pushed_again_after_the_confirmation_is_not_clobbered(api, personas):
    client = personas["a_deleter"].client()
    stale = confirm_value(api, "team-a/api:1.0")
    assert stale.split("@")[1] in client.get("/r/team-a/api:1.0/-/delete").content.decode()
    repushed = api.push("two", "team-a/api:1.0")  # someone pushes a new 1.0 meanwhile

    response = client.post("/r/team-a/api:1.0/-/delete", {"confirm": stale}, follow=True)

    assert response.status_code == 409
    assert "pushed again after you confirmed" in response.content.decode()
    assert api.digest("team-a/api:1.0") == repushed
    assert api.digest("team-a/api:stable") == api.pushed["team-a/api:stable"]
    [entry] = audit("delete_tag")
    assert entry.result == "refused" and entry.details["now"] == repushed


def test_a_sibling_pushed_after_the_confirmation_survives(api, personas):
    """2.0 is the only tag when confirmed (plan: delete the image); a tag added to the same
    image before the POST must survive: the registry's own tag list decides."""
    client = personas["a_deleter"].client()
    assert "This is the only tag" in client.get("/r/team-a/api:2.0/-/delete").content.decode()
    api.push("two", "team-a/api:2.0-copy")  # not synced: the database does not know it

    response = client.post(
        "/r/team-a/api:2.0/-/delete", {"confirm": confirm_value(api, "team-a/api:2.0")}, follow=True
    )

    assert response.status_code == 200, response.content.decode()
    assert api.digest("team-a/api:2.0") is None
    assert api.digest("team-a/api:2.0-copy") == api.pushed["team-a/api:2.0"]
    assert audit("delete_image") == []
    assert audit("delete_tag")[0].details["method"] == "placeholder"


def test_a_tag_deleted_meanwhile_is_already_gone(api, personas):
    client = personas["a_deleter"].client()
    value = confirm_value(api, "team-a/api:2.0")
    # Deleted behind our back, straight in the registry.
    from registryui.catalog.upstream import get_client

    get_client().delete_manifest("team-a/api", api.pushed["team-a/api:2.0"])

    response = client.post("/r/team-a/api:2.0/-/delete", {"confirm": value}, follow=True)

    assert response.status_code == 200
    assert "already gone" in response.content.decode()
    assert "2.0" not in api.tags("team-a/api")  # the database now agrees with the registry
    # A second POST of the same form: the tag is not even in the database any more.
    again = client.post("/r/team-a/api:2.0/-/delete", {"confirm": value}, follow=True)
    assert again.status_code == 404
    assert "already gone" in again.content.decode()


def test_a_registry_without_deletes_says_so_and_nothing_changes(
    registry_factory, settings, personas, tmp_path
):
    from registryui.devtools.images import Layout
    from tests.cleanup.support import World

    process = registry_factory(delete_enabled=False)
    settings.REGISTRY_URL, settings.REGISTRY_RETRIES = process.url, 0
    world = World(process, Layout(tmp_path / "layout"))
    world.image("one")
    world.push("one", "team-a/api:1.0")
    world.push("one", "team-a/api:stable")
    world.image("two")
    world.push("two", "team-a/api:2.0")
    world.sync()
    client = personas["a_deleter"].client()

    for path, value in (
        ("/r/team-a/api:1.0/-/delete", confirm_value(world, "team-a/api:1.0")),  # placeholder
        ("/r/team-a/api:2.0/-/delete", confirm_value(world, "team-a/api:2.0")),  # by digest
    ):
        mark = process.mark()
        response = client.post(path, {"confirm": value}, follow=True)
        assert response.status_code == 409
        assert (
            "This registry does not allow deletes; set `storage.delete.enabled: true`"
            in response.content.decode()
        )
        # No placeholder was pushed: the only write attempted was a refused DELETE.
        assert all(
            line.method == "DELETE" and line.status == 405
            for line in manipulating_requests(process.requests_since(mark))
        )

    assert world.digest("team-a/api:1.0") == world.pushed["team-a/api:1.0"]
    assert world.digest("team-a/api:2.0") == world.pushed["team-a/api:2.0"]
    assert sorted(world.tags("team-a/api")) == ["1.0", "2.0", "stable"]
    assert [e.result for e in audit()] == ["failed", "failed"]


def test_an_unreachable_registry_changes_nothing(api, personas):
    value = confirm_value(api, "team-a/api:1.0")
    api.registry.stop()

    response = (
        personas["a_deleter"]
        .client()
        .post("/r/team-a/api:1.0/-/delete", {"confirm": value}, follow=True)
    )

    assert response.status_code == 502
    assert "cannot be reached" in response.content.decode()
    assert sorted(api.tags("team-a/api")) == ["1.0", "2.0", "stable"]
    [entry] = audit()
    assert entry.result == "failed"


def test_permissions_are_checked_before_the_registry_is_asked(api, personas):
    value = confirm_value(api, "team-a/api:1.0")
    mark = api.registry.mark()
    viewer = personas["a_viewer"].client()
    assert viewer.get("/r/team-a/api:1.0/-/delete").status_code == 403
    assert (
        viewer.post("/r/team-a/api:1.0/-/delete", {"confirm": value}, follow=True).status_code
        == 403
    )
    hidden = personas["b_admin"].client()
    assert hidden.get("/r/team-a/api:1.0/-/delete").status_code == 404
    assert (
        hidden.post("/r/team-a/api:1.0/-/delete", {"confirm": value}, follow=True).status_code
        == 404
    )
    anonymous = (
        personas["anonymous"].client().post("/r/team-a/api:1.0/-/delete", {"confirm": value})
    )
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert api.registry.requests_since(mark) == []
    assert Tag.objects.filter(repository__name="team-a/api").count() == 3
    assert audit() == []


def test_the_post_needs_a_csrf_token(api, personas):
    client = personas["a_deleter"].client(enforce_csrf_checks=True)
    response = client.post(
        "/r/team-a/api:1.0/-/delete", {"confirm": confirm_value(api, "team-a/api:1.0")}, follow=True
    )
    assert response.status_code == 403
    assert api.digest("team-a/api:1.0") == api.pushed["team-a/api:1.0"]


@pytest.mark.parametrize(
    ("method", "path", "data", "status", "text"),
    [
        ("get", "/r/Team-A/api:1.0/-/delete", None, 400, "not a valid repository name"),
        ("get", "/r/team-a/api:-x/-/delete", None, 400, "not a valid tag"),
        ("get", "/r/team-a/api/-/delete", None, 400, "Name the tag to delete"),
        ("get", "/r/team-a/api:nope/-/delete", None, 404, "has no tag nope"),
        ("post", "/r/team-a/api:1.0/-/delete", {}, 400, "Nothing was confirmed"),
        (
            "post",
            "/r/team-a/api:1.0/-/delete",
            {"confirm": "1.0@sha256:beef"},
            400,
            "not a confirmed tag",
        ),
        (
            "post",
            "/r/team-a/api:1.0/-/delete",
            {"confirm": "2.0@sha256:" + "a" * 64},
            400,
            "another tag",
        ),
        ("put", "/r/team-a/api:1.0/-/delete", None, 405, ""),
    ],
)
def test_bad_input_is_a_clear_4xx(api, personas, method, path, data, status, text):
    client = personas["a_deleter"].client()
    response = (
        getattr(client, method)(path, data) if data is not None else getattr(client, method)(path)
    )
    assert response.status_code == status
    assert text in response.content.decode()
    assert sorted(api.tags("team-a/api")) == ["1.0", "2.0", "stable"]


def test_placeholders_are_unique_tiny_images():
    first = placeholder.build("team-a/api", "1.0")
    second = placeholder.build("team-a/api", "1.0")
    assert first.digest != second.digest
    assert len(first.manifest) + len(first.config) < 1000
    assert b"team-a/api:1.0" in first.config
