"""The registry of the Compose stack, run for real: Debian's ``docker-registry`` (2.8, the same
code as ``registry:2``) started by ``deploy/registry/entrypoint.sh`` with the mounted
``deploy/registry/config.yml`` and the environment docker-compose.yml gives the service.

Only what cannot be the same outside a container is rewritten: the listen address (a free
loopback port), the storage folder, the certificate path, and the notification URL
(``http://ui:8000/events/registry`` → a local receiver that records what the registry posts).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import yaml

from registryui.devtools.images import ImageSpec, Layout, skopeo_copy
from registryui.devtools.registry import BINARY, free_port

from .support import BASE_DIR, compose_env, interpolate, load_compose, wait_until

ENTRYPOINT = BASE_DIR / "deploy" / "registry" / "entrypoint.sh"
CONFIG = BASE_DIR / "deploy" / "registry" / "config.yml"
ALL_MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)

pytestmark = pytest.mark.skipif(not Path(BINARY).exists(), reason="docker-registry missing")


@dataclass
class Received:
    authorization: str
    content_type: str
    events: list[dict]
    path: str = "/events/registry"


@dataclass
class Receiver:
    """Stands in for the UI's /events/registry: records every notification POST."""

    url: str
    posts: list[Received] = field(default_factory=list)

    def events(self, path: str = "/events/registry") -> list[dict]:
        return [event for post in list(self.posts) if post.path == path for event in post.events]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    posts: list[Received] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            posts.append(
                Received(
                    self.headers.get("Authorization", ""),
                    self.headers.get("Content-Type", ""),
                    json.loads(body).get("events", []),
                    self.path,
                )
            )
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Receiver(f"http://127.0.0.1:{server.server_port}/events/registry", posts)
    server.shutdown()
    server.server_close()


@dataclass
class ComposeRegistry:
    url: str
    process: subprocess.Popen
    log: Path
    env: dict[str, str]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def start_registry(tmp_path: Path):
    """Start the stack's registry; ``**env`` are .env values, ``notify`` the receiver URL,
    ``endpoints`` a replacement for the stack's notification endpoints (else they are kept)."""
    started: list[subprocess.Popen] = []

    def start(
        *,
        notify: str | None = None,
        endpoints: list | None = None,
        wait: bool = True,
        pulls: bool = False,
        **env: str,
    ) -> ComposeRegistry:
        root = tmp_path / f"registry{len(started)}"
        root.mkdir()
        port = free_port()
        config = yaml.safe_load(CONFIG.read_text())
        config["http"]["addr"] = f"127.0.0.1:{port}"
        config["storage"]["filesystem"]["rootdirectory"] = str(root / "storage")
        (root / "config.yml").write_text(yaml.safe_dump(config))
        # `registry` is the binary's name in the registry:2 image.
        bin_dir = root / "bin"
        bin_dir.mkdir()
        (bin_dir / "registry").symlink_to(BINARY)

        # The stack's opt-out of token authentication, unless a test asks for token mode:
        # these tests are about the rest of the configuration.
        env.setdefault("TOKEN_AUTH_ENABLED", "false")
        stack = interpolate(load_compose(), compose_env(**env))
        service_env = {k: str(v) for k, v in stack["services"]["registry"]["environment"].items()}
        stack_endpoints = yaml.safe_load(service_env["REGISTRY_NOTIFICATIONS_ENDPOINTS"])
        assert stack_endpoints[0]["url"] == "http://ui:8000/events/registry"
        if notify:
            chosen = endpoints or stack_endpoints
            chosen[0]["url"] = notify
            chosen[0]["backoff"] = "1s"  # a test should not wait 10 s for a retry
            if pulls:  # the pull endpoint too, at the receiver's /events/registry/pulls
                chosen[1]["url"] = f"{notify}/pulls"
                chosen[1]["backoff"] = "1s"
            else:
                del chosen[1:]
            service_env["REGISTRY_NOTIFICATIONS_ENDPOINTS"] = yaml.safe_dump(chosen)
        else:
            # No ui:8000 here: the registry would only log failed deliveries.
            del service_env["REGISTRY_NOTIFICATIONS_ENDPOINTS"]
        if "TOKEN_CERT_FILE" in env:
            service_env["TOKEN_CERT_FILE"] = env["TOKEN_CERT_FILE"]
        process_env = {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "OTEL_TRACES_EXPORTER": "none",
            "TOKEN_CERT_WAIT": "1",
            **service_env,
        }
        log = root / "registry.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["sh", str(ENTRYPOINT), str(root / "config.yml")],
                env=process_env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        started.append(process)
        registry = ComposeRegistry(f"http://127.0.0.1:{port}", process, log, service_env)
        if wait:

            def up() -> bool:
                assert process.poll() is None, f"registry exited:\n{registry.log_text()}"
                try:
                    requests.get(f"{registry.url}/", timeout=1)
                    return True
                except requests.RequestException:
                    return False

            wait_until(up, timeout=30, what="the registry to listen")
        return registry

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def test_the_mounted_config_serves_the_v2_api(start_registry):
    registry = start_registry()
    response = requests.get(f"{registry.url}/v2/", timeout=5)
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    # The Compose health check's URL.
    assert requests.get(f"{registry.url}/", timeout=5).status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # JSON logs, as configured.
    first_json = next(line for line in registry.log_text().splitlines() if line.startswith("{"))
    assert json.loads(first_json)["level"]


