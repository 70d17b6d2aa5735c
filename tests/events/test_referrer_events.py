"""Notifications update the graph of what is attached to images (issue 17): a referrer pushed by
digest only (cosign 3, notation, ``oras attach``: an OCI 1.1 manifest naming the image in
``subject``, no tag) is linked to its image by its push event, without a sync, and unlinked by
its delete. Registry 2.8 has no referrers API, so before this only nothing could find it.

A real registry 2.8 notifies a live server of the app; the artifacts are written as the tools
write them (``registryui.devtools.artifacts``)."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from registryui.catalog.artifacts import NOTATION_SIGNATURE
from registryui.catalog.models import ApiReferrer, Manifest, Repository, SyncRun, Tag
from registryui.devtools.artifacts import SAMPLE_PACKAGES, Attacher, spdx_document
from registryui.devtools.seed import Seeder
from registryui.events.models import EventStats, ProcessedEvent
from registryui.lib.reference import reference_url
from registryui.registry import RegistryClient
from registryui.registry.mediatypes import OCI_MANIFEST
from registryui.webhooks.models import Delivery

from .support import DB_LOCK, delete_event, post_events, push_event, team_a_webhook, wait_for

SBOM_TYPE = "application/spdx+json"


def page(client, url: str) -> str:
    with DB_LOCK:  # the live server's requests and this thread share one SQLite database
        response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def attached_section(client) -> str:
    html = page(client, reference_url("team-a/api", tag="1.0"))
    return html[html.index('id="attached"') :].split("</section>")[0]


def badges_of(client, image: str) -> str:
    html = page(client, reference_url("team-a/api"))
    return html.split(f'data-digest="{image}"')[1].split("</tr>")[0]


def handler_requests(registry, mark: int) -> list[tuple[str, str]]:
    """What the app itself asked the registry since ``mark`` (its user agent)."""
    return [
        (line.kind, line.path.rsplit("/", 1)[-1])
        for line in registry.process.requests_since(mark)
        if line.user_agent.startswith("registryui/")
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_referrer_pushed_by_digest_is_attached_at_once_and_detached_by_its_delete(
    notifying_registry, admin_client
):
    registry = notifying_registry
    team_a_webhook()
    with RegistryClient(registry.url, retries=1, user_agent="oras/1.2.0") as client:
        seeder = Seeder(client)
        image = seeder.put("team-a/api", "1.0")
        wait_for(lambda: Tag.objects.filter(manifest__digest=image).exists(), what="the image")
        registry.settle()
        assert "Nothing is attached to this image" in attached_section(admin_client)

        # An OCI manifest pushed by digest with no subject (as an index's platform images
        # are) stays ignored: read once to know, then no row and nothing stored.
        with DB_LOCK:
            ignored = EventStats.load().ignored
        mark = registry.process.mark()
        body, plain = seeder.manifest("pushed by digest, no subject")
        client.put_manifest("team-a/api", plain, body, OCI_MANIFEST)
        registry.settle()
        with DB_LOCK:
            assert EventStats.load().ignored == ignored + 1
            assert not ProcessedEvent.objects.filter(digest=plain).exists()
            assert not Manifest.objects.filter(digest=plain).exists()
        assert handler_requests(registry, mark) == [("manifest_get", plain)]

        # `oras attach --artifact-type application/spdx+json`: pushed by digest, no tag.
        mark = registry.process.mark()
        sbom = json.dumps(spdx_document("api", SAMPLE_PACKAGES)).encode()
        referrer = Attacher(client).oras_attach(
            "team-a/api", image, SBOM_TYPE, {"sbom.spdx.json": sbom}
        )
        pushed = time.monotonic()
        wait_for(
            lambda: ApiReferrer.objects.filter(manifest__digest=referrer).exists(),
            what="the referrer linked",
        )
        print(f"referrer pushed → linked: {(time.monotonic() - pushed) * 1000:.0f} ms")
        registry.settle()
        # One GET read the manifest; its bytes were stored without a second one.
        assert handler_requests(registry, mark) == [("manifest_get", referrer)]

        with DB_LOCK:
            stored = Manifest.objects.get(digest=referrer)
            assert (stored.subject_digest, stored.artifact_type) == (image, SBOM_TYPE)
            assert stored.attached_kinds == {"sbom": 1}
            (link,) = ApiReferrer.objects.filter(manifest=stored)
            assert (link.repository.name, link.subject_digest) == ("team-a/api", image)
            event = ProcessedEvent.objects.get(digest=referrer, action="push")
            print(f"referrer push handled in {event.handling_ms} ms")
            assert event.outcome == ProcessedEvent.Outcome.APPLIED
            assert event.note == f"attached to {image[:19]}…"
            assert SyncRun.objects.count() == 0  # no sync: the event did it all
        section = attached_section(admin_client)
        assert f'href="{reference_url("team-a/api", digest=referrer)}"' in section
        assert '<span class="badge attached-sbom">SBOM</span>' in section
        assert "Nothing is attached" not in section
        assert 'data-kind="sbom"' in badges_of(admin_client, image)
        referrer_page = page(admin_client, reference_url("team-a/api", digest=referrer))
        assert "Attached to" in referrer_page and image[7:19] in referrer_page

        # Deleted by digest (`oras manifest delete`): unlinked once the registry confirms.
        client.delete_manifest("team-a/api", referrer)
        wait_for(
            lambda: not ApiReferrer.objects.filter(manifest__digest=referrer).exists(),
            what="the referrer unlinked",
        )
        registry.settle()

    section = attached_section(admin_client)
    assert referrer not in section and "Nothing is attached to this image" in section
    assert 'data-kind="sbom"' not in badges_of(admin_client, image)
    deleted = ProcessedEvent.objects.get(digest=referrer, action="delete")
    assert (deleted.outcome, deleted.note) == (ProcessedEvent.Outcome.APPLIED, "referrer removed")
    assert Tag.objects.get(name="1.0").manifest.digest == image  # the image itself stays
    # Webhooks as for any change made outside the UI: the push of the image, the referrer's
    # delete (an image deleted); no event type tells of a referrer attached.
    assert list(Delivery.objects.order_by("id").values_list("event_type", "payload__subject")) == [
        ("io.registryui.tag.pushed", "team-a/api:1.0"),
        ("io.registryui.image.deleted", f"team-a/api@{referrer}"),
    ]


# -- crafted deliveries (the registry here sends none): order, repetition, forgery ---------


def deliver(*events: dict) -> dict[str, int]:
    """Post one delivery; the outcomes it counted (the non-zero ones)."""
    return {k: n for k, n in post_events(Client(), *events).json().items() if n}


@pytest.fixture
def crafted(use_registry, events_token, seeder_for):
    seeder = seeder_for(use_registry.url)
    image = seeder.put("team-a/api", "1.0")
    assert deliver(push_event("team-a/api", "1.0", image)) == {"applied": 1}
    return use_registry, seeder, image


@pytest.mark.django_db
def test_a_referrer_event_again_or_its_forged_delete_changes_nothing(crafted):
    registry, seeder, image = crafted
    referrer = Attacher(seeder.client).notation_sign("team-a/api", image)
    pushed = push_event("team-a/api", None, referrer)
    assert deliver(pushed) == {"applied": 1}
    assert Manifest.objects.get(digest=referrer).artifact_type == NOTATION_SIGNATURE
    # Redelivered (same id): stored already, so no request; a duplicate.
    mark = registry.mark()
    assert deliver(pushed) == {"duplicates": 1}
    assert registry.requests_since(mark) == []
    # Pushed again (a new event): the registry confirms it with a HEAD; nothing new.
    again = deliver(push_event("team-a/api", None, referrer))
    assert again == {"unchanged": 1}
    # A delete the registry contradicts (it still has the manifest) unlinks nothing.
    forged = delete_event("team-a/api", digest=referrer)
    assert deliver(forged) == {"rejected": 1}
    assert ApiReferrer.objects.filter(manifest__digest=referrer, subject_digest=image).exists()
    # Its push event after its delete (the registry has it no more): nothing is linked.
    seeder.client.delete_manifest("team-a/api", referrer)
    ApiReferrer.objects.all().delete()
    Manifest.objects.filter(digest=referrer).delete()
    late = deliver(push_event("team-a/api", None, referrer))
    assert late == {"ignored": 1}
    assert not ApiReferrer.objects.exists()


@pytest.mark.django_db
def test_a_referrer_into_a_repository_the_registry_lacks_is_not_linked(crafted):
    """A stored referrer's push event naming another repository: the registry decides."""
    _, seeder, image = crafted
    referrer = Attacher(seeder.client).notation_sign("team-a/api", image)
    assert deliver(push_event("team-a/api", None, referrer)) == {"applied": 1}
    forged = deliver(push_event("team-a/elsewhere", None, referrer))
    assert forged == {"rejected": 1}
    assert not Repository.objects.filter(name="team-a/elsewhere").exists()
    assert list(ApiReferrer.objects.values_list("repository__name", flat=True)) == ["team-a/api"]
