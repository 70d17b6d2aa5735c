"""The admin pages of the mirror: sync runs with their errors, repositories, tags, manifests;
all read-only, searchable and filterable."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from registryui.catalog.models import Manifest, Repository, SyncRun, SyncRunError, Tag
from registryui.catalog.upstream import get_client
from registryui.devtools.seed import Seeder
from registryui.registry import RegistryClient
from registryui.sync.syncer import Syncer


@pytest.fixture
def synced(registry, settings, db):
    settings.REGISTRY_URL = registry.url
    with RegistryClient(registry.url) as client:
        seeder = Seeder(client)
        seeded = seeder.seed(["team-a/api", "team-b/worker"], ["1", "2"])
    run = Syncer(get_client()).run()
    failed = SyncRun.objects.create(status=SyncRun.Status.FAILED, error="Listing failed")
    SyncRunError.objects.create(
        run=failed, repository="team-c/broken", code="DENIED", message="no access <b>here</b>"
    )
    return run, failed, seeded


def test_every_model_has_a_read_only_changelist(admin_client, synced):
    for model in ("syncrun", "repository", "tag", "manifest"):
        response = admin_client.get(f"/admin/catalog/{model}/")
        assert response.status_code == 200, model
        assert response.context["has_add_permission"] is False, model
        assert f"/admin/catalog/{model}/add/" not in response.content.decode(), model
        assert admin_client.get(f"/admin/catalog/{model}/add/").status_code == 403


def test_a_sync_run_shows_its_errors_inline(admin_client, synced):
    _, failed, _ = synced
    response = admin_client.get(f"/admin/catalog/syncrun/{failed.pk}/change/")
    assert response.status_code == 200
    content = response.content.decode()
    assert "team-c/broken" in content and "DENIED" in content
    assert "no access &lt;b&gt;here&lt;/b&gt;" in content  # escaped, never rendered as HTML
    assert "Listing failed" in content
    assert 'name="_save"' not in content  # nothing to save


def test_sync_runs_filter_by_status_and_search_by_repository(admin_client, synced):
    run, failed, _ = synced
    response = admin_client.get("/admin/catalog/syncrun/", {"status__exact": "failed"})
    assert list(response.context["cl"].result_list) == [failed]
    response = admin_client.get("/admin/catalog/syncrun/", {"q": "team-c/broken"})
    assert list(response.context["cl"].result_list) == [failed]
    detail = admin_client.get(f"/admin/catalog/syncrun/{run.pk}/change/").content.decode()
    assert "&quot;manifest_get&quot;: 4" in detail  # requests by kind


def test_nothing_can_be_changed_or_deleted(admin_client, synced):
    run, _, _ = synced
    repository = Repository.objects.get(name="team-a/api")
    response = admin_client.post(
        f"/admin/catalog/repository/{repository.pk}/change/", {"name": "renamed"}
    )
    assert response.status_code == 403
    response = admin_client.post(f"/admin/catalog/syncrun/{run.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    response = admin_client.post(
        "/admin/catalog/tag/",
        {"action": "delete_selected", "_selected_action": [Tag.objects.first().pk], "post": "yes"},
    )
    assert Tag.objects.count() == 4
    assert Repository.objects.filter(name="team-a/api").exists()
    assert SyncRun.objects.filter(pk=run.pk).exists()


def test_repositories_search_and_filter(admin_client, synced):
    response = admin_client.get("/admin/catalog/repository/", {"q": "team-b"})
    assert [r.name for r in response.context["cl"].result_list] == ["team-b/worker"]
    response = admin_client.get("/admin/catalog/repository/", {"namespace": "team-a"})
    assert [r.name for r in response.context["cl"].result_list] == ["team-a/api"]
    Repository.objects.filter(name="team-b/worker").update(last_sync_error="boom")
    response = admin_client.get("/admin/catalog/repository/", {"sync": "failed"})
    assert [r.name for r in response.context["cl"].result_list] == ["team-b/worker"]
    repository = Repository.objects.get(name="team-a/api")
    detail = admin_client.get(f"/admin/catalog/repository/{repository.pk}/change/")
    assert f"repository__id__exact={repository.pk}" in detail.content.decode()


def test_tags_search_by_digest_and_filter_by_repository(admin_client, synced):
    _, _, seeded = synced
    digest = seeded.tags["team-a/api"]["2"]
    response = admin_client.get("/admin/catalog/tag/", {"q": digest[7:20]})
    assert [str(t) for t in response.context["cl"].result_list] == ["team-a/api:2"]
    repository = Repository.objects.get(name="team-b/worker")
    response = admin_client.get("/admin/catalog/tag/", {"repository__id__exact": repository.pk})
    assert sorted(str(t) for t in response.context["cl"].result_list) == [
        "team-b/worker:1",
        "team-b/worker:2",
    ]
    assert digest in admin_client.get("/admin/catalog/tag/").content.decode()


def test_manifests_search_by_digest_and_show_their_parts(admin_client, synced):
    _, _, seeded = synced
    digest = seeded.tags["team-b/worker"]["1"]
    response = admin_client.get("/admin/catalog/manifest/", {"q": digest})
    assert [m.digest for m in response.context["cl"].result_list] == [digest]
    response = admin_client.get("/admin/catalog/manifest/", {"kind__exact": "index"})
    assert list(response.context["cl"].result_list) == []
    manifest = Manifest.objects.get(digest=digest)
    content = admin_client.get(f"/admin/catalog/manifest/{manifest.pk}/change/").content.decode()
    assert manifest.layers.get().digest in content
    assert "org.opencontainers.image.vendor" in content  # labels inline
    assert "ADD seed.txt /" in content  # history
    assert f"manifest__id__exact={manifest.pk}" in content  # link to the tags


def test_a_staff_user_with_view_permission_only_can_look(synced):
    user = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_syncrun"))
    client = Client()
    client.force_login(user)
    assert client.get("/admin/catalog/syncrun/").status_code == 200
    assert client.get("/admin/catalog/repository/").status_code == 403
