"""The SBOM's "download raw document": streamed from a real registry, never held whole,
checked for size and digest as it passes, capped."""

from __future__ import annotations

import hashlib
import json
import logging

import pytest
from django.http import StreamingHttpResponse

from registryui.browse import attached_views
from registryui.catalog.models import Manifest
from registryui.catalog.upstream import get_client
from registryui.devtools.artifacts import Attacher, spdx_document
from registryui.devtools.faults import FaultProxy
from registryui.lib.reference import reference_url
from registryui.registry import RegistryClient
from registryui.registry.client import STREAM_CHUNK_BYTES
from registryui.sync.syncer import Syncer
from tests.attach.support import push_and_sync

pytestmark = pytest.mark.django_db

#: Enough packages for a document of several streaming chunks.
PACKAGES = [(f"package-{i:05d}", f"1.{i}.0", "MIT") for i in range(2500)]


@pytest.fixture
def large(use_registry) -> dict:
    """A plain SPDX document (``cosign attach sbom``) of several chunks, synced."""
    pushed = push_and_sync()
    document = spdx_document("team-a/signed", PACKAGES)
    body = json.dumps(document, separators=(",", ":")).encode()
    assert len(body) > 3 * STREAM_CHUNK_BYTES
    digest = Attacher(get_client()).cosign_attach_sbom(
        "team-a/signed", pushed["team-a/signed:2.0"], document
    )
    run = Syncer(get_client(), concurrency=2).run()
    assert run.ok, run.error
    info = Manifest.objects.get(digest=digest).details["sbom"]
    assert info["size"] == len(body) and info["media_type"] == "text/spdx+json"
    url = reference_url("team-a/signed", digest=digest, action="sbom") + ".json"
    return {"pushed": pushed, "digest": digest, "body": body, "blob": info["blob"], "url": url}


def _no_full_read(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the download read the whole document")

    monkeypatch.setattr(RegistryClient, "get_blob", refuse)
    monkeypatch.setattr(RegistryClient, "_read_capped", refuse)


def test_a_plain_sbom_is_streamed_as_the_registry_sends_it(large, personas, monkeypatch):
    client = personas["a_viewer"].client()
    _no_full_read(monkeypatch)
    response = client.get(large["url"])
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    chunks = list(response.streaming_content)
    body = b"".join(chunks)
    assert len(chunks) > 1 and max(len(c) for c in chunks) <= STREAM_CHUNK_BYTES
    assert body == large["body"]
    assert "sha256:" + hashlib.sha256(body).hexdigest() == large["blob"]
    assert response["Content-Length"] == str(len(large["body"]))
    assert response["Content-Type"] == "text/spdx+json"
    assert response["X-Content-Type-Options"] == "nosniff"
    short = large["digest"].removeprefix("sha256:")[:12]
    assert response["Content-Disposition"] == f'attachment; filename="sbom-{short}.spdx.json"'


def test_an_sbom_in_an_attestation_is_its_decoded_predicate(large, personas):
    att = large["pushed"]["team-a/signed:att"]
    url = reference_url("team-a/signed", digest=att, action="sbom") + ".json"
    response = personas["a_viewer"].client().get(url)
    assert response.status_code == 200
    assert json.loads(response.content)["spdxVersion"] == "SPDX-2.3"
    assert response["Content-Type"] == "application/json"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_a_document_over_the_cap_is_refused_with_a_sentence(large, personas, monkeypatch):
    monkeypatch.setattr(attached_views, "MAX_ATTACHED_DOCUMENT_BYTES", STREAM_CHUNK_BYTES)
    _no_full_read(monkeypatch)
    response = personas["a_viewer"].client().get(large["url"])
    assert response.status_code == 502
    page = response.content.decode()
    assert "The document is larger than 64.0 KiB, which is not served." in page


def test_a_registry_sending_more_than_the_cap_is_refused_before_any_byte(
    large, personas, monkeypatch
):
    """The descriptor says the document fits; the registry announces more."""
    manifest = Manifest.objects.get(digest=large["digest"])
    manifest.details["sbom"]["size"] = 1000
    manifest.save()
    monkeypatch.setattr(attached_views, "MAX_ATTACHED_DOCUMENT_BYTES", STREAM_CHUNK_BYTES)
    response = personas["a_viewer"].client().get(large["url"])
    assert response.status_code == 502
    assert "larger than 64.0 KiB" in response.content.decode()
    # Within the cap, but not the size described: not served either.
    monkeypatch.setattr(attached_views, "MAX_ATTACHED_DOCUMENT_BYTES", 32 * 1024 * 1024)
    response = personas["a_viewer"].client().get(large["url"])
    assert response.status_code == 502
    assert "The registry sent an answer we could not read." in response.content.decode()


def test_a_body_that_does_not_match_its_digest_never_arrives_whole(
    large, personas, settings, caplog
):
    """Past the status line nothing can be answered any more: the download ends short of its
    Content-Length (the last chunk is held back until the digest matched), and is logged."""
    with FaultProxy(settings.REGISTRY_URL) as proxy:

        def tamper(status, headers, body):
            return status, headers, body[:-10] + b"tampered!!"

        proxy.rewrite(tamper, method="GET", path=f"/blobs/{large['blob']}")
        settings.REGISTRY_URL = proxy.url
        with caplog.at_level(logging.WARNING, logger="registryui.browse.attached_views"):
            response = personas["a_viewer"].client().get(large["url"])
            assert response.status_code == 200
            passed: list[bytes] = []
            with pytest.raises(attached_views.DownloadStopped):
                for chunk in response.streaming_content:
                    passed.append(chunk)
    body = b"".join(passed)
    assert int(response["Content-Length"]) == len(large["body"])
    assert 0 < len(body) < len(large["body"])
    assert body == large["body"][: len(body)]
    assert "does not match its digest" in caplog.text


def test_what_the_user_may_not_see_is_404(large, personas):
    assert personas["b_admin"].client().get(large["url"]).status_code == 404
    assert personas["anonymous"].client().get(large["url"]).status_code in (302, 404)
    sig = large["pushed"]["team-a/signed:sig"]
    no_sbom = reference_url("team-a/signed", digest=sig, action="sbom") + ".json"
    assert personas["a_viewer"].client().get(no_sbom).status_code == 404
