#!/usr/bin/env python3
"""Pull activity (issue 16): how many pull events per second the app records, against the rate
the real registry delivers them, and push → visible while pulls stream in.

Starts the app under gunicorn (the project's gunicorn.conf.py, 2 workers, ``PULL_TRACKING``
on) and real registries (``docker-registry``) with the two endpoints ``make demo`` and the
Compose stack configure (pushes and deletes on ``/events/registry``, pulls on their own queue
on ``/events/registry/pulls``), and measures in one run:

1. **floor**: a burst of N client manifest GETs to a registry whose pull endpoint answers at
   once and does nothing: pull events per second the registry itself delivers (one at a time,
   a new connection each). Then the same burst with the pull endpoint on the app: pull events
   per second recorded through the real queue, as a ratio of the floor.
2. **handled one at a time**: N pull events posted straight to ``/events/registry/pulls``, one
   per POST after the previous answer (as the registry does): the app's own rate.
3. **push → visible**: P pushes (a new manifest each, one PUT), the time from the PUT's answer
   until the tag's row is in the database (polled every 5 ms); first with no pulls, then during
   a pull storm (client GETs from 4 threads, as fast as the registry answers, for the whole
   measurement). Target as for events: p95 ≤ 2 s.

    .venv/bin/python bench/pulls.py [--pulls 500] [--pushes 30] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
sys.path.insert(0, str(BASE_DIR / "bench"))

from _harness import (  # noqa: E402 (bench/_harness.py)
    NullServer,
    add_app_arguments,
    delivery_metrics,
    machine,
    notifying_registry,
    percentile,
    push_latencies,
    run_app,
)

TOKEN = "bench-pulls-" + secrets.token_urlsafe(12)
V1 = "application/vnd.docker.distribution.events.v1+json"
CLIENT_AGENT = "containerd/1.7.0 (bench)"
PULLS = "registryui-pulls"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pulls", type=int, default=500)
    parser.add_argument("--pushes", type=int, default=30)
    add_app_arguments(parser)
    return parser.parse_args()


def endpoints(app_url: str, pulls_url: str) -> list[dict]:
    from registryui.devtools.demo import notification_endpoint, pull_endpoint

    push = notification_endpoint(app_url.removeprefix("http://"), TOKEN)
    pull = pull_endpoint(app_url.removeprefix("http://"), TOKEN)
    pull["url"] = f"{pulls_url}/events/registry/pulls"
    return [push, pull]


def client_gets(registry_url: str, count: int, reference: str = "bench/pulled:1") -> float:
    """``count`` manifest GETs by a client (4 threads); seconds taken."""
    import requests

    from registryui.registry.mediatypes import MANIFEST_ACCEPT

    name, tag = reference.split(":")
    url = f"{registry_url}/v2/{name}/manifests/{tag}"
    headers = {"Accept": MANIFEST_ACCEPT, "User-Agent": CLIENT_AGENT}
    started = time.perf_counter()
    with requests.Session() as session, ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: session.get(url, headers=headers, timeout=10), range(count)))
    return time.perf_counter() - started


def burst(workdir: Path, app_url: str, pulls_url: str, count: int, name: str) -> dict:
    """``count`` pull events through a real registry's pull queue to ``pulls_url``."""
    from registryui.devtools.seed import Seeder
    from registryui.registry import RegistryClient

    registry, debug_port = notifying_registry(
        workdir / f"registry-{name}", endpoints(app_url, pulls_url)
    )
    registry.start()
    try:
        with RegistryClient(registry.url, retries=1) as client:
            Seeder(client).put("bench/pulled", "1")
        before = delivery_metrics(debug_port, PULLS)
        started = time.perf_counter()
        generated = client_gets(registry.url, count)
        while delivery_metrics(debug_port, PULLS)["Successes"] - before["Successes"] < count:
            if time.perf_counter() - started > 300:
                raise SystemExit("the registry did not deliver the burst within 300 s")
            time.sleep(0.01)
        delivered = time.perf_counter() - started
        after = delivery_metrics(debug_port, PULLS)
        return {
            "events": count,
            "generated_per_s": round(count / generated, 1),
            "delivered_per_s": round(count / delivered, 1),
            "failures": after["Failures"] - before["Failures"],
        }
    finally:
        registry.stop()


