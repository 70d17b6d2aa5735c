"""A full sync reads the registry over seconds; notifications and cleanup actions change tags
meanwhile. A snapshot taken before such a change must not be written over it, and a
repository that appeared after the catalog was listed is not "gone"."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from registryui.catalog.models import Manifest, Repository, Tag
from registryui.catalog.store import remove_tags, set_tag
from registryui.catalog.upstream import get_client
from registryui.devtools.seed import Seeder
from registryui.registry import RegistryClient
from registryui.sync.syncer import RepositorySnapshot, Syncer

pytestmark = pytest.mark.django_db


@pytest.fixture
def synced(use_registry):
    """team-a/api with tags 1 → D1 and 2 → D2, pushed to a real registry and synced."""
    with RegistryClient(use_registry.url) as client:
        seeder = Seeder(client)
        d1 = seeder.put("team-a/api", "1")
        d2 = seeder.put("team-a/api", "2")
    run = Syncer(get_client()).run()
    assert run.ok
    return d1, d2


def digests() -> dict[str, str]:
    return dict(
        Tag.objects.filter(repository__name="team-a/api").values_list("name", "manifest__digest")
    )


def test_an_older_snapshot_does_not_undo_a_notified_move(synced):
    d1, d2 = synced
    syncer = Syncer(get_client())
    syncer.start()
    # The sync asked the registry a second ago: tag 1 was still on D1 then.
    snapshot = RepositorySnapshot(
        name="team-a/api",
        tags={"1": d1, "2": d2},
        observed_at=timezone.now() - timedelta(seconds=1),
    )
    # Meanwhile a push notification moved tag 1 to D2 and added tag 3.
    repository = Repository.objects.get(name="team-a/api")
    d2_id = Manifest.objects.get(digest=d2).id
    assert set_tag(repository, "1", d2_id)
    assert set_tag(repository, "3", d2_id)

    syncer.store_snapshot(snapshot)

    assert digests() == {"1": d2, "2": d2, "3": d2}


def test_an_older_snapshot_does_not_bring_back_a_deleted_tag(synced):
    d1, d2 = synced
    syncer = Syncer(get_client())
    syncer.start()
    snapshot = RepositorySnapshot(
        name="team-a/api",
        tags={"1": d1, "2": d2},
        observed_at=timezone.now() - timedelta(seconds=1),
    )
    remove_tags(Repository.objects.get(name="team-a/api"), ["1"])  # a cleanup action

    syncer.store_snapshot(snapshot)

    assert digests() == {"2": d2}


def test_a_newer_snapshot_is_applied(synced):
    d1, d2 = synced
    repository = Repository.objects.get(name="team-a/api")
    remove_tags(repository, ["1"])
    syncer = Syncer(get_client())
    syncer.start()
    snapshot = RepositorySnapshot(name="team-a/api", tags={"1": d1, "2": d2})

    syncer.store_snapshot(snapshot)

    assert digests() == {"1": d1, "2": d2}


def test_a_repository_pushed_after_the_catalog_was_listed_is_not_removed(synced):
    _, d2 = synced
    syncer = Syncer(get_client())
    syncer.start()
    # A notification created team-a/new after the catalog listing (which did not have it).
    fresh = Repository.objects.create(name="team-a/new")
    set_tag(fresh, "1", Manifest.objects.get(digest=d2).id)

    assert syncer.unlisted(["team-a/api"]) == []  # not even asked about
    syncer.sync_repositories(["team-a/api"], unlisted=syncer.unlisted(["team-a/api"]))

    assert Repository.objects.filter(name="team-a/new").exists()


def test_a_repository_gone_before_the_run_is_removed(synced):
    Repository.objects.create(name="team-b/old", first_seen_at=timezone.now() - timedelta(days=1))

    run = Syncer(get_client()).run()

    assert run.ok and run.repositories_removed == 1
    assert set(Repository.objects.values_list("name", flat=True)) == {"team-a/api"}


def test_a_repository_pushed_after_a_single_sync_found_none_is_not_removed(synced):
    """``sync_registry --repository`` heard "unknown" from the registry; a push notification
    created the repository before the answer was written."""
    _, d2 = synced
    syncer = Syncer(get_client())
    syncer.start(scope="team-a/new")
    snapshot = RepositorySnapshot(
        name="team-a/new", missing=True, observed_at=timezone.now() - timedelta(seconds=1)
    )
    fresh = Repository.objects.create(name="team-a/new")
    set_tag(fresh, "1", Manifest.objects.get(digest=d2).id)
    # And one that was already known, whose tags a cleanup action just changed.
    known = Repository.objects.get(name="team-a/api")
    remove_tags(known, ["1"])
    known_snapshot = RepositorySnapshot(
        name="team-a/api", missing=True, observed_at=timezone.now() - timedelta(seconds=1)
    )

    syncer.store_snapshot(snapshot, single=True)
    syncer.store_snapshot(known_snapshot, single=True)

    assert syncer.run_record.repositories_removed == 0
    assert dict(Tag.objects.filter(repository=fresh).values_list("name", "manifest__digest")) == {
        "1": d2
    }
    assert digests() == {"2": d2}
