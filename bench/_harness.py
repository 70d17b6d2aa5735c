"""What the notification benchmarks share (``bench/events.py``, ``bench/pulls.py``).

``run_app`` prepares a run: a temporary folder, a fresh database (a SQLite file, or the
PostgreSQL database ``--database-url`` names, created for the run and dropped after), Django set
up in this process (the benchmarks poll the database) and migrated; ``Run.serve`` starts the app
under gunicorn (the project's ``gunicorn.conf.py``) and waits for ``/healthz``.
``notifying_registry`` is a real ``docker-registry`` whose notifications go to the given
endpoints and whose ``/debug/vars`` (``delivery_metrics``) tell what it delivered; ``NullServer``
is an endpoint that answers at once and does nothing (the registry's own delivery ceiling).
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from registryui.devtools.registry import RegistryProcess

BASE_DIR = Path(__file__).resolve().parent.parent


def add_app_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of every benchmark that runs the app under gunicorn."""
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", ""),
        help="postgres://USER@HOST:PORT/NAME: a database to create for the run (default SQLite)",
    )
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")


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
    """Creates the named database for the run and drops it afterwards (only one it made)."""

    created = False

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.url = url
        self.name = parts.path.lstrip("/")
        if not self.name:
            raise SystemExit("--database-url must name a database to create")
        self.admin_url = urlunsplit(parts._replace(path="/postgres"))

    def _execute(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(sql)

    def create(self) -> None:
        # Fails if the database exists: the benchmark never touches a database it did not make.
        self._execute(f'CREATE DATABASE "{self.name}"')
        self.created = True

    def drop(self) -> None:
        if not self.created:
            return
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
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


@dataclass
class Run:
    """One benchmark run: its folder, its database, and the app once ``serve`` started it."""

    workdir: Path
    database: str
    app_port: int
    gunicorn: Gunicorn | None = None
    #: Other things to stop when the run ends (registries, null servers), last started first.
    stops: list = field(default_factory=list)

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"

    def serve(self, registry_url: str, workers: int) -> None:
        """The app under gunicorn, asking ``registry_url`` about what it is notified of."""
        os.environ["REGISTRY_URL"] = registry_url
        env = {**os.environ, "ALLOWED_HOSTS": "127.0.0.1"}
        self.gunicorn = Gunicorn(self.workdir, self.app_port, workers, env)
        self.gunicorn.wait_ready()


@contextmanager
def run_app(
    name: str, database_url: str, events_token: str, *, keep: bool = False, **env: str
) -> Iterator[Run]:
    """Set up a run (see the module's docstring); ``env`` adds settings (``PULL_TRACKING``)."""
    workdir = Path(tempfile.mkdtemp(prefix=f"registryui-bench-{name}-"))
    postgres = Postgres(database_url) if database_url else None
    os.environ.update(
        DJANGO_SETTINGS_MODULE="registryui.settings",
        DATABASE_URL=database_url or f"sqlite:///{workdir / 'bench.sqlite3'}",
        LOG_LEVEL="WARNING",
        LOG_FORMAT="plain",
        REGISTRY_EVENTS_TOKEN=events_token,
        STATIC_ROOT=str(workdir / "static"),
        **env,
    )
    os.environ.setdefault("SECRET_KEY", "bench-" + secrets.token_urlsafe(32))

    import django

    django.setup()
    from django.core.management import call_command

    from registryui.devtools.registry import free_port

    run = Run(workdir, "PostgreSQL" if postgres else "SQLite", free_port())
    try:
        if postgres:
            postgres.create()
        call_command("migrate", verbosity=0)
        call_command("collectstatic", verbosity=0, interactive=False)
        yield run
    finally:
        if run.gunicorn is not None:
            run.gunicorn.stop()
        for stop in reversed(run.stops):
            stop()
        if postgres:
            postgres.drop()
        if keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def notifying_registry(
    folder: Path, notifications: list[dict], *, port: int = 0
) -> tuple[RegistryProcess, int]:
    """A registry (not started) that notifies ``notifications``, and its debug port."""
    from registryui.devtools.registry import RegistryProcess, free_port

    debug_port = free_port()
    registry = RegistryProcess(
        folder,
        port=port,
        notifications=notifications,
        extra_config={"http": {"debug": {"addr": f"127.0.0.1:{debug_port}"}}},
    )
    return registry, debug_port


def delivery_metrics(debug_port: int, name: str | None = None) -> dict:
    """The registry's delivery counters for the endpoint ``name`` (default: its first)."""
    import requests

    data = requests.get(f"http://127.0.0.1:{debug_port}/debug/vars", timeout=5).json()
    found = data["registry"]["notifications"]["endpoints"]
    endpoint = found[0] if name is None else next(e for e in found if e["name"] == name)
    return endpoint["Metrics"]


class NullServer:
    """An endpoint that answers 204 at once and does nothing but count the POSTs."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received = self.received = [0]

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
            # Stopping never waits for a handler: the registry may still hold a connection.
            block_on_close = False

            def handle_error(self, request, client_address) -> None:
                pass  # the registry drops each connection after the answer

        self.server = Quiet(("127.0.0.1", 0), Null)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def push_latencies(
    registry_url: str, repository: str, pushes: int, *, timeout: float, note: str = ""
) -> list[float]:
    """Push ``pushes`` new manifests (one PUT each, tags ``v000``…); for each, milliseconds from
    the PUT's answer until the tag's row is in the database (polled every 5 ms)."""
    from registryui.catalog.models import Tag
    from registryui.devtools.seed import Seeder
    from registryui.registry import RegistryClient

    latencies: list[float] = []
    with RegistryClient(registry_url, retries=1) as client:
        seeder = Seeder(client)
        seeder.prepare(repository)
        for i in range(pushes):
            tag = f"v{i:03d}"
            seeder.put(repository, tag, note=f"{note or repository}-{i}-{uuid.uuid4()}")
            pushed = time.perf_counter()
            while not Tag.objects.filter(repository__name=repository, name=tag).exists():
                if time.perf_counter() - pushed > timeout:
                    raise SystemExit(f"{repository}:{tag} did not show up within {timeout:g} s")
                time.sleep(0.005)
            latencies.append((time.perf_counter() - pushed) * 1000)
    return latencies
