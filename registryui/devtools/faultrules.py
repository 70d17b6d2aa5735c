"""Fault rules that need the real registry's answer first: routes for ``FaultProxy``.

``FaultProxy.fail`` answers in place of the registry; the faults here let the registry act and
then spoil what comes back, which a real registry never does on demand:

* ``AppliedThenFailed``: the request reaches the registry (a PUT is stored, a DELETE applied),
  then the client is told 500, as when a proxy or the registry fails after committing;
* ``RewriteHeader``: a response header is replaced (a proxy that reports another digest);
* ``Delay``: the registry answers at once but the answer reaches the client late, with an
  optional action run during the delay (a push racing an action that trusts a fresh HEAD);
* ``MixedFaults``: a seeded random mix of all of these and plain 5xx, for the soak benchmark.

Each rule is a route (``proxy.route(rule)``): it returns ``None`` for requests it leaves alone,
which the proxy then forwards unchanged. Counters tell tests how often a rule struck.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .faults import FaultProxy

Answer = tuple[int, dict[str, str], bytes]


@dataclass
class _Rule:
    proxy: FaultProxy
    method: str | None = None
    #: A regular expression searched in the path and query.
    path: str = ""
    #: Strike this many times, or always (None).
    times: int | None = 1
    #: Let this many matching requests through before striking.
    after: int = 0
    hits: int = 0
    seen: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _strikes(self, method: str, path: str) -> bool:
        if self.method and self.method != method:
            return False
        if re.search(self.path, path) is None:
            return False
        with self._lock:
            self.seen += 1
            if self.seen <= self.after:
                return False
            if self.times is not None and self.hits >= self.times:
                return False
            self.hits += 1
            return True


@dataclass
class AppliedThenFailed(_Rule):
    """Forward to the registry, then answer ``status`` whatever it said."""

    status: int = 500

    def __call__(self, method: str, path: str, headers: dict[str, str], body: bytes):
        if not self._strikes(method, path):
            return None
        self.proxy._forward(method, path, headers, body)
        return self.status, {"Content-Type": "application/json"}, b'{"errors":[]}'


@dataclass
class RewriteHeader(_Rule):
    """Forward, then set ``header`` to ``value`` (a string, or a function of the real value)."""

    header: str = "Docker-Content-Digest"
    value: str | Callable[[str], str] = ""

    def __call__(self, method: str, path: str, headers: dict[str, str], body: bytes):
        if not self._strikes(method, path):
            return None
        status, out, data = self.proxy._forward(method, path, headers, body)
        current = next((v for k, v in out.items() if k.lower() == self.header.lower()), "")
        out = {k: v for k, v in out.items() if k.lower() != self.header.lower()}
        out[self.header] = self.value(current) if callable(self.value) else self.value
        return status, out, data


@dataclass
class Delay(_Rule):
    """Forward at once, then hold the answer ``seconds``, running ``during`` meanwhile."""

    seconds: float = 2.5
    during: Callable[[], None] | None = None
    #: Exceptions raised by ``during`` (a test asserts there were none).
    errors: list[BaseException] = field(default_factory=list)

    def __call__(self, method: str, path: str, headers: dict[str, str], body: bytes):
        if not self._strikes(method, path):
            return None
        answer = self.proxy._forward(method, path, headers, body)
        started = time.monotonic()
        if self.during is not None:
            try:
                self.during()
            except BaseException as exc:  # reported to the test, never to the client
                self.errors.append(exc)
        time.sleep(max(0.0, self.seconds - (time.monotonic() - started)))
        return answer


#: The kinds ``MixedFaults`` picks from, with their weights.
MIXED_KINDS = {
    "503": 3,  # refused before the registry saw it
    "applied-500": 3,  # applied, then reported as failed
    "digest-header": 2,  # another digest in Docker-Content-Digest
    "slow": 1,  # answered 0.3 s late
    "404": 1,  # a false "not found" (a read only)
}


@dataclass
class MixedFaults:
    """Strike a ``rate`` of the requests with a fault of ``MIXED_KINDS``, from a seeded random
    generator (reproducible per seed). Reads (GET/HEAD) never get "applied-500" (nothing to
    apply); writes never get a false 404."""

    proxy: FaultProxy
    rate: float = 0.05
    seed: int = 1
    counts: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _random: random.Random = field(init=False, repr=False)
    #: Digests the registry reported lately, per repository, to lie with.
    _digests: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def _pick(self, method: str) -> str | None:
        with self._lock:
            self.requests += 1
            if self._random.random() >= self.rate:
                return None
            kinds = dict(MIXED_KINDS)
            if method in ("GET", "HEAD"):
                kinds.pop("applied-500")
            else:
                kinds.pop("404")
            kind = self._random.choices(list(kinds), weights=list(kinds.values()))[0]
            self.counts[kind] = self.counts.get(kind, 0) + 1
            return kind

    def __call__(self, method: str, path: str, headers: dict[str, str], body: bytes):
        if not path.startswith("/v2/") or path == "/v2/":
            return None
        kind = self._pick(method)
        error = {"Content-Type": "application/json"}
        if kind == "503":
            return 503, error, b'{"errors":[{"code":"UNAVAILABLE","message":"injected"}]}'
        if kind == "404":
            return 404, error, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"injected"}]}'
        status, out, data = self.proxy._forward(method, path, headers, body)
        real = next((v for k, v in out.items() if k.lower() == "docker-content-digest"), "")
        repository = path[4:].partition("/manifests/")[0] if "/manifests/" in path else ""
        with self._lock:
            seen = self._digests.setdefault(repository, [])
            if real and real not in seen:
                seen.append(real)
                del seen[:-200]
            # The most harmful lie names another real image of the same repository.
            others = [d for d in seen if d != real]
        if kind == "applied-500":
            return 500, error, b'{"errors":[]}'
        if kind == "slow":
            time.sleep(0.3)
        elif kind == "digest-header" and others:
            out = {k: v for k, v in out.items() if k.lower() != "docker-content-digest"}
            out["Docker-Content-Digest"] = self._random.choice(others)
        return status, out, data
