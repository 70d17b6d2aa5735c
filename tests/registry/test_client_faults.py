"""RegistryClient under faults a real registry cannot produce on demand.

Every test here uses ``FaultProxy``: either a bare fake server (no upstream) that answers what
the test says, or a proxy in front of a real registry that answers some requests itself
(429/503 storms, ``Retry-After``, a slow answer, a 3.x-style paginated tag list, a corrupted
manifest). Whatever a real registry can show is tested in test_client.py instead.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from registryui.devtools.faults import FaultProxy, digest_header
from registryui.devtools.registry import free_port
from registryui.devtools.seed import Seeder
from registryui.registry import RegistryClient, RegistryError


@pytest.fixture
def fake() -> Iterator[FaultProxy]:
    with FaultProxy() as proxy:
        yield proxy


@pytest.fixture
def proxied(registry) -> Iterator[tuple[FaultProxy, Seeder]]:
    """A proxy in front of a real registry holding team-a/api:1 and :2."""
    with RegistryClient(registry.url) as direct:
        seeder = Seeder(direct)
        seeder.seed(["team-a/api"], ["1", "2"])
    with FaultProxy(registry.url) as proxy:
        yield proxy, seeder


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """Record urllib3's back-off and Retry-After sleeps instead of sleeping."""
    recorded: list[float] = []
    monkeypatch.setattr("urllib3.util.retry.time.sleep", recorded.append)
    return recorded


def json_answer(payload: dict, status: int = 200, **headers: str):
    return status, {"Content-Type": "application/json", **headers}, json.dumps(payload).encode()


def test_503_is_retried_with_backoff_until_it_passes(proxied, sleeps):
    proxy, _ = proxied
    proxy.fail(503, method="HEAD", path="/manifests/1", times=2)
    with RegistryClient(proxy.url, retries=3, backoff_factor=0.25) as client:
        assert client.head_manifest("team-a/api", "1").digest.startswith("sha256:")
    heads = [r for r in proxy.seen if r.method == "HEAD"]
    assert len(heads) == 3
    # urllib3 retries the first failure at once, then backs off: 0.25 * 2 ** (2 - 1) s.
    assert sleeps == [0.5]
    assert client.stats["manifest_head"] == 1  # one logical request, however many tries


def test_429_honours_retry_after(proxied, sleeps):
    proxy, _ = proxied
    proxy.fail(429, path="/tags/list", times=1, headers={"Retry-After": "2"})
    with RegistryClient(proxy.url, retries=3) as client:
        assert sorted(client.list_tags("team-a/api")) == ["1", "2"]
    assert sleeps == [2.0]


def test_a_long_retry_after_is_capped(proxied, sleeps):
    """A registry (or proxy) asking for an hour must not park a sync worker for an hour."""
    proxy, _ = proxied
    proxy.fail(503, path="/tags/list", times=1, headers={"Retry-After": "3600"})
    with RegistryClient(proxy.url, retries=3) as client:
        client.list_tags("team-a/api")
    assert sleeps == [30.0]


def test_502_and_504_are_retried_too(proxied, sleeps):
    proxy, _ = proxied
    proxy.fail(502, path="/tags/list", times=1)
    proxy.fail(504, path="/tags/list", times=1)
    with RegistryClient(proxy.url, retries=3) as client:
        assert len(client.list_tags("team-a/api")) == 2
    assert len([r for r in proxy.seen if r.path.endswith("/tags/list")]) == 3


def test_503_that_never_ends_is_unavailable_after_the_retries(proxied, sleeps):
    proxy, _ = proxied
    proxy.fail(503, path="/tags/list")
    with RegistryClient(proxy.url, retries=2) as client:
        with pytest.raises(RegistryError) as caught:
            client.list_tags("team-a/api")
    assert (caught.value.code, caught.value.status) == ("UNAVAILABLE", 503)
    assert caught.value.transient
    assert len([r for r in proxy.seen if r.path.endswith("/tags/list")]) == 3


def test_a_post_is_never_repeated(proxied, sleeps):
    """Starting an upload twice would leave an orphan upload behind: POST is not retried."""
    proxy, seeder = proxied
    proxy.fail(503, method="POST")
    with RegistryClient(proxy.url, retries=3) as client:
        with pytest.raises(RegistryError) as caught:
            client.mount_blob("team-b/copy", seeder.layer_digest, "team-a/api")
    assert caught.value.code == "UNAVAILABLE"
    assert len([r for r in proxy.seen if r.method == "POST"]) == 1


