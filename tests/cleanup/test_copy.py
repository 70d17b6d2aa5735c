""" "Copy to repository": an image or a multi-platform index put under another repository the
user may push to, with cross-repository blob mounts (no layer uploaded again), permissions
checked on both sides, audited, mirrored in the database; post/redirect/get.

The registry's own access log is the witness: every blob request of a copy is a mount
answered 201, and no blob data is sent (no PATCH, no PUT of an upload)."""

from __future__ import annotations

import re

import pytest

from registryui.catalog.models import IndexChild, Manifest, Repository, Tag
from registryui.catalog.upstream import get_client
from tests.cleanup.support import audit, manipulating_requests

pytestmark = pytest.mark.django_db


@pytest.fixture
def images(world):
    world.image("one", layers=2)
    world.image("two")
    world.push("one", "team-a/api:1.4")
    world.push("two", "team-a/api:2.0")
    world.push("two", "team-a/prod:1.4")  # a tag the copy of api:1.4 would move
    world.index("multi", [("linux", "amd64", None), ("linux", "arm64", "v8")])
    world.push("multi", "team-a/web:2.0", all_platforms=True)
    world.push("two", "platform/base:1")
    world.sync()
    return world


def copy(client, source: str, to: str, tag: str, **extra):
    """Confirm (GET) then copy (POST) then follow the redirect: the three pages."""
    confirm = client.get(f"/r/{source}/-/copy", {"to": to, "tag": tag})
    posted = client.post(f"/r/{source}/-/copy", {"to": to, "tag": tag, **extra})
    assert posted.status_code == 302, posted.content.decode()[:2000]
    assert posted["Location"].startswith(f"/r/{source}/-/copy?result=")
    result = client.get(posted["Location"])
    return confirm, result


def test_a_multi_arch_index_is_copied_by_mounts_only(images, personas):
    client = personas["a_deleter"].client()
    index = images.pushed["team-a/web:2.0"]
    children = list(
        IndexChild.objects.filter(index__digest=index)
        .order_by("position")
        .values_list("child__digest", flat=True)
    )
    assert len(children) == 2
    form = client.get("/r/team-a/web:2.0/-/copy")
    assert form.status_code == 200 and 'name="to"' in form.content.decode()

    mark = images.registry.mark()
    confirm, result = copy(client, "team-a/web:2.0", "team-a/released-web", "2.0")
    lines = images.registry.requests_since(mark)

    assert confirm.status_code == 200
    confirm_html = confirm.content.decode()
    assert "Platforms copied first" in confirm_html
    assert all(child[7:19] in confirm_html for child in children)
    assert result.status_code == 200
    html = result.content.decode()
    assert "Copied to <code>team-a/released-web:2.0</code>" in html
    assert "none uploaded" in html

    # The registry serves the same index under the new name, and every platform with it.
    assert images.digest("team-a/released-web:2.0") == index
    client_ = get_client()
    for child in children:
        assert client_.head_manifest("team-a/released-web", child).digest == child
    blobs = set(
        Manifest.objects.filter(digest__in=children).values_list("config_digest", flat=True)
    ) | set(Manifest.objects.filter(digest__in=children).values_list("layers__digest", flat=True))
    assert all(client_.blob_exists("team-a/released-web", blob) for blob in blobs)

    # Its access log: blob mounts answered 201, no blob data sent, children before the index.
    writes = manipulating_requests(lines)
    mounts = [w for w in writes if w.method == "POST"]
    assert mounts and all("mount=" in w.path and w.status == 201 for w in mounts)
    assert {re.search(r"mount=([^&]+)", w.path).group(1).replace("%3A", ":") for w in mounts} == (
        blobs
    )
    assert not [w for w in writes if w.method == "PATCH"]
    assert not [w for w in writes if w.method == "PUT" and "/blobs/" in w.path]
    puts = [w.path for w in writes if w.method == "PUT"]
    assert puts == [
        f"/v2/team-a/released-web/manifests/{children[0]}",
        f"/v2/team-a/released-web/manifests/{children[1]}",
        "/v2/team-a/released-web/manifests/2.0",
    ]

    # Mirrored in the database, and audited.
    repository = Repository.objects.get(name="team-a/released-web")
    assert dict(repository.tags.values_list("name", "manifest__digest")) == {"2.0": index}
    assert repository.tag_count == 1
    [entry] = audit("copy_image")
    assert (entry.repository, entry.reference, entry.digest, entry.result) == (
        "team-a/released-web",
        "2.0",
        index,
        "ok",
    )
    assert entry.details["source"] == "team-a/web:2.0"
    assert entry.details["mounted"] == len(blobs)
    assert entry.actor.username == "a-deleter"