def test_pushes_and_deletes_reach_the_ui_with_the_token_but_pulls_do_not(
    start_registry, receiver, tmp_path
):
    registry = start_registry(notify=receiver.url)
    endpoint = yaml.safe_load(registry.env["REGISTRY_NOTIFICATIONS_ENDPOINTS"])[0]
    (authorization,) = endpoint["headers"]["Authorization"]
    assert authorization.startswith("Bearer ") and len(authorization) > 40
    host = registry.url.removeprefix("http://")
    layout = Layout(tmp_path / "layout")
    layout.add_image("app", ImageSpec(files={"app.txt": b"compose stack\n"}))
    skopeo_copy(layout, "app", f"{host}/team-a/app:1.0")

    def pushed() -> list[dict]:
        return [
            e for e in receiver.events()
            if e["action"] == "push" and e["target"].get("tag") == "1.0"
        ]  # fmt: skip

    push = wait_until(pushed, timeout=30, what="the push notification")[0]
    assert push["target"]["repository"] == "team-a/app"
    digest = push["target"]["digest"]
    assert {post.authorization for post in receiver.posts} == {authorization}
    assert all("events" in post.content_type for post in receiver.posts)

    # A pull (manifest GET) is ignored by the endpoint's configuration; deletes are enabled
    # and notified.
    manifest = requests.get(
        f"{registry.url}/v2/team-a/app/manifests/1.0",
        headers={"Accept": ALL_MANIFEST_TYPES},
        timeout=5,
    )
    assert manifest.status_code == 200
    deleted = requests.delete(f"{registry.url}/v2/team-a/app/manifests/{digest}", timeout=5)
    assert deleted.status_code == 202
    wait_until(
        lambda: any(e["action"] == "delete" for e in receiver.events()),
        timeout=30,
        what="the delete notification",
    )
    assert not [e for e in receiver.events() if e["action"] == "pull"]
    # Blob (layer and config) events are filtered out too: only manifests reach the UI.
    media_types = {e["target"].get("mediaType") for e in receiver.events()}
    assert media_types == {"application/vnd.oci.image.manifest.v1+json", None}  # None: deletes


