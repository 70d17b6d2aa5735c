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
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

TOKEN = "bench-events-" + secrets.token_urlsafe(12)
V1 = "application/vnd.docker.distribution.events.v1+json"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pushes", type=int, default=50)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", ""),
        help="postgres://USER@HOST:PORT/NAME: a database to create for the run (default SQLite)",
    )
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    return parser.parse_args()


def machine() -> dict[str, str]:
    cpu, memory = "", ""
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
        kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": memory,
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


class Postgres:
    """Creates the named database for the run and drops it afterwards."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.name = parts.path.lstrip("/")
        if not self.name:
            raise SystemExit("--database-url must name a database to create")
        self.admin_url = urlunsplit(parts._replace(path="/postgres"))

    def _execute(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(sql)

    def create(self) -> None:
        self._execute(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        from django.db import connections

        connections.close_all()
        self._execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class Gunicorn:
    def __init__(self, workdir: Path, port: int, workers: int, env: dict[str, str]) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log = workdir / "gunicorn.log"
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "-c",
                str(BASE_DIR / "gunicorn.conf.py"),
                "registryui.wsgi",
            ],
            cwd=BASE_DIR,
            env={
                **env,
                "GUNICORN_BIND": f"127.0.0.1:{port}",
                "WEB_CONCURRENCY": str(workers),
                "GUNICORN_MAX_REQUESTS": "0",
            },
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn exited:\n{self.log.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise SystemExit(f"gunicorn did not start:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        import signal

        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


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


def metrics(debug_port: int) -> dict:
    import requests

    data = requests.get(f"http://127.0.0.1:{debug_port}/debug/vars", timeout=5).json()
    return data["registry"]["notifications"]["endpoints"][0]["Metrics"]


def push_latency(registry_url: str, pushes: int) -> dict:
    from registryui.catalog.models import Tag
    from registryui.devtools.seed import Seeder
    from registryui.events.models import ProcessedEvent
    from registryui.registry import RegistryClient

    latencies: list[float] = []
    with RegistryClient(registry_url, retries=1) as client:
        seeder = Seeder(client)
        seeder.prepare("bench/pushed")
        for i in range(pushes):
            tag = f"v{i:03d}"
            seeder.put("bench/pushed", tag, note=f"push-{i}-{uuid.uuid4()}")
            pushed = time.perf_counter()
            deadline = pushed + 30
            while not Tag.objects.filter(repository__name="bench/pushed", name=tag).exists():
                if time.perf_counter() > deadline:
                    raise SystemExit(f"{tag} did not show up within 30 s")
                time.sleep(0.005)
            latencies.append((time.perf_counter() - pushed) * 1000)
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

    from registryui.devtools.registry import RegistryProcess, free_port
    from registryui.devtools.seed import Seeder
    from registryui.registry import RegistryClient
    from registryui.registry.mediatypes import MANIFEST_ACCEPT

    debug_port = free_port()
    registry = RegistryProcess(
        workdir / f"registry-pulls-{name}",
        notifications=[endpoint(app_url, ignore_pulls=False)],
        extra_config={"http": {"debug": {"addr": f"127.0.0.1:{debug_port}"}}},
    ).start()
    try:
        with RegistryClient(registry.url, retries=1) as client:
            Seeder(client).put("bench/burst", "1")
        deadline = time.monotonic() + 30
        while metrics(debug_port)["Pending"] and time.monotonic() < deadline:
            time.sleep(0.05)
        before = metrics(debug_port)
        peak = 0
        done = threading.Event()

        def watch() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, metrics(debug_port)["Pending"])
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
        while metrics(debug_port)["Successes"] - before["Successes"] < count:
            if time.perf_counter() - started > 300:
                raise SystemExit("the registry did not deliver the burst within 300 s")
            time.sleep(0.01)
        delivered = time.perf_counter() - started
        done.set()
        watcher.join()
        after = metrics(debug_port)
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
    import socketserver
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received = [0]

    class Null(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received[0] += 1
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    class Quiet(ThreadingHTTPServer):
        def handle_error(self, request, client_address) -> None:
            pass  # the registry drops each connection after the answer

    server = Quiet(("127.0.0.1", 0), Null)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        return queue_burst(
            workdir, f"http://127.0.0.1:{server.server_address[1]}", count, name="null"
        )
    finally:
        server.shutdown()
        socketserver.BaseServer.server_close(server)


def main() -> int:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="registryui-bench-events-"))
    postgres = Postgres(args.database_url) if args.database_url else None
    database_url = args.database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ.update(
        DJANGO_SETTINGS_MODULE="registryui.settings",
        DATABASE_URL=database_url,
        LOG_LEVEL="WARNING",
        LOG_FORMAT="plain",
        REGISTRY_EVENTS_TOKEN=TOKEN,
        STATIC_ROOT=str(workdir / "static"),
    )
    os.environ.setdefault("SECRET_KEY", "bench-" + secrets.token_urlsafe(32))

    import django

    django.setup()
    from django.core.management import call_command

    from registryui.devtools.registry import RegistryProcess, free_port

    results: dict[str, object] = {"machine": machine()}
    app_port, debug_port = free_port(), free_port()
    app_url = f"http://127.0.0.1:{app_port}"
    registry = RegistryProcess(
        workdir / "registry",
        notifications=[endpoint(app_url, ignore_pulls=True)],
        extra_config={"http": {"debug": {"addr": f"127.0.0.1:{debug_port}"}}},
    )
    gunicorn = None
    try:
        if postgres:
            postgres.create()
        call_command("migrate", verbosity=0)
        call_command("collectstatic", verbosity=0, interactive=False)
        registry.start()
        env = {**os.environ, "REGISTRY_URL": registry.url, "ALLOWED_HOSTS": "127.0.0.1"}
        os.environ["REGISTRY_URL"] = registry.url
        gunicorn = Gunicorn(workdir, app_port, args.web_workers, env)
        gunicorn.wait_ready()
        database = "PostgreSQL" if postgres else "SQLite"
        print(
            f"app {app_url} ({args.web_workers} gunicorn workers, {database}); "
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

        results["queue"] = queue_burst(workdir, app_url, args.events)
        print("registry queue burst:", json.dumps(results["queue"]))
        results["queue_null_endpoint"] = registry_ceiling(workdir, args.events)
        print("same burst to a do-nothing endpoint:", json.dumps(results["queue_null_endpoint"]))
        results["database"] = database
        results["registry_failures_main"] = metrics(debug_port)["Failures"]
        if args.json:
            print(json.dumps(results, indent=2))
        target = results["push"]["visible_p95_ms"] <= 2000
        print(
            f"push → visible p95 {results['push']['visible_p95_ms']} ms: "
            f"{'meets' if target else 'MISSES'} the 2 s target"
        )
        return 0 if target else 1
    finally:
        if gunicorn is not None:
            gunicorn.stop()
        registry.stop()
        if postgres:
            postgres.drop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
