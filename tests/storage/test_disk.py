"""Acceptance of the storage figures against a real registry's storage directory.

The total must equal the bytes of the blob files under ``docker/registry/v2/blobs``, and a
repository's, a namespace's or a team's exclusive bytes what ``docker-registry
garbage-collect`` frees once all their images are deleted (measured on disk).
"""

from __future__ import annotations

import pytest

from registryui.catalog.models import Blob, Repository, RepositoryBlob, StorageSnapshot, Tag
from registryui.devtools.images import Layout
from registryui.storage.figures import storage_report

from .support import Scenario

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def scenario(use_registry, tmp_path) -> Scenario:
    world = Scenario(use_registry, Layout(tmp_path / "layout"), tmp_path)
    world.push_all()
    world.sync()
    world.save()
    return world


def by_name(figures):
    return {figure.name: figure for figure in figures}


def test_the_total_is_the_blob_store_on_disk(scenario, personas):
    report = storage_report(personas["superuser"].fresh_user())
    on_disk = scenario.registry.blob_bytes()
    assert report.total.referenced == on_disk
    assert not report.bound
    # Blobs shared across repositories are counted once in the total, once per repository in
    # the repositories' own figures.
    repositories = by_name(report.repositories)
    assert sum(f.referenced for f in repositories.values()) > on_disk
    assert 0 < report.shared_between < on_disk
    # Each repository's figure is its own blobs, the same as Repository.size.
    for name, size in Repository.objects.values_list("name", "size"):
        assert repositories[name].referenced == size
    # The growth line starts with this sync's snapshot of the registry.
    registry_rows = StorageSnapshot.objects.filter(scope=StorageSnapshot.Scope.REGISTRY)
    assert list(registry_rows.values_list("bytes", flat=True)) == [on_disk]


@pytest.mark.parametrize(
    ("kind", "name", "repositories"),
    [
        ("repository", "team-a/web", ["team-a/web"]),
        ("repository", "team-a/api", ["team-a/api"]),
        ("repository", "team-b/tools", ["team-b/tools"]),
        ("namespace", "team-a", ["team-a/api", "team-a/web"]),
        ("namespace", "team-b", ["team-b/worker", "team-b/tools"]),
        ("team", "team-b", ["team-b/worker", "team-b/tools"]),
    ],
)
def test_exclusive_bytes_are_what_garbage_collect_frees(
    scenario, personas, kind, name, repositories
):
    report = storage_report(personas["superuser"].fresh_user())
    figures = {
        "repository": report.repositories,
        "namespace": report.namespaces,
        "team": report.teams,
    }[kind]
    figure = by_name(figures)[name]
    before = scenario.registry.blob_bytes()
    scenario.delete_repositories(repositories)
    freed = before - scenario.bytes_after_gc()
    assert figure.exclusive == freed
    assert 0 < figure.exclusive < figure.referenced  # each of these shares a base layer
    assert figure.shared == figure.referenced - figure.exclusive


def test_figures_follow_the_registry_after_deletes_and_a_sync(scenario, personas):
    """Delete a repository's images, garbage-collect, sync: the links, the blob counts and the
    total follow, and the snapshot records the change."""
    scenario.delete_repositories(["team-a/web"])
    on_disk = scenario.bytes_after_gc()
    scenario.sync()
    report = storage_report(personas["superuser"].fresh_user())
    assert report.total.referenced == on_disk
    # Registry 2.8 keeps the emptied repository in its catalog (its tags list is null).
    assert by_name(report.repositories)["team-a/web"].referenced == 0
    assert not RepositoryBlob.objects.filter(repository__name="team-a/web").exists()
    # No blob row is left that no repository references, and every count is the links'.
    for blob in Blob.objects.all():
        assert blob.repository_count == blob.links.count() > 0
    registry_rows = StorageSnapshot.objects.filter(scope=StorageSnapshot.Scope.REGISTRY)
    assert list(registry_rows.order_by("taken_at").values_list("bytes", flat=True))[-1] == on_disk
    assert len(report.growth.points) >= 2


def test_the_most_shared_layers_and_largest_images(scenario, personas):
    report = storage_report(personas["superuser"].fresh_user())
    top = report.shared_layers[0]
    # BASE_OS is under api:1, api:2, web:1, vault:1 and both tools platforms; api:1's copy in
    # team-b/worker is one more image there.
    assert (top.images, top.repositories) == (7, 5)
    sizes = [image.bytes for image in report.largest_images]
    assert sizes == sorted(sizes, reverse=True)
    expected = {
        (tag.repository.name, tag.manifest.digest, tag.manifest.total_size)
        for tag in Tag.objects.select_related("repository", "manifest")
    }
    shown = {(image.repository, image.digest, image.bytes) for image in report.largest_images}
    assert shown == expected  # fewer than TOP images: every tagged one, with its pull size
    copy = next(
        i for i in report.largest_images if i.repository == "team-b/worker" and "api-copy" in i.tags
    )
    assert copy.url == "/r/team-b/worker:api-copy"
