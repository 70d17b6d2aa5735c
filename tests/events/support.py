"""Helpers of the events tests: notification envelopes, waiting with a deadline, workers, and
the fixtures the fault tests share with them (imported by tests/events/conftest.py and
tests/faults)."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import pytest
import requests
from django.db import connection

from registryui.devtools.registry import RegistryProcess
from registryui.devtools.seed import Seeder
from registryui.ops import health
from registryui.registry import RegistryClient
from registryui.registry.mediatypes import OCI_MANIFEST

BASE_DIR = Path(__file__).resolve().parents[2]
TOKEN = "events-test-token-4f7c2a"
V1 = "application/vnd.docker.distribution.events.v1+json"
V2 = "application/vnd.docker.distribution.events.v2+json"

T = TypeVar("T")


#: Held by the live server around each request and by ``wait_for`` around each probe. With an
#: in-memory SQLite test database the live server shares this thread's one connection, and
#: Django's rule is never to use it from both threads at once ("database table is locked").
DB_LOCK = threading.RLock()


def wait_for(
    probe: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with DB_LOCK:
            value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout}s waiting for {what or probe}")
        time.sleep(interval)


def stamp(offset: float = 0.0, base: datetime | None = None) -> str:
    """An RFC 3339 timestamp with nanoseconds, as the registry writes them."""
    moment = (base or datetime.now(UTC)) + timedelta(seconds=offset)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def push_event(
    repository: str,
    tag: str | None,
    digest: str,
    *,
    at: str | None = None,
    media_type: str = OCI_MANIFEST,
    event_id: str | None = None,
) -> dict[str, Any]:
    target: dict[str, Any] = {
        "mediaType": media_type,
        "size": 500,
        "digest": digest,
        "length": 500,
        "repository": repository,
        "url": f"http://registry.test/v2/{repository}/manifests/{digest}",
    }
    if tag:
        target["tag"] = tag
    return _event("push", target, at, event_id)


def blob_push_event(repository: str, digest: str, *, at: str | None = None) -> dict[str, Any]:
    target = {
        "mediaType": "application/octet-stream",
        "size": 99,
        "digest": digest,
        "length": 99,
        "repository": repository,
        "url": f"http://registry.test/v2/{repository}/blobs/{digest}",
    }
    return _event("push", target, at, None)


def pull_event(repository: str, tag: str, digest: str, *, at: str | None = None) -> dict:
    event = push_event(repository, tag, digest, at=at)
    event["action"] = "pull"
    return event


def delete_event(
    repository: str,
    *,
    digest: str | None = None,
    tag: str | None = None,
    at: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    target: dict[str, Any] = {"repository": repository}
    if digest:
        target["digest"] = digest
    if tag:
        target["tag"] = tag
    return _event("delete", target, at, event_id)


def _event(action: str, target: dict, at: str | None, event_id: str | None) -> dict[str, Any]:
    return {
        "id": event_id or str(uuid.uuid4()),
        "timestamp": at or stamp(),
        "action": action,
        "target": target,
        "request": {"id": str(uuid.uuid4()), "method": "PUT", "useragent": "tests"},
        "actor": {},
        "source": {"addr": "registry.test:5000", "instanceID": str(uuid.uuid4())},
    }


def post_events(client, *events: dict, token: str | None = TOKEN, content_type: str = V1):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.post(
        "/events/registry",
        data=json.dumps({"events": list(events)}),
        content_type=content_type,
        headers=headers,
    )


def endpoint(url: str, *, token: str = TOKEN, ignore_pulls: bool = True) -> dict[str, Any]:
    """The registry's ``notifications.endpoints`` entry for the app at ``url``."""
    config: dict[str, Any] = {
        "name": "registryui",
        "url": f"{url.rstrip('/')}/events/registry",
        "headers": {"Authorization": [f"Bearer {token}"]},
        "timeout": "5s",
        "threshold": 5,
        "backoff": "1s",
    }
    if ignore_pulls:
        # As the README recommends; 2.8 ignores `actions` unless `mediatypes` is non-empty.
        config["ignore"] = {"mediatypes": ["application/octet-stream"], "actions": ["pull"]}
    return config


