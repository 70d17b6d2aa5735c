"""A registry's data is untrusted input: a corpus of hostile images pushed into a real registry
beside healthy ones. Text and times are made safe where manifests and configs are parsed
(``catalog.manifests`` with ``lib.untrusted``); what still cannot be read is recorded for its
repository, with a reason, and the run goes on. Runs on SQLite and PostgreSQL alike.

The images are pushed through the registry API (``devtools.seed.put_image``), since no build
tool writes them; what the API refuses to store (a manifest that is not JSON, an unsigned
schema 1 manifest) is written into the registry's storage (``devtools.seed.plant_manifest``),
where the real registry then serves it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from django.core.management import call_command

from registryui.catalog.models import Label, Manifest, Repository, SyncRun, Tag
from registryui.devtools.registry import RegistryProcess
from registryui.devtools.seed import Seeder, plant_manifest, put_image
from registryui.lib.reference import is_valid_tag
from registryui.lib.untrusted import REPLACEMENT
from registryui.registry import RegistryClient, mediatypes
from registryui.sync import syncer as sync_module

HEALTHY = ["healthy/one", "healthy/two"]
LONG_NAME = "limits/" + "x" * 248  # 255 characters: the grammar's total limit
LONG_TAG = "t" * 128  # the tag grammar's limit
BAD_DATES = [
    "9999-12-31T23:59:59-23:59",  # OverflowError once converted to UTC
    "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
    "2026-13-45T00:00:00Z",
    "yesterday",
    12345,
    "",
]
#: Repositories whose images cannot be read: (name, words the recorded reason must hold).
UNREADABLE = {
    "hostile/not-json": "HTTP 500",
    "hostile/config-missing": "config blob",
    "hostile/config-huge": "larger than 4 MiB",
    "hostile/index-missing-child": "platform image",
    "hostile/schema1": "schema 1",
}


def config(**fields) -> bytes:
    document = {
        "created": "2026-06-01T12:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {"Labels": {"ok": "yes"}},
        "rootfs": {"type": "layers", "diff_ids": []},
    }
    document.update(fields)
    # ensure_ascii keeps "\ud800" as the escape a pusher would send (it is not valid UTF-8).
    return json.dumps(document).encode()


@dataclass
class Corpus:
    process: RegistryProcess
    client: RegistryClient
    seeder: Seeder

    def truth(self, names) -> dict[tuple[str, str], str]:
        """(repository, tag) → digest, asked of the registry itself (which answers 404 for a
        tag outside the grammar, though it lists it)."""
        found = {}
        for name in names:
            for tag in filter(is_valid_tag, self.client.list_tags(name)):
                found[(name, tag)] = self.client.head_manifest(name, tag).digest
        return found


def push_corpus(process: RegistryProcess, client: RegistryClient) -> Corpus:
    seeder = Seeder(client)
    seeder.seed(HEALTHY, ["1", "2"])
    corpus = Corpus(process, client, seeder)

    def image(name: str, tag: str, raw_config: bytes, **options) -> str:
        return put_image(client, name, tag, raw_config, seeder=seeder, **options)

    # Text: NUL and lone surrogates in labels, history and the platform.
    image(
        "hostile/labels",
        "1",
        config(config={"Labels": {"a\u0000b": "x\u0000y", "k\ud800": "v\ud800", "ok": "yes"}}),
    )
    image(
        "hostile/history",
        "1",
        config(
            history=[
                {"created": "9999-12-31T23:59:59-23:59", "created_by": "RUN \u0000 \ud800"},
                {"created": "2026-01-02T03:04:05.123456789+02:00", "comment": "\udfff"},
            ]
        ),
    )
    image(
        "hostile/platform",
        "1",
        config(os="linux\u0000", architecture="amd\ud80064", variant="\u0000"),
    )
    # Times out of range or malformed: unknown.
    for i, created in enumerate(BAD_DATES):
        image("hostile/created", f"d{i}", config(created=created))
    # Ten thousand layers (references to the one seed layer): a readable, if odd, image.
    image("hostile/layers", "1", config(), layers=10_000)
    # Names at the grammar's length limits.
    seeder.put(LONG_NAME, LONG_TAG)

    # Unreadable images.
    seeder.prepare("hostile/not-json")
    plant_manifest(process.storage, "hostile/not-json", "1", b"this is not JSON")
    seeder.prepare("hostile/schema1")
    schema1 = {
        "schemaVersion": 1,
        "name": "hostile/schema1",
        "tag": "1",
        "architecture": "amd64",
        "fsLayers": [{"blobSum": seeder.layer_digest}],
        "history": [{"v1Compatibility": "{}"}],
    }
    plant_manifest(process.storage, "hostile/schema1", "1", json.dumps(schema1).encode())
    missing_config = config(comment="its blob is deleted after the push")
    image("hostile/config-missing", "1", missing_config)
    digest = "sha256:" + hashlib.sha256(missing_config).hexdigest()
    deleted = requests.delete(f"{process.url}/v2/hostile/config-missing/blobs/{digest}")
    assert deleted.status_code == 202
    image("hostile/config-huge", "1", config(padding="x" * (50 * 1024 * 1024)))
    seeder.prepare("hostile/index-missing-child")
    child_body, child = seeder.manifest("a child that goes away")
    client.put_manifest("hostile/index-missing-child", child, child_body, mediatypes.OCI_MANIFEST)
    index = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_INDEX,
        "manifests": [
            {
                "mediaType": mediatypes.OCI_MANIFEST,
                "digest": child,
                "size": len(child_body),
                "platform": {"os": "linux", "architecture": "amd64"},
            }
        ],
    }
    client.put_manifest(
        "hostile/index-missing-child", "1", json.dumps(index).encode(), mediatypes.OCI_INDEX
    )
    client.delete_manifest("hostile/index-missing-child", child)
    # Names that only the storage can hold: a tag and a repository outside the grammar.
    seeder.put("hostile/tag-name", "ok")
    plant_manifest(process.storage, "hostile/tag-name", "-dash", child_body)
    repositories = process.storage / "docker" / "registry" / "v2" / "repositories"
    (repositories / "hostile" / "Upper" / "_layers").mkdir(parents=True)
    plant_manifest(process.storage, "hostile/Upper", "1", child_body)
    return corpus


@pytest.fixture(scope="module")
def corpus_registry(tmp_path_factory) -> Iterator[Corpus]:
    process = RegistryProcess(tmp_path_factory.mktemp("hostile") / "registry").start()
    try:
        with RegistryClient(process.url) as client:
            yield push_corpus(process, client)
    finally:
        process.stop()


@pytest.fixture
def corpus(corpus_registry, settings) -> Corpus:
    settings.REGISTRY_URL = corpus_registry.process.url
    settings.REGISTRY_RETRIES = 1
    return corpus_registry


def stored(names) -> dict[tuple[str, str], str]:
    return {
        (name, tag): digest
        for name, tag, digest in Tag.objects.filter(repository__name__in=list(names)).values_list(
            "repository__name", "name", "manifest__digest"
        )
    }


def manifest_of(name: str, tag: str = "1") -> Manifest:
    return Tag.objects.get(repository__name=name, name=tag).manifest


@pytest.mark.django_db(transaction=True)
def test_hostile_images_are_made_safe_or_recorded_and_the_rest_is_synced_exactly(corpus, capsys):
    with pytest.raises(SystemExit) as exited:
        call_command("sync_registry")
    assert exited.value.code == 1  # the exit status says that some images were not read

    run = SyncRun.objects.latest()
    readable = [*HEALTHY, "hostile/labels", "hostile/history", "hostile/platform"]
    readable += ["hostile/created", "hostile/layers", LONG_NAME, "hostile/tag-name"]
    # Every readable repository holds exactly what the registry holds (but a tag name outside
    # the grammar, which only the storage can hold).
    assert stored(readable) == corpus.truth(readable)
    assert len(stored(readable)) == 4 + 3 + len(BAD_DATES) + 3
    # Every unreadable one is recorded with its reason, and listed without the tag.
    recorded = {}
    for error in run.errors.all():
        recorded.setdefault(error.repository, []).append(error.message)
    assert recorded.pop("hostile/Upper") == [
        "The catalog lists this name, which is not a valid repository name; it is skipped."
    ]
    assert recorded.pop("hostile/tag-name") == [
        "tag -dash: The registry lists this tag, whose name is not a valid tag. [TAG_INVALID]"
    ]
    assert set(recorded) == set(UNREADABLE)
    for name, reason in UNREADABLE.items():
        assert len(recorded[name]) == 1 and reason in recorded[name][0], recorded[name]
        assert recorded[name][0].startswith("tag 1: ")
        repository = Repository.objects.get(name=name)
        assert repository.tag_count == 0 and reason in repository.last_sync_error
    assert not Repository.objects.filter(name="hostile/Upper").exists()
    assert run.repositories_seen == len(readable) + len(UNREADABLE)
    assert run.repositories_synced == len(readable) - 1  # hostile/tag-name is partly synced
    assert run.repositories_failed == len(UNREADABLE) + 2
    err = capsys.readouterr().err
    assert all(f"  {name}: tag 1:" in err for name in UNREADABLE)

    # The text rule: NUL and lone surrogates became U+FFFD; the rest is as pushed.
    labels = manifest_of("hostile/labels")
    replaced = {f"a{REPLACEMENT}b": f"x{REPLACEMENT}y", f"k{REPLACEMENT}": f"v{REPLACEMENT}"}
    assert labels.labels == {**replaced, "ok": "yes"}
    assert dict(Label.objects.filter(manifest=labels).values_list("key", "value")) == {
        **replaced,
        "ok": "yes",
    }
    history = manifest_of("hostile/history").history
    assert [step["created_by"] for step in history] == [f"RUN {REPLACEMENT} {REPLACEMENT}", ""]
    assert [step["comment"] for step in history] == ["", REPLACEMENT]
    # The time rule: out of range is unknown; a readable one is kept (to microseconds, in UTC).
    assert [step["created"] for step in history] == ["", "2026-01-02T01:04:05.123456Z"]
    platform = manifest_of("hostile/platform")
    assert (platform.os, platform.architecture, platform.variant) == (
        f"linux{REPLACEMENT}",
        f"amd{REPLACEMENT}64",
        REPLACEMENT,
    )
    created = Manifest.objects.filter(tags__repository__name="hostile/created")
    assert created.count() == len(BAD_DATES)
    assert set(created.values_list("created", flat=True)) == {None}
    assert manifest_of("hostile/layers").layers.count() == 10_000
    assert Tag.objects.get(repository__name=LONG_NAME).name == LONG_TAG


@pytest.mark.django_db(transaction=True)
def test_unreadable_images_are_retried_and_nothing_else_is_fetched_again(corpus):
    """The next run asks again about each unreadable tag (one GET each), and makes no other
    GET: the readable images are stored once and for all."""
    with pytest.raises(SystemExit):
        call_command("sync_registry")
    mark = corpus.process.mark()
    with pytest.raises(SystemExit):
        call_command("sync_registry")
    gets = [
        line.path
        for line in corpus.process.requests_since(mark)
        if line.kind == "manifest_get" and line.status == 200
    ]
    # not-json answers its HEAD with 500: it is not fetched; the other four are, by tag.
    assert sorted(gets) == sorted(
        f"/v2/{name}/manifests/1" for name in UNREADABLE if name != "hostile/not-json"
    )
    run = SyncRun.objects.latest()
    invalid_names = {"hostile/Upper", "hostile/tag-name"}
    assert {e.repository for e in run.errors.all()} == set(UNREADABLE) | invalid_names


@pytest.mark.django_db(transaction=True)
def test_a_repository_whose_rows_cannot_be_written_fails_alone(use_registry, monkeypatch):
    """Past the boundary, the database may still refuse a repository's rows. No input known
    to pass the boundary does it, so the write here slips a lone surrogate past it, which
    both databases' drivers refuse. That repository keeps its previous rows and records the
    error; every other repository is synced; the exit status is 1."""
    with RegistryClient(use_registry.url) as client:
        seeder = Seeder(client)
        seeder.seed(["team-a/api", "team-b/bad", "team-c/web"], ["1"])
        call_command("sync_registry")
        before = stored(["team-b/bad"])
        moved = {name: seeder.put(name, "1", note="moved") for name in ("team-a/api", "team-c/web")}
        seeder.put("team-b/bad", "1", note="moved")
        seeder.put("team-b/bad", "2")

    original = sync_module.replace_tags

    def refuse_one(repository, *args, **kwargs):
        changes = original(repository, *args, **kwargs)
        if repository.name == "team-b/bad":
            Repository.objects.filter(pk=repository.pk).update(last_sync_error="secret \ud800")
        return changes

    monkeypatch.setattr(sync_module, "replace_tags", refuse_one)
    with pytest.raises(SystemExit) as exited:
        call_command("sync_registry")
    assert exited.value.code == 1
    run = SyncRun.objects.latest()
    assert (run.repositories_synced, run.repositories_failed) == (2, 1)
    error = run.errors.get()
    assert (error.repository, error.code) == ("team-b/bad", "DATABASE")
    assert "refused" in error.message and "secret" not in error.message
    assert stored(["team-b/bad"]) == before  # its previous rows, untouched
    assert stored(["team-a/api", "team-c/web"]) == {
        (name, "1"): digest for name, digest in moved.items()
    }
    assert "refused" in Repository.objects.get(name="team-b/bad").last_sync_error
