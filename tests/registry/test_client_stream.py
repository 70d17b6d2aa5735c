"""``RegistryClient.stream_blob``: a blob a chunk at a time, from a real registry, and
under the faults a real registry does not make (``FaultProxy``)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from registryui.devtools.faults import FaultProxy
from registryui.registry import RegistryClient, RegistryError
from registryui.registry.client import sha256_digest

BLOB = os.urandom(200_000)


@pytest.fixture
def stored(registry) -> Iterator[tuple[str, str]]:
    """(registry URL, digest) of BLOB in ``team-a/docs``."""
    with RegistryClient(registry.url) as client:
        digest = client.upload_blob("team-a/docs", BLOB)
    assert digest == sha256_digest(BLOB)
    yield registry.url, digest


def test_a_blob_streams_in_chunks_with_its_length(stored):
    url, digest = stored
    with RegistryClient(url, retries=0) as client:
        stream = client.stream_blob(
            "team-a/docs", digest, max_bytes=len(BLOB), size=len(BLOB), chunk_size=16_384
        )
        assert stream.length == len(BLOB)
        chunks = list(stream)
        assert b"".join(chunks) == BLOB
        assert len(chunks) > 10 and max(len(c) for c in chunks) <= 16_384
        assert stream.read == len(BLOB)
        # The connection went back to the pool: the next request reuses it.
        assert client.get_blob("team-a/docs", digest, max_bytes=len(BLOB)) == BLOB


def test_an_unknown_blob_fails_before_any_byte(stored):
    url, _ = stored
    with RegistryClient(url, retries=0) as client:
        with pytest.raises(RegistryError) as caught:
            client.stream_blob("team-a/docs", sha256_digest(b"nothing"), max_bytes=1000)
    assert caught.value.not_found


def test_an_announced_length_over_the_cap_or_other_than_described_fails_at_once(stored):
    url, digest = stored
    with RegistryClient(url, retries=0) as client:
        with pytest.raises(RegistryError) as caught:
            client.stream_blob("team-a/docs", digest, max_bytes=len(BLOB) - 1)
        assert caught.value.code == "INVALID_RESPONSE" and "more than" in caught.value.detail
        assert caught.value.message == "The registry sent a document larger than we accept."
        with pytest.raises(RegistryError) as caught:
            client.stream_blob("team-a/docs", digest, max_bytes=len(BLOB), size=len(BLOB) - 1)
        assert caught.value.code == "INVALID_RESPONSE"
        assert "the descriptor says" in caught.value.detail


def test_a_body_not_matching_its_digest_withholds_its_last_chunk(stored):
    url, digest = stored
    with FaultProxy(url) as proxy:
        proxy.rewrite(
            lambda status, headers, body: (status, headers, body[:-1] + b"!"),
            method="GET",
            path="/blobs/",
        )
        with RegistryClient(proxy.url, retries=0) as client:
            stream = client.stream_blob(
                "team-a/docs", digest, max_bytes=len(BLOB), size=len(BLOB), chunk_size=65_536
            )
            passed: list[bytes] = []
            with pytest.raises(RegistryError) as caught:
                for chunk in stream:
                    passed.append(chunk)
    assert caught.value.code == "INVALID_RESPONSE"
    assert "does not match its digest" in caught.value.message
    assert b"".join(passed) == BLOB[: 3 * 65_536]  # everything but the last chunk


def test_a_body_cut_short_is_an_error_not_a_short_document(stored):
    url, digest = stored
    with FaultProxy(url) as proxy:
        proxy.truncate(method="GET", path="/blobs/")
        with RegistryClient(proxy.url, retries=0) as client:
            stream = client.stream_blob("team-a/docs", digest, max_bytes=len(BLOB))
            with pytest.raises(RegistryError) as caught:
                b"".join(stream)
    assert caught.value.code in ("UNREACHABLE", "INVALID_RESPONSE")
