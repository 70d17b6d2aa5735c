"""The test registry itself: configuration, access log, kill, restart, seeding, fault proxy."""

from __future__ import annotations

import json

import pytest
import requests
import yaml

from registryui.devtools.faults import FaultProxy
from registryui.devtools.registry import AccessLine, RegistryProcess
from registryui.devtools.seed import Seeder, seed_registry
from registryui.registry import RegistryClient


def test_the_config_is_what_the_options_say(tmp_path):
    process = RegistryProcess(
        tmp_path / "r",
        delete_enabled=False,
        notifications=[{"name": "ui", "url": "http://127.0.0.1:1/events"}],
        extra_config={"log": {"level": "debug"}, "http": {"headers": {"X-Test": ["1"]}}},
    )
    config = yaml.safe_load(process.write_config().read_text())
    assert config["storage"]["delete"] == {"enabled": False}
    assert config["notifications"]["endpoints"][0]["url"] == "http://127.0.0.1:1/events"
    assert config["http"]["addr"] == f"127.0.0.1:{process.port}"
    assert config["http"]["headers"] == {"X-Test": ["1"]}  # merged, not replacing http
    assert config["log"]["level"] == "debug" and config["log"]["accesslog"] == {"disabled": False}


def test_the_access_log_counts_what_the_registry_served(registry):
    mark = registry.mark()
    requests.get(f"{registry.url}/v2/", headers={"User-Agent": "probe/1"}, timeout=5)
    requests.head(f"{registry.url}/v2/a/manifests/latest", timeout=5)
    lines = registry.requests_since(mark)
    assert lines == [
        AccessLine("GET", "/v2/", 200, "probe/1"),
        AccessLine("HEAD", "/v2/a/manifests/latest", 404, lines[1].user_agent),
    ]
    assert [line.kind for line in lines] == ["ping", "manifest_head"]


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        ("GET", "/v2/_catalog?n=50&last=a", "catalog"),
        ("GET", "/v2/a/b/tags/list", "tags"),
        ("GET", "/v2/a/manifests/sha256:00", "manifest_get"),
        ("PUT", "/v2/a/manifests/1", "manifest_put"),
        ("DELETE", "/v2/a/manifests/sha256:00", "manifest_delete"),
        ("GET", "/v2/a/blobs/sha256:00", "blob_get"),
        ("HEAD", "/v2/a/blobs/sha256:00", "blob_head"),
        ("POST", "/v2/a/blobs/uploads/?mount=x&from=y", "blob_upload"),
        ("PATCH", "/v2/a/blobs/uploads/uuid", "blob_upload"),
    ],
)
def test_access_lines_name_their_kind(method, path, kind):
    assert AccessLine(method, path, 200).kind == kind


def test_a_killed_registry_comes_back_with_its_data(registry):
    with RegistryClient(registry.url, retries=0) as client:
        digest = Seeder(client).put("a/b", "1")
    registry.kill()
    assert registry.process.poll() is not None
    registry.start()
    with RegistryClient(registry.url, retries=0) as client:
        assert client.head_manifest("a/b", "1").digest == digest


def test_seeding_makes_real_distinct_images(registry):
    with RegistryClient(registry.url) as client:
        seeded = seed_registry(client, 3, 4, prefix="bench")
        assert sorted(seeded.tags) == ["bench/repo-0000", "bench/repo-0001", "bench/repo-0002"]
        assert seeded.tag_count == 12 and len(seeded.digests) == 12
        for name, tags in seeded.tags.items():
            for tag, digest in tags.items():
                ref, body = client.get_manifest(name, tag)
                assert ref.digest == digest
                config = json.loads(body)["config"]["digest"]
                assert client.blob_exists(name, config)


def test_the_fault_proxy_forwards_what_it_does_not_fake(registry):
    with FaultProxy(registry.url) as proxy:
        proxy.fail(503, path="/tags/list", times=1, after=1)
        first = requests.get(f"{proxy.url}/v2/x/tags/list", timeout=5)
        second = requests.get(f"{proxy.url}/v2/x/tags/list", timeout=5)
        third = requests.get(f"{proxy.url}/v2/x/tags/list", timeout=5)
    assert [first.status_code, second.status_code, third.status_code] == [404, 503, 404]
    assert first.json()["errors"][0]["code"] == "NAME_UNKNOWN"  # the real registry's answer
    assert [r.path for r in proxy.seen] == ["/v2/x/tags/list"] * 3