def handled_one_at_a_time(app_url: str, count: int) -> float:
    import requests

    from registryui.registry.mediatypes import OCI_MANIFEST

    digest = "sha256:" + "ab" * 32

    def event() -> dict:
        return {
            "id": str(uuid.uuid4()),
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "action": "pull",
            "target": {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "repository": "bench/direct",
                "tag": "1",
            },
            "request": {"method": "GET", "useragent": CLIENT_AGENT},
            "actor": {"name": f"user-{uuid.uuid4().hex[:2]}"},
        }

    with requests.Session() as session:
        post = lambda: session.post(  # noqa: E731
            f"{app_url}/events/registry/pulls",
            data=json.dumps({"events": [event()]}),
            headers={"Content-Type": V1, "Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
        for _ in range(20):
            post()
        started = time.perf_counter()
        for _ in range(count):
            answer = post()
            if answer.status_code != 200:
                raise SystemExit(f"the pull endpoint answered {answer.status_code}")
        return count / (time.perf_counter() - started)


def push_visible(registry_url: str, pushes: int, repository: str) -> list[float]:
    return push_latencies(registry_url, repository, pushes, timeout=60)


def summary(latencies: list[float]) -> dict:
    return {
        "p50_ms": round(percentile(latencies, 0.5), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "max_ms": round(max(latencies), 1),
    }


def push_during_storm(workdir: Path, app_url: str, pushes: int, port: int) -> dict:
    """On the registry at ``port`` (the one the app asks about pushes)."""
    from registryui.devtools.seed import Seeder
    from registryui.events.models import PullTracking
    from registryui.registry import RegistryClient

    registry, debug_port = notifying_registry(
        workdir / "registry-storm", endpoints(app_url, app_url), port=port
    )
    registry.start()
    try:
        with RegistryClient(registry.url, retries=1) as client:
            Seeder(client).put("bench/pulled", "1")
        quiet = push_visible(registry.url, pushes, "bench/quiet")
        counted_before = PullTracking.load().counted
        stop = threading.Event()
        generated = [0]

        def storm() -> None:
            while not stop.is_set():
                client_gets(registry.url, 40)
                generated[0] += 40

        storms = [threading.Thread(target=storm, daemon=True) for _ in range(2)]
        for thread in storms:
            thread.start()
        time.sleep(1.0)  # let the pull queue fill
        pending_at_start = delivery_metrics(debug_port, PULLS)["Pending"]
        started = time.perf_counter()
        stormy = push_visible(registry.url, pushes, "bench/stormy")
        elapsed = time.perf_counter() - started
        pending_at_end = delivery_metrics(debug_port, PULLS)["Pending"]
        stop.set()
        for thread in storms:
            thread.join()
        recorded = PullTracking.load().counted - counted_before
        return {
            "quiet": summary(quiet),
            "storm": summary(stormy),
            "storm_pull_gets": generated[0],
            "storm_pulls_recorded_meanwhile": recorded,
            "storm_pending_pulls_start_end": [pending_at_start, pending_at_end],
            "storm_seconds": round(elapsed, 1),
        }
    finally:
        registry.stop()


def main() -> int:
    args = parse_args()
    with run_app("pulls", args.database_url, TOKEN, PULL_TRACKING="true") as run:
        from registryui.devtools.registry import free_port

        results: dict[str, object] = {"machine": machine(), "database": run.database}
        app_url = run.app_url
        null = NullServer()
        run.stops.append(null.stop)
        # Each measurement starts its own registry; the app asks the push measurement's one
        # (on a port chosen now) about pushes. The pull bursts never make it ask anything.
        storm_port = free_port()
        run.serve(f"http://127.0.0.1:{storm_port}", args.web_workers)
        print(f"app {app_url} ({args.web_workers} gunicorn workers, {run.database})", flush=True)

        results["floor"] = burst(run.workdir, app_url, null.url, args.pulls, "null")
        print("pull burst to a do-nothing endpoint (floor):", json.dumps(results["floor"]))
        results["app"] = burst(run.workdir, app_url, app_url, args.pulls, "app")
        print("pull burst to the app:", json.dumps(results["app"]))
        results["ratio"] = round(
            results["app"]["delivered_per_s"] / results["floor"]["delivered_per_s"], 2
        )
        results["direct_per_s"] = round(handled_one_at_a_time(app_url, args.pulls), 1)
        print("pull events handled one at a time:", results["direct_per_s"], "/s")

        results["push"] = push_during_storm(run.workdir, app_url, args.pushes, storm_port)
        print("push → visible:", json.dumps(results["push"]))
        if args.json:
            print(json.dumps(results, indent=2))
        storm_p95 = results["push"]["storm"]["p95_ms"]
        print(
            f"pull events recorded at {results['ratio']:.2f} of the registry's delivery rate; "
            f"push → visible p95 during the storm {storm_p95} ms "
            f"({'meets' if storm_p95 <= 2000 else 'MISSES'} the 2 s target)"
        )
        return 0


if __name__ == "__main__":
    sys.exit(main())
