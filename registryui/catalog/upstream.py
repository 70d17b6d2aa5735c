"""The one place that builds the registry client from settings."""

from __future__ import annotations

import threading

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from registryui.registry import RegistryClient

_lock = threading.Lock()
_clients: dict[tuple, RegistryClient] = {}
_token_provider_factory = None

#: The quick client's limits: the notification handler, the status page and /healthz must
#: never wait on the registry for long (the registry holds every later event until we answer
#: the current one, and an orchestrator's health probe has a timeout of its own).
QUICK_CONNECT_TIMEOUT = 1.0
QUICK_READ_TIMEOUT = 2.0
_QUICK = {
    "connect_timeout": QUICK_CONNECT_TIMEOUT,
    "read_timeout": QUICK_READ_TIMEOUT,
    "retries": 0,
    "pool_size": 4,
}

_SETTINGS = (
    "REGISTRY_URL",
    "REGISTRY_USERNAME",
    "REGISTRY_PASSWORD",
    "SYNC_CONCURRENCY",
    "REGISTRY_CONNECT_TIMEOUT",
    "REGISTRY_READ_TIMEOUT",
    "REGISTRY_RETRIES",
)


def set_token_provider_factory(factory) -> None:
    """Let the token server (registryui.tokens) sign the client's own tokens in token mode.

    ``factory()`` returns a TokenProvider or None (token mode off); called once per client.
    """
    global _token_provider_factory
    _token_provider_factory = factory
    reset_clients()


def _key() -> tuple:
    return tuple(getattr(settings, name) for name in _SETTINGS)


def get_client(*, quick: bool = False) -> RegistryClient:
    """The shared client for the configured registry (one session, one connection pool).

    ``quick=True``: a second shared client with a one-second connect timeout, a short read
    timeout and no retries, for work that must answer fast whatever the registry does.
    """
    key = (*_key(), quick)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = build_client(**(_QUICK if quick else {}))
            _clients[key] = client
        return client


def build_client(**overrides) -> RegistryClient:
    options = {
        "username": settings.REGISTRY_USERNAME,
        "password": settings.REGISTRY_PASSWORD,
        # Room for the sync's workers plus the web requests that share the process.
        "pool_size": settings.SYNC_CONCURRENCY * 2,
        "connect_timeout": settings.REGISTRY_CONNECT_TIMEOUT,
        "read_timeout": settings.REGISTRY_READ_TIMEOUT,
        "retries": settings.REGISTRY_RETRIES,
        "token_provider": _token_provider_factory() if _token_provider_factory else None,
    }
    options.update(overrides)
    return RegistryClient(settings.REGISTRY_URL, **options)


def reset_clients() -> None:
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


@receiver(setting_changed)
def _settings_changed(setting: str, **kwargs) -> None:
    if setting in _SETTINGS or setting.startswith("REGISTRY_") or setting.startswith("TOKEN_"):
        reset_clients()
