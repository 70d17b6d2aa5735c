"""Registry 2.8 keeps one queue per notification endpoint: a slow or failing pull endpoint
never holds up the push endpoint (issue 16). Checked on the real registry with the endpoints
``make demo`` and the Compose stack configure.

The receivers are ``FaultProxy`` bare fake servers: a real UI cannot be made to stall or fail
its pull endpoint on demand, and what is under test is the registry's delivery, not the UI.
"""

from __future__ import annotations

import json
import threading

import pytest
import requests

from registryui.devtools.demo import notification_endpoint, pull_endpoint
from registryui.devtools.faults import FaultProxy
from registryui.devtools.registry import free_port
from registryui.devtools.seed import Seeder
from registryui.registry import RegistryClient

from .support import wait_for


def metrics(debug_port: int, name: str) -> dict:
    data = requests.get(f"http://127.0.0.1:{debug_port}/debug/vars", timeout=5).json()
    endpoints = data["registry"]["notifications"]["endpoints"]
    return next(e for e in endpoints if e["name"] == name)["Metrics"]


@pytest.mark.parametrize("fault", ["slow", "failing"])
def test_a_stuck_pull_endpoint_does_not_delay_push_events(registry_factory, fault):
    pushes: list[dict] = []
    pulls_answered = threading.Event()
    release = threading.Event()

    def receive(method, path, headers, body):
        events = json.loads(body)["events"]
        if path == "/events/registry":
            pushes.extend(events)
            return 200, {}, b""
        if path == "/events/registry/pulls":
            if fault == "slow":
                release.wait(1.0)  # past the endpoint's 2 s timeout after a retry or two
                pulls_answered.set()
                return 200, {}, b""
            return 503, {}, b"down"
        return 404, {}, b""

    with FaultProxy() as ui:
        ui.route(receive)
        host = ui.url.removeprefix("http://")
        debug_port = free_port()
        registry = registry_factory(
            notifications=[notification_endpoint(host, "t"), pull_endpoint(host, "t")],
            extra_config={"http": {"debug": {"addr": f"127.0.0.1:{debug_port}"}}},
        )
        with RegistryClient(registry.url, retries=0, user_agent="docker/27.0 (test)") as client:
            seeder = Seeder(client)
            seeder.put("team-a/api", "1")
            wait_for(lambda: pushes, what="the first push event")
            # A storm of pulls (as a client, not the UI), queued on the pull endpoint.
            for _ in range(40):
                client.get_manifest("team-a/api", "1")
            queued = metrics(debug_port, "registryui-pulls")
            seeder.put("team-a/api", "2")
            wait_for(
                lambda: any(e["target"].get("tag") == "2" for e in pushes),
                timeout=30,
                what="the second push event",
            )
            # The push went through while the pull endpoint still held most of the storm.
            held = metrics(debug_port, "registryui-pulls")
            release.set()
    print(f"{fault}: pull endpoint before the push {queued}, when it arrived {held}")
    assert [(e["action"], e["target"].get("tag")) for e in pushes] == [
        ("push", "1"),
        ("push", "2"),
    ]
    assert held["Pending"] >= 30
    assert held["Successes"] <= 10
    if fault == "failing":
        assert held["Failures"] + held["Errors"] >= 1 and held["Successes"] == 0
