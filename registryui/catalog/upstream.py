"""The one place that builds the registry client from settings.

Two kinds of callers wait on the registry. The sync (a management command) may wait: it has the
long timeouts and the retries of the settings. A person waiting on a page may not: with the
registry frozen, a delete used to take 4 x 30 s and then hit the proxy's own timeout. So every
web request runs inside ``interactive()`` (``registryui.catalog.middleware.
RegistryBudgetMiddleware``), and ``get_client()`` called there hands out a client bound to that
request's budget:

- the whole action gets ``REGISTRY_INTERACTIVE_TIMEOUT`` seconds (default 10) of registry time:
  each request's timeouts are cut to what is left, there are no retries (a retry after a timeout
  is another full wait), and once the budget is spent the next request fails at once;
- when a request timed out or could not connect, the registry is *known down* for
  ``REGISTRY_DOWN_FOR`` seconds (default 15): other actions in this process answer at once
  with "did not answer a moment ago" instead of waiting again.

Either failure is a ``RegistryError`` with a transient code (TIMEOUT or UNAVAILABLE), which
every action already turns into a sentence and an audit entry, leaving the database as it was.
The quick client (``quick=True``: the notification endpoint, status page and ``/healthz``)
keeps its own short limits, and is what notices the registry is back.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from registryui.registry import RegistryClient, RegistryError

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
    Inside ``interactive()`` (every web request), the client is bound to that budget.
    """
    budget = _budget.get()
    interactive_client = budget is not None and not quick
    key = (*_key(), quick, interactive_client)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = build_client(**(_QUICK if quick else {"retries": 0} if budget else {}))
            _clients[key] = client
    return budget.bind(client) if interactive_client else client


# -- the budget of a person waiting on a page ------------------------------------------------

#: When the registry last failed to answer a budgeted request: REGISTRY_URL → monotonic time.
_failed_at: dict[str, float] = {}
_budget: ContextVar[Budget | None] = ContextVar("registry_budget", default=None)


class Budget:
    """The registry time one web request may still spend, and the clients bound to it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.registry = settings.REGISTRY_URL
        self._bound: dict[int, RegistryClient] = {}

    def bind(self, shared: RegistryClient) -> RegistryClient:
        """The shared client (its session, pool and tokens) with this budget's hooks.

        A copy, not the shared object: requests of other people run at the same time, and
        worker threads of an action (parallel HEADs) do not see this request's context.
        """
        bound = self._bound.get(id(shared))
        if bound is None:
            bound = copy.copy(shared)
            bound.before_send = self.before_send
            bound.after_failure = self.after_failure
            self._bound[id(shared)] = bound
        return bound

    def before_send(self, timeout: tuple[float, float]) -> tuple[float, float]:
        down_since = _failed_at.get(self.registry)
        if down_since is not None and time.monotonic() - down_since < _down_for():
            raise RegistryError(
                "The registry did not answer a moment ago, so this was not tried again.",
                code="UNAVAILABLE",
            )
        left = self.deadline - time.monotonic()
        if left <= 0.05:
            raise RegistryError(
                f"The registry took more than {self.seconds:g} seconds in all for this action, "
                "so it stopped here.",
                code="TIMEOUT",
            )
        return (min(timeout[0], left), min(timeout[1], left))

    def after_failure(self, error: RegistryError) -> None:
        if error.code in ("TIMEOUT", "UNREACHABLE"):
            _failed_at[self.registry] = time.monotonic()
        if error.code == "TIMEOUT":
            # The same words whether one request or the whole budget ran out.
            error.message = f"The registry did not answer within {self.seconds:g} seconds."
            error.args = (error.message,)


def _down_for() -> float:
    return float(getattr(settings, "REGISTRY_DOWN_FOR", 15.0))


@contextlib.contextmanager
def interactive(seconds: float | None = None) -> Iterator[Budget]:
    """Registry calls in this block share one budget (``REGISTRY_INTERACTIVE_TIMEOUT``)."""
    if seconds is None:
        seconds = float(getattr(settings, "REGISTRY_INTERACTIVE_TIMEOUT", 10.0))
    budget = Budget(seconds)
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)


def forget_failures() -> None:
    """Forget that the registry failed (tests; a changed REGISTRY_URL)."""
    _failed_at.clear()


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
        forget_failures()
