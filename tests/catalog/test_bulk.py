"""``catalog.bulk`` and the writes of ``catalog.store`` that use it: ``COPY`` on PostgreSQL,
``bulk_create`` elsewhere, the same rows either way, and the conflicts ``COPY`` cannot skip
handled by falling back to ``bulk_create(ignore_conflicts=True)``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registryui.catalog import bulk
from registryui.catalog.manifests import FetchedManifest, LayerEntry
from registryui.catalog.models import Blob, Label, Layer, Manifest, Repository, Tag
from registryui.catalog.store import _insert, replace_tags, store_manifests

pytestmark = pytest.mark.django_db

BUILT = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)


def fetched(digest: str, *, labels: dict[str, str] | None = None) -> FetchedManifest:
    return FetchedManifest(
        digest=digest,
        media_type="application/vnd.oci.image.manifest.v1+json",
        size=512,
        raw=b'{"schemaVersion": 2, "note": "tab\\there, back\\\\slash"}',
        kind="image",
        config_digest="sha256:" + "c" * 64,
        config_media_type="application/vnd.oci.image.config.v1+json",
        config_size=300,
        layers=[
            LayerEntry("sha256:" + "1" * 64, 1000, "application/vnd.oci.image.layer.v1.tar+gzip"),
            LayerEntry("sha256:" + "2" * 64, 20, "application/vnd.oci.image.layer.v1.tar+gzip"),
        ],
        created=BUILT,
        os="linux",
        architecture="arm64",
        variant="v8",
        labels=labels if labels is not None else {"org.opencontainers.image.title": "api"},
        config={"Env": ["PATH=/usr/bin", 'QUOTE="x"\n'], "Cmd": ["sh", "-c", "échec ✓"]},
        history=[{"created_by": "RUN a\\b", "empty_layer": True}],
        total_size=1320,
        annotations={"a": "b"},
    )


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def test_stored_manifests_read_back_as_they_were_fetched():
    ids = store_manifests([fetched(digest(1))])
    manifest = Manifest.objects.get(pk=ids[digest(1)])
    assert manifest.raw == '{"schemaVersion": 2, "note": "tab\\there, back\\\\slash"}'
    assert manifest.kind == Manifest.Kind.IMAGE
    assert (manifest.size, manifest.total_size, manifest.config_size) == (512, 1320, 300)
    assert manifest.created == BUILT
    assert (manifest.os, manifest.architecture, manifest.variant) == ("linux", "arm64", "v8")
    assert manifest.config == {
        "Env": ["PATH=/usr/bin", 'QUOTE="x"\n'],
        "Cmd": ["sh", "-c", "échec ✓"],
    }
    assert manifest.history == [{"created_by": "RUN a\\b", "empty_layer": True}]
    assert manifest.labels == {"org.opencontainers.image.title": "api"}
    assert manifest.annotations == {"a": "b"}
    assert manifest.details == {} and manifest.attached_kinds == {}
    assert manifest.fetched_at is not None
    assert list(manifest.layers.order_by("position").values_list("position", "digest", "size")) == [
        (0, "sha256:" + "1" * 64, 1000),
        (1, "sha256:" + "2" * 64, 20),
    ]
    assert len(manifest.top_chain) == 64
    assert list(manifest.label_rows.values_list("key", "value")) == [
        ("org.opencontainers.image.title", "api")
    ]


def test_a_digest_stored_by_another_writer_since_the_look_is_skipped():
    """The race ``store_manifests`` cannot see: the digest was absent when it looked, and a
    concurrent writer (a notification) stored it before the insert. Played by calling the
    insert step with a digest already there: on PostgreSQL the ``COPY`` fails and the batch
    is written again with conflicts skipped."""
    theirs = store_manifests([fetched(digest(1))])[digest(1)]
    ids: dict[str, int] = {}
    _insert([fetched(digest(1)), fetched(digest(2))], ids)
    assert ids[digest(1)] == theirs
    assert Manifest.objects.filter(digest__in=[digest(1), digest(2)]).count() == 2
    assert Layer.objects.filter(manifest_id=theirs).count() == 2
    assert Layer.objects.filter(manifest_id=ids[digest(2)]).count() == 2
    assert Label.objects.filter(manifest_id=ids[digest(2)]).count() == 1


def test_labels_alike_in_their_first_255_characters_keep_the_first():
    key = "k" * 255
    ids = store_manifests([fetched(digest(1), labels={key + "a": "first", key + "b": "second"})])
    assert list(Label.objects.filter(manifest_id=ids[digest(1)]).values_list("key", "value")) == [
        (key, "first")
    ]


def test_a_new_repository_gets_its_tags_with_every_column():
    ids = store_manifests([fetched(digest(1)), fetched(digest(2))])
    repository = Repository.objects.create(name="team-a/api")
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    changes = replace_tags(
        repository,
        {"v10": digest(1), "v9": digest(2)},
        ids,
        first_import=True,
        now=now,
        empty=True,
    )
    assert changes.added == 2
    tags = {tag.name: tag for tag in Tag.objects.filter(repository=repository)}
    assert tags["v10"].manifest_id == ids[digest(1)]
    assert tags["v10"].size == 1320
    assert tags["v10"].changed_at == BUILT  # a first import: the image's build time
    assert tags["v10"].first_seen_at == now
    assert tags["v10"].first_seen is not None
    assert tags["v10"].pushed_at is None and tags["v10"].sync_problem == ""
    assert tags["v9"].sort_key < tags["v10"].sort_key  # natural order


def test_insert_or_skip_skips_rows_that_are_there():
    Blob.objects.create(digest=digest(1), size=5, kind=Blob.Kind.LAYER)
    bulk.insert_or_skip(
        Blob,
        [
            Blob(digest=digest(1), size=999, kind=Blob.Kind.CONFIG),
            Blob(digest=digest(2), size=7, kind=Blob.Kind.MANIFEST),
        ],
    )
    assert dict(Blob.objects.values_list("digest", "size")) == {digest(1): 5, digest(2): 7}
    assert Blob.objects.get(digest=digest(2)).kind == Blob.Kind.MANIFEST


def test_an_insert_counts_as_one_query():
    with CaptureQueriesContext(connection) as queries:
        bulk.insert(Blob, [Blob(digest=digest(n), size=n, kind=Blob.Kind.LAYER) for n in range(3)])
    assert len(queries) == 1
    if bulk.copies():
        assert queries[0]["sql"].startswith('COPY "catalog_blob"')
    assert Blob.objects.count() == 3
