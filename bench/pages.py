#!/usr/bin/env python3
"""How fast are the browse pages, and does their cost stay flat as the catalog grows?

For each catalog size (default: 1k and 100k tags) it creates a fresh database, fills it with
synthetic rows (repositories, tags, manifests with layers, labels and some multi-platform
indexes; one repository ``bench/big`` holds exactly 1,000 tags), and measures the server-side
latency of each page through Django's test client, logged in as a team member whose two grants
cover the catalog (so every query carries the permission filter):

- the repository list, and the list filtered by name (the htmx fragment);
- the repository with 1,000 tags (first page, and page 10 sorted by size);
- a tag page;
- search by repository name, by tag prefix and by digest prefix;
- the storage page (figures over the visible repositories, from ``catalog.storage``'s links).

p50/p95 over ``--requests`` requests each (default 200, after 10 warm-up requests), with the
sizes interleaved in blocks of 20 requests so that other work on the machine weighs on every
size alike; the CPU time per request is reported too (it hardly depends on that other work).
Targets: p95 ≤ 50 ms, and p95 at the largest size ÷ p95 at the smallest ≤ 1.5.

Then, in the same run, what a live-proxy viewer pays to show the same 1,000-tag repository
straight from a real registry (``docker-registry`` on a free port): the tags list, then one
manifest HEAD, one manifest GET and one config GET per tag, with 8 requests in flight, as the
single-page registry viewers do. It prints that time ÷ our p50 for the same repository.

The database is a fresh SQLite file by default; ``--database-url
postgres://postgres@127.0.0.1:5432/NAME`` (or BENCH_DATABASE_URL) creates ``test_NAME`` for each
size and drops it after.

    .venv/bin/python bench/pages.py [--sizes 1000,100000] [--requests 200] [--skip-live]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

BIG = "bench/big"
BIG_TAGS = 1000
TAGS_PER_REPOSITORY = 100
MIN_REPOSITORIES = 60
TARGET_P95_MS = 50.0
TARGET_RATIO = 1.5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,100000", help="total tags per catalog")
    parser.add_argument("--requests", "-n", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument(
        "--block", type=int, default=20, help="requests per size before switching to the next"
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", ""),
        help="postgres://USER@HOST:PORT/NAME (test_NAME is created and dropped); default SQLite",
    )
    parser.add_argument("--skip-live", action="store_true", help="skip the live-proxy comparison")
    parser.add_argument("--live-rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    return parser.parse_args()


def setup_django(workdir: Path, database_url: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "registryui.settings"
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{workdir / 'unused.sqlite3'}"
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ["DEBUG"] = "false"
    os.environ["LOG_LEVEL"] = "ERROR"
    os.environ["STATICFILES_BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"
    os.environ["VAR_DIR"] = str(workdir)
    os.environ["REGISTRY_PUBLIC_HOST"] = "registry.example.com"
    # The test client's host. Not setup_test_environment(): it instruments every template
    # render (a signal and a copy of the context per template) and would inflate the numbers.
    os.environ["ALLOWED_HOSTS"] = "testserver"
    import django

    django.setup()


# -- synthetic catalog ------------------------------------------------------------------------


def _digest(*parts: object) -> str:
    return "sha256:" + hashlib.sha256(repr(parts).encode()).hexdigest()


@dataclass
class Catalog:
    tags: int = 0
    repositories: int = 0
    manifests: int = 0
    layers: int = 0
    labels: int = 0
    sample_tag: str = ""
    sample_digest: str = ""
    seconds: float = 0.0


def fill(total_tags: int) -> Catalog:
    """``bench/big`` with 1,000 tags, and the rest in repositories of 100 tags.

    About a third of the tags share their image with the previous tag (as ``1.5``, ``latest``
    and ``stable`` do), and one image in twenty is a two-platform index.
    """
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from registryui.catalog.models import (
        IndexChild,
        Label,
        Layer,
        Manifest,
        Repository,
        SyncRun,
        Tag,
    )
    from registryui.teams.models import Grant, Level, Team

    started = time.perf_counter()
    stats = Catalog()
    now = datetime.now(UTC)
    # At least MIN_REPOSITORIES other repositories, so that the repository list shows a full
    # page at every size; the tags beyond bench/big are spread evenly over them.
    remaining = max(total_tags - BIG_TAGS, MIN_REPOSITORIES)
    others = max(MIN_REPOSITORIES, -(-remaining // TAGS_PER_REPOSITORY))
    per_repository = -(-remaining // others)
    names = [BIG] + [f"ns{n % 40:02d}/app{n:04d}" for n in range(others)]

    with transaction.atomic():
        for position, name in enumerate(names):
            # Every repository also has "latest" (on its newest image): the tag name that a
            # prefix search finds in every repository at once.
            count = BIG_TAGS - 1 if name == BIG else min(per_repository, remaining) - 1
            if name != BIG:
                remaining -= count + 1
            if count < 0:
                continue
            manifests: list[Manifest] = []
            plan: list[tuple[str, int, datetime]] = []  # tag, manifest index, changed_at
            for i in range(count):
                changed = now - timedelta(hours=position * 7 + i)
                if manifests and i % 3 == 2:
                    plan.append((f"v{i // 100}.{i % 100}.0", len(manifests) - 1, changed))
                    continue
                is_index = i % 20 == 19
                created = changed - timedelta(minutes=5)
                digest = _digest(name, i)
                labels = {
                    "org.opencontainers.image.source": f"https://git.example.com/{name}",
                    "org.opencontainers.image.revision": hashlib.sha1(  # noqa: S324 - fake data
                        digest.encode()
                    ).hexdigest(),
                }
                manifests.append(
                    Manifest(
                        digest=digest,
                        media_type="application/vnd.oci.image.index.v1+json"
                        if is_index
                        else "application/vnd.oci.image.manifest.v1+json",
                        kind="index" if is_index else "image",
                        size=900,
                        total_size=20_000_000 + (i * 7919) % 50_000_000,
                        raw=json.dumps({"schemaVersion": 2, "bench": digest}),
                        config_digest="" if is_index else _digest(name, i, "config"),
                        config_media_type=""
                        if is_index
                        else "application/vnd.oci.image.config.v1+json",
                        config_size=0 if is_index else 1500,
                        created=created,
                        os="" if is_index else "linux",
                        architecture="" if is_index else "amd64",
                        platforms="linux/amd64, linux/arm64/v8" if is_index else "linux/amd64",
                        labels={} if is_index else labels,
                        config={}
                        if is_index
                        else {
                            "Entrypoint": ["/app"],
                            "Cmd": ["--serve"],
                            "Env": ["PATH=/usr/bin:/bin", f"VERSION={i}"],
                            "ExposedPorts": ["8080/tcp"],
                            "WorkingDir": "/srv",
                            "User": "1000",
                            "Volumes": [],
                            "StopSignal": "",
                        },
                        history=[]
                        if is_index
                        else [
                            {
                                "created": created.isoformat(),
                                "created_by": f"RUN step {n}",
                                "comment": "",
                                "empty_layer": False,
                            }
                            for n in range(4)
                        ],
                    )
                )
                plan.append((f"v{i // 100}.{i % 100}.0", len(manifests) - 1, changed))
            if not plan:  # a repository whose only tag is "latest"
                manifests.append(
                    Manifest(
                        digest=_digest(name, "only"),
                        media_type="application/vnd.oci.image.manifest.v1+json",
                        kind="image",
                        size=900,
                        total_size=1000,
                        raw="{}",
                        platforms="linux/amd64",
                        created=now - timedelta(hours=position),
                    )
                )
                plan.append(("latest", 0, now - timedelta(hours=position)))
            else:
                plan.append(("latest", plan[0][1], plan[0][2]))
            Manifest.objects.bulk_create(manifests, batch_size=500)
            ids = dict(
                Manifest.objects.filter(digest__in=[m.digest for m in manifests]).values_list(
                    "digest", "id"
                )
            )
            layers, label_rows, children = [], [], []
            for index, manifest in enumerate(manifests):
                manifest_id = ids[manifest.digest]
                if manifest.kind == "index":
                    # Its platforms are the two images before it in this repository.
                    for slot, (back, arch, variant) in enumerate(
                        ((1, "amd64", ""), (2, "arm64", "v8"))
                    ):
                        if index - back >= 0 and manifests[index - back].kind == "image":
                            children.append(
                                IndexChild(
                                    index_id=manifest_id,
                                    position=slot,
                                    child_id=ids[manifests[index - back].digest],
                                    os="linux",
                                    architecture=arch,
                                    variant=variant,
                                )
                            )
                    continue
                for n in range(4):
                    layers.append(
                        Layer(
                            manifest_id=manifest_id,
                            position=n,
                            digest=_digest(manifest.digest, n) if n else _digest("base", n),
                            size=5_000_000 + n * 1_000_000,
                            media_type="application/vnd.oci.image.layer.v1.tar+gzip",
                        )
                    )
                for key, value in manifest.labels.items():
                    label_rows.append(Label(manifest_id=manifest_id, key=key, value=value))
            Layer.objects.bulk_create(layers, batch_size=1000)
            Label.objects.bulk_create(label_rows, batch_size=1000)
            IndexChild.objects.bulk_create(children, batch_size=1000)
            repository = Repository.objects.create(name=name, last_synced_at=now)
            Tag.objects.bulk_create(
                [
                    Tag(
                        repository=repository,
                        name=tag,
                        manifest_id=ids[manifests[m].digest],
                        first_seen_at=changed,
                        changed_at=changed,
                    )
                    for tag, m, changed in plan
                ],
                batch_size=1000,
            )
            repository.refresh_stats()  # tag count, size of the distinct blobs, last update
            stats.tags += len(plan)
            stats.repositories += 1
            stats.manifests += len(manifests)
            stats.layers += len(layers)
            stats.labels += len(label_rows)
            if name == BIG:
                stats.sample_tag = plan[500][0]
                stats.sample_digest = manifests[plan[500][1]].digest
        SyncRun.objects.create(scope="", status="succeeded", finished_at=now)
        # The storage page's growth: the snapshot a full sync ends with.
        from registryui.catalog.storage import record_snapshot

        record_snapshot(now)
        user = get_user_model().objects.create_user("bench", password="bench-password-1")
        team = Team.objects.create(name="everyone", slug="everyone")
        team.members.add(user)
        Grant.objects.create(team=team, pattern="bench/*", level=Level.VIEW)
        Grant.objects.create(team=team, pattern="ns*", level=Level.VIEW)

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    stats.seconds = time.perf_counter() - started
    return stats


# -- measuring --------------------------------------------------------------------------------


@dataclass
class Timing:
    name: str
    path: str
    samples: list[float] = field(default_factory=list)
    #: CPU seconds of this process per request: what the page costs, whatever else runs.
    cpu: list[float] = field(default_factory=list)
    queries: int = 0
    status: int = 0
    htmx: bool = False

    def quantile(self, q: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    @property
    def p50(self) -> float:
        return statistics.median(self.samples) * 1000

    @property
    def p95(self) -> float:
        return self.quantile(0.95)

    @property
    def cpu_p50(self) -> float:
        return statistics.median(self.cpu) * 1000


def pages(catalog: Catalog) -> list[Timing]:
    return [
        Timing("repository list", "/"),
        Timing("repository list, filtered (htmx)", "/?q=app00", htmx=True),
        Timing(f"repository with {BIG_TAGS:,} tags", f"/r/{BIG}"),
        Timing("  … page 10, sorted by size (htmx)", f"/r/{BIG}?sort=-size&page=10", htmx=True),
        Timing("tag page", f"/r/{BIG}:{catalog.sample_tag}"),
        Timing("search by name", "/search/?q=app001"),
        Timing('search by tag ("latest": in every repository)', "/search/?q=latest"),
        Timing("search by tag prefix", "/search/?q=v0.1"),
        Timing("search by digest prefix", f"/search/?q={catalog.sample_digest[7:17]}"),
        Timing("storage page", "/storage/"),
    ]


@dataclass
class World:
    """One filled database of a given size, and a client logged in to it."""

    size: int
    database: str
    catalog: Catalog
    timings: list[Timing]
    client: object = None


def use(world: World) -> None:
    """Point the default connection at this world's database (outside any timing)."""
    from django.conf import settings
    from django.db import connection

    connection.close()
    connection.settings_dict["NAME"] = world.database
    settings.DATABASES["default"]["NAME"] = world.database


