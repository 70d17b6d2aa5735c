"""The sync against a real registry holding real images pushed with skopeo: every repository,
tag and digest exactly; manifests, index children, layers and config facts; the zero-GET
re-sync; ``--repository``."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from django.core.management import call_command

from registryui.catalog.models import IndexChild, Label, Layer, Manifest, Repository, SyncRun, Tag
from registryui.catalog.upstream import get_client
from registryui.devtools.images import ImageSpec, Layout, Platform, skopeo_copy, skopeo_inspect_raw
from registryui.devtools.registry import RegistryProcess
from registryui.devtools.samples import push_samples
from registryui.registry import RegistryClient, mediatypes
from registryui.sync.syncer import Syncer


@dataclass
class Pushed:
    process: RegistryProcess
    #: (repository, tag) → digest, from ``skopeo inspect --raw | sha256sum``
    digests: dict[tuple[str, str], str]
    #: digest → the manifest bytes skopeo saw
    raw: dict[str, bytes]


@pytest.fixture(scope="module")
def pushed(tmp_path_factory) -> Iterator[Pushed]:
    """The demo's samples, plus a Docker manifest list (skopeo --format v2s2 --all)."""
    root = tmp_path_factory.mktemp("sync")
    process = RegistryProcess(root / "registry").start()
    try:
        push_samples(process.host, root)
        layout = Layout(root / "extra")
        layout.add_index(
            "multi",
            [
                ImageSpec(files={"m": b"amd64"}, platform=Platform("linux", "amd64")),
                ImageSpec(files={"m": b"arm"}, platform=Platform("linux", "arm", "v7")),
            ],
        )
        skopeo_copy(
            layout,
            "multi",
            f"{process.host}/team-b/multi:1",
            docker_format=True,
            all_platforms=True,
        )
        digests, raw = {}, {}
        with RegistryClient(process.url) as client:
            for name in (name for page in client.iter_catalog() for name in page):
                for tag in client.list_tags(name):
                    body = skopeo_inspect_raw(f"{process.host}/{name}:{tag}")
                    digest = "sha256:" + hashlib.sha256(body).hexdigest()
                    digests[(name, tag)], raw[digest] = digest, body
        yield Pushed(process, digests, raw)
    finally:
        process.stop()


@pytest.fixture
def upstream(pushed, settings) -> Pushed:
    settings.REGISTRY_URL = pushed.process.url
    settings.REGISTRY_RETRIES = 1
    return pushed


def sync(**options) -> SyncRun:
    run = Syncer(get_client(), **options).run()
    assert run.ok, (run.error, list(run.errors.values_list("repository", "message")))
    return run


def stored_tags() -> dict[tuple[str, str], str]:
    return {
        (t.repository.name, t.name): t.manifest.digest
        for t in Tag.objects.select_related("repository", "manifest")
    }


@pytest.mark.django_db
def test_every_repository_tag_and_digest_is_stored_exactly(upstream):
    run = sync()
    assert stored_tags() == upstream.digests
    names = {name for name, _ in upstream.digests}
    assert set(Repository.objects.values_list("name", flat=True)) == names
    assert names == {
        "hello",
        "platform/tools/builder",
        "team-a/api",
        "team-a/web",
        "team-b/multi",
        "team-b/worker",
    }
    assert (run.repositories_seen, run.repositories_synced) == (6, 6)
    assert run.tags_seen == run.tags_added == len(upstream.digests)
    for repository in Repository.objects.all():
        tags = [t for n, t in upstream.digests if n == repository.name]
        assert repository.tag_count == len(tags)
        assert repository.last_synced_at is not None
        assert repository.namespace == (
            repository.name.split("/")[0] if "/" in repository.name else ""
        )


@pytest.mark.django_db
def test_manifests_are_stored_byte_for_byte_with_their_media_types(upstream):
    sync()
    media_types = {
        ("team-a/api", "1.4"): mediatypes.OCI_MANIFEST,
        ("team-b/worker", "v1"): mediatypes.DOCKER_MANIFEST,
        ("team-a/web", "2.0"): mediatypes.OCI_INDEX,
        ("team-b/multi", "1"): mediatypes.DOCKER_MANIFEST_LIST,
    }
    for (name, tag), media_type in media_types.items():
        digest = upstream.digests[(name, tag)]
        manifest = Manifest.objects.get(digest=digest)
        assert manifest.media_type == media_type
        assert manifest.raw.encode() == upstream.raw[digest]
        assert manifest.size == len(upstream.raw[digest])
        assert manifest.kind == ("index" if media_type in mediatypes.INDEX_TYPES else "image")


