"""``SYNC_MAX_RPS``: the sync's threads share one token bucket, so the registry never sees more
than that many requests a second from the UI (issue 18).

The registry's access log stamps requests to the second, too coarse to measure a rate over a
few seconds; so the measured test sends the sync through ``FaultProxy`` with no fault at all,
only for its request timestamps (taken on arrival, with a monotonic clock). The bucket's own
arithmetic is checked with a fake clock.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from registryui.catalog.models import Tag
from registryui.devtools.faults import FaultProxy
from registryui.devtools.seed import Seeder
from registryui.registry import RegistryClient
from registryui.registry.ratelimit import TokenBucket, shared_bucket
from registryui.sync.syncer import Syncer

LIMIT = 40.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_the_bucket_spaces_requests_and_keeps_only_its_burst():
    clock = FakeClock()
    bucket = TokenBucket(10, clock=clock, sleep=clock.sleep)
    for _ in range(4):
        bucket.acquire()
    # The first goes at once, then one every 0.1 s.
    assert clock.slept == [0.1, 0.1, 0.1]
    clock.now += 5  # a quiet spell: a burst of one, so no credit builds up
    clock.slept.clear()
    bucket.acquire()
    bucket.acquire()
    assert clock.slept == [0.1]

    clock = FakeClock()
    bursty = TokenBucket(10, burst=3, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        bursty.acquire()
    assert clock.slept == [0.1, 0.1]  # three at once, then paced

    with pytest.raises(ValueError):
        TokenBucket(0)


def test_threads_share_one_bucket():
    """Eight threads on one bucket, the clock standing still: each reserves its own slot,
    1/rate after the one before, and none is handed out twice."""
    delays: list[float] = []
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            delays.append(round(seconds, 6))

    bucket = TokenBucket(50, clock=lambda: 100.0, sleep=sleep)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: bucket.acquire(), range(80)))
    assert sorted(delays) == [round(0.02 * k, 6) for k in range(1, 80)]
    assert shared_bucket(50) is shared_bucket(50) is not shared_bucket(25)


@pytest.mark.django_db
def test_a_sync_honours_sync_max_rps(registry, settings):
    """A re-sync of 130 tags with 8 threads under SYNC_MAX_RPS: the proxy sees its 133 requests
    no faster than the limit (within 5 %), and not much slower either (the limit, not the
    machine, paces it). The limit is 40 a second, or half of what the same re-sync reaches
    without one on this machine right now if that is less (the machine is shared: at a load
    of 40 on two cores an unlimited re-sync managed 24 a second)."""
    with RegistryClient(registry.url) as client:
        Seeder(client).seed(["rate/a", "rate/b"], [f"t{i:03d}" for i in range(65)])
    with RegistryClient(registry.url) as client:
        assert Syncer(client, concurrency=8, max_rps=0).run().ok  # unlimited: the initial sync
        assert client.throttle is None
    assert Tag.objects.count() == 130
    with FaultProxy(registry.url) as proxy, RegistryClient(proxy.url) as client:
        assert Syncer(client, concurrency=8, max_rps=0).run().ok
        unlimited = achieved_rate(proxy.seen)
    limit = min(LIMIT, round(unlimited / 2, 1))

    settings.SYNC_MAX_RPS = limit
    with FaultProxy(registry.url) as proxy, RegistryClient(proxy.url) as client:
        run = Syncer(client, concurrency=8).run()  # SYNC_MAX_RPS from the settings
        assert client.throttle is shared_bucket(limit)
        seen = list(proxy.seen)
    assert run.ok, run.error
    assert run.requests_by_kind == {"catalog": 1, "manifest_head": 130, "tags": 2}
    assert len(seen) == run.requests_made == 133
    achieved = achieved_rate(seen)
    assert achieved <= limit * 1.05, f"{achieved:.1f} requests/s over a limit of {limit}"
    assert achieved >= limit * 0.8, (
        f"{achieved:.1f} requests/s under a limit of {limit} (unlimited: {unlimited:.1f}/s): "
        "the limit is not what paces it"
    )


def achieved_rate(seen) -> float:
    """Requests a second between the first and the last arrival at the proxy."""
    times = sorted(request.at for request in seen)
    return (len(times) - 1) / (times[-1] - times[0])