def create(total: int, workdir: Path, original: str) -> World:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    connection.close()
    connection.settings_dict["NAME"] = settings.DATABASES["default"]["NAME"] = original
    if connection.vendor == "sqlite":
        connection.settings_dict["TEST"]["NAME"] = str(workdir / f"pages-{total}.sqlite3")
    else:
        connection.settings_dict["TEST"]["NAME"] = f"test_{original}_{total}"
    database = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    catalog = fill(total)
    client = Client()
    client.force_login(get_user_model().objects.get(username="bench"))
    return World(total, database, catalog, pages(catalog), client)


def measure(worlds: list[World], requests: int, warmup: int, block: int) -> None:
    """Time every page in every world, alternating the worlds in blocks of ``block``
    requests, so that whatever else runs on the machine weighs on all sizes alike."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for index in range(len(worlds[0].timings)):
        for world in worlds:
            use(world)
            timing = world.timings[index]
            headers = {"HX-Request": "true"} if timing.htmx else {}
            for _ in range(warmup):
                world.client.get(timing.path, headers=headers)
            with CaptureQueriesContext(connection) as captured:
                response = world.client.get(timing.path, headers=headers)
            timing.queries = len(captured.captured_queries)
            if response.status_code != 200:
                raise SystemExit(f"{timing.path} answered {response.status_code}")
        done = 0
        while done < requests:
            count = min(block, requests - done)
            for world in worlds:
                use(world)
                timing = world.timings[index]
                headers = {"HX-Request": "true"} if timing.htmx else {}
                for _ in range(3):  # a new connection: let its caches fill again
                    world.client.get(timing.path, headers=headers)
                for _ in range(count):
                    started, cpu = time.perf_counter(), time.process_time()
                    world.client.get(timing.path, headers=headers)
                    timing.samples.append(time.perf_counter() - started)
                    timing.cpu.append(time.process_time() - cpu)
            done += count


# -- the live-proxy viewer --------------------------------------------------------------------


@dataclass
class Live:
    tags: int
    seconds: list[float]
    requests: int

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def live_proxy(workdir: Path, rounds: int) -> Live:
    """Push a 1,000-tag repository (distinct images) to a real registry and time a viewer that
    shows it straight from the registry: tags list + HEAD, manifest GET, config GET per tag."""
    from registryui.devtools.registry import RegistryProcess
    from registryui.registry import RegistryClient

    registry = RegistryProcess(workdir / "registry").start()
    try:
        with RegistryClient(registry.url, pool_size=16) as client:
            layer = client.upload_blob(BIG, os.urandom(4096))

            def push(i: int) -> None:
                config = json.dumps(
                    {
                        "architecture": "amd64",
                        "os": "linux",
                        "created": f"2026-11-{1 + i % 27:02d}T10:00:00Z",
                        "config": {"Labels": {"bench.index": str(i)}},
                        "rootfs": {"type": "layers", "diff_ids": [_digest("diff")]},
                    },
                ).encode()
                config_digest = client.upload_blob(BIG, config)
                manifest = json.dumps(
                    {
                        "schemaVersion": 2,
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "config": {
                            "mediaType": "application/vnd.oci.image.config.v1+json",
                            "digest": config_digest,
                            "size": len(config),
                        },
                        "layers": [
                            {
                                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                "digest": layer,
                                "size": 4096,
                            }
                        ],
                    }
                ).encode()
                client.put_manifest(
                    BIG,
                    f"v{i // 100}.{i % 100}.0",
                    manifest,
                    "application/vnd.oci.image.manifest.v1+json",
                )

            with ThreadPoolExecutor(8) as pool:
                list(pool.map(push, range(BIG_TAGS)))

        seconds: list[float] = []
        requests = 0
        for _ in range(rounds):
            # A fresh client per round: a proxy viewer has no cache of manifests.
            with RegistryClient(registry.url, pool_size=8) as viewer:
                started = time.perf_counter()
                tags = viewer.list_tags(BIG)

                def show(tag: str) -> None:
                    ref = viewer.head_manifest(BIG, tag)
                    _, raw = viewer.get_manifest(BIG, ref.digest)
                    config = json.loads(raw)["config"]["digest"]
                    viewer.get_blob(BIG, config)

                with ThreadPoolExecutor(8) as pool:
                    list(pool.map(show, tags))
                seconds.append(time.perf_counter() - started)
                requests = viewer.stats.total
        return Live(tags=len(tags), seconds=seconds, requests=requests)
    finally:
        registry.stop()


# -- report -----------------------------------------------------------------------------------


def report(results: dict[int, tuple[Catalog, list[Timing]]], live: Live | None) -> str:
    sizes = sorted(results)
    lines = []
    for size in sizes:
        catalog, _ = results[size]
        lines.append(
            f"- {size:,} tags: {catalog.tags:,} tags in {catalog.repositories:,} repositories, "
            f"{catalog.manifests:,} manifests, {catalog.layers:,} layers, "
            f"{catalog.labels:,} labels (filled in {catalog.seconds:.0f} s)"
        )
    lines.append("")
    header = "| page | queries |" + "".join(
        f" p50 {size // 1000}k | p95 {size // 1000}k |" for size in sizes
    )
    if len(sizes) > 1:
        header += f" p95 {sizes[-1] // 1000}k ÷ {sizes[0] // 1000}k |"
    header += " CPU p50 " + " / ".join(f"{size // 1000}k" for size in sizes) + " |"
    lines.append(header)
    lines.append("|" + " --- |" * (header.count("|") - 1))
    first = results[sizes[0]][1]
    for index, timing in enumerate(first):
        row = f"| {timing.name} | {timing.queries} |"
        for size in sizes:
            other = results[size][1][index]
            row += f" {other.p50:.1f} ms | {other.p95:.1f} ms |"
        if len(sizes) > 1:
            ratio = results[sizes[-1]][1][index].p95 / timing.p95
            row += f" {ratio:.2f} |"
        row += " " + " / ".join(f"{results[size][1][index].cpu_p50:.1f}" for size in sizes)
        row += " ms |"
        lines.append(row)
    worst_p95 = max(t.p95 for size in sizes for t in results[size][1])
    lines.append("")
    lines.append(
        f"Worst p95: {worst_p95:.1f} ms (target ≤ {TARGET_P95_MS:.0f} ms: "
        f"{'met' if worst_p95 <= TARGET_P95_MS else 'NOT met'})."
    )
    if len(sizes) > 1:
        worst_ratio = max(
            results[sizes[-1]][1][i].p95 / results[sizes[0]][1][i].p95 for i in range(len(first))
        )
        lines.append(
            f"Worst p95 ratio {sizes[-1] // 1000}k ÷ {sizes[0] // 1000}k: {worst_ratio:.2f} "
            f"(target ≤ {TARGET_RATIO}: {'met' if worst_ratio <= TARGET_RATIO else 'NOT met'})."
        )
    if live is not None:
        big = next(t for t in results[sizes[-1]][1] if t.path == f"/r/{BIG}")
        lines.append("")
        lines.append(
            f"Live proxy, the same {live.tags:,}-tag repository from a real registry: "
            f"{live.requests:,} requests, median {live.median * 1000:,.0f} ms over "
            f"{len(live.seconds)} rounds (8 in flight); our page p50 {big.p50:.1f} ms → "
            f"{live.median * 1000 / big.p50:,.0f} times faster."
        )
    return "\n".join(lines)


def main() -> int:
    args = parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="registryui-bench-pages-"))
    try:
        setup_django(workdir, args.database_url)
        from django.db import connection

        print(
            f"# bench/pages.py — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
            f"{platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"{connection.vendor}, {args.requests} requests per page",
            flush=True,
        )
        load_start = os.getloadavg()[:3]
        original = connection.settings_dict["NAME"]
        worlds: list[World] = []
        try:
            for size in sizes:
                print(f"… filling {size:,} tags", flush=True)
                worlds.append(create(size, workdir, str(original)))
            print("… measuring", flush=True)
            measure(worlds, args.requests, args.warmup, args.block)
        finally:
            for world in worlds:
                use(world)
                connection.creation.destroy_test_db(original, verbosity=0)
        results = {world.size: (world.catalog, world.timings) for world in worlds}
        live = None if args.skip_live else live_proxy(workdir, args.live_rounds)
        print(report(results, live))
        print(f"\nLoad average at the start {load_start}, at the end {os.getloadavg()[:3]}.")
        if args.json:
            print(
                json.dumps(
                    {
                        str(size): {
                            t.name: {"p50_ms": t.p50, "p95_ms": t.p95, "queries": t.queries}
                            for t in timings
                        }
                        for size, (_, timings) in results.items()
                    }
                    | ({"live_seconds": live.seconds} if live else {}),
                    indent=2,
                )
            )
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
