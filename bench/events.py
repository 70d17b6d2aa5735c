#!/usr/bin/env python3
"""How fast do pushes show up through registry notifications, and how many events per second?

Starts the app under gunicorn (the project's gunicorn.conf.py, 2 workers) on a free port, a
real registry (``docker-registry``) that notifies it (ignoring pulls and blob events, as the
README recommends), and measures:

1. push → visible: 50 pushes (a new manifest each, pushed with one manifest PUT through the
   registry API); for each, the time from the PUT's answer until the tag is in the database
   (polled every 5 ms), and the server-side lag the app records (event timestamp → stored).
   Target: p95 ≤ 2 s.
2. events handled per second, posted one at a time as the registry does (its queue sends the
   next event only after our answer): 500 ignored pulls, and 500 manifest pushes of a known
   digest onto new tags (the database path without registry requests).
3. the real queue: a second registry that sends pulls too; 500 manifest HEADs make 500 pull
   events; how long until the registry has delivered them all, and its largest backlog
   (``Pending`` in its ``/debug/vars``).

The database is a fresh SQLite file by default; ``--database-url postgres://…/NAME`` creates
database NAME (which must not exist) and drops it afterwards.

    .venv/bin/python bench/events.py [--pushes 50] [--events 500] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
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

TOKEN = "bench-events-" + secrets.token_urlsafe(12)
V1 = "application/vnd.docker.distribution.events.v1+json"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pushes", type=int, default=50)
    parser.add_argument("--events", type=int, default=500)
    add_app_arguments(parser)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    return parser.parse_args()


def endpoint(url: str, *, ignore_pulls: bool) -> dict:
    config = {
        "name": "registryui",
        "url": f"{url}/events/registry",
        "headers": {"Authorization": [f"Bearer {TOKEN}"]},
        "timeout": "5s",
        "threshold": 5,
        "backoff": "2s",
    }
    if ignore_pulls:  # as the README recommends (2.8 needs both lines)
        config["ignore"] = {"mediatypes": ["application/octet-stream"], "actions": ["pull"]}
    return config


def push_latency(registry_url: str, pushes: int) -> dict:
    from registryui.events.models import ProcessedEvent

    latencies = push_latencies(registry_url, "bench/pushed", pushes, timeout=30, note="push")
    server = list(
        ProcessedEvent.objects.filter(repository="bench/pushed", lag_ms__isnull=False).values_list(
            "lag_ms", flat=True
        )
    )
    handling = list(
        ProcessedEvent.objects.filter(repository="bench/pushed").values_list(
            "handling_ms", flat=True
        )
    )
    return {
        "pushes": pushes,
        "visible_p50_ms": round(percentile(latencies, 0.5), 1),
        "visible_p95_ms": round(percentile(latencies, 0.95), 1),
        "visible_max_ms": round(max(latencies), 1),
        "visible_mean_ms": round(statistics.mean(latencies), 1),
        "server_lag_p50_ms": percentile(server, 0.5) if server else None,
        "server_lag_p95_ms": percentile(server, 0.95) if server else None,
        "handling_p50_ms": percentile(handling, 0.5) if handling else None,
        "handling_p95_ms": percentile(handling, 0.95) if handling else None,
    }


def sequential_posts(app_url: str, events: list[dict]) -> float:
    """Deliver events one per POST, each after the previous answer (like the registry)."""
    import requests

    with requests.Session() as session:
        started = time.perf_counter()
        for event in events:
            response = session.post(
                f"{app_url}/events/registry",
                data=json.dumps({"events": [event]}),
                headers={"Content-Type": V1, "Authorization": f"Bearer {TOKEN}"},
                timeout=30,
            )
            if not 200 <= response.status_code < 300:
                raise SystemExit(f"the endpoint answered {response.status_code}: {response.text}")
        return len(events) / (time.perf_counter() - started)


def event(action: str, repository: str, tag: str, digest: str, media_type: str) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "action": action,
        "target": {
            "mediaType": media_type,
            "digest": digest,
            "size": 500,
            "repository": repository,
            "tag": tag,
            "url": f"http://registry.test/v2/{repository}/manifests/{digest}",
        },
    }


def handling_rates(app_url: str, known_digest: str, count: int) -> dict:
    from registryui.registry.mediatypes import OCI_MANIFEST

    pulls = [
        event("pull", "bench/pushed", "v000", known_digest, OCI_MANIFEST) for _ in range(count)
    ]
    pushes = [
        event("push", "bench/retagged", f"t{i:04d}", known_digest, OCI_MANIFEST)
        for i in range(count)
    ]
    sequential_posts(app_url, pulls[:20])  # warm the workers' connections
    return {
        "ignored_per_s": round(sequential_posts(app_url, pulls), 1),
        "tag_pushes_per_s": round(sequential_posts(app_url, pushes), 1),
    }


def queue_burst(workdir: Path, app_url: str, count: int, *, name: str = "app") -> dict:
    import requests

    from registryui.devtools.seed import Seeder
    from registryui.registry import RegistryClient
    from registryui.registry.mediatypes import MANIFEST_ACCEPT

    registry, debug_port = notifying_registry(
        workdir / f"registry-pulls-{name}", [endpoint(app_url, ignore_pulls=False)]
    )
    registry.start()
    try:
        with RegistryClient(registry.url, retries=1) as client:
            Seeder(client).put("bench/burst", "1")
        deadline = time.monotonic() + 30
        while delivery_metrics(debug_port)["Pending"] and time.monotonic() < deadline:
            time.sleep(0.05)
        before = delivery_metrics(debug_port)
        peak = 0
        done = threading.Event()

        def watch() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, delivery_metrics(debug_port)["Pending"])
                time.sleep(0.02)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        url = f"{registry.url}/v2/bench/burst/manifests/1"
        started = time.perf_counter()
        with requests.Session() as session, ThreadPoolExecutor(4) as pool:
            list(
                pool.map(
                    lambda _: session.head(url, headers={"Accept": MANIFEST_ACCEPT}, timeout=10),
                    range(count),
                )
            )
        generated = time.perf_counter() - started
        while delivery_metrics(debug_port)["Successes"] - before["Successes"] < count:
            if time.perf_counter() - started > 300:
                raise SystemExit("the registry did not deliver the burst within 300 s")
            time.sleep(0.01)
        delivered = time.perf_counter() - started
        done.set()
        watcher.join()
        after = delivery_metrics(debug_port)
        return {
            "events": count,
            "generated_per_s": round(count / generated, 1),
            "delivered_per_s": round(count / delivered, 1),
            "drained_after_s": round(delivered - generated, 2),
            "peak_pending": peak,
            "failures": after["Failures"] - before["Failures"],
            "errors": after["Errors"] - before["Errors"],
        }
    finally:
        registry.stop()


def registry_ceiling(workdir: Path, count: int) -> dict:
    """The same burst delivered to an endpoint that does nothing: the registry's own limit.

    Registry 2.8 opens a new connection for every event and waits for each answer, so even a
    server that answers at once gets only so many events per second from it.
    """
    null = NullServer()
    try:
        return queue_burst(workdir, null.url, count, name="null")
    finally:
        null.stop()


def main() -> int:
    args = parse_args()
    with run_app("events", args.database_url, TOKEN, keep=args.keep) as run:
        results: dict[str, object] = {"machine": machine()}
        app_url = run.app_url
        registry, debug_port = notifying_registry(
            run.workdir / "registry", [endpoint(app_url, ignore_pulls=True)]
        )
        run.stops.append(registry.stop)
        registry.start()
        run.serve(registry.url, args.web_workers)
        print(
            f"app {app_url} ({args.web_workers} gunicorn workers, {run.database}); "
            f"registry {registry.url}"
        )

        results["push"] = push_latency(registry.url, args.pushes)
        print("push → visible:", json.dumps(results["push"]))

        from registryui.catalog.models import Tag

        known = (
            Tag.objects.filter(repository__name="bench/pushed")
            .values_list("manifest__digest", flat=True)
            .first()
        )
        results["handling"] = handling_rates(app_url, known, args.events)
        print("handled one at a time:", json.dumps(results["handling"]))

        results["queue"] = queue_burst(run.workdir, app_url, args.events)
        print("registry queue burst:", json.dumps(results["queue"]))
        results["queue_null_endpoint"] = registry_ceiling(run.workdir, args.events)
        print("same burst to a do-nothing endpoint:", json.dumps(results["queue_null_endpoint"]))
        results["database"] = run.database
        results["registry_failures_main"] = delivery_metrics(debug_port)["Failures"]
        if args.json:
            print(json.dumps(results, indent=2))
        target = results["push"]["visible_p95_ms"] <= 2000
        print(
            f"push → visible p95 {results['push']['visible_p95_ms']} ms: "
            f"{'meets' if target else 'MISSES'} the 2 s target"
        )
        return 0 if target else 1


if __name__ == "__main__":
    sys.exit(main())
