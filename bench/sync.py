#!/usr/bin/env python3
"""How close does a no-change re-sync come to the registry's own limit?

Starts a real registry (``docker-registry``) on a free loopback port, seeds it with
N repositories x M tags through the registry API (blobs uploaded once and mounted, one manifest
PUT per tag), then measures in one run:

1. the raw limit: manifest HEADs per second that the same registry answers to a bare
   ``requests`` thread pool of the same concurrency (measured before and after the re-sync);
2. the initial sync: time, requests by kind;
3. a no-change re-sync: time, requests by kind (it must make no manifest or blob GET).

It prints the ratio re-sync tags/s ÷ raw HEAD/s (target ≥ 0.8). The database is a fresh SQLite
file by default; ``--database-url postgres://postgres@127.0.0.1:5432/NAME`` (or the environment
variable BENCH_DATABASE_URL) creates database NAME, which must not exist, and drops it after.

    .venv/bin/python bench/sync.py [--repositories 200] [--tags 25] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
sys.path.insert(0, str(BASE_DIR / "bench"))

from _harness import Postgres  # noqa: E402 (bench/_harness.py; soak.py imports it from here)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repositories", "-n", type=int, default=200)
    parser.add_argument("--tags", "-m", type=int, default=25)
    parser.add_argument("--concurrency", "-c", type=int, default=8)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", ""),
        help="postgres://USER@HOST:PORT/NAME: a database to create for the run (default SQLite)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="re-syncs, each between two raw HEAD passes; the median ratio is reported",
    )
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    return parser.parse_args()


def machine() -> dict[str, str]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": memory,
        "load": load,
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


class RawHeads:
    """HEAD every tag with a bare ``requests`` thread pool, as any client could."""

    def __init__(self, base_url: str, seeded, concurrency: int) -> None:
        import requests
        from requests.adapters import HTTPAdapter

        from registryui.registry.mediatypes import MANIFEST_ACCEPT

        self.session = requests.Session()
        self.session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=concurrency))
        self.headers = {"Accept": MANIFEST_ACCEPT}
        self.urls = [
            f"{base_url}/v2/{name}/manifests/{tag}"
            for name, tags in seeded.tags.items()
            for tag in tags
        ]
        self.pool = ThreadPoolExecutor(concurrency)
        self.failures = 0
        self._lock = threading.Lock()
        list(self.pool.map(self._head, self.urls[: concurrency * 20]))  # open the connections

    def _head(self, url: str) -> None:
        response = self.session.head(url, headers=self.headers, timeout=30)
        if response.status_code != 200 or not response.headers.get("Docker-Content-Digest"):
            with self._lock:
                self.failures += 1

    def per_second(self) -> float:
        """One pass over every tag."""
        started = time.perf_counter()
        list(self.pool.map(self._head, self.urls))
        return len(self.urls) / (time.perf_counter() - started)

    def close(self) -> None:
        self.pool.shutdown()
        self.session.close()


class RawInitial:
    """The initial sync's requests made by a bare ``requests`` thread pool: the floor.

    Catalog pages (following ``Link``), one tag list per repository, one manifest GET per tag,
    one config GET per image digest: what the initial sync must ask, with nothing else done
    (no database, no digest check beyond reading the config digest out of each manifest)."""

    def __init__(self, base_url: str, concurrency: int, page_size: int = 1000) -> None:
        import requests
        from requests.adapters import HTTPAdapter

        from registryui.registry.mediatypes import MANIFEST_ACCEPT

        self.base_url = base_url.rstrip("/")
        self.page_size = page_size
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=concurrency))
        self.accept = {"Accept": MANIFEST_ACCEPT}
        self.pool = ThreadPoolExecutor(concurrency)
        self.requests = 0
        self._lock = threading.Lock()

    def _get(self, path: str, headers: dict[str, str] | None = None):
        response = self.session.get(self.base_url + path, headers=headers, timeout=30)
        response.raise_for_status()
        with self._lock:
            self.requests += 1
        return response

    def _tags(self, name: str) -> list[tuple[str, str]]:
        tags = self._get(f"/v2/{name}/tags/list").json().get("tags") or []
        return [(name, tag) for tag in tags]

    def _manifest(self, item: tuple[str, str]) -> tuple[str, str, str]:
        name, tag = item
        response = self._get(f"/v2/{name}/manifests/{tag}", self.accept)
        config = response.json().get("config", {}).get("digest", "")
        return name, response.headers.get("Docker-Content-Digest", ""), config

    def _config(self, item: tuple[str, str]) -> None:
        name, digest = item
        assert self._get(f"/v2/{name}/blobs/{digest}").content

    def seconds(self) -> float:
        """One pass: every request of an initial sync, phase by phase on the pool."""
        self.requests = 0
        started = time.perf_counter()
        names: list[str] = []
        path: str | None = f"/v2/_catalog?n={self.page_size}"
        while path:
            response = self._get(path)
            names.extend(response.json().get("repositories") or [])
            link = response.links.get("next", {}).get("url")
            path = link if link and link.startswith("/") else None
        tags = [item for items in self.pool.map(self._tags, names) for item in items]
        configs: dict[str, tuple[str, str]] = {}
        for name, digest, config in self.pool.map(self._manifest, tags):
            if config and digest not in configs:
                configs[digest] = (name, config)
        list(self.pool.map(self._config, configs.values()))
        return time.perf_counter() - started

    def close(self) -> None:
        self.pool.shutdown()
        self.session.close()


def timed_sync(url: str, concurrency: int):
    from registryui.registry import RegistryClient
    from registryui.sync.syncer import Syncer

    with RegistryClient(url, pool_size=concurrency) as client:
        syncer = Syncer(client, concurrency=concurrency, trigger="bench")
        # The calling thread's database time: what the requests wait on when it is too long.
        store = syncer.store_snapshot
        syncer.database_seconds = 0.0

        syncer.database_cpu = 0.0

        def timed_store(*args, **kwargs):
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                return store(*args, **kwargs)
            finally:
                syncer.database_seconds += time.perf_counter() - started
                syncer.database_cpu += time.thread_time() - cpu

        syncer.store_snapshot = timed_store
        started = time.perf_counter()
        run = syncer.run()
        seconds = time.perf_counter() - started
        run.database_seconds = syncer.database_seconds
        run.database_cpu = syncer.database_cpu
        return run, seconds


def main() -> int:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="registryui-bench-"))
    try:
        return run(args, workdir)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, workdir: Path) -> int:
    postgres = Postgres(args.database_url) if args.database_url else None
    os.environ["DJANGO_SETTINGS_MODULE"] = "registryui.settings"
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("LOG_FORMAT", "plain")
    # A throwaway key: the settings refuse to start without one when DEBUG is off.
    os.environ.setdefault("SECRET_KEY", "bench-" + secrets.token_urlsafe(32))

    import django

    django.setup()
    from django.core.management import call_command

    from registryui.catalog.models import Tag
    from registryui.devtools.registry import RegistryProcess
    from registryui.devtools.seed import seed_registry
    from registryui.registry import RegistryClient

    registry = RegistryProcess(workdir / "registry")
    results: dict[str, object] = {"machine": machine()}
    try:
        if postgres:
            postgres.create()
        call_command("migrate", verbosity=0)
        registry.start()
        n, m, c = args.repositories, args.tags, args.concurrency
        database = "PostgreSQL" if postgres else "SQLite"
        print(f"registry {registry.url}, {n} repositories x {m} tags, concurrency {c}, {database}")

        started = time.perf_counter()
        with RegistryClient(registry.url, pool_size=c) as client:
            seeded = seed_registry(client, n, m, prefix="bench", concurrency=c)
        seed_seconds = time.perf_counter() - started
        print(f"seeded {seeded.tag_count} tags in {seed_seconds:.1f}s")

        # The initial sync between two raw passes of the same requests (the floor).
        floor = RawInitial(registry.url, c)
        floor_before = floor.seconds()
        floor_requests = floor.requests
        initial, initial_seconds = timed_sync(registry.url, c)
        floor_after = floor.seconds()
        floor.close()
        assert initial.ok, initial.error
        assert Tag.objects.count() == seeded.tag_count
        floor_mean = (floor_before + floor_after) / 2
        initial_ratio = initial_seconds / floor_mean
        print(
            f"initial sync: {initial_seconds:.2f}s, {initial.tags_seen} tags, "
            f"{initial.manifests_fetched} manifests, {initial.requests_made} requests "
            f"{json.dumps(initial.requests_by_kind)}; "
            f"database writes {initial.database_seconds:.2f}s "
            f"({initial.database_cpu:.2f}s of the calling thread's CPU)"
        )
        print(
            f"raw floor (bare requests, {c} threads, the same {floor_requests} requests): "
            f"{floor_before:.2f}s → {floor_after:.2f}s; initial sync ÷ floor = "
            f"{initial_ratio:.2f} (target ≤ 1.2)"
        )

        # Raw passes and re-syncs alternate, so that both see the same machine: each re-sync is
        # compared with the mean of the raw passes right before and right after it.
        raw = RawHeads(registry.url, seeded, c)
        raw_rates = [raw.per_second()]
        rounds = []
        for number in range(1, max(args.rounds, 1) + 1):
            resync, seconds = timed_sync(registry.url, c)
            assert resync.ok, resync.error
            raw_rates.append(raw.per_second())
            raw_mean = (raw_rates[-2] + raw_rates[-1]) / 2
            tags_per_second = resync.tags_seen / seconds
            gets = sum(v for k, v in resync.requests_by_kind.items() if k.endswith("_get"))
            rounds.append(
                {
                    "seconds": round(seconds, 2),
                    "tags_per_second": round(tags_per_second),
                    "raw_heads_per_second": round(raw_mean),
                    "ratio": round(tags_per_second / raw_mean, 3),
                    "requests": resync.requests_made,
                    "by_kind": resync.requests_by_kind,
                    "manifest_and_blob_gets": gets,
                }
            )
            print(
                f"round {number}: raw HEAD/s {raw_rates[-2]:.0f} → {raw_rates[-1]:.0f} "
                f"(bare requests, {c} threads); re-sync {seconds:.2f}s, {resync.tags_seen} tags "
                f"= {tags_per_second:.0f} tags/s, {resync.requests_made} requests "
                f"{json.dumps(resync.requests_by_kind)}; ratio {rounds[-1]['ratio']:.2f}"
            )
        raw.close()
        assert not raw.failures, f"{raw.failures} raw HEADs failed"
        gets = sum(r["manifest_and_blob_gets"] for r in rounds)
        ratio = statistics.median(r["ratio"] for r in rounds)
        print(f"manifest/blob GETs in the re-syncs: {gets}")
        print(
            f"ratio re-sync tags/s ÷ raw HEAD/s = {ratio:.2f} "
            f"(median of {len(rounds)} rounds; target ≥ 0.8)"
        )
        print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        results.update(
            repositories=n,
            tags=m,
            concurrency=c,
            database=database,
            seed_seconds=round(seed_seconds, 2),
            initial={
                "seconds": round(initial_seconds, 2),
                "requests": initial.requests_made,
                "by_kind": initial.requests_by_kind,
                "floor_seconds": [round(floor_before, 2), round(floor_after, 2)],
                "floor_requests": floor_requests,
                "ratio": round(initial_ratio, 3),
                "database_seconds": round(initial.database_seconds, 2),
                "database_cpu_seconds": round(initial.database_cpu, 2),
            },
            raw_heads_per_second=[round(rate) for rate in raw_rates],
            resyncs=rounds,
            ratio=ratio,
        )
        if args.json:
            print(json.dumps(results, indent=2))
        return 0 if not gets else 1
    finally:
        registry.stop()
        if postgres:
            postgres.drop()


if __name__ == "__main__":
    sys.exit(main())