@dataclass
class NotifyingRegistry:
    """A real registry whose notifications go to the app, with its debug (expvar) endpoint."""

    process: RegistryProcess
    debug_port: int

    @property
    def host(self) -> str:
        return self.process.host

    @property
    def url(self) -> str:
        return self.process.url

    def settle(self, *, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until every event the registry queued was answered 2xx; after this no request
        of this registry is in flight, so the test may use the database freely."""
        return wait_for(
            lambda: (
                (m := self.endpoint_metrics())["Pending"] == 0
                and m["Successes"] == m["Events"]
                and m
            ),
            timeout=timeout,
            what="the registry to deliver every event",
        )

    def endpoint_metrics(self) -> dict[str, Any]:
        """The registry's own counters for our endpoint: Pending, Events, Successes, Failures,
        Errors, Statuses (from ``/debug/vars``)."""
        data = requests.get(f"http://127.0.0.1:{self.debug_port}/debug/vars", timeout=5).json()
        endpoints = data["registry"]["notifications"]["endpoints"]
        return next(e for e in endpoints if e["name"] == "registryui")["Metrics"]


# -- worker subprocesses ----------------------------------------------------------------------


def manage(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class WorkerProcess:
    """``manage.py sync_registry --loop …`` in a subprocess, its stdout read line by line."""

    args: list[str]
    env: dict[str, str]
    process: subprocess.Popen | None = None
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue = field(default_factory=queue.Queue)

    def start(self) -> WorkerProcess:
        self.process = subprocess.Popen(
            [sys.executable, str(BASE_DIR / "manage.py"), "sync_registry", *self.args],
            cwd=BASE_DIR,
            env={**self.env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))

    def _drain(self) -> None:
        while True:
            try:
                self.lines.append(self._queue.get_nowait())
            except queue.Empty:
                return

    def wait_for_line(self, needle: str, *, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            self._drain()
            for line in self.lines[seen:]:
                if needle in line:
                    return line
            seen = len(self.lines)
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no line with {needle!r} after {timeout}s; output:\n" + self.output
                )
            if self.process is not None and self.process.poll() is not None:
                time.sleep(0.2)
                self._drain()
                if not any(needle in line for line in self.lines[seen:]):
                    raise AssertionError(
                        f"worker exited ({self.process.returncode}) before {needle!r}:\n"
                        + self.output
                    )
            time.sleep(0.05)

    def terminate(self, sig: int, *, timeout: float = 60.0) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        time.sleep(0.1)
        self._drain()
        return code

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    @property
    def output(self) -> str:
        self._drain()
        return "\n".join(self.lines)


def subprocess_env(database_url: str, registry_url: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REGISTRY_URL": registry_url,
        "REGISTRY_RETRIES": "1",
        "LOG_LEVEL": "WARNING",
    }
    env.update(extra)
    return env


def sync_runs(env: dict[str, str]) -> list[dict[str, Any]]:
    """Every SyncRun of the subprocesses' database, read by Django in a subprocess (so that
    SQLite file databases and PostgreSQL test databases are read the same way)."""
    code = (
        "import json\n"
        "from registryui.catalog.models import SyncRun\n"
        "from registryui.events.models import SyncWorker\n"
        "runs = [dict(id=r.id, started=r.started_at.isoformat(), "
        "finished=r.finished_at.isoformat() if r.finished_at else None, trigger=r.trigger, "
        "status=r.status, error=r.error, synced=r.repositories_synced) "
        "for r in SyncRun.objects.order_by('started_at')]\n"
        "workers = [dict(name=w.name, state=w.state) for w in SyncWorker.objects.all()]\n"
        "print('JSON' + json.dumps(dict(runs=runs, workers=workers)))\n"
    )
    done = manage("shell", "-c", code, env=env)
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("JSON"))
    return json.loads(line[4:])


def django_state(env: dict[str, str], code: str) -> Any:
    """Run ``code`` (which sets ``result`` to something JSON can hold) with Django in a
    subprocess on the subprocesses' database, and return ``result``."""
    script = f"import json\n{code}\nprint('JSON' + json.dumps(result))\n"
    done = manage("shell", "-c", script, env=env)
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("JSON"))
    return json.loads(line[4:])