def test_a_connection_refused_is_unreachable(sleeps):
    with RegistryClient(f"http://127.0.0.1:{free_port()}", retries=1) as client:
        with pytest.raises(RegistryError) as caught:
            client.ping()
    assert caught.value.code == "UNREACHABLE"
    assert caught.value.message == "The registry cannot be reached."
    assert caught.value.transient


def test_a_slow_answer_is_a_timeout(fake):
    def slow(method, path, headers, body):
        time.sleep(1.0)
        return json_answer({})

    fake.route(slow)
    with RegistryClient(fake.url, read_timeout=0.2, retries=0) as client:
        with pytest.raises(RegistryError) as caught:
            client.ping()
    assert caught.value.code == "TIMEOUT"
    assert caught.value.message == "The registry did not answer in time."


def test_relative_and_absolute_links_are_followed(fake):
    pages = {
        "/v2/_catalog?n=2": (["a", "b"], '</v2/_catalog?last=b&n=2>; rel="next"'),
        "/v2/_catalog?last=b&n=2": (["c", "d"], f'<{fake.url}/v2/_catalog?last=d&n=2>; rel="next"'),
        "/v2/_catalog?last=d&n=2": (["e"], None),
    }

    def catalog(method, path, headers, body):
        names, link = pages[path]
        extra = {"Link": link} if link else {}
        return json_answer({"repositories": names}, **extra)

    fake.route(catalog)
    with RegistryClient(fake.url) as client:
        assert list(client.iter_catalog(2)) == [["a", "b"], ["c", "d"], ["e"]]
    assert [r.path for r in fake.seen] == list(pages)


def test_a_link_that_loops_is_refused(fake):
    fake.route(
        lambda *request: json_answer({"repositories": ["a"]}, Link='</v2/_catalog?n=1>; rel="next"')
    )
    with RegistryClient(fake.url) as client:
        with pytest.raises(RegistryError) as caught:
            list(client.iter_catalog(1))
    assert caught.value.code == "INVALID_RESPONSE"
    assert len(fake.seen) == 1


def test_paginated_tag_lists_are_followed_and_null_is_empty(fake):
    """Registry 3.x paginates tags/list with Link; 2.8 does not. Both must work."""
    pages = {
        "/v2/r/tags/list": (
            {"name": "r", "tags": ["1", "2"]},
            '</v2/r/tags/list?last=2&n=2>; rel="next"',
        ),
        "/v2/r/tags/list?last=2&n=2": ({"name": "r", "tags": ["3"]}, None),
        "/v2/empty/tags/list": ({"name": "empty", "tags": None}, None),
    }

    def tags(method, path, headers, body):
        payload, link = pages[path]
        return json_answer(payload, **({"Link": link} if link else {}))

    fake.route(tags)
    with RegistryClient(fake.url) as client:
        assert client.list_tags("r") == ["1", "2", "3"]
        assert client.list_tags("empty") == []


@pytest.mark.parametrize(
    "payload",
    [b"<html>proxy error</html>", b"[]", b'{"repositories": "a"}', b'{"repositories": [1]}'],
)
def test_an_unreadable_answer_is_invalid_response(fake, payload):
    fake.route(lambda *request: (200, {"Content-Type": "application/json"}, payload))
    with RegistryClient(fake.url) as client:
        with pytest.raises(RegistryError) as caught:
            list(client.iter_catalog())
    assert caught.value.code == "INVALID_RESPONSE"
    assert caught.value.message == "The registry sent an answer we could not read."


def test_a_manifest_that_does_not_match_its_digest_is_refused(proxied):
    proxy, seeder = proxied
    body, digest = seeder.manifest("team-a/api:1")
    tampered = body.replace(b"team-a/api:1", b"team-a/api:X")
    proxy.fail(
        200,
        method="GET",
        path=f"/manifests/{digest}",
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        body=tampered,
    )
    with RegistryClient(proxy.url) as client:
        with pytest.raises(RegistryError) as caught:
            client.get_manifest("team-a/api", digest)
    assert caught.value.code == "INVALID_RESPONSE"
    assert digest in caught.value.detail


def test_an_oversized_document_is_refused(fake):
    fake.route(lambda *request: (200, {"Content-Type": "application/octet-stream"}, b"x" * 2048))
    with RegistryClient(fake.url) as client:
        with pytest.raises(RegistryError) as caught:
            client.get_blob("r", "sha256:" + "0" * 64, max_bytes=1024)
    assert caught.value.code == "INVALID_RESPONSE"
    assert "larger than we accept" in caught.value.message


