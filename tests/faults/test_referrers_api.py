"""The sync's use of the referrers API, which registry 2.8 does not answer.

Registry 2.8 answers ``GET /v2/<name>/referrers/<digest>`` with 404 (checked first, against
the real registry). A registry that has the API (OCI distribution 1.1, e.g. zot or registry
3.x once released) cannot be started here, so a ``FaultProxy`` in front of the real registry
plays one: its route answers the referrers request with an image index listing a notation
signature that was really pushed by digest only; every other request (the manifest itself,
tags, blobs) goes to the real registry.
"""

from __future__ import annotations

import json

import pytest

from registryui.catalog.models import ApiReferrer, Manifest, SyncRun
from registryui.catalog.upstream import get_client
from registryui.devtools.artifacts import push_attached_samples
from registryui.devtools.faults import FaultProxy
from registryui.lib.reference import reference_url
from registryui.registry import RegistryClient, RegistryError
from registryui.sync.syncer import Syncer
from tests.personas import make_personas

pytestmark = pytest.mark.django_db


def test_registry_28_does_not_answer_the_referrers_api(registry):
    with RegistryClient(registry.url) as client:
        pushed = push_attached_samples(client)
        with pytest.raises(RegistryError) as caught:
            client.list_referrers("team-a/signed", pushed["team-a/signed:1.0"])
    assert caught.value.status == 404


def test_untagged_referrers_come_from_the_api_where_it_answers(registry, settings):
    with RegistryClient(registry.url) as client:
        pushed = push_attached_samples(client)
        signed = pushed["team-a/signed:1.0"]
        notation = pushed["team-a/signed@notation"]
        size = len(client.get_manifest("team-a/signed", notation)[1])

    def referrers(method, path, headers, body):
        if method != "GET" or "/referrers/" not in path:
            return None
        listed = []
        if path.endswith(signed):
            listed = [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": notation,
                    "size": size,
                    "artifactType": "application/vnd.cncf.notary.signature",
                }
            ]
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": listed,
        }
        return (
            200,
            {"Content-Type": "application/vnd.oci.image.index.v1+json"},
            json.dumps(index).encode(),
        )

    with FaultProxy(registry.url) as proxy:
        proxy.route(referrers)
        settings.REGISTRY_URL = proxy.url
        settings.REGISTRY_RETRIES = 1
        run = Syncer(get_client(), concurrency=2).run()
        assert run.ok, run.error
        assert run.referrers_api == SyncRun.ReferrersApi.ANSWERED
        row = ApiReferrer.objects.get(subject_digest=signed)
        assert row.manifest.digest == notation
        assert Manifest.objects.get(digest=notation).attached_kinds == {"signature": 1}

        client = make_personas()["a_viewer"].client()
        page = client.get(reference_url("team-a/signed", tag="1.0")).content.decode()
        section = page[page.index('id="attached"') :]
        assert reference_url("team-a/signed", digest=notation) in section
        assert "via referrers API or push event" in section
        assert "2026-11-02T09:30:00+00:00" in section
        assert "answers the referrers API" in section
        # Its own page is reachable although no tag holds it.
        assert client.get(reference_url("team-a/signed", digest=notation)).status_code == 200

        # The registry stops listing it: the row goes at the next sync; a failing answer
        # (a 503 storm) would keep it.
        proxy.routes.clear()
        proxy.route(
            lambda m, p, h, b: (
                (200, {}, b'{"schemaVersion":2,"manifests":[]}') if "/referrers/" in p else None
            )
        )
        proxy.fail(503, path="/referrers/")
        Syncer(get_client(), concurrency=2).run()
        assert ApiReferrer.objects.filter(subject_digest=signed).exists()
        proxy.faults.clear()
        Syncer(get_client(), concurrency=2).run()
        assert not ApiReferrer.objects.filter(subject_digest=signed).exists()
