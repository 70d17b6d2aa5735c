"""``Tag.attached`` (issue 18): whether a tag names something attached to an image, stored
with the row by every writer, so that the tags table counts and hides attachments without
joining each tag to its manifest.

A real registry holds the samples of issue 17 (cosign's tag scheme, an oras artifact with a
``subject`` under a plain tag name), synced by the real Syncer; the other writers are driven
as users drive them: a re-push seen by the next sync, a push notification, retag and copy
through their pages, ``Tag.save``; and the migration's fill of existing rows.
"""

from __future__ import annotations

import hashlib
import importlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.test.utils import CaptureQueriesContext

from registryui.browse import tags as tags_table
from registryui.catalog.artifacts import is_attachment_tag
from registryui.catalog.models import Manifest, Repository, Tag
from registryui.catalog.upstream import get_client
from registryui.devtools.artifacts import Attacher
from registryui.lib.natural import natural_key
from registryui.sync.syncer import Syncer
from tests.attach.support import push_and_sync
from tests.events.support import (  # noqa: F401 (a fixture: each test's registry is new)
    TOKEN,
    _fresh_quick_clients,
    post_events,
    push_event,
)

pytestmark = pytest.mark.django_db

migration = importlib.import_module("registryui.catalog.migrations.0013_tag_attached")

HEX = "ab" * 32


@pytest.fixture
def pushed(use_registry):
    return push_and_sync()


def flags(repository: str) -> dict[str, bool]:
    return dict(Tag.objects.filter(repository__name=repository).values_list("name", "attached"))


def in_step(repository: str) -> dict[str, bool]:
    """The stored flags, checked against the one definition for each row."""
    rows = Tag.objects.filter(repository__name=repository).values_list(
        "name", "attached", "manifest__subject_digest"
    )
    for name, attached, subject in rows:
        assert attached == is_attachment_tag(name, subject), (name, attached, subject)
    return flags(repository)


def sync() -> None:
    run = Syncer(get_client(), concurrency=2).run()
    assert run.ok, run.error


def scheme(digest: str, suffix: str) -> str:
    return "sha256-" + digest.removeprefix("sha256:") + suffix


def test_the_definition():
    assert is_attachment_tag(f"sha256-{HEX}", "")
    for suffix in (".sig", ".att", ".sbom"):
        assert is_attachment_tag(f"sha256-{HEX}{suffix}", "")
        assert is_attachment_tag(f"sha256-anything{suffix}", "")  # as the pages always hid
    assert is_attachment_tag("scan-report", "sha256:" + HEX)
    for name in ("latest", "sha256-abc", f"sha256-{HEX.upper()}", f"x-sha256-{HEX}.sig"):
        assert not is_attachment_tag(name, ""), name
    assert not is_attachment_tag(f"sha256-{HEX}.sigs", "")
    assert not is_attachment_tag(f"sha256-{HEX}\n", "")


def test_a_first_sync_flags_scheme_tags_and_tags_on_a_subject(pushed):
    signed = pushed["team-a/signed:1.0"]
    assert in_step("team-a/signed") == {
        "1.0": False,
        "2.0": False,
        scheme(signed, ".sig"): True,
        scheme(signed, ".att"): True,
        scheme(signed, ".sbom"): True,
        "scan-report": True,  # a plain name, on an oras artifact with a subject
    }
    assert in_step("team-b/app") == {"1": False, scheme(pushed["team-b/app:1"], ".sig"): True}
    assert set(in_step("team-a/files").values()) == {False}  # an artifact with no subject


def test_a_sync_that_moves_a_tag_onto_an_artifact_and_back(pushed):
    client = get_client()
    scan_ref, scan = client.get_manifest("team-a/signed", pushed["team-a/signed:scan"])
    image_ref, image = client.get_manifest("team-a/signed", pushed["team-a/signed:2.0"])
    client.put_manifest("team-a/signed", "2.0", scan, scan_ref.media_type)
    client.put_manifest("team-a/signed", "next", image, image_ref.media_type)
    sync()
    assert in_step("team-a/signed")["2.0"] is True
    assert in_step("team-a/signed")["next"] is False  # a new tag of a known repository
    client.put_manifest("team-a/signed", "2.0", image, image_ref.media_type)
    sync()
    assert in_step("team-a/signed")["2.0"] is False


def test_a_push_notification_flags_the_tag_it_writes(pushed, settings):
    settings.REGISTRY_EVENTS_TOKEN = TOKEN
    attacher = Attacher(get_client())
    signed = pushed["team-a/signed:2.0"]
    report = attacher.oras_attach(
        "team-a/signed",
        signed,
        "application/vnd.example.scan-report+json",
        {"report.json": b'{"vulnerabilities": [1]}'},
        tag="scan-2.0",
    )
    signature = attacher.cosign_sign("team-a/signed", signed)
    answer = post_events(
        Client(),
        push_event("team-a/signed", "scan-2.0", report),
        push_event("team-a/signed", scheme(signed, ".sig"), signature),
    )
    assert answer.status_code == 200 and answer.json()["applied"] == 2, answer.content
    stored = in_step("team-a/signed")
    assert stored["scan-2.0"] is True and stored[scheme(signed, ".sig")] is True
    assert Tag.objects.get(repository__name="team-a/signed", name="scan-2.0").manifest.digest == (
        report
    )