@pytest.mark.django_db
def test_several_tags_on_one_digest_share_one_manifest_row(upstream):
    sync()
    digest = upstream.digests[("team-a/api", "1.5")]
    assert set(Tag.objects.filter(manifest__digest=digest).values_list("name", flat=True)) == {
        "1.5",
        "latest",
        "stable",
    }
    assert Manifest.objects.filter(digest=digest).count() == 1


@pytest.mark.parametrize(
    ("reference", "platforms"),
    [
        (("team-a/web", "2.0"), ["linux/amd64", "linux/arm64/v8"]),
        (("team-b/multi", "1"), ["linux/amd64", "linux/arm/v7"]),
    ],
)
@pytest.mark.django_db
def test_index_children_and_their_platforms(upstream, reference, platforms):
    sync()
    index = Manifest.objects.get(digest=upstream.digests[reference])
    document = json.loads(upstream.raw[index.digest])
    children = list(IndexChild.objects.filter(index=index).select_related("child"))
    assert [c.child.digest for c in children] == [m["digest"] for m in document["manifests"]]
    assert [c.platform for c in children] == platforms
    assert not any(c.is_attestation for c in children)
    assert index.platforms == ", ".join(platforms)
    for link in children:
        child = link.child
        assert child.kind == "image"
        assert child.platform == link.platform  # from the child's own config
        assert child.config_digest and child.layers.count() == 1
    assert index.total_size == sum(c.child.total_size for c in children)
    assert index.created == max(c.child.created for c in children)
    # The children are not tags, and a child is one row however many indexes list it.
    assert not Tag.objects.filter(manifest__in=[c.child for c in children]).exists()


@pytest.mark.django_db
def test_config_facts_are_stored(upstream):
    sync()
    manifest = Manifest.objects.get(digest=upstream.digests[("team-a/api", "1.4")])
    assert manifest.created == datetime(2026, 10, 1, 10, 0, tzinfo=UTC)
    assert (manifest.os, manifest.architecture, manifest.variant) == ("linux", "amd64", "")
    assert manifest.platforms == "linux/amd64"
    assert manifest.labels == {
        "org.opencontainers.image.source": "https://git.example.com/team-a/api",
        "org.opencontainers.image.version": "1.4",
    }
    assert set(Label.objects.filter(manifest=manifest).values_list("key", "value")) == set(
        manifest.labels.items()
    )
    config = manifest.config
    assert config["Entrypoint"] == ["python", "/layer0/app.py"]
    assert config["Cmd"] == ["--port", "8080"]
    assert config["Env"] == ["PATH=/usr/local/bin:/usr/bin:/bin", "APP_ENV=production"]
    assert config["ExposedPorts"] == ["8080/tcp"]
    assert config["WorkingDir"] == "/srv"
    assert config["User"] == "1000:1000"
    assert [h["created_by"] for h in manifest.history] == [
        "/bin/sh -c #(nop) ADD layer0 /",
        "/bin/sh -c #(nop) ADD layer1 /",
    ]
    # Layers with their compressed sizes, in order, as the manifest lists them.
    document = json.loads(upstream.raw[manifest.digest])
    assert list(Layer.objects.filter(manifest=manifest).values_list("digest", "size")) == [
        (layer["digest"], layer["size"]) for layer in document["layers"]
    ]
    assert manifest.config_digest == document["config"]["digest"]
    assert manifest.config_size == document["config"]["size"]
    assert manifest.total_size == document["config"]["size"] + sum(
        layer["size"] for layer in document["layers"]
    )
    # A new repository's tags take the image's build time (we cannot know the push time).
    assert Tag.objects.get(repository__name="team-a/api", name="1.4").changed_at == manifest.created


