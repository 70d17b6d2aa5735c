"""Cleanup of images that have signatures, SBOMs and attestations, against a real registry:
deleting an image takes what is attached to it; a referrer can go alone; retention keeps a
referrer while its image is kept and counts referrers in the bytes freed."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from registryui.catalog.models import Tag
from registryui.catalog.upstream import get_client
from registryui.cleanup import retention
from registryui.cleanup.models import RetentionPolicy
from registryui.cleanup.outcomes import Actor
from registryui.core.models import AuditEntry
from registryui.devtools.artifacts import Attacher
from registryui.lib.reference import reference_url
from registryui.registry import RegistryError
from tests.attach.support import push_and_sync

pytestmark = pytest.mark.django_db

ATTACHED = ("sig", "att", "sbom", "scan")


@pytest.fixture
def pushed(use_registry):
    return push_and_sync()


def _exists(digest: str) -> bool:
    try:
        get_client().head_manifest("team-a/signed", digest)
    except RegistryError as exc:
        assert exc.missing
        return False
    return True


def _confirm(page: str) -> list[str]:
    return re.findall(r'name="confirm" value="([^"]+)"', page)


def test_deleting_an_image_deletes_what_is_attached_to_it(pushed, personas):
    client = personas["a_deleter"].client()
    url = reference_url("team-a/signed", digest=pushed["team-a/signed:1.0"], action="delete-image")
    page = client.get(url).content.decode()
    assert "Attached to them, deleted with them" in page
    assert "4 signatures, SBOMs or attestations" in page
    for key in ATTACHED:
        assert pushed[f"team-a/signed:{key}"][7:19] in page
    response = client.post(url, {"confirm": _confirm(page)}, follow=True)
    assert response.redirect_chain[0][0].startswith("/results/")  # post/redirect/get
    assert response.status_code == 200, response.content.decode()[:2000]
    assert not _exists(pushed["team-a/signed:1.0"])
    for key in ATTACHED:
        assert not _exists(pushed[f"team-a/signed:{key}"]), key
    assert get_client().list_tags("team-a/signed") == ["2.0"]
    assert set(
        Tag.objects.filter(repository__name="team-a/signed").values_list("name", flat=True)
    ) == {"2.0"}
    entry = AuditEntry.objects.filter(action=AuditEntry.Action.DELETE_IMAGE).latest("id")
    assert set(entry.details["referrers_deleted"]) == {
        pushed[f"team-a/signed:{key}"] for key in ATTACHED
    }


def test_a_referrer_can_be_deleted_alone(pushed, personas):
    client = personas["a_deleter"].client()
    sig_tag = "sha256-" + pushed["team-a/signed:1.0"][7:] + ".sig"
    url = reference_url("team-a/signed", tag=sig_tag, action="delete")
    page = client.get(url).content.decode()
    assert "Attached to them" not in page
    assert client.post(url, {"confirm": _confirm(page)}, follow=True).status_code == 200
    assert not _exists(pushed["team-a/signed:sig"])
    assert _exists(pushed["team-a/signed:1.0"]) and _exists(pushed["team-a/signed:att"])
    assert Tag.objects.filter(repository__name="team-a/signed", name="1.0").exists()


def test_retention_keeps_referrers_of_kept_images_and_counts_the_others(pushed):
    # 2.0 gets a signature too; every tag is old, so only "keep the newest 1" keeps anything.
    Attacher(get_client()).cosign_sign("team-a/signed", pushed["team-a/signed:2.0"])
    push_and_sync_again()
    old = timezone.now() - timedelta(days=400)
    Tag.objects.filter(repository__name="team-a/signed").update(first_seen=old, changed_at=old)
    Tag.objects.filter(repository__name="team-a/signed", name="2.0").update(
        first_seen=old + timedelta(days=1)
    )
    policy = RetentionPolicy.objects.create(
        name="signed", repository_pattern="team-a/signed", keep_last=1
    )
    planned = retention.preview(policy)
    verdicts = {v.tag: v for v in planned.repositories[0].verdicts}
    sig_20 = "sha256-" + pushed["team-a/signed:2.0"][7:] + ".sig"
    assert not verdicts["2.0"].delete and not verdicts[sig_20].delete
    assert verdicts[sig_20].reasons == [
        f"attached to kept image {pushed['team-a/signed:2.0'][7:19]}"
    ]
    assert verdicts["1.0"].delete
    going = set(planned.repositories[0].plan.raw.deleted_digests)
    assert {pushed[f"team-a/signed:{key}"] for key in ATTACHED} <= going
    result = retention.apply(policy, planned, Actor(name="t", via="policy"))
    assert not result.failures
    assert sorted(get_client().list_tags("team-a/signed")) == ["2.0", sig_20]
    for key in ATTACHED:
        assert not _exists(pushed[f"team-a/signed:{key}"])


def push_and_sync_again():
    from registryui.sync.syncer import Syncer

    run = Syncer(get_client(), concurrency=2).run()
    assert run.ok, run.error
