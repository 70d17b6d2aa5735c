""" "Built on" / "used by" (``browse.attached.lineage``): which images, in what order, how
many, and only what the resolver lets the user see.

The rows are written as the sync writes them (``Layer.chain``, ``Manifest.top_chain`` from
``catalog.lineage.layer_chains``); the sync itself is covered against a real registry in
test_attached_pages.py.
"""

from __future__ import annotations

import hashlib

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registryui.browse import attached
from registryui.catalog.lineage import layer_chains
from registryui.catalog.models import IndexChild, Layer, Manifest, Repository, Tag

pytestmark = pytest.mark.django_db


def _digest(*parts: object) -> str:
    return "sha256:" + hashlib.sha256(repr(parts).encode()).hexdigest()


class World:
    def __init__(self) -> None:
        self.repositories: dict[str, Repository] = {}

    def image(self, layers: list[str], *tags: str, name: str = "") -> Manifest:
        """An image of these layers (by name), tagged ``repository:tag`` for each tag."""
        digests = [_digest("layer", layer) for layer in layers]
        chains = layer_chains(digests)
        manifest = Manifest.objects.create(
            digest=_digest("image", name or tags[0], *layers),
            media_type="application/vnd.oci.image.manifest.v1+json",
            kind="image",
            size=500,
            raw="{}",
            top_chain=chains[-1],
        )
        Layer.objects.bulk_create(
            Layer(manifest=manifest, position=i, digest=d, size=1000, chain=c)
            for i, (d, c) in enumerate(zip(digests, chains, strict=True))
        )
        self.tag(manifest, *tags)
        return manifest

    def index(self, children: list[Manifest], *tags: str) -> Manifest:
        manifest = Manifest.objects.create(
            digest=_digest("index", *tags),
            media_type="application/vnd.oci.image.index.v1+json",
            kind="index",
            size=400,
            raw="{}",
        )
        for position, child in enumerate(children):
            IndexChild.objects.create(
                index=manifest, child=child, position=position, os="linux", architecture="amd64"
            )
        self.tag(manifest, *tags)
        return manifest

    def tag(self, manifest: Manifest, *tags: str) -> None:
        for reference in tags:
            name, _, tag = reference.partition(":")
            repository = self.repositories.get(name)
            if repository is None:
                repository = self.repositories[name] = Repository.objects.create(name=name)
            Tag.objects.create(repository=repository, name=tag, manifest=manifest)


def names(tags: list[Tag]) -> list[str]:
    return [f"{tag.repository.name}:{tag.name}" for tag in tags]


@pytest.fixture
def world(personas) -> dict[str, Manifest]:
    w = World()
    return {
        # The base, in a visible and a hidden repository.
        "base": w.image(["os"], "team-a/base:1", "team-b/base:1"),
        # The same layers under another config (a LABEL on top adds no layer).
        "relabelled": w.image(["os"], "team-a/relabelled:1"),
        # A middle image only team B sees.
        "middle": w.image(["os", "runtime"], "team-b/runtime:1", "team-b/runtime:latest"),
        "app": w.image(["os", "runtime", "app"], "team-a/app:2", "team-a/app:1"),
        "app-arm": w.image(["os", "runtime", "app-arm"], "team-a/app:arm-only", name="arm"),
        "tool": w.image(["os", "tool"], "team-a/tool:1", "hello:1", "secret/vault:1"),
        "unrelated": w.image(["other", "os"], "team-a/unrelated:1"),
    }


def test_built_on_is_the_deepest_base_the_user_may_see(world, personas):
    a_viewer = personas["a_viewer"].fresh_user()
    superuser = personas["superuser"].fresh_user()
    # The middle image is deeper, but a team-A viewer may not see it: the base, then.
    found = attached.lineage(a_viewer, world["app"])
    assert names(found["built_on"]) == ["team-a/base:1", "team-a/relabelled:1"]
    found = attached.lineage(superuser, world["app"])
    assert names(found["built_on"]) == ["team-b/runtime:1", "team-b/runtime:latest"]
    # Whose first layer differs is built on nothing, though it holds the base's layer.
    assert attached.lineage(superuser, world["unrelated"])["built_on"] == []
    # A single-layer image has no base.
    assert attached.lineage(superuser, world["base"])["built_on"] == []