@pytest.mark.parametrize(
    ("status", "errors", "code", "message"),
    [
        (
            403,
            [{"code": "DENIED", "message": "requested access to the resource is denied"}],
            "DENIED",
            "The registry denied access to this resource.",
        ),
        (
            401,
            [{"code": "UNAUTHORIZED", "message": "authentication required"}],
            "UNAUTHORIZED",
            "The registry refused our credentials.",
        ),
        (
            400,
            [{"code": "TAG_INVALID", "message": "manifest tag did not match URI"}],
            "TAG_INVALID",
            "The registry rejected the tag.",
        ),
        (
            429,
            [{"code": "TOOMANYREQUESTS", "message": "slow down"}],
            "TOOMANYREQUESTS",
            "The registry is rate-limiting us; try again shortly.",
        ),
        (418, [], "", "The registry answered HTTP 418."),
        (403, [], "DENIED", "The registry denied access to this resource."),
    ],
)
def test_error_codes_and_human_messages(fake, status, errors, code, message):
    fake.route(lambda *request: json_answer({"errors": errors}, status=status))
    with RegistryClient(fake.url, username="u", password="p", retries=0) as client:
        with pytest.raises(RegistryError) as caught:
            client.list_tags("r")
    error = caught.value
    assert (error.status, error.code, error.message) == (status, code, message)
    if errors:
        assert error.detail == errors[0]["message"]
        assert str(error) == f"{message} [{code}] ({errors[0]['message']})"


def test_errors_survive_pickling():
    """Errors cross process boundaries (multiprocessing, caches) with their fields intact."""
    import pickle

    error = RegistryError.from_code("NAME_UNKNOWN", status=404, detail="r")
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert (copy.message, copy.code, copy.status, copy.detail) == (
        error.message,
        "NAME_UNKNOWN",
        404,
        "r",
    )


def test_the_environments_proxy_is_used_and_no_proxy_honoured(fake, monkeypatch):
    """The client reads HTTP_PROXY/NO_PROXY once, when it is made (not on every request)."""
    fake.route(
        lambda method, path, headers, body: json_answer(
            {}, **{"Docker-Distribution-API-Version": "registry/2.0"}
        )
    )
    monkeypatch.setenv("HTTP_PROXY", fake.url)
    monkeypatch.setenv("NO_PROXY", "direct.invalid")
    with RegistryClient("http://registry.invalid:5000", retries=0) as client:
        monkeypatch.delenv("HTTP_PROXY")  # already read
        assert client.ping() == {"api_version": "registry/2.0"}
    assert [r.path for r in fake.seen] == ["http://registry.invalid:5000/v2/"]
    with RegistryClient("http://direct.invalid:5000", retries=0) as client:
        assert client.session.proxies == {"http": None, "https": None, "all": None}


def test_a_body_cut_short_is_retried(proxied):
    """The connection closes halfway through a body (FaultProxy.truncate): urllib3 does not
    retry that, the client does, like any other transient failure."""
    proxy, seeder = proxied
    digest = seeder.manifest("team-a/api:1")[1]
    truncated = proxy.truncate(method="GET", path="/manifests/", times=2)
    with RegistryClient(proxy.url, retries=2, backoff_factor=0) as client:
        ref, body = client.get_manifest("team-a/api", "1")
        assert ref.digest == digest and len(body) == ref.size
        assert set(client.list_tags("team-a/api")) == {"1", "2"}
    assert truncated.hits == 2


def test_a_body_cut_short_too_often_is_unreachable(proxied):
    proxy, _ = proxied
    proxy.truncate(method="GET", path="/tags/list")
    with RegistryClient(proxy.url, retries=2, backoff_factor=0) as client:
        with pytest.raises(RegistryError) as raised:
            client.list_tags("team-a/api")
    assert raised.value.code == "UNREACHABLE" and "cut short" in raised.value.detail
    assert len([r for r in proxy.seen if r.path.endswith("/tags/list")]) == 3


def test_resets_before_an_answer_are_retried(proxied):
    proxy, _ = proxied
    reset = proxy.reset(method="HEAD", times=2)
    with RegistryClient(proxy.url, retries=2, backoff_factor=0) as client:
        assert client.head_manifest("team-a/api", "1").digest.startswith("sha256:")
    assert reset.hits == 2


def test_a_manifest_by_tag_is_checked_against_its_bytes(proxied):
    """A Docker-Content-Digest naming another real image (FaultProxy.rewrite): by tag, the
    bytes decide, so the answer is refused rather than believed."""
    proxy, seeder = proxied
    other = seeder.manifest("team-a/api:2")[1]
    proxy.rewrite(digest_header(other), method="GET", path="/manifests/1$")
    with RegistryClient(proxy.url, retries=0) as client:
        with pytest.raises(RegistryError) as raised:
            client.get_manifest("team-a/api", "1")
    assert raised.value.code == "INVALID_RESPONSE" and other in raised.value.detail
