from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from registryui.devtools.registry import free_port
from registryui.devtools.seed import Seeder
from registryui.ops import health
from registryui.registry import RegistryClient

from .support import DB_LOCK, TOKEN, NotifyingRegistry, endpoint, manage, subprocess_env


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
def serialized_live_server(live_server):
    """The live server, running each request under ``DB_LOCK`` (see support.DB_LOCK)."""
    httpd = live_server.thread.httpd
    app = httpd.get_app()

    def locked(environ, start_response):
        with DB_LOCK:
            response = app(environ, start_response)
            try:
                return [b"".join(response)]
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()

    httpd.set_app(locked)
    yield live_server
    httpd.set_app(app)


@pytest.fixture
def notifying_registry_factory(serialized_live_server, registry_factory, settings, events_token):
    """Start a real registry that notifies the live server; the app talks to that registry."""
    started: list[NotifyingRegistry] = []

    def start(*, ignore_pulls: bool = True, token: str = TOKEN) -> NotifyingRegistry:
        debug_port = free_port()
        process = registry_factory(
            notifications=[
                endpoint(serialized_live_server.url, token=token, ignore_pulls=ignore_pulls)
            ],
            extra_config={"http": {"debug": {"addr": f"127.0.0.1:{debug_port}"}}},
        )
        settings.REGISTRY_URL = process.url
        settings.REGISTRY_RETRIES = 1
        started.append(NotifyingRegistry(process, debug_port))
        return started[-1]

    yield start
    # No delivery may reach the app while the test database is flushed: stop the registries,
    # then wait out a request still being handled.
    for registry in started:
        registry.process.stop()
    with DB_LOCK:
        pass


@pytest.fixture
def notifying_registry(notifying_registry_factory) -> NotifyingRegistry:
    return notifying_registry_factory()


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
    in tmp_path; the test reads it through ``support.sync_runs`` (Django in a subprocess).
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