def test_retag_and_copy_flag_the_tags_they_write(pushed, personas):
    client = personas["a_deleter"].client()
    scan = pushed["team-a/signed:scan"]
    answer = client.post(f"/r/team-a/signed@{scan}/-/retag", {"new_tag": "scan-copy"})
    assert answer.status_code in (200, 302, 303), answer.content.decode()
    answer = client.post("/r/team-a/signed:1.0/-/retag", {"new_tag": "plain"})
    assert answer.status_code in (200, 302, 303), answer.content.decode()
    stored = in_step("team-a/signed")
    assert stored["scan-copy"] is True and stored["plain"] is False
    sig = scheme(pushed["team-a/signed:1.0"], ".sig")
    answer = client.post(f"/r/team-a/signed:{sig}/-/copy", {"to": "team-a/copied", "tag": sig})
    assert answer.status_code in (200, 302, 303), answer.content.decode()
    answer = client.post("/r/team-a/signed:2.0/-/copy", {"to": "team-a/copied", "tag": "2.0"})
    assert answer.status_code in (200, 302, 303), answer.content.decode()
    assert in_step("team-a/copied") == {sig: True, "2.0": False}


def test_tag_save_writes_it_when_the_name_or_the_digest_changes(pushed):
    repository = Repository.objects.get(name="team-a/signed")
    image = Manifest.objects.get(digest=pushed["team-a/signed:1.0"])
    scan = Manifest.objects.get(digest=pushed["team-a/signed:scan"])
    tag = Tag.objects.create(repository=repository, name="saved", manifest=image)
    assert flags("team-a/signed")["saved"] is False
    tag.manifest = scan
    tag.save(update_fields=["manifest"])
    assert flags("team-a/signed")["saved"] is True
    tag.manifest_id = image.pk
    tag.save(update_fields=["manifest_id"])
    assert flags("team-a/signed")["saved"] is False
    tag.name = f"sha256-{HEX}.att"
    tag.save(update_fields=["name"])
    assert flags("team-a/signed")[tag.name] is True
    tag.name = "renamed"
    tag.save()
    assert in_step("team-a/signed")["renamed"] is False


def test_the_page_counts_and_hides_by_the_flag(pushed, personas):
    client = personas["a_viewer"].client()
    page = client.get("/r/team-a/signed").content.decode()
    assert "4 signature/attestation tags hidden" in page
    # Only the stored flag decides: a tag flagged by hand is hidden and counted with them.
    Tag.objects.filter(repository__name="team-a/signed", name="2.0").update(attached=True)
    page = client.get("/r/team-a/signed").content.decode()
    assert "5 signature/attestation tags hidden" in page
    assert ">2.0</a>" not in page and ">1.0</a>" in page


def test_a_big_repository_counts_from_its_tag_count_and_its_attachments(
    pushed, personas, monkeypatch
):
    """Above ``GROUPED_MAX_TAGS`` the page does not count every tag: images are the stored
    ``tag_count`` less the attachments, which one index range counts."""
    client = personas["a_viewer"].client()
    small = client.get("/r/team-a/signed", {"view": "flat"}).content.decode()
    monkeypatch.setattr(tags_table, "GROUPED_MAX_TAGS", 3)
    with CaptureQueriesContext(connection) as captured:
        big = client.get("/r/team-a/signed", {"view": "flat"}).content.decode()
    for page in (small, big):
        assert "4 signature/attestation tags hidden" in page
        assert '<p class="summary">2 tags,' in page or '<p class="summary">2 tags' in page
    counts = [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"]]
    assert len(counts) == 1 and '"catalog_tag"."attached"' in counts[0], counts
    assert "FILTER" not in counts[0] and "catalog_manifest" not in counts[0], counts
    shown = client.get("/r/team-a/signed", {"view": "flat", "attached": "shown"}).text
    assert '<p class="summary">6 tags' in shown


# -- the migration ---------------------------------------------------------------------------


def test_the_fill_sets_the_flag_of_existing_rows(pushed):
    expected = {
        repository: in_step(repository)
        for repository in Repository.objects.values_list("name", flat=True)
    }
    assert any(any(f.values()) for f in expected.values())
    Tag.objects.update(attached=False)
    filled = migration.fill_attached(Tag, Manifest)
    assert filled == sum(sum(f.values()) for f in expected.values())
    assert {repository: flags(repository) for repository in expected} == expected


BEFORE = [("catalog", "0012_tag_size_label_value_id")]
AFTER = [("catalog", "0013_tag_attached")]


@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_the_flag():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    old_manifest = old.get_model("catalog", "Manifest")
    old_tag = old.get_model("catalog", "Tag")
    repository = old.get_model("catalog", "Repository").objects.create(name="old/attached")

    def manifest(name: str, subject: str = ""):
        return old_manifest.objects.create(
            digest="sha256:" + hashlib.sha256(name.encode()).hexdigest(),
            media_type="application/vnd.oci.image.manifest.v1+json",
            kind="image",
            size=500,
            raw="{}",
            subject_digest=subject,
        )

    image = manifest("image")
    referrer = manifest("referrer", subject=image.digest)
    for name, target in (
        ("1.0", image),
        (scheme(image.digest, ".sig"), image),
        (scheme(image.digest, ""), image),
        ("sha256-short", image),
        ("report", referrer),
    ):
        old_tag.objects.create(
            repository=repository, name=name, manifest=target, sort_key=natural_key(name)
        )
    try:
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert flags("old/attached") == {
        "1.0": False,
        scheme(image.digest, ".sig"): True,
        scheme(image.digest, ""): True,
        "sha256-short": False,
        "report": True,
    }
