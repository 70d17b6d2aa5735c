"""Issue 11, leak 1: the admin's "view on site" shortcut (``/admin/r/<content type>/<id>/``)
redirected any staff member, a team admin included, to every repository, tag and retention
policy by id, and its ``Location`` header named hidden repositories. It now answers only for
objects the admin shows the user and the resolver lets them see: everything else is one 404."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType

from registryui.catalog.models import Manifest, Repository, Tag
from registryui.cleanup.models import RetentionPolicy
from registryui.core.models import AuditEntry
from registryui.core.viewonsite import NOT_FOUND

pytestmark = pytest.mark.django_db


@pytest.fixture
def objects(db) -> dict[str, object]:
    manifest = Manifest.objects.create(
        digest="sha256:" + "ab" * 32,
        media_type="application/vnd.oci.image.manifest.v1+json",
        kind=Manifest.Kind.IMAGE,
        size=10,
        raw="{}",
    )
    found = {}
    for name in ("team-b/worker", "secret/vault"):
        repository = Repository.objects.create(name=name, namespace=name.split("/")[0])
        found[name] = repository
        found[f"{name}:1"] = Tag.objects.create(repository=repository, name="1", manifest=manifest)
    found["policy secret/*"] = RetentionPolicy.objects.create(
        name="secret-nightly", repository_pattern="secret/*", keep_last=1
    )
    found["policy team-b/*"] = RetentionPolicy.objects.create(
        name="team-b-nightly", repository_pattern="team-b/*", keep_last=1
    )
    found["manifest"] = manifest
    return found


def shortcut(obj) -> str:
    content_type = ContentType.objects.get_for_model(obj)
    return f"/admin/r/{content_type.pk}/{obj.pk}/"


def test_a_team_admin_is_never_redirected_by_id(personas, objects):
    client = personas["b_admin"].client()
    repository_type = ContentType.objects.get_for_model(Repository).pk
    # Unknown ids and content types answer exactly like the objects that exist.
    paths = [shortcut(obj) for obj in objects.values()]
    paths += ["/admin/r/999999/1/", f"/admin/r/{repository_type}/999999/"]
    for path in paths:
        response = client.get(path)
        assert response.status_code == 404, path
        assert "Location" not in response
        body = response.content.decode()
        assert NOT_FOUND in body and "secret" not in body, path


def test_staff_with_model_permissions_still_pass_the_resolver(personas, objects):
    """Staff given view permissions on repositories and tags through the admin see their rows in
    the admin, but "view on site" only leads to the pages the resolver lets them see."""
    user = personas["b_admin"].user
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_repository", "view_tag"])
    )
    client = personas["b_admin"].client()
    for key in ("team-b/worker", "team-b/worker:1"):
        response = client.get(shortcut(objects[key]))
        assert response.status_code == 302, key
        assert response["Location"] == objects[key].get_absolute_url()
    for key in ("secret/vault", "secret/vault:1"):
        assert client.get(shortcut(objects[key])).status_code == 404, key


def test_a_superuser_is_redirected_to_every_page(personas, objects):
    client = personas["superuser"].client()
    for key in ("secret/vault", "secret/vault:1", "policy secret/*"):
        response = client.get(shortcut(objects[key]))
        assert response.status_code == 302, key
        assert response["Location"] == objects[key].get_absolute_url()
    # A model without a page has no shortcut, and an object the admin does not list neither.
    assert client.get(shortcut(objects["manifest"])).status_code == 404
    entry = AuditEntry.objects.create(action="x", result="ok")
    assert client.get(shortcut(entry)).status_code == 404


def test_people_who_are_not_staff_go_to_the_login_page(personas, objects):
    response = personas["a_viewer"].client().get(shortcut(objects["team-b/worker"]))
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
