"""The sync follows what changes upstream: catalog paging, big repositories, moved, deleted
and vanished tags, repositories removed, ``tags: null``; and one failing repository keeps its
rows. Registries are seeded through the API (registryui.devtools.seed) to stay fast."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest

from registryui.catalog.models import Manifest, Repository, SyncRun, Tag
from registryui.catalog.upstream import get_client
from registryui.devtools.faults import FaultProxy
from registryui.devtools.registry import RegistryProcess
from registryui.devtools.seed import OCI_LAYER, Seeder
from registryui.registry import RegistryClient, mediatypes
from registryui.sync.syncer import Syncer


@dataclass
class Upstream:
    process: RegistryProcess
    client: RegistryClient
    seeder: Seeder

    def tags(self) -> dict[tuple[str, str], str]:
        """What the registry holds now: (repository, tag) → digest."""
        found = {}
        for name in (n for page in self.client.iter_catalog() for n in page):
            for tag in self.client.list_tags(name):
                found[(name, tag)] = self.client.head_manifest(name, tag).digest
        return found

    def remove_repository(self, name: str) -> None:
        """What an operator does to drop a repository: 2.8 has no API for it."""
        shutil.rmtree(self.process.storage / "docker/registry/v2/repositories" / name)


@pytest.fixture
def upstream(registry, settings) -> Iterator[Upstream]:
    settings.REGISTRY_URL = registry.url
    settings.REGISTRY_RETRIES = 1
    with RegistryClient(registry.url) as client:
        yield Upstream(registry, client, Seeder(client))


def sync(**options) -> SyncRun:
    return Syncer(get_client(), **options).run()


def stored() -> dict[tuple[str, str], str]:
    return dict(
        ((name, tag), digest)
        for name, tag, digest in Tag.objects.values_list(
            "repository__name", "name", "manifest__digest"
        )
    )


@pytest.mark.django_db
def test_the_catalog_is_read_across_pages_in_the_registrys_order(upstream):
    names = [f"team-{i % 3}/app-{i:03d}" for i in range(120)] + ["team-0/app-000/sub"]
    upstream.seeder.seed(names, ["v1"])
    mark = upstream.process.mark()
    run = sync(page_size=50)
    assert run.ok
    assert set(Repository.objects.values_list("name", flat=True)) == set(names)
    assert run.repositories_seen == run.repositories_synced == 121
    catalog = [line for line in upstream.process.requests_since(mark) if line.kind == "catalog"]
    queries = [parse_qs(urlsplit(line.path).query) for line in catalog]
    assert [q["n"] for q in queries] == [["50"]] * 3
    # Pages 2 and 3 start after the names the registry put last on the page before (from its
    # Link header), which is not Python's sort order for names with "/".
    assert "last" not in queries[0]
    assert [q["last"][0] for q in queries[1:]] == [
        run_order for run_order in _registry_order(upstream.client, 50)[:-1]
    ]


def _registry_order(client: RegistryClient, page_size: int) -> list[str]:
    return [page[-1] for page in client.iter_catalog(page_size)]


@pytest.mark.django_db
def test_a_repository_with_hundreds_of_tags(upstream):
    # 300 tags over 60 distinct images: five tags share each digest.
    seeded = upstream.seeder.put_many(
        ("big/repo", f"t{i:03d}", f"image-{i % 60}") for i in range(300)
    )
    mark = upstream.process.mark()
    run = sync()
    assert run.ok
    lines = upstream.process.requests_since(mark)
    assert stored() == {
        ("big/repo", tag): digest for tag, digest in seeded.tags["big/repo"].items()
    }
    assert len(stored()) == 300
    counted = Counter(line.kind for line in lines)
    # Each new tag is read once by tag, without a HEAD first, and checked against its bytes;
    # each of the 60 images is parsed and stored once.
    assert counted["manifest_head"] == 0
    assert counted["manifest_get"] == 300
    assert run.manifests_fetched == 60
    assert counted["blob_get"] == 60  # one config read per image
    assert Repository.objects.get(name="big/repo").tag_count == 300


@pytest.mark.django_db
def test_a_moved_tag_points_at_its_new_digest(upstream):
    seeder = upstream.seeder
    old = seeder.put("team-a/api", "latest", note="one")
    seeder.put("team-a/api", "1.0", note="one")
    assert sync().ok
    first_seen = Tag.objects.get(name="latest").first_seen_at
    new = seeder.put("team-a/api", "latest", note="two")
    mark = upstream.process.mark()
    run = sync()
    assert run.ok
    assert (run.tags_added, run.tags_updated, run.tags_removed) == (0, 1, 0)
    assert stored() == {("team-a/api", "latest"): new, ("team-a/api", "1.0"): old}
    tag = Tag.objects.get(name="latest")
    assert tag.first_seen_at == first_seen
    assert tag.changed_at > first_seen
    # Only the new digest is fetched.
    gets = [
        line.path for line in upstream.process.requests_since(mark) if line.kind == "manifest_get"
    ]
    assert gets == ["/v2/team-a/api/manifests/latest"]  # by tag: checked against its bytes


@pytest.mark.django_db
def test_a_tag_deleted_upstream_is_dropped(upstream):
    seeder = upstream.seeder
    keep = seeder.put("team-a/api", "keep")
    gone = seeder.put("team-a/api", "gone")
    assert sync().ok
    upstream.client.delete_manifest("team-a/api", gone)
    run = sync()
    assert run.ok
    assert (run.tags_removed, run.tags_added) == (1, 0)
    assert stored() == {("team-a/api", "keep"): keep}
    assert Repository.objects.get(name="team-a/api").tag_count == 1


@pytest.mark.django_db
def test_a_repository_whose_tags_are_all_gone_stays_with_no_tags(upstream):
    """The registry keeps listing it and answers ``"tags": null``."""
    seeder = upstream.seeder
    digest = seeder.put("team-a/empty", "1", note="same")
    seeder.put("team-a/empty", "2", note="same")
    seeder.put("team-a/other", "1")
    assert sync().ok
    upstream.client.delete_manifest("team-a/empty", digest)
    raw = upstream.client.session.get(f"{upstream.process.url}/v2/team-a/empty/tags/list").json()
    assert raw == {"name": "team-a/empty", "tags": None}
    run = sync()
    assert run.ok and run.tags_removed == 2
    repository = Repository.objects.get(name="team-a/empty")
    assert repository.tag_count == 0 and not repository.tags.exists()
    assert stored() == upstream.tags()


@pytest.mark.django_db
def test_a_repository_removed_upstream_is_dropped(upstream):
    upstream.seeder.seed(["team-a/api", "team-a/old"], ["1", "2"])
    assert sync().ok
    upstream.remove_repository("team-a/old")
    run = sync()
    assert run.ok and run.repositories_removed == 1
    assert list(Repository.objects.values_list("name", flat=True)) == ["team-a/api"]
    assert stored() == upstream.tags()
    # Its manifests stay: content-addressed rows may serve other repositories.
    assert Manifest.objects.count() == 4


@pytest.mark.django_db
def test_a_tag_that_vanishes_between_listing_and_head_is_skipped(upstream):
    """A tag deleted after the tag list was read: the 404 is the registry's answer, to the GET
    of a tag never seen (the initial sync makes no HEAD) as to the HEAD of a known tag.

    Uses FaultProxy for the race, which a real registry cannot produce on demand."""
    upstream.seeder.seed(["team-a/api"], ["1", "2"])
    with FaultProxy(upstream.process.url) as proxy:
        proxy.fail(404, method="GET", path="/manifests/2$")
        run = Syncer(RegistryClient(proxy.url, retries=0)).run()
    assert run.ok
    assert list(stored()) == [("team-a/api", "1")]
    upstream.seeder.seed(["team-a/api"], ["3"])
    assert sync().ok
    with FaultProxy(upstream.process.url) as proxy:
        proxy.fail(404, method="HEAD", path="/manifests/3$")
        run = Syncer(RegistryClient(proxy.url, retries=0)).run()
    assert run.ok
    assert sorted(stored()) == [("team-a/api", "1"), ("team-a/api", "2")]


@pytest.mark.django_db
def test_one_failing_repository_keeps_its_rows_and_fails_the_run(upstream):
    """A repository whose HEADs answer 503 (injected with FaultProxy, as a real registry will
    not fail one repository on demand) keeps its previous tags; the others sync."""
    seeder = upstream.seeder
    seeder.seed(["team-a/api", "team-b/web"], ["1"])
    assert sync().ok
    before = stored()
    moved_a = seeder.put("team-a/api", "1", note="moved")
    seeder.put("team-b/web", "1", note="moved too")
    with FaultProxy(upstream.process.url) as proxy:
        proxy.fail(503, method="HEAD", path="^/v2/team-b/web/")
        run = Syncer(RegistryClient(proxy.url, retries=1, backoff_factor=0)).run()
    assert run.status == SyncRun.Status.FAILED and not run.ok
    assert (run.repositories_synced, run.repositories_failed) == (1, 1)
    assert stored() == {
        ("team-a/api", "1"): moved_a,
        ("team-b/web", "1"): before[("team-b/web", "1")],
    }
    error = run.errors.get()
    assert (error.repository, error.code) == ("team-b/web", "UNAVAILABLE")
    web = Repository.objects.get(name="team-b/web")
    assert web.sync_failed and "unavailable" in web.last_sync_error
    # The next good sync clears the error.
    assert sync().ok
    web.refresh_from_db()
    assert not web.sync_failed and web.last_sync_error == ""
    assert stored() == upstream.tags()


@pytest.mark.django_db
def test_a_stop_request_ends_the_run_cleanly_and_removes_nothing(upstream):
    upstream.seeder.seed([f"r/{i:02d}" for i in range(40)], ["1"])
    Repository.objects.create(name="not/in/the/registry")
    syncer = Syncer(get_client(), concurrency=2)
    syncer.on_progress = lambda progress: (
        syncer.stop_event.set() if progress.repositories_done >= 3 else None
    )
    run = syncer.run()
    assert run.status == SyncRun.Status.FAILED
    assert run.error == "Interrupted before the end; nothing was removed."
    assert 3 <= run.repositories_synced < 40
    assert Repository.objects.filter(name="not/in/the/registry").exists()
    # Every repository it did store is complete and right.
    assert Tag.objects.count() == run.repositories_synced


@pytest.mark.django_db
def test_a_repository_with_only_untagged_manifests_is_listed_without_tags(upstream):
    """The catalog lists it, but its tag list answers 404 NAME_UNKNOWN (no tags directory)."""
    seeder = upstream.seeder
    seeder.prepare("team-a/untagged")
    body, digest = seeder.manifest("untagged")
    upstream.client.put_manifest("team-a/untagged", digest, body, mediatypes.OCI_MANIFEST)
    seeder.put("team-a/api", "1")
    run = sync()
    assert run.ok, run.error
    assert Repository.objects.get(name="team-a/untagged").tag_count == 0
    assert list(stored()) == [("team-a/api", "1")]


@pytest.mark.django_db
def test_images_the_registry_stored_without_checking_are_synced(upstream):
    """Registry 2.8 takes any bytes as a config blob and any number as a descriptor's size.
    Such images are listed with what can be read of them, and the rest of the run goes on."""
    client, seeder = upstream.client, upstream.seeder
    seeder.put("team-a/api", "1")
    seeder.prepare("team-b/odd")
    odd_config = json.dumps(
        {"os": "linux", "architecture": "arm64", "config": {"ExposedPorts": ["80/tcp"]}}
    ).encode()
    config_digest = client.upload_blob("team-b/odd", odd_config)
    tagged = {}
    for tag, config, config_size, layer_size in [
        ("config", config_digest, len(odd_config), len(seeder.layer)),
        ("sizes", seeder.config_digest, 2**40, -1),  # 2**40 outgrows a 32-bit column
    ]:
        document = {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_MANIFEST,
            "config": {"mediaType": mediatypes.OCI_CONFIG, "digest": config, "size": config_size},
            "layers": [{"mediaType": OCI_LAYER, "digest": seeder.layer_digest, "size": layer_size}],
        }
        body = json.dumps(document).encode()
        tagged[tag] = client.put_manifest("team-b/odd", tag, body, mediatypes.OCI_MANIFEST)

    run = sync()

    assert run.ok, (run.error, list(run.errors.values_list("repository", "message")))
    assert stored() == upstream.tags()
    odd = Manifest.objects.get(digest=tagged["config"])
    assert (odd.platforms, odd.config["ExposedPorts"]) == ("linux/arm64", [])
    sizes = Manifest.objects.get(digest=tagged["sizes"])
    assert sizes.config_size == 2**40
    assert list(sizes.layers.values_list("size", flat=True)) == [0]  # -1: unknown
