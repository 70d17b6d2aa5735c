"""The sync under faults (issue 12, items 5 to 9): nothing is removed on one answer's word, one
bad answer is an error for its tag and not data, one unreadable image does not freeze its
repository, and a few failed reads do not stop the run.

Each test runs against a real registry, through ``FaultProxy`` where the fault is one a real
registry cannot produce on demand (a catalog page that leaves a repository out, ``tags: null``
for a repository that has tags, a digest header naming another image, a body cut short, a
connection reset). Run on SQLite and PostgreSQL (``DATABASE_URL``).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from registryui.catalog.models import Repository, SyncRun, Tag
from registryui.devtools.faults import FaultProxy, digest_header, drop_repository, null_tags
from registryui.devtools.registry import RegistryProcess
from registryui.devtools.seed import Seeder, put_image
from registryui.registry import RegistryClient, mediatypes
from registryui.sync.syncer import Syncer

pytestmark = pytest.mark.django_db


@dataclass
class World:
    process: RegistryProcess
    client: RegistryClient
    seeder: Seeder
    proxy: FaultProxy

    def sync(self, **options) -> SyncRun:
        """A full sync through the proxy (one retry, no back-off: the tests stay fast)."""
        with RegistryClient(self.proxy.url, retries=1, backoff_factor=0) as client:
            return Syncer(client, concurrency=4, **options).run()

    def direct_sync(self) -> SyncRun:
        with RegistryClient(self.process.url, retries=1, backoff_factor=0) as client:
            return Syncer(client, concurrency=4).run()

    def truth(self) -> dict[tuple[str, str], str]:
        found = {}
        for name in (n for page in self.client.iter_catalog() for n in page):
            for tag in self.client.list_tags(name):
                found[(name, tag)] = self.client.head_manifest(name, tag).digest
        return found

    def requests_to(self, pattern: str) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.proxy.seen if re.search(pattern, r.path)]


@pytest.fixture
def world(registry, settings) -> Iterator[World]:
    settings.REGISTRY_URL = registry.url
    settings.REGISTRY_RETRIES = 1
    with RegistryClient(registry.url) as client, FaultProxy(registry.url) as proxy:
        seeder = Seeder(client)
        seeder.seed(["team-a/api", "team-a/web", "team-b/db"], ["1", "2", "3"])
        world = World(registry, client, seeder, proxy)
        assert world.direct_sync().ok
        yield world


def stored() -> dict[tuple[str, str], str]:
    return {
        (name, tag): digest
        for name, tag, digest in Tag.objects.values_list(
            "repository__name", "name", "manifest__digest"
        )
    }


def first_seen() -> dict[tuple[str, str], object]:
    return {
        (name, tag): when
        for name, tag, when in Tag.objects.values_list("repository__name", "name", "first_seen_at")
    }


def test_5_a_repository_the_catalog_leaves_out_is_removed_only_once_the_registry_says_so(world):
    """A catalog page leaves team-a/web out: its own tag list, asked in the same run, says it
    is there, so it stays (with its first-seen times, which retention rules read). A
    repository that is really gone (its files removed, as an operator would) is removed."""
    before, seen = stored(), first_seen()
    world.proxy.rewrite(drop_repository("team-a/web"), method="GET", path="^/v2/_catalog")

    run = world.sync()

    assert run.ok, run.error
    assert run.repositories_removed == 0
    assert stored() == before and first_seen() == seen
    assert world.requests_to("^/v2/team-a/web/tags/list") == ["GET /v2/team-a/web/tags/list"]

    # Now really gone: removed in the same run that notices it, after the direct check.
    shutil.rmtree(world.process.storage / "docker/registry/v2/repositories/team-b/db")
    world.proxy.seen.clear()
    run = world.sync()
    assert run.ok and run.repositories_removed == 1
    assert not Repository.objects.filter(name="team-b/db").exists()
    assert Repository.objects.filter(name="team-a/web").exists()
    assert world.requests_to("^/v2/team-b/db/") == ["GET /v2/team-b/db/tags/list"]
    assert stored() == world.truth()


def test_6_tags_null_for_a_repository_that_has_tags_removes_only_what_a_head_confirms(world):
    """``"tags": null`` for team-a/api, whose tags 1 and 2 are still there and whose tag 3
    was really deleted: a HEAD per vanished tag decides, so only 3 goes."""
    before = stored()
    gone = before[("team-a/api", "3")]
    world.client.delete_manifest("team-a/api", gone)
    world.proxy.rewrite(null_tags, method="GET", path="^/v2/team-a/api/tags/list")

    run = world.sync()

    assert run.ok, run.error
    assert run.tags_removed == 1
    expected = {key: digest for key, digest in before.items() if key != ("team-a/api", "3")}
    assert stored() == expected == world.truth()
    heads = world.requests_to("^/v2/team-a/api/manifests/")
    assert sorted(heads) == [f"HEAD /v2/team-a/api/manifests/{tag}" for tag in ("1", "2", "3")]


def test_6_a_whole_repository_vanishing_at_once_is_confirmed_first(world):
    """Every repository's list says ``tags: null`` at once (a proxy at its worst): nothing
    is removed, because every tag still answers its HEAD."""
    before = stored()
    world.proxy.rewrite(null_tags, method="GET", path="/tags/list$")

    run = world.sync()

    assert run.ok and run.tags_removed == 0
    assert stored() == before


def test_7_a_digest_header_naming_another_image_is_an_error_for_that_tag(world):
    """team-a/api:1 and :3 move upstream; the proxy's headers say they are team-a/api:2's
    image (a real one). Their bytes say otherwise: each keeps its old row, with the reason
    shown, and nothing points at the wrong image. A new tag (read by GET alone, without a HEAD)
    with a lying header is not created."""
    before = stored()
    other = before[("team-a/api", "2")]
    moved = world.seeder.put("team-a/api", "1", note="moved")
    world.seeder.put("team-a/api", "3", note="moved too")
    world.seeder.put("team-a/api", "4", note="new")
    # For tag 1 both answers lie; for tag 3 only the HEAD does (its GET sends the truth); tag
    # 4 is new, so it gets no HEAD, and its GET lies.
    world.proxy.rewrite(digest_header(other), path="^/v2/team-a/api/manifests/1$")
    world.proxy.rewrite(digest_header(other), method="HEAD", path="^/v2/team-a/api/manifests/3$")
    world.proxy.rewrite(digest_header(other), method="GET", path="^/v2/team-a/api/manifests/4$")

    run = world.sync()

    assert not run.ok
    assert stored() == before  # 1 and 3 at their old digests, 4 not created, 2 untouched
    assert stored()[("team-a/api", "1")] != other
    assert world.requests_to("^/v2/team-a/api/manifests/4$") == ["GET /v2/team-a/api/manifests/4"]
    tag = Tag.objects.get(repository__name="team-a/api", name="1")
    assert "does not match its digest" in tag.sync_problem and other in tag.sync_problem
    errors = {e.message.split(":")[0]: e for e in run.errors.all()}
    assert {tag: e.code for tag, e in errors.items()} == {
        "tag 1": "INVALID_RESPONSE",
        "tag 3": "DIGEST_MISMATCH",
        "tag 4": "INVALID_RESPONSE",
    }
    assert "neither is trusted" in errors["tag 3"].message

    # Without the fault, the next run reads both and clears the reason.
    world.proxy.clear()
    assert world.sync().ok
    assert stored()[("team-a/api", "1")] == moved
    assert stored()[("team-a/api", "3")] != before[("team-a/api", "3")]
    assert ("team-a/api", "4") in stored()
    assert not Tag.objects.exclude(sync_problem="").exists()


def test_8_one_unreadable_image_does_not_freeze_its_repository(world, client, django_user_model):
    """In team-a/api: tag 1 moves to an image whose config blob is missing, tag 2 answers 500,
    tag 3 is deleted and tag 5 is new. 3 goes, 5 comes, 1 and 2 stay as they were with their
    reasons on the tag and repository pages, and the next run tries them again."""
    before = stored()
    client_ = world.client
    broken_config = b'{"os": "linux", "architecture": "amd64", "comment": "blob deleted"}'
    put_image(client_, "team-a/api", "1", broken_config, seeder=world.seeder)
    config_digest = client_.upload_blob("team-a/api", broken_config)
    deleted = requests.delete(f"{world.process.url}/v2/team-a/api/blobs/{config_digest}")
    assert deleted.status_code == 202
    world.seeder.put("team-a/api", "2", note="moved, but its answer is a 500")
    world.client.delete_manifest("team-a/api", before[("team-a/api", "3")])
    new = world.seeder.put("team-a/api", "5", note="new")
    world.proxy.fail(500, method="GET", path="^/v2/team-a/api/manifests/2$")

    run = world.sync()

    assert run.status == SyncRun.Status.FAILED
    api = {tag: digest for (name, tag), digest in stored().items() if name == "team-a/api"}
    assert api == {"1": before[("team-a/api", "1")], "2": before[("team-a/api", "2")], "5": new}
    problems = dict(
        Tag.objects.filter(repository__name="team-a/api")
        .exclude(sync_problem="")
        .values_list("name", "sync_problem")
    )
    assert set(problems) == {"1", "2"}
    assert "config blob" in problems["1"] and "is missing" in problems["1"]
    assert "HTTP 500" in problems["2"]
    assert (run.tags_added, run.tags_removed) == (1, 1)
    repository = Repository.objects.get(name="team-a/api")
    assert "2 tags could not be read" in repository.last_sync_error

    # Shown on the tag page and on the repository page.
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    tag_page = client.get("/r/team-a/api:1").content.decode()
    assert "config blob" in tag_page and "is missing" in tag_page
    repository_page = client.get("/r/team-a/api").content.decode()
    assert repository_page.count('class="badge warning sync-problem"') == 2
    assert "HTTP 500" in repository_page

    # Retried next run: with the blob back and the 500 gone, both are read.
    world.proxy.clear()
    client_.upload_blob("team-a/api", broken_config)
    assert world.sync().ok
    assert stored() == world.truth()
    assert not Tag.objects.exclude(sync_problem="").exists()
    assert Repository.objects.get(name="team-a/api").last_sync_error == ""


def test_8_an_index_with_a_missing_child_and_a_huge_config_keep_their_tags(world):
    before = stored()
    world.seeder.prepare("team-b/db")
    body, child = world.seeder.manifest("child")
    world.client.put_manifest("team-b/db", child, body, mediatypes.OCI_MANIFEST)
    entry = {
        "mediaType": mediatypes.OCI_MANIFEST,
        "digest": child,
        "size": len(body),
        "platform": {"os": "linux", "architecture": "arm64"},
    }
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": [entry]}
    ).encode()
    world.client.put_manifest("team-b/db", "1", index, mediatypes.OCI_INDEX)
    world.client.delete_manifest("team-b/db", child)
    put_image(world.client, "team-b/db", "2", b"{" + b" " * (5 * 1024 * 1024) + b"}")
    fresh = world.seeder.put("team-b/db", "3", note="moved")

    run = world.sync()

    assert not run.ok
    db = {tag: digest for (name, tag), digest in stored().items() if name == "team-b/db"}
    assert db == {"1": before[("team-b/db", "1")], "2": before[("team-b/db", "2")], "3": fresh}
    problems = dict(Tag.objects.exclude(sync_problem="").values_list("name", "sync_problem"))
    assert "platform image" in problems["1"] and "is missing" in problems["1"]
    assert "larger than 4 MiB" in problems["2"]


def test_9_a_body_cut_short_and_a_few_resets_do_not_stop_the_run(world):
    """Two manifest bodies cut short and a reset tag list: each is retried (the client makes
    one retry here), and the run completes with every repository synced."""
    moved = {
        name: world.seeder.put(name, "1", note="moved") for name in ("team-a/api", "team-b/db")
    }
    world.proxy.truncate(method="GET", path="^/v2/team-a/api/manifests/", times=1)
    world.proxy.truncate(method="GET", path="^/v2/team-b/db/manifests/", times=1)
    world.proxy.reset(method="GET", path="/tags/list$", times=1)

    run = world.sync()

    assert run.ok, run.error
    assert run.repositories_synced == 3
    assert stored() == world.truth()
    assert all(stored()[(name, "1")] == digest for name, digest in moved.items())


def test_9_a_repository_that_keeps_failing_fails_alone(world):
    """Every read of one repository's tag list is reset (more than the retries): that
    repository fails with its rows kept, and the run goes on with the others."""
    before = stored()
    moved = world.seeder.put("team-b/db", "1", note="moved")
    world.proxy.reset(method="GET", path="^/v2/team-a/web/tags/list")

    run = world.sync()

    assert run.status == SyncRun.Status.FAILED
    assert "stopped answering" not in run.error
    assert (run.repositories_synced, run.repositories_failed) == (2, 1)
    assert run.errors.get().repository == "team-a/web"
    assert stored() == {**before, ("team-b/db", "1"): moved}


def test_9_a_sustained_outage_stops_the_run_and_says_how_long_it_lasted(world):
    """After the catalog, every request is reset: the run holds, probes, gives up after the
    outage has lasted OUTAGE_SECONDS, removes nothing and says how long it waited."""
    before = stored()
    for i in range(12):
        world.seeder.put(f"team-c/app-{i:02d}", "1")
    world.proxy.reset(path="^/v2/", after=1)  # the catalog passes, nothing after it

    run = world.sync(outage_seconds=1.5)

    assert run.status == SyncRun.Status.FAILED
    match = re.search(r"stopped answering for (\d+) s", run.error)
    assert match and int(match.group(1)) >= 1, run.error
    assert "nothing was removed" in run.error
    assert run.repositories_removed == 0
    assert stored() == before
