"""Deleting an image: the digest and every tag on it, as a separate, explicit action."""

from __future__ import annotations

import pytest

from registryui.catalog.models import Manifest
from registryui.catalog.upstream import get_client
from registryui.registry import RegistryError
from tests.cleanup.support import audit, manipulating_requests

pytestmark = pytest.mark.django_db


@pytest.fixture
def web(world):
    """team-a/web: a two-platform index tagged 2.0 and latest; its arm64 image also tagged
    arm-only; team-a/app: one image with three tags, and another image."""
    world.index("web", [("linux", "amd64", None), ("linux", "arm64", "v8")])
    world.push("web", "team-a/web:2.0", all_platforms=True)
    world.push("web", "team-a/web:latest", all_platforms=True)
    world.image("app", size=5000)
    world.image("other")
    for tag in ("1.0", "1.0.1", "stable"):
        world.push("app", f"team-a/app:{tag}")
    world.push("other", "team-a/app:0.9")
    world.sync()
    return world


def children(world, reference: str) -> list[tuple[str, str]]:
    index = Manifest.objects.get(digest=world.pushed[reference])
    return [(link.child.digest, link.platform) for link in index.child_links.all()]


def confirmations(html: str) -> list[str]:
    return sorted(part.split('"')[0] for part in html.split('name="confirm" value="')[1:])


def test_the_confirmation_lists_every_tag_and_all_of_them_go(web, personas):
    client = personas["a_deleter"].client()
    digest = web.pushed["team-a/app:1.0"]
    page = client.get("/r/team-a/app:1.0/-/delete-image")
    assert page.status_code == 200
    html = page.content.decode()
    for tag in ("1.0", "1.0.1", "stable"):
        assert f"<li><code>team-a/app:{tag}</code></li>" in html
    assert "every one of its 3 tags" in html
    assert "0.9</code></li>" not in html
    assert confirmations(html) == sorted(f"{t}@{digest}" for t in ("1.0", "1.0.1", "stable"))
    assert f'action="/r/team-a/app@{digest}/-/delete-image"' in html

    response = client.post(
        f"/r/team-a/app@{digest}/-/delete-image", {"confirm": confirmations(html)}, follow=True
    )

    assert response.status_code == 200, response.content.decode()
    for tag in ("1.0", "1.0.1", "stable"):
        assert web.digest(f"team-a/app:{tag}") is None
    assert web.digest("team-a/app:0.9") == web.pushed["team-a/app:0.9"]
    with pytest.raises(RegistryError) as gone:
        get_client().head_manifest("team-a/app", digest)
    assert gone.value.status == 404
    assert web.tags("team-a/app") == {"0.9": web.pushed["team-a/app:0.9"]}
    [entry] = audit("delete_image")
    assert entry.result == "ok" and entry.digest == digest
    assert entry.details["tags"] == ["1.0", "1.0.1", "stable"]


def test_delete_on_a_digest_url_is_the_image_action(web, personas):
    digest = web.pushed["team-a/app:0.9"]
    page = personas["a_deleter"].client().get(f"/r/team-a/app@{digest}/-/delete")
    assert page.status_code == 200
    assert "and all its tags?" in page.content.decode()


def test_a_platform_image_of_a_tagged_index_is_refused_naming_the_index(web, personas):
    client = personas["a_deleter"].client()
    index = web.pushed["team-a/web:2.0"]
    child = children(web, "team-a/web:2.0")[1][0]
    # Without --all, skopeo pushes this machine's platform of the index: a tagged child.
    amd64 = web.push("web", "team-a/web:amd64-only")
    assert amd64 == children(web, "team-a/web:2.0")[0][0]
    web.sync()
    mark = web.registry.mark()

    page = client.get(f"/r/team-a/web@{child}/-/delete-image")
    assert page.status_code == 409
    html = page.content.decode()
    assert "is a platform image of the index team-a/web:2.0, latest" in html
    assert f"/r/team-a/web@{index}" in html
    # Tagged or not, a platform image of a tagged index is refused.
    tagged_child = client.get("/r/team-a/web:amd64-only/-/delete-image")
    assert tagged_child.status_code == 409
    # Deleting just its tag is fine: only the tag goes, the index keeps its platform.
    assert (
        "it is a platform of the index tagged <code>2.0</code>"
        in client.get("/r/team-a/web:amd64-only/-/delete").content.decode()
    )

    response = client.post(
        f"/r/team-a/web@{child}/-/delete-image", {"confirm": f"x@{child}"}, follow=True
    )
    assert response.status_code == 409
    assert manipulating_requests(web.registry.requests_since(mark)) == []
    assert get_client().head_manifest("team-a/web", child).digest == child
    [entry] = audit("delete_image")
    assert entry.result == "refused" and index in entry.details["held_by"]


def test_deleting_an_index_deletes_its_platform_images_and_frees_the_predicted_bytes(web, personas):
    client = personas["a_deleter"].client()
    platform_digests = [d for d, _ in children(web, "team-a/web:2.0")]
    html = client.get("/r/team-a/web:latest/-/delete-image").content.decode()
    assert "2 platform images deleted with it" in html
    predicted = int(html.split('class="bytes-freed" data-bytes="')[1].split('"')[0])
    before = web.registry.blob_bytes()

    response = client.post(
        f"/r/team-a/web@{web.pushed['team-a/web:2.0']}/-/delete-image",
        {"confirm": confirmations(html)},
        follow=True,
    )

    assert response.status_code == 200, response.content.decode()
    for digest in platform_digests:  # gone from the repository, so garbage-collect takes them
        with pytest.raises(RegistryError):
            get_client().head_manifest("team-a/web", digest)
    [entry] = audit("delete_image")
    assert sorted(entry.details["children_deleted"]) == sorted(platform_digests)
    after = web.blob_bytes_after_gc()
    assert before - after == predicted


def test_an_image_that_gained_a_tag_after_the_confirmation_is_not_deleted(web, personas):
    client = personas["a_deleter"].client()
    digest = web.pushed["team-a/app:1.0"]
    html = client.get(f"/r/team-a/app@{digest}/-/delete-image").content.decode()
    web.push("app", "team-a/app:hotfix")  # pushed after the page was shown

    response = client.post(
        f"/r/team-a/app@{digest}/-/delete-image", {"confirm": confirmations(html)}, follow=True
    )

    assert response.status_code == 409
    assert "the image gained the tag hotfix since you confirmed" in response.content.decode()
    for tag in ("1.0", "1.0.1", "stable", "hotfix"):
        assert web.digest(f"team-a/app:{tag}") == digest
    assert audit("delete_image")[0].result == "refused"


def test_delete_image_permissions(web, personas):
    digest = web.pushed["team-a/app:1.0"]
    mark = web.registry.mark()
    assert personas["a_viewer"].client().get("/r/team-a/app:1.0/-/delete-image").status_code == 403
    assert (
        personas["a_viewer"]
        .client()
        .post(f"/r/team-a/app@{digest}/-/delete-image", {"confirm": f"1.0@{digest}"}, follow=True)
        .status_code
        == 403
    )
    assert (
        personas["b_admin"].client().get(f"/r/team-a/app@{digest}/-/delete-image").status_code
        == 404
    )
    assert web.registry.requests_since(mark) == []
    assert len(web.tags("team-a/app")) == 4
