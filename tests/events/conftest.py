from __future__ import annotations

import pytest

from registryui.devtools.registry import free_port

from .support import (  # noqa: F401 (fixtures shared with tests/faults)
    DB_LOCK,
    TOKEN,
    NotifyingRegistry,
    _fresh_quick_clients,
    endpoint,
    events_token,
    seeder_for,
    worker_database,
)


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
def notifying_registry_factory(serialized_live_server, registry_factory, settings, events_token):  # noqa: F811
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