def test_used_by_lists_images_and_their_indexes_in_name_order(world, personas):
    w = World()
    w.repositories = {r.name: r for r in Repository.objects.all()}
    w.index([world["app"], world["app-arm"]], "team-a/app:multi")
    a_viewer = personas["a_viewer"].fresh_user()
    found = attached.lineage(a_viewer, world["base"])
    # Not the relabelled image (the same layers: not built on it), nor what team A cannot see.
    assert names(found["used_by"]) == [
        "hello:1",
        "team-a/app:1",
        "team-a/app:2",
        "team-a/app:arm-only",
        "team-a/app:multi",
        "team-a/tool:1",
    ]
    assert found["used_by_more"] is False
    superuser = personas["superuser"].fresh_user()
    found = attached.lineage(superuser, world["middle"])
    assert names(found["used_by"]) == [
        "team-a/app:1",
        "team-a/app:2",
        "team-a/app:arm-only",
        "team-a/app:multi",
    ]
    assert "secret/vault:1" in names(attached.lineage(superuser, world["base"])["used_by"])
    assert attached.lineage(superuser, world["app"])["used_by"] == []


def test_both_lists_stop_at_the_limit(world, personas, monkeypatch):
    monkeypatch.setattr(attached, "LINEAGE_LIMIT", 3)
    superuser = personas["superuser"].fresh_user()
    found = attached.lineage(superuser, world["base"])
    assert names(found["used_by"]) == ["hello:1", "secret/vault:1", "team-a/app:1"]
    assert found["used_by_more"] is True
    w = World()
    w.repositories = {r.name: r for r in Repository.objects.all()}
    w.tag(world["middle"], "team-a/runtime:a", "team-a/runtime:b", "platform/runtime:1")
    found = attached.lineage(superuser, world["app"])
    assert names(found["built_on"]) == [
        "platform/runtime:1",
        "team-a/runtime:a",
        "team-a/runtime:b",
    ]


def test_lineage_reads_a_bounded_number_of_queries(world, personas):
    """However many bases and derived images there are: the layers are given by the page."""
    superuser = personas["superuser"].fresh_user()
    layers = list(Layer.objects.filter(manifest=world["app"]).order_by("position"))
    w = World()
    w.repositories = {r.name: r for r in Repository.objects.all()}
    w.image(["os", "runtime", "app", "more"], "team-a/more:first")
    with CaptureQueriesContext(connection) as few:
        attached.lineage(superuser, world["app"], layers)
    for i in range(30):
        w.image(["os", "runtime", "app", f"more-{i}"], f"team-a/more:{i}")
        w.image(["os"], f"team-b/base:other-{i}", name=f"other-base-{i}")
    with CaptureQueriesContext(connection) as many:
        found = attached.lineage(superuser, world["app"], layers)
    assert len(found["used_by"]) == 31 and len(found["built_on"]) == 2
    assert len(many.captured_queries) == len(few.captured_queries) <= 4


def test_used_by_reads_a_bounded_number_of_derived_images(world, personas, monkeypatch):
    """A popular base: only USED_BY_SCAN of the images built on it are looked at."""
    monkeypatch.setattr(attached, "USED_BY_SCAN", 2)
    superuser = personas["superuser"].fresh_user()
    found = attached.lineage(superuser, world["base"])
    # Two of the four images built on the base, whichever the index gives first: their tags.
    tags_of = {
        world[key].id: {f"{t.repository.name}:{t.name}" for t in world[key].tags.all()}
        for key in ("middle", "app", "app-arm", "tool")
    }
    listed = set(names(found["used_by"]))
    assert sum(1 for tags in tags_of.values() if tags <= listed) == 2
    assert listed <= set().union(*tags_of.values())
