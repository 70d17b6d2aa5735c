"""``catalog.storage``: blob links kept by every tag write (sync, events and cleanup all go
through ``catalog.store``), and the snapshots' thinning as they age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from registryui.catalog.models import (
    Blob,
    Layer,
    Manifest,
    Repository,
    RepositoryBlob,
    StorageSnapshot,
)
from registryui.catalog.storage import record_snapshot, thin
from registryui.catalog.store import remove_tags, set_tag

pytestmark = pytest.mark.django_db


def image(digest: str, layers: list[tuple[str, int]], config: str) -> Manifest:
    manifest = Manifest.objects.create(
        digest=digest,
        media_type="application/vnd.oci.image.manifest.v1+json",
        kind=Manifest.Kind.IMAGE,
        size=500,
        total_size=100 + sum(size for _, size in layers),
        config_digest=config,
        config_size=100,
    )
    for position, (layer, size) in enumerate(layers):
        Layer.objects.create(manifest=manifest, position=position, digest=layer, size=size)
    return manifest


def counts() -> dict[str, tuple[int, int]]:
    return {b.digest: (b.repository_count, b.image_count) for b in Blob.objects.all()}


def test_tag_writes_keep_the_links_and_counts():
    one = image("sha256:m1", [("sha256:base", 1000), ("sha256:own1", 10)], "sha256:c1")
    two = image("sha256:m2", [("sha256:base", 1000), ("sha256:own2", 20)], "sha256:c2")
    api = Repository.objects.create(name="team-a/api")
    web = Repository.objects.create(name="team-a/web")
    set_tag(api, "1", one.id)
    set_tag(web, "1", two.id)
    api.refresh_from_db()
    assert api.size == 500 + 100 + 1000 + 10
    assert counts()["sha256:base"] == (2, 2)
    assert counts()["sha256:own1"] == (1, 1)
    # Moving web's tag onto api's image: own2, c2 and m2 lose their only repository.
    set_tag(web, "1", one.id, when=datetime.now(UTC) + timedelta(seconds=1))
    assert counts()["sha256:own2"] == (0, 0)
    assert counts()["sha256:own1"] == (2, 2)
    assert RepositoryBlob.objects.get(repository=web, blob__digest="sha256:m1").tagged
    remove_tags(web, ["1"])
    assert not RepositoryBlob.objects.filter(repository=web).exists()
    assert counts()["sha256:base"] == (1, 1)
    # Removing the repository (as a sync does when the registry confirms it gone) recounts.
    api.delete()
    assert {c for c in counts().values()} == {(0, 0)}
    record_snapshot()  # unreferenced blob rows go with the snapshot
    assert not Blob.objects.exists()


def test_snapshots_are_written_when_figures_change_and_thinned_as_they_age():
    manifest = image("sha256:m1", [("sha256:l1", 1000)], "sha256:c1")
    api = Repository.objects.create(name="team-a/api")
    set_tag(api, "1", manifest.id)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert record_snapshot(start) == 3  # the registry, namespace team-a, team-a/api
    assert record_snapshot(start + timedelta(hours=1)) == 0  # nothing changed
    rows = StorageSnapshot.objects.filter(scope=StorageSnapshot.Scope.REGISTRY)
    assert list(rows.values_list("bytes", flat=True)) == [1600]
    # Many changing syncs over two days, then years later: thinning keeps one per day, then
    # one per week, each the day's (week's) last.
    for hour in range(48):
        StorageSnapshot.objects.create(
            taken_at=start + timedelta(hours=hour, minutes=30),
            scope=StorageSnapshot.Scope.REGISTRY,
            bytes=hour,
        )
    thin(start + timedelta(days=4))
    daily = list(rows.order_by("taken_at").values_list("bytes", "resolution"))
    assert daily == [(23, "day"), (47, "day")]
    thin(start + timedelta(weeks=20))
    assert list(rows.values_list("bytes", "resolution")) == [(47, "week")]


def test_a_repository_a_scoped_sync_creates_has_its_blob_links(use_registry):
    """The sync's fast path for new repositories (stats from what it fetched) still links
    their blobs: a scoped sync runs no snapshot that would backfill them."""
    from registryui.catalog.upstream import get_client
    from registryui.devtools.seed import Seeder
    from registryui.registry import RegistryClient
    from registryui.sync.syncer import Syncer

    with RegistryClient(use_registry.url, retries=0) as client:
        seeder = Seeder(client)
        seeder.put("team-a/new", "1")
    run = Syncer(get_client(), concurrency=2).run(repository="team-a/new")
    assert run.ok, run.error
    repository = Repository.objects.get(name="team-a/new")
    linked = set(
        RepositoryBlob.objects.filter(repository=repository).values_list("blob__digest", flat=True)
    )
    assert {seeder.layer_digest, seeder.config_digest} <= linked
    assert repository.size == sum(
        Blob.objects.filter(digest__in=linked).values_list("size", flat=True)
    )