@dataclass
class EventServer:
    """The app under gunicorn (several worker processes) on a free port, for deliveries that
    really run at the same time: each worker process has its own database connection, as in
    production behind two registry replicas."""

    env: dict[str, str]
    log: Path
    workers: int = 4
    process: subprocess.Popen | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> EventServer:
        from registryui.devtools.registry import free_port

        self.port = free_port()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "registryui.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--timeout",
                "60",
            ],
            cwd=BASE_DIR,
            env={**self.env, "REGISTRY_EVENTS_TOKEN": TOKEN},
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("w"),
        )
        wait_for(self._answers, timeout=60, interval=0.2, what="gunicorn to answer")
        return self

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"gunicorn exited:\n{self.log.read_text()}")
        try:
            requests.get(f"{self.url}/healthz", timeout=2)
        except (requests.ConnectionError, requests.Timeout):  # a loaded machine: try again
            return False
        return True

    def post(self, *events: dict[str, Any]) -> requests.Response:
        return requests.post(
            f"{self.url}/events/registry",
            data=json.dumps({"events": list(events)}),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": V1},
            timeout=30,
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


# -- fixtures shared with tests/faults -------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_quick_clients():
    """Each test's registry listens on a new port: no cached client or ping across tests."""
    health.reset()
    yield
    health.reset()


@pytest.fixture
def events_token(settings) -> str:
    settings.REGISTRY_EVENTS_TOKEN = TOKEN
    return TOKEN


@pytest.fixture
def seeder_for():
    clients: list[RegistryClient] = []

    def make(url: str) -> Seeder:
        client = RegistryClient(url, retries=1)
        clients.append(client)
        return Seeder(client)

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def worker_database(request, tmp_path: Path) -> str:
    """A database that subprocesses (workers, one-off syncs) and this test share.

    PostgreSQL: the test database itself (the test must use ``transaction=True``).
    SQLite: the test database is in memory and cannot be shared, so a migrated file database
    in tmp_path; the test reads it through ``sync_runs`` (Django in a subprocess).
    """
    assert request.node.get_closest_marker("django_db").kwargs.get("transaction"), (
        "mark the test django_db(transaction=True): the subprocesses see committed data only"
    )
    if connection.vendor == "postgresql":
        settings_dict = connection.settings_dict
        credentials = quote(settings_dict["USER"] or "")
        if settings_dict["PASSWORD"]:
            credentials += ":" + quote(settings_dict["PASSWORD"])
        host = f"{settings_dict['HOST'] or '127.0.0.1'}:{settings_dict['PORT'] or 5432}"
        return f"postgres://{credentials}@{host}/{settings_dict['NAME']}"
    url = f"sqlite:///{tmp_path / 'workers.sqlite3'}"
    done = manage("migrate", "--no-input", "-v", "0", env=subprocess_env(url, "http://127.0.0.1:9"))
    assert done.returncode == 0, done.stderr
    return url


def team_a_webhook():
    """Team "team-a" (viewing team-a/*) with a webhook endpoint for its pushes and deletes,
    which nobody answers: delivering is the worker's job; these tests read the queue."""
    from registryui.teams.models import Grant, Level, Team
    from registryui.webhooks.models import Endpoint

    team = Team.objects.create(name="team-a", slug="team-a")
    Grant.objects.create(team=team, pattern="team-a/*", level=Level.VIEW)
    return Endpoint.objects.create(
        team=team,
        name="ci",
        url="https://ci.example.com/hook",
        events=["push", "delete"],
        repository_pattern="team-a/*",
    )
