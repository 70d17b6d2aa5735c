"""The sync makes only the requests it must (issue 18), counted from the registry's access log.

Initial sync: catalog pages + one tag list per repository + one manifest GET per tag (no HEAD:
the GET's ``Docker-Content-Digest`` is checked against its bytes) + one GET per index child +
one config GET per image digest. Re-sync: catalog pages + tag lists + one HEAD per known tag, and
a GET only for a tag the database has never seen, or a known tag whose HEAD names another digest
(then a config GET only when that digest is new to the database). ``SyncRun.requests_by_kind``
must say the same as the registry. Run on SQLite and PostgreSQL (``DATABASE_URL``).
"""

from __future__ import annotations

from collections import Counter

import pytest

from registryui.catalog.models import (
    Blob,
    IndexChild,
    Manifest,
    Repository,
    RepositoryBlob,
    SyncRun,
    Tag,
)
from registryui.devtools.images import ImageSpec, Layout, Platform, skopeo_copy
from registryui.devtools.registry import RegistryProcess
from registryui.devtools.seed import Seeder
from registryui.registry import RegistryClient
from registryui.sync.syncer import Syncer

pytestmark = pytest.mark.django_db


def synced(process: RegistryProcess) -> tuple[SyncRun, Counter]:
    """One full sync; the run, and what the registry served for it (by kind)."""
    mark = process.mark()
    with RegistryClient(process.url) as client:
        run = Syncer(client, concurrency=4, page_size=2).run()
    lines = process.requests_since(mark)
    assert run.ok, run.error
    # Every request answered 200, but the referrers API probe (issue 17), which 2.8 answers 404.
    assert all(line.status == 200 or line.kind == "referrers" for line in lines), [
        (x.path, x.status) for x in lines
    ]
    counted = Counter(line.kind for line in lines)
    # The run's own record agrees with the registry, kind by kind.
    assert run.requests_by_kind == dict(sorted(counted.items()))
    assert run.requests_made == len(lines)
    return run, counted


def stored() -> dict[tuple[str, str], str]:
    return dict(
        ((name, tag), digest)
        for name, tag, digest in Tag.objects.values_list(
            "repository__name", "name", "manifest__digest"
        )
    )


def test_initial_sync_and_resyncs_make_exactly_the_requests_they_must(registry, tmp_path):
    with RegistryClient(registry.url) as client:
        seeder = Seeder(client)
        truth: dict[tuple[str, str], str] = {}
        # Five repositories (three catalog pages of 2), nine tags, six image digests: two tags
        # of small/a share an image, small/b tags an image of small/a.
        for repository, tag, note in [
            ("small/a", "1", "one"),
            ("small/a", "2", "two"),
            ("small/a", "latest", "two"),
            ("small/b", "1", "one"),
            ("small/b", "2", "b-two"),
            ("small/c", "1", "c-one"),
            ("small/d", "1", "d-one"),
            ("small/e", "1", "e-one"),
        ]:
            truth[(repository, tag)] = seeder.put(repository, tag, note=note)
        # One index of two platform images: its tag by tag, its children by digest.
        layout = Layout(tmp_path / "layout")
        layout.add_index(
            "multi",
            [
                ImageSpec(files={"a": b"amd64"}, platform=Platform(architecture="amd64")),
                ImageSpec(files={"a": b"arm64"}, platform=Platform(architecture="arm64")),
            ],
        )
        skopeo_copy(layout, "multi", f"{registry.host}/small/e:multi", all_platforms=True)
        truth[("small/e", "multi")] = client.head_manifest("small/e", "multi").digest

    # -- initial sync ---------------------------------------------------------------------
    first, counted = synced(registry)
    assert stored() == truth
    tags = len(truth)  # 9
    children = IndexChild.objects.count()
    images = Manifest.objects.filter(kind="image").count()
    assert (tags, children, images) == (9, 2, 8)
    assert counted == {
        "catalog": 3,  # 5 repositories, pages of 2
        "tags": 5,
        "manifest_get": tags + children,  # each tag once by tag, each child once by digest
        "blob_get": images,  # one config per image digest (not per tag)
        # Does the registry answer the referrers API? Asked once a day (issue 17): 2.8 no.
        "referrers": 1,
    }
    assert "manifest_head" not in counted  # a tag never seen needs no HEAD before its GET
    assert first.manifests_fetched == Manifest.objects.count() == 6 + 1 + 2
    # New repositories take their figures from what was fetched, without reading them back:
    # the same figures as recomputed from the rows.
    # Their blob links too (written from the fetched manifests, catalog.storage
    # .wanted_from_fetched): the same links and counts as link_blobs reading the rows.
    links = set(
        RepositoryBlob.objects.values_list("repository__name", "blob__digest", "images", "tagged")
    )
    counts = set(
        Blob.objects.values_list("digest", "size", "kind", "repository_count", "image_count")
    )
    assert links and counts
    for repository in Repository.objects.all():
        written = (repository.tag_count, repository.size, repository.last_updated_at)
        repository.refresh_stats()
        assert written == (repository.tag_count, repository.size, repository.last_updated_at)
        assert repository.size > 0 and repository.tag_count
    assert links == set(
        RepositoryBlob.objects.values_list("repository__name", "blob__digest", "images", "tagged")
    )
    assert counts == set(
        Blob.objects.values_list("digest", "size", "kind", "repository_count", "image_count")
    )

    # -- a re-sync with no change: one HEAD per tag, nothing else --------------------------
    again, counted = synced(registry)
    assert counted == {"catalog": 3, "tags": 5, "manifest_head": tags}
    assert (again.tags_added, again.tags_updated, again.tags_removed) == (0, 0, 0)
    assert again.manifests_fetched == 0

    # -- a re-sync after changes ----------------------------------------------------------
    with RegistryClient(registry.url) as client:
        seeder = Seeder(client)
        # A moved tag whose new image is new to the database: HEAD, GET by tag, config GET.
        truth[("small/c", "1")] = seeder.put("small/c", "1", note="c-moved")
        # A moved tag whose new image the database has: HEAD, GET by tag (its bytes confirm
        # what the HEAD said), no config GET.
        truth[("small/d", "1")] = seeder.put("small/d", "1", note="one")
        # A new tag of a known image: its GET alone, no config GET.
        truth[("small/b", "new")] = seeder.put("small/b", "new", note="two")
        # A new tag of a new image: its GET, then its config.
        truth[("small/b", "newer")] = seeder.put("small/b", "newer", note="b-newer")
    changed, counted = synced(registry)
    assert stored() == truth
    assert counted == {
        "catalog": 3,
        "tags": 5,
        "manifest_head": tags,  # every tag the database knew, once
        "manifest_get": 4,  # the two moved tags and the two new ones, by tag
        "blob_get": 2,  # the configs of the two image digests new to the database
    }
    assert (changed.tags_added, changed.tags_updated, changed.tags_removed) == (2, 2, 0)
    assert changed.manifests_fetched == 2
