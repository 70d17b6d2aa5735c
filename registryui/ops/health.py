"""The live reachability check of the registry (status page, ``/healthz``).

It uses ``upstream.get_client(quick=True)``: a one-second connect timeout, a short read timeout
and no retries, separate from the sync's patient client.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils import timezone

from registryui.catalog import upstream
from registryui.registry import RegistryError

_lock = threading.Lock()
_ping_cache: dict[tuple, RegistryHealth] = {}


def _key() -> tuple:
    return (settings.REGISTRY_URL, settings.REGISTRY_USERNAME, settings.REGISTRY_PASSWORD)


def reset() -> None:
    with _lock:
        _ping_cache.clear()


@receiver(setting_changed)
def _settings_changed(setting: str, **kwargs) -> None:
    if setting.startswith("REGISTRY_") or setting.startswith("TOKEN_"):
        reset()


@dataclass(frozen=True)
class RegistryHealth:
    #: The registry answered HTTP (``ok`` says whether it also accepted our credentials).
    reachable: bool
    api_version: str = ""
    latency_ms: int = 0
    #: The client's error code (UNREACHABLE, TIMEOUT, UNAUTHORIZED, ...) and message.
    code: str = ""
    message: str = ""
    checked_at: datetime = field(default_factory=timezone.now)
    _monotonic: float = field(default_factory=time.monotonic, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.reachable and not self.code


def ping_registry(*, max_age: float = 0.0) -> RegistryHealth:
    """``GET /v2/`` with the short-timeout client; reuse an answer up to ``max_age`` seconds old.

    ``/healthz`` passes a few seconds so that an unauthenticated caller hammering it cannot
    turn into as many requests to the registry.
    """
    key = _key()
    if max_age > 0:
        with _lock:
            cached = _ping_cache.get(key)
        if cached is not None and time.monotonic() - cached._monotonic <= max_age:
            return cached
    started = time.monotonic()
    try:
        info = upstream.get_client(quick=True).ping()
    except RegistryError as exc:
        # A registry that answers 401/403 is up, but refuses our credentials: say both.
        health = RegistryHealth(
            reachable=exc.status in (401, 403),
            latency_ms=int((time.monotonic() - started) * 1000),
            code=exc.code,
            message=exc.message,
        )
    else:
        health = RegistryHealth(
            reachable=True,
            api_version=info.get("api_version", ""),
            latency_ms=int((time.monotonic() - started) * 1000),
        )
    with _lock:
        _ping_cache[key] = health
    return health
