"""RegistryClient against a real registry (docker-registry 2.8): listing, manifests, blobs,
errors, User-Agent and the connection pool."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from registryui.devtools.registry import RegistryProcess
from registryui.devtools.seed import NOTE_ANNOTATION, Seeded, Seeder
from registryui.registry import MANIFEST_ACCEPT, RegistryClient, RegistryError, mediatypes
from registryui.registry.client import MAX_CATALOG_PAGE, USER_AGENT, sha256_digest

NAMES = ["a", "a/b", "a-b", "a.b", "a/b/c", "ab", "b", "z/z"]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Iterator[tuple[RegistryProcess, Seeded, Seeder]]:
    process = RegistryProcess(tmp_path_factory.mktemp("client") / "registry").start()
    try:
        with RegistryClient(process.url) as client:
            seeder = Seeder(client)
            seeded = seeder.seed(NAMES, ["1", "2"])
        yield process, seeded, seeder
    finally:
        process.stop()


@pytest.fixture
def client(seeded) -> Iterator[RegistryClient]:
    with RegistryClient(seeded[0].url, retries=0) as client:
        yield client


def test_ping_reports_the_api_version(client):
    assert client.ping() == {"api_version": "registry/2.0"}


def test_the_catalog_is_followed_page_by_page_through_relative_links(seeded, client):
    process = seeded[0]
    mark = process.mark()
    pages = list(client.iter_catalog(3))
    assert [len(page) for page in pages] == [3, 3, 2]
    names = [name for page in pages for name in page]
    assert sorted(names) == sorted(NAMES)
    # The registry's order (``/`` sorts before every other byte) is not Python's sorted():
    # the client must follow Link rather than compute the next ``last`` itself.
    assert names != sorted(NAMES)
    assert names.index("a/b") < names.index("a-b")
    lines = process.requests_since(mark)
    assert [line.path for line in lines] == [
        "/v2/_catalog?n=3",
        f"/v2/_catalog?last={quote(names[2], safe='')}&n=3",
        f"/v2/_catalog?last={quote(names[5], safe='')}&n=3",
    ]


def test_a_page_size_above_1000_is_refused_before_any_request(seeded, client):
    process = seeded[0]
    mark = process.mark()
    with pytest.raises(ValueError, match=r"1\.\.1000"):
        next(client.iter_catalog(MAX_CATALOG_PAGE + 1))
    with pytest.raises(ValueError):
        next(client.iter_catalog(0))
    assert process.requests_since(mark, settle=0.1) == []


def test_the_registry_itself_rejects_n_above_1000_with_its_own_code(client):
    """Why the client refuses: 2.8 answers 400 PAGINATION_NUMBER_INVALID, it does not clamp."""
    with pytest.raises(RegistryError) as caught:
        client._request("GET", "v2/_catalog?n=1001", kind="catalog", scope="")
    error = caught.value
    assert (error.status, error.code) == (400, "PAGINATION_NUMBER_INVALID")
    assert error.message == "The registry rejected the page size."
    assert "[PAGINATION_NUMBER_INVALID]" in str(error)


def test_tags_are_listed(seeded, client):
    assert sorted(client.list_tags("a/b/c")) == ["1", "2"]


def test_an_unknown_repository_is_name_unknown(client):
    with pytest.raises(RegistryError) as caught:
        client.list_tags("no/such/repository")
    error = caught.value
    assert (error.status, error.code, error.not_found) == (404, "NAME_UNKNOWN", True)
    assert error.message == "The repository is not in the registry."
    assert "repository name not known to registry" in error.detail


def test_head_gives_the_digest_media_type_and_size(seeded, client):
    _, pushed, seeder = seeded
    ref = client.head_manifest("a/b", "1")
    body, digest = seeder.manifest("a/b:1")
    assert ref.digest == digest == pushed.tags["a/b"]["1"]
    assert ref.media_type == mediatypes.OCI_MANIFEST
    assert ref.size == len(body)


def test_get_manifest_returns_the_exact_bytes_and_checks_the_digest(seeded, client):
    pushed = seeded[1]
    digest = pushed.tags["z/z"]["2"]
    ref, body = client.get_manifest("z/z", digest)
    assert sha256_digest(body) == digest == ref.digest
    assert json.loads(body)["annotations"][NOTE_ANNOTATION] == "z/z:2"
    # By tag too; the bytes are the same.
    assert client.get_manifest("z/z", "2")[1] == body


def test_an_unknown_manifest_is_manifest_unknown_for_get_and_head(client):
    with pytest.raises(RegistryError) as by_get:
        client.get_manifest("a", "nope")
    assert (by_get.value.status, by_get.value.code) == (404, "MANIFEST_UNKNOWN")
    with pytest.raises(RegistryError) as by_head:
        client.head_manifest("a", "nope")
    # A HEAD has no body: the code comes from the status and the path.
    assert (by_head.value.status, by_head.value.code) == (404, "MANIFEST_UNKNOWN")
    assert by_head.value.message == "The manifest is not in the registry."


def test_blobs_are_fetched_and_checked(seeded, client):
    _, _, seeder = seeded
    assert client.get_blob("a", seeder.config_digest) == seeder.config
    assert client.blob_exists("a", seeder.layer_digest)
    missing = "sha256:" + "0" * 64
    assert not client.blob_exists("a", missing)
    with pytest.raises(RegistryError) as caught:
        client.get_blob("a", missing)
    assert (caught.value.status, caught.value.code) == (404, "BLOB_UNKNOWN")


def test_every_request_carries_the_user_agent(seeded, client):
    process = seeded[0]
    mark = process.mark()
    client.ping()
    client.list_tags("a")
    client.head_manifest("a", "1")
    lines = process.requests_since(mark)
    assert len(lines) == 3
    assert {line.user_agent for line in lines} == {USER_AGENT}
    assert USER_AGENT.startswith("registryui/")


def test_manifest_requests_accept_all_four_types():
    assert MANIFEST_ACCEPT.split(", ") == [
        mediatypes.OCI_INDEX,
        mediatypes.OCI_MANIFEST,
        mediatypes.DOCKER_MANIFEST_LIST,
        mediatypes.DOCKER_MANIFEST,
    ]


def test_the_pool_is_at_least_as_large_as_asked_and_only_grows(seeded):
    with RegistryClient(seeded[0].url, pool_size=4) as client:
        adapter = client.session.get_adapter("http://127.0.0.1/")
        assert adapter._pool_maxsize == client.pool_size == 4
        client.ensure_pool_size(12)
        assert client.session.get_adapter("http://127.0.0.1/")._pool_maxsize == 12
        client.ensure_pool_size(2)
        assert client.pool_size == 12


def test_concurrent_requests_reuse_pooled_connections(seeded, caplog):
    """With as many connections as workers, urllib3 never discards one as "pool is full"."""
    from concurrent.futures import ThreadPoolExecutor

    process, pushed, _ = seeded
    work = [(name, tag) for name, tags in pushed.tags.items() for tag in tags] * 4
    with RegistryClient(process.url, pool_size=8) as client:
        with caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"):
            with ThreadPoolExecutor(8) as pool:
                digests = list(pool.map(lambda item: client.head_manifest(*item).digest, work))
    assert digests == [pushed.tags[name][tag] for name, tag in work]
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]


def test_push_mount_and_delete(registry):
    with RegistryClient(registry.url, retries=0) as client:
        seeder = Seeder(client)
        digest = seeder.put("x/one", "1")
        assert client.mount_blob("x/two", seeder.layer_digest, "x/one") is True
        assert client.mount_blob("x/two", seeder.config_digest, "x/one") is True
        assert client.mount_blob("x/two", "sha256:" + "1" * 64, "x/one") is False
        body, _ = seeder.manifest("x/one:1")
        assert client.put_manifest("x/two", "copy", body, mediatypes.OCI_MANIFEST) == digest
        client.delete_manifest("x/one", digest)
        assert client.list_tags("x/one") == []  # tags: null once every tag is gone
        assert client.list_tags("x/two") == ["copy"]


def test_deleting_on_a_registry_without_deletes_is_unsupported(registry_factory):
    process = registry_factory(delete_enabled=False)
    with RegistryClient(process.url, retries=0) as client:
        digest = Seeder(client).put("x/one", "1")
        with pytest.raises(RegistryError) as caught:
            client.delete_manifest("x/one", digest)
    assert (caught.value.status, caught.value.code) == (405, "UNSUPPORTED")
    assert caught.value.message == "The registry does not support this operation."
