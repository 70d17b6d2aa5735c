"""A token bucket that keeps a client's requests under a rate (``SYNC_MAX_RPS``).

A production registry must not be flooded by its UI: the sync's threads (and the worker's) share
one bucket per process and rate, so however many threads ask, the registry sees at most ``rate``
requests a second, plus a burst of ``burst`` requests after a quiet spell. The default burst is
one request: requests are spaced evenly, ``1/rate`` seconds apart, which is what a rate limit in
front of the registry (nginx ``limit_req`` without ``burst``) accepts.

Threads reserve their slot under a lock and sleep outside it, so waiting threads do not hold each
other up; a slot is never handed out twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

_buckets: dict[tuple[float, int], TokenBucket] = {}
_buckets_lock = threading.Lock()


class TokenBucket:
    """``acquire()`` returns when the caller may send one request."""

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = max(int(burst), 1)
        self.interval = 1.0 / self.rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        # The earliest time of the next request: each request moves it on by one interval;
        # unused time counts for at most ``burst - 1`` requests. It starts full.
        self._next_free = clock() - (self.burst - 1) * self.interval
        self.waited = 0.0

    def acquire(self) -> None:
        with self._lock:
            now = self._clock()
            # Unused capacity is kept only up to the burst.
            earliest = now - (self.burst - 1) * self.interval
            slot = max(self._next_free, earliest)
            self._next_free = slot + self.interval
            delay = slot - now
            if delay > 0:
                self.waited += delay
        if delay > 0:
            self._sleep(delay)

    __call__ = acquire


def shared_bucket(rate: float, burst: int = 1) -> TokenBucket:
    """The process's bucket for this rate: every client built with it shares the limit."""
    key = (float(rate), int(burst))
    with _buckets_lock:
        bucket = _buckets.get(key)
        if bucket is None:
            bucket = _buckets[key] = TokenBucket(rate, burst)
        return bucket