def test_the_pull_endpoint_gets_client_pulls_and_nothing_else(start_registry, receiver, tmp_path):
    """The stack's second endpoint (issue 16): manifest pulls only; pushes, deletes and blob
    (layer) pulls are ignored by the registry itself, so they cost the UI nothing."""
    registry = start_registry(notify=receiver.url, pulls=True)
    endpoints = yaml.safe_load(registry.env["REGISTRY_NOTIFICATIONS_ENDPOINTS"])
    assert endpoints[1]["url"].endswith("/events/registry/pulls")
    host = registry.url.removeprefix("http://")
    layout = Layout(tmp_path / "layout")
    layout.add_image("app", ImageSpec(files={"app.txt": b"pull endpoint\n"}))
    skopeo_copy(layout, "app", f"{host}/team-a/app:1.0")
    wait_until(lambda: receiver.events(), timeout=30, what="the push notification")
    pulled = subprocess.run(
        ["skopeo", "copy", "--src-tls-verify=false", f"docker://{host}/team-a/app:1.0",
         f"oci:{tmp_path / 'out'}:app"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert pulled.returncode == 0, pulled.stderr
    digest = receiver.events()[0]["target"]["digest"]
    deleted = requests.delete(f"{registry.url}/v2/team-a/app/manifests/{digest}", timeout=5)
    assert deleted.status_code == 202
    pulls_path = "/events/registry/pulls"
    wait_until(
        lambda: any(e["action"] == "delete" for e in receiver.events()),
        timeout=30,
        what="the delete notification on the push endpoint",
    )
    got = wait_until(lambda: receiver.events(pulls_path), timeout=30, what="the pull event")
    time.sleep(1.5)  # a wrongly delivered push or delete would be queued before the pull
    got = receiver.events(pulls_path)
    assert {e["action"] for e in got} == {"pull"}
    assert {e["target"]["mediaType"] for e in got} == {"application/vnd.oci.image.manifest.v1+json"}
    assert {
        (e["target"]["repository"], e["target"].get("tag"), e["request"]["method"]) for e in got
    } == {("team-a/app", "1.0", "GET")}
    assert all(e["request"]["useragent"].startswith("skopeo/") for e in got)
    assert not [e for e in receiver.events() if e["action"] == "pull"]


def test_registry_2_8_needs_mediatypes_for_ignored_actions_to_work(
    start_registry, receiver, tmp_path
):
    """Why the stack's endpoint lists ``ignore.mediatypes``: with ``actions`` alone, registry
    2.8 still posts every pull (the filter is skipped when no media type is ignored)."""
    registry = start_registry(notify=receiver.url)
    endpoints = yaml.safe_load(registry.env["REGISTRY_NOTIFICATIONS_ENDPOINTS"])
    assert endpoints[0]["ignore"]["mediatypes"]
    registry.process.terminate()
    registry.process.wait(timeout=10)
    del endpoints[0]["ignore"]["mediatypes"]
    actions_only = start_registry(notify=receiver.url, endpoints=endpoints)
    layout = Layout(tmp_path / "layout")
    layout.add_image("app", ImageSpec(files={"app.txt": b"pulls\n"}))
    skopeo_copy(layout, "app", f"{actions_only.url.removeprefix('http://')}/team-a/app:1")
    requests.get(
        f"{actions_only.url}/v2/team-a/app/manifests/1",
        headers={"Accept": ALL_MANIFEST_TYPES},
        timeout=5,
    ).raise_for_status()
    wait_until(
        lambda: any(e["action"] == "pull" for e in receiver.events()),
        timeout=30,
        what="the pull event registry 2.8 sends despite ignore.actions",
    )


def test_read_only_mode_serves_pulls_and_refuses_writes(start_registry):
    registry = start_registry(REGISTRY_READ_ONLY="true")
    assert requests.get(f"{registry.url}/v2/", timeout=5).status_code == 200
    upload = requests.post(f"{registry.url}/v2/team-a/app/blobs/uploads/", timeout=5)
    assert upload.status_code == 405
    assert "read-only mode" in registry.log_text()
    # Our switch is not passed on to the registry, which would call it unrecognized.
    assert "REGISTRY_READ_ONLY" not in registry.log_text()


def test_writes_are_allowed_outside_read_only_mode(start_registry):
    registry = start_registry()
    upload = requests.post(f"{registry.url}/v2/team-a/app/blobs/uploads/", timeout=5)
    assert upload.status_code == 202


def test_token_mode_sends_clients_to_the_ui_and_trusts_its_certificate(
    start_registry, tmp_path, settings
):
    from registryui.tokens.keys import write_key_pair
    from registryui.tokens.signing import issue

    env = compose_env()
    settings.TOKEN_ISSUER = env["TOKEN_ISSUER"]
    settings.TOKEN_SERVICE = env["TOKEN_SERVICE"]
    key = write_key_pair(
        tmp_path / "keys/private/key.pem",
        tmp_path / "keys/public/cert.pem",
        common_name=env["TOKEN_ISSUER"],
        days=2,
    )
    registry = start_registry(
        TOKEN_AUTH_ENABLED="true",
        TOKEN_REALM="https://registry-ui.example.com/auth/token",
        TOKEN_CERT_FILE=str(tmp_path / "keys/public/cert.pem"),
    )
    challenge = requests.get(f"{registry.url}/v2/", timeout=5)
    assert challenge.status_code == 401
    assert challenge.headers["WWW-Authenticate"] == (
        'Bearer realm="https://registry-ui.example.com/auth/token",'
        f'service="{env["TOKEN_SERVICE"]}"'
    )
    # The health check's URL needs no token.
    assert requests.get(f"{registry.url}/", timeout=5).status_code == 200
    # A token signed like the UI signs them (issuer, service and key from the same settings)
    # is accepted: the registry's rootcertbundle, issuer and service match the UI's.
    token = issue(
        "admin", [{"type": "registry", "name": "catalog", "actions": ["*"]}], key=key
    ).token
    catalog = requests.get(
        f"{registry.url}/v2/_catalog", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    assert catalog.status_code == 200, catalog.text
    assert catalog.json() == {"repositories": []}


def test_token_mode_without_a_certificate_stops_with_a_clear_message(start_registry, tmp_path):
    registry = start_registry(
        wait=False,
        TOKEN_AUTH_ENABLED="true",
        TOKEN_REALM="https://registry-ui.example.com/auth/token",
        TOKEN_CERT_FILE=str(tmp_path / "missing.pem"),
    )
    assert registry.process.wait(timeout=30) == 1
    assert "the token-keys service creates it" in registry.log_text()


def test_token_mode_needs_the_realm_of_the_ui(start_registry, tmp_path):
    registry = start_registry(wait=False, TOKEN_AUTH_ENABLED="yes", TOKEN_REALM="")
    assert registry.process.wait(timeout=30) == 1
    assert "TOKEN_REALM='' must be the URL of Registry UI's /auth/token" in registry.log_text()
