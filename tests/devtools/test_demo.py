"""``make demo``'s registry configuration: pushes reach the UI as events, the sync's own
requests do not come back as events. (``make demo`` itself serves until Ctrl-C and is checked by
hand: start it, log in, fetch /, send SIGINT, see both processes gone.)"""

from __future__ import annotations

import json
import time

from registryui.devtools.demo import _port_taken, notification_endpoint
from registryui.devtools.faults import FaultProxy
from registryui.devtools.seed import Seeder
from registryui.registry import RegistryClient


def wait_for(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_the_demo_registry_notifies_pushes_but_not_the_syncs_pulls(registry_factory):
    events: list[dict] = []

    def receive(method, path, headers, body):
        if path == "/events/registry" and headers.get("Authorization") == "Bearer t0ken":
            events.extend(json.loads(body)["events"])
            return 200, {}, b""
        return 401, {}, b""

    with FaultProxy() as ui:
        ui.route(receive)
        host = ui.url.removeprefix("http://")
        registry = registry_factory(notifications=[notification_endpoint(host, "t0ken")])
        with RegistryClient(registry.url, retries=0) as client:
            seeder = Seeder(client)
            digest = seeder.put("team-a/api", "1")
            assert wait_for(lambda: any(e["action"] == "push" for e in events))
            # What a sync does: a HEAD per tag, and a GET of a new manifest and its config.
            client.head_manifest("team-a/api", "1")
            client.get_manifest("team-a/api", digest)
            client.get_blob("team-a/api", seeder.config_digest)
            seeder.put("team-a/api", "sentinel")  # events arrive in order: this one comes last
            assert wait_for(lambda: any(e["target"].get("tag") == "sentinel" for e in events))
    assert [(e["action"], e["target"].get("tag")) for e in events] == [
        ("push", "1"),
        ("push", "sentinel"),
    ]
    assert {e["target"]["mediaType"] for e in events} == {
        "application/vnd.oci.image.manifest.v1+json"
    }


def test_a_taken_port_is_detected():
    with FaultProxy() as server:
        assert _port_taken(server.url.removeprefix("http://"))