@pytest.mark.django_db
def test_a_docker_schema2_image_keeps_its_docker_config(upstream):
    sync()
    manifest = Manifest.objects.get(digest=upstream.digests[("team-b/worker", "v2")])
    assert manifest.config_media_type == mediatypes.DOCKER_CONFIG
    assert manifest.config["Cmd"] == ["/worker.sh"]
    assert manifest.created == datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert manifest.is_docker_format


@pytest.mark.django_db
def test_each_digest_is_fetched_once_and_a_resync_makes_no_get(upstream):
    process = upstream.process
    mark = process.mark()
    first = sync()
    lines = process.requests_since(mark)
    # Each new tag is read once by tag, so that its digest is checked against its bytes.
    # Manifests are content-addressed: index children are read once by digest, each config
    # once, whichever repositories and tags share them.
    manifest_gets = Counter(line.path for line in lines if line.kind == "manifest_get")
    assert set(manifest_gets.values()) == {1}
    by_tag = {path for path in manifest_gets if "/manifests/sha256:" not in path}
    assert len(by_tag) == Tag.objects.count()
    children = set(IndexChild.objects.values_list("child__digest", flat=True))
    tagged = set(Tag.objects.values_list("manifest__digest", flat=True))
    # (A child that is tagged too may be read through its index first, or only by its tag.)
    assert len(children - tagged) <= len(manifest_gets) - len(by_tag) <= len(children)
    assert Manifest.objects.count() == first.manifests_fetched
    images = Manifest.objects.filter(kind="image").count()
    assert first.requests_by_kind["blob_get"] == images
    assert first.requests_by_kind == dict(sorted(Counter(line.kind for line in lines).items()))

    mark = process.mark()
    again = sync()
    lines = process.requests_since(mark)
    repositories = Repository.objects.count()
    tags = Tag.objects.count()
    # Exactly catalog pages + one tag list per repository + one HEAD per tag, nothing else.
    counted = Counter(line.kind for line in lines)
    assert counted == {"catalog": 1, "tags": repositories, "manifest_head": tags}
    assert {line.method for line in lines} == {"GET", "HEAD"}
    assert all(line.status == 200 for line in lines)
    assert again.requests_by_kind == {"catalog": 1, "manifest_head": tags, "tags": repositories}
    assert again.requests_made == len(lines)
    assert again.manifests_fetched == 0
    assert (again.tags_added, again.tags_updated, again.tags_removed) == (0, 0, 0)
    assert stored_tags() == upstream.digests


@pytest.mark.django_db
def test_the_command_syncs_one_repository(upstream, capsys):
    process = upstream.process
    mark = process.mark()
    call_command("sync_registry", "--repository", "team-a/web")
    lines = process.requests_since(mark)
    assert not [line for line in lines if line.kind == "catalog"]
    assert {line.path for line in lines if line.kind == "tags"} == {"/v2/team-a/web/tags/list"}
    assert stored_tags() == {k: v for k, v in upstream.digests.items() if k[0] == "team-a/web"}
    run = SyncRun.objects.get()
    assert run.scope == "team-a/web" and run.ok
    assert "sync succeeded: 1/1 repositories, 2 tags (+2 ~0 -0)" in capsys.readouterr().out


@pytest.mark.django_db
def test_syncing_one_repository_the_registry_does_not_know_removes_it(upstream):
    Repository.objects.create(name="team-a/gone")
    call_command("sync_registry", "--repository", "team-a/gone")
    assert not Repository.objects.filter(name="team-a/gone").exists()
    assert SyncRun.objects.get().repositories_removed == 1


@pytest.mark.django_db
def test_the_command_refuses_bad_options(upstream):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="not a valid repository name"):
        call_command("sync_registry", "--repository", "Team-A/API")
    with pytest.raises(CommandError, match=r"within 1\.\.1000"):
        call_command("sync_registry", "--page-size", "1001")
    with pytest.raises(CommandError, match="at least 1"):
        call_command("sync_registry", "--concurrency", "0")
    assert not SyncRun.objects.exists()


@pytest.mark.django_db
def test_the_pool_grows_to_the_concurrency(upstream):
    client = get_client()
    wanted = client.pool_size + 5
    Syncer(client, concurrency=wanted)
    assert client.pool_size == wanted
    assert client.session.get_adapter(upstream.process.url)._pool_maxsize == wanted