def test_copy_across_namespaces_checks_both_sides(images, personas):
    # b_admin may view platform/* and push team-b/*: the copy goes through.
    client = personas["b_admin"].client()
    _, result = copy(client, "platform/base:1", "team-b/base", "1")
    assert "Copied to <code>team-b/base:1</code>" in result.content.decode()
    assert images.digest("team-b/base:1") == images.pushed["platform/base:1"]
    assert Tag.objects.filter(repository__name="team-b/base", name="1").exists()
    # ... but not into platform/*, which they may only view: 403, nothing written.
    mark = images.registry.mark()
    assert client.get("/r/team-b/base:1/-/copy", {"to": "platform/x", "tag": "1"}).status_code == (
        403
    )
    response = client.post("/r/team-b/base:1/-/copy", {"to": "platform/x", "tag": "1"})
    assert response.status_code == 403
    # A target they cannot see at all is a 404, like a source they cannot see.
    response = client.post("/r/team-b/base:1/-/copy", {"to": "team-a/stolen", "tag": "1"})
    assert response.status_code == 404
    assert client.post("/r/team-a/api:1.4/-/copy", {"to": "team-b/x", "tag": "1"}).status_code == (
        404
    )
    assert manipulating_requests(images.registry.requests_since(mark)) == []
    assert images.digest("platform/x:1") is None


def test_viewers_and_anonymous_may_not_copy(images, personas):
    viewer = personas["a_viewer"].client()
    # The form itself needs only view on the source; the copy needs push on the target.
    response = viewer.post("/r/team-a/api:1.4/-/copy", {"to": "team-a/new", "tag": "1.4"})
    assert response.status_code == 403
    assert "push permission on team-a/new" in response.content.decode()
    anonymous = personas["anonymous"].client()
    response = anonymous.post("/r/team-a/api:1.4/-/copy", {"to": "team-a/new", "tag": "1.4"})
    assert response.status_code in (302, 403)
    assert images.digest("team-a/new:1.4") is None
    assert audit("copy_image") == []


def test_moving_an_existing_target_tag_needs_confirmation(images, personas):
    client = personas["a_deleter"].client()
    one, two = images.pushed["team-a/api:1.4"], images.pushed["team-a/prod:1.4"]
    confirm = client.get("/r/team-a/api:1.4/-/copy", {"to": "team-a/prod", "tag": "1.4"})
    html = confirm.content.decode()
    assert "copying moves it" in html
    assert f'name="confirmed_old" value="{two}"' in html

    # Without the confirmation: asked, nothing changed, nothing audited.
    posted = client.post("/r/team-a/api:1.4/-/copy", {"to": "team-a/prod", "tag": "1.4"})
    page = client.get(posted["Location"]).content.decode()
    assert "Moving it needs your confirmation" in page
    assert f'name="confirmed_old" value="{two}"' in page
    assert images.digest("team-a/prod:1.4") == two
    assert audit("copy_image") == []

    posted = client.post(
        "/r/team-a/api:1.4/-/copy", {"to": "team-a/prod", "tag": "1.4", "confirmed_old": two}
    )
    page = client.get(posted["Location"]).content.decode()
    assert "the tag moved from" in page
    assert images.digest("team-a/prod:1.4") == one
    assert images.tags("team-a/prod")["1.4"] == one
    [entry] = audit("copy_image")
    assert entry.details["old_digest"] == two


def test_bad_targets_are_400_with_the_reason(images, personas):
    client = personas["a_deleter"].client()
    response = client.get("/r/team-a/api:1.4/-/copy", {"to": "Team A/x", "tag": "1"})
    assert response.status_code == 400
    assert "The repository is a name such as team-a/api" in response.content.decode()
    response = client.post("/r/team-a/api:1.4/-/copy", {"to": "team-a/x", "tag": "-bad"})
    assert response.status_code == 400
    assert "The tag is 1 to 128 letters" in response.content.decode()
    response = client.post(
        "/r/team-a/api:1.4/-/copy", {"to": "team-a/x", "tag": "1", "confirmed_old": "nope"}
    )
    assert response.status_code == 400
    assert client.get("/r/team-a/api/-/copy").status_code == 400
    assert client.get("/r/team-a/api:1.4/-/copy", {"result": "gone"}).status_code == 404
