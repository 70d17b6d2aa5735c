#!/usr/bin/env python3
"""How fast are the browse pages, and does their cost stay flat as the catalog grows?

For each catalog size (default: 1k and 100k tags) it creates a fresh database, fills it with
synthetic rows (repositories, tags, manifests with layers, labels and some multi-platform
indexes; one repository ``bench/big`` holds exactly 1,000 tags), and measures the server-side
latency of each page through Django's test client, logged in as a team member whose two grants
cover the catalog (so every query carries the permission filter):

- the repository list, and the list filtered by name (the htmx fragment);
- the big repository in the flat view (first page; page 10 sorted by date, by size, by
  name; filtered by name), and its first page in the grouped view;
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
#: The live-proxy comparison's repository.
BIG_TAGS = 1000
BIG_TAGS_MIN = 1000
BIG_TAGS_MAX = 100_000
TAGS_PER_REPOSITORY = 50
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
    parser.add_argument(
        "--keep", action="store_true", help="keep the filled databases (to EXPLAIN); drop them!"
    )
    parser.add_argument("--live-rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    parser.add_argument(
        "--pages",
        default="",
        help="measure only the pages whose name contains one of these (comma-separated, "
        "case-insensitive), e.g. storage,label",
    )
    parser.add_argument(
        "--fill-only",
        action="store_true",
        help="fill each size, print how long it took, measure nothing",
    )
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
    sample_repository: str = ""
    big_tags: int = 0
    seconds: float = 0.0
    #: Of which writing the rows (the rest: the storage snapshot, ANALYZE/VACUUM).
    fill_seconds: float = 0.0


class Bulk:
    """Rows of one model written in bulk: ``COPY`` on PostgreSQL, ``executemany`` on SQLite.

    Ids are given, so nothing is read back; the columns come from the model, and a column the
    caller does not set takes its field's default (converted once), so that a column added by
    a later migration does not break the bench."""

    def __init__(self, model, *, flush_every: int = 50_000) -> None:
        from django.db import connection
        from django.db.models import JSONField

        self.model = model
        self.connection = connection
        self.table = model._meta.db_table
        fields = model._meta.concrete_fields
        self.columns = [f.column for f in fields]
        self.defaults = {}
        for f in fields:
            value = None if f.primary_key else f.get_default()
            if isinstance(f, JSONField):
                value = json.dumps(value if value is not None else None)
            elif value is not None:
                value = f.get_db_prep_save(value, connection)
            self.defaults[f.column] = value
        self.flush_every = flush_every
        #: Rows by the columns given (each call site gives the same ones, in one order), each
        #: row those values followed by the defaults of the other columns.
        self.rows: dict[tuple[str, ...], list[tuple]] = {}
        self.rest: dict[tuple[str, ...], tuple] = {}
        self.pending = 0
        self.written = 0

    def add(self, **values: object) -> None:
        given = tuple(values)
        rows = self.rows.get(given)
        if rows is None:
            rows = self.rows[given] = []
            self.rest[given] = tuple(self.defaults[c] for c in self.columns if c not in values)
        rows.append(tuple(values.values()) + self.rest[given])
        self.pending += 1
        if self.pending >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        for given, rows in self.rows.items():
            if not rows:
                continue
            columns = [*given, *(c for c in self.columns if c not in given)]
            names = ", ".join(f'"{c}"' for c in columns)
            with self.connection.cursor() as cursor:
                if self.connection.vendor == "postgresql":
                    raw = cursor.cursor  # psycopg's own cursor, for COPY
                    with raw.copy(f'COPY "{self.table}" ({names}) FROM STDIN') as copy:
                        for row in rows:
                            copy.write_row(row)
                else:
                    marks = ", ".join("?" for _ in columns)
                    insert = f'INSERT INTO "{self.table}" ({names}) VALUES ({marks})'  # noqa: S608
                    cursor.executemany(insert, rows)
            self.written += len(rows)
            rows.clear()
        self.pending = 0


def _same(value: object) -> object:
    return value


def big_tags(total_tags: int) -> int:
    """The big repository: a tenth of the catalog, at least 1,000 tags, at most 100,000."""
    return min(BIG_TAGS_MAX, max(BIG_TAGS_MIN, total_tags // 10))


def fill(total_tags: int, *, big: int | None = None, repositories: int | None = None) -> Catalog:
    """``bench/big`` with a tenth of the tags (1,000 to 100,000), and the rest spread over one
    repository per 50 tags (at least 60): 1,000,000 tags make 20,000 repositories.

    About a third of the tags share their image with the previous tag (as ``1.5``, ``latest``
    and ``stable`` do), and one image in twenty is a two-platform index. Rows are written with
    COPY (PostgreSQL) or executemany (SQLite), not the ORM row by row: a million tags take
    minutes.
    """
    from django.contrib.auth import get_user_model
    from django.core.management.color import no_style
    from django.db import connection, transaction
    from django.utils import timezone

    from registryui.catalog.models import (
        Blob,
        IndexChild,
        Label,
        Layer,
        Manifest,
        Repository,
        RepositoryBlob,
        SyncRun,
        Tag,
    )
    from registryui.lib.natural import natural_key
    from registryui.teams.models import Grant, Level, Team

    started = time.perf_counter()
    stats = Catalog()
    now = datetime.now(UTC).replace(microsecond=0)
    if connection.vendor == "sqlite":
        # What Django stores on SQLite: naive UTC text. Built here rather than through
        # connection.ops for each of millions of values.
        now = now.replace(tzinfo=None)
        adapt = str
    else:
        adapt = _same
    big = big or big_tags(total_tags)
    stats.big_tags = big
    others = repositories or max(MIN_REPOSITORIES, total_tags // TAGS_PER_REPOSITORY - 1)
    remaining = max(total_tags - big, others)
    # Spread evenly: the first ``extra`` repositories get one tag more.
    per_repository, extra = divmod(remaining, others)
    width = max(4, len(str(others - 1)))
    names = [BIG] + [f"ns{n % 40:02d}/app{n:0{width}d}" for n in range(others)]
    stats.sample_repository = names[min(127, len(names) - 1)]

    repositories, manifests, layers = Bulk(Repository), Bulk(Manifest), Bulk(Layer)
    labels, children, tags = Bulk(Label), Bulk(IndexChild), Bulk(Tag)
    blobs, links = Bulk(Blob), Bulk(RepositoryBlob)
    ids = {"manifest": 0, "layer": 0, "label": 0, "child": 0, "tag": 0, "blob": 0, "link": 0}
    # Every blob but the base layer belongs to one image of one repository; the base layer
    # is in every image: its counts are written at the end.
    ids["blob"] += 1
    base_blob = {"id": ids["blob"], "repositories": 0, "images": 0}

    def link(repository_id: int, digest: str, size: int, kind: str, **more: object) -> int:
        """The blob links ``catalog.storage.link_blobs`` would write (what the storage page
        reads), for a blob only this repository's one image holds; its size."""
        ids["blob"] += 1
        blobs.add(
            id=ids["blob"],
            digest=digest,
            size=size,
            kind=kind,
            repository_count=1,
            image_count=1,
            image_size=more.get("image_size", 0),
        )
        ids["link"] += 1
        links.add(
            id=ids["link"],
            repository_id=repository_id,
            blob_id=ids["blob"],
            images=1,
            tagged=more.get("tagged", False),
        )
        return size

    base_layer = _digest("base", 0)
    image_type = "application/vnd.oci.image.manifest.v1+json"
    index_type = "application/vnd.oci.image.index.v1+json"
    layer_type = "application/vnd.oci.image.layer.v1.tar+gzip"
    fetched = adapt(now)
    synced = adapt(now)
    sort_keys: dict[str, str] = {}  # tag names repeat in every repository

    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            # A throwaway database: no fsync, a large page cache, temporary b-trees in memory.
            for pragma in ("synchronous = OFF", "cache_size = -1000000", "temp_store = MEMORY"):
                cursor.execute(f"PRAGMA {pragma}")
    with transaction.atomic():
        for position, name in enumerate(names, start=1):
            repository_id = position
            size = 0  # of the distinct blobs it links
            # Every repository also has "latest" (on its newest image): the tag name that a
            # prefix search finds in every repository at once.
            count = big - 1 if name == BIG else per_repository + (position - 2 < extra) - 1
            if count < 0:
                continue
            kinds: list[str] = []  # of this repository's manifests, by local index
            local_ids: list[int] = []
            local_sizes: list[int] = []  # their total_size, copied onto their tags (Tag.size)
            plan: list[tuple[str, int, datetime]] = []  # tag, local manifest index, changed
            for i in range(count):
                changed = now - timedelta(hours=position * 7, seconds=i * 37)
                tag = f"v{i // 100}.{i % 100}.0"
                if kinds and i % 3 == 2:
                    plan.append((tag, len(kinds) - 1, changed))
                    continue
                is_index = i % 20 == 19
                created = changed - timedelta(minutes=5)
                digest = _digest(name, i)
                total_size = 20_000_000 + (i * 7919) % 50_000_000
                ids["manifest"] += 1
                manifest_id = ids["manifest"]
                local = len(kinds)
                if is_index:
                    manifests.add(
                        id=manifest_id,
                        digest=digest,
                        media_type=index_type,
                        kind="index",
                        size=900,
                        total_size=total_size,
                        raw='{"schemaVersion":2}',
                        created=adapt(created),
                        platforms="linux/amd64, linux/arm64/v8",
                        fetched_at=fetched,
                    )
                    size += link(
                        repository_id,
                        digest,
                        900,
                        Blob.Kind.MANIFEST,
                        image_size=total_size,
                        tagged=True,
                    )
                    # Its platforms are the two images before it in this repository.
                    for slot, (back, arch, variant) in enumerate(
                        ((1, "amd64", ""), (2, "arm64", "v8"))
                    ):
                        if local - back >= 0 and kinds[local - back] == "image":
                            ids["child"] += 1
                            children.add(
                                id=ids["child"],
                                index_id=manifest_id,
                                child_id=local_ids[local - back],
                                position=slot,
                                os="linux",
                                architecture=arch,
                                variant=variant,
                            )
                else:
                    revision = hashlib.sha1(digest.encode()).hexdigest()  # noqa: S324 - fake data
                    image_labels = {
                        "org.opencontainers.image.source": f"https://git.example.com/{name}",
                        "org.opencontainers.image.revision": revision,
                    }
                    manifests.add(
                        id=manifest_id,
                        digest=digest,
                        media_type=image_type,
                        kind="image",
                        size=900,
                        total_size=total_size,
                        raw='{"schemaVersion":2}',
                        config_digest=_digest(name, i, "config"),
                        config_media_type="application/vnd.oci.image.config.v1+json",
                        config_size=1500,
                        created=adapt(created),
                        os="linux",
                        architecture="amd64",
                        platforms="linux/amd64",
                        # json.dumps of these, built as text (a third of the fill's time).
                        labels=(
                            '{"org.opencontainers.image.source": '
                            f'"https://git.example.com/{name}", '
                            f'"org.opencontainers.image.revision": "{revision}"}}'
                        ),
                        config=(
                            f'{{"Entrypoint": ["/app"], "Env": ["VERSION={i}"], "User": "1000"}}'
                        ),
                        history=(
                            f'[{{"created": "{created.isoformat()}", "created_by": "RUN build"}}]'
                        ),
                        fetched_at=fetched,
                    )
                    size += link(
                        repository_id,
                        digest,
                        900,
                        Blob.Kind.MANIFEST,
                        image_size=total_size,
                        tagged=True,
                    )
                    size += link(repository_id, _digest(name, i, "config"), 1500, Blob.Kind.CONFIG)
                    size += link(repository_id, _digest(digest, 1), 6_000_000, Blob.Kind.LAYER)
                    for n, layer_digest in enumerate((base_layer, _digest(digest, 1))):
                        ids["layer"] += 1
                        layers.add(
                            id=ids["layer"],
                            manifest_id=manifest_id,
                            position=n,
                            digest=layer_digest,
                            size=5_000_000 + n * 1_000_000,
                            media_type=layer_type,
                        )
                    for key, value in image_labels.items():
                        ids["label"] += 1
                        labels.add(id=ids["label"], manifest_id=manifest_id, key=key, value=value)
                kinds.append("index" if is_index else "image")
                local_ids.append(manifest_id)
                local_sizes.append(total_size)
                plan.append((tag, local, changed))
            if not plan:  # a repository whose only tag is "latest"
                ids["manifest"] += 1
                manifests.add(
                    id=ids["manifest"],
                    digest=_digest(name, "only"),
                    media_type=image_type,
                    kind="image",
                    size=900,
                    total_size=1000,
                    raw="{}",
                    platforms="linux/amd64",
                    created=adapt(now - timedelta(hours=position)),
                    fetched_at=fetched,
                )
                size += link(
                    repository_id,
                    _digest(name, "only"),
                    900,
                    Blob.Kind.MANIFEST,
                    image_size=1000,
                    tagged=True,
                )
                kinds.append("image")
                local_ids.append(ids["manifest"])
                local_sizes.append(1000)
                plan.append(("latest", 0, now - timedelta(hours=position)))
            else:
                plan.append(("latest", plan[0][1], plan[0][2]))
            for tag, local, changed in plan:
                ids["tag"] += 1
                if tag not in sort_keys:
                    sort_keys[tag] = natural_key(tag)
                tags.add(
                    id=ids["tag"],
                    repository_id=repository_id,
                    name=tag,
                    sort_key=sort_keys[tag],
                    manifest_id=local_ids[local],
                    size=local_sizes[local],
                    attached=False,
                    first_seen_at=adapt(changed),
                    first_seen=adapt(changed),
                    changed_at=adapt(changed),
                )
            # The base layer, once per repository, used by each of its images with layers.
            layered = kinds.count("image") if count > 0 else 0
            if layered:
                ids["link"] += 1
                links.add(
                    id=ids["link"],
                    repository_id=repository_id,
                    blob_id=base_blob["id"],
                    images=layered,
                    tagged=False,
                )
                base_blob["repositories"] += 1
                base_blob["images"] += layered
                size += 5_000_000
            repositories.add(
                id=repository_id,
                name=name,
                namespace=name.split("/", 1)[0] if "/" in name else "",
                tag_count=len(plan),
                size=size,
                last_updated_at=adapt(max(changed for _, _, changed in plan)),
                first_seen_at=synced,
                last_synced_at=synced,
            )
            stats.tags += len(plan)
            stats.repositories += 1
            stats.manifests += len(kinds)
            if name == BIG:
                sample = plan[len(plan) // 2]
                stats.sample_tag = sample[0]
                stats.sample_digest = manifest_digest_of(name, plan, sample)
        if base_blob["repositories"]:
            blobs.add(
                id=base_blob["id"],
                digest=base_layer,
                size=5_000_000,
                kind=Blob.Kind.LAYER,
                repository_count=base_blob["repositories"],
                image_count=base_blob["images"],
            )
        # Parents before children: repositories and manifests first.
        for bulk in (repositories, manifests, layers, labels, children, tags, blobs, links):
            bulk.flush()
        stats.layers, stats.labels = layers.written, labels.written
        with connection.cursor() as cursor:
            for statement in connection.ops.sequence_reset_sql(
                no_style(),
                [Repository, Manifest, Layer, Label, IndexChild, Tag, Blob, RepositoryBlob],
            ):
                cursor.execute(statement)
        SyncRun.objects.create(scope="", status="succeeded", finished_at=timezone.now())
        stats.fill_seconds = time.perf_counter() - started
        # The storage page's figures: the snapshot a full sync ends with (the links it would
        # back-fill are written above).
        from registryui.catalog.storage import record_snapshot

        record_snapshot(timezone.now())
        user = get_user_model().objects.create_user("bench", password="bench-password-1")
        team = Team.objects.create(name="everyone", slug="everyone")
        team.members.add(user)
        Grant.objects.create(team=team, pattern="bench/*", level=Level.VIEW)
        Grant.objects.create(team=team, pattern="ns*", level=Level.VIEW)

    with connection.cursor() as cursor:
        # VACUUM too on PostgreSQL: after a bulk load the visibility map is empty, and every
        # index-only scan (a 100,000-tag COUNT) would visit the heap, as no autovacuumed
        # production database does.
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    stats.seconds = time.perf_counter() - started
    return stats


def manifest_digest_of(name: str, plan: list, sample: tuple) -> str:
    """The digest of the image a planned tag points at (tags share the image before them)."""
    tag = sample[0]
    major, minor, _ = tag[1:].split(".")
    i = int(major) * 100 + int(minor)
    if i % 3 == 2:
        i -= 1
    return _digest(name, i)


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
    """The pages measured at every size; paths do not depend on the size, so that each row
    compares the same page (the big repository is 1,000 tags at 1k and 100,000 at 1M)."""
    label = f"org.opencontainers.image.source=https://git.example.com/{BIG}"
    return [
        Timing("repository list", "/"),
        Timing("repository list, filtered (htmx)", "/?q=app00", htmx=True),
        # The flat view (one row per tag), named in each path: the view is remembered in the
        # session, and the grouped one (the default) pages through images instead.
        Timing("big repository (default sort: last changed)", f"/r/{BIG}?view=flat"),
        Timing(
            "  … sorted by date, oldest first, page 10",
            f"/r/{BIG}?view=flat&sort=changed&page=10",
        ),
        Timing(
            "  … sorted by size, page 10 (htmx)",
            f"/r/{BIG}?view=flat&sort=-size&page=10",
            htmx=True,
        ),
        Timing("  … by tag name, page 10", f"/r/{BIG}?view=flat&sort=tag&page=10"),
        Timing("  … filtered by name (q=v1.5)", f"/r/{BIG}?view=flat&q=v1.5"),
        Timing("  … grouped by image (not the default above 5,000 tags)", f"/r/{BIG}?view=grouped"),
        Timing("tag page", f"/r/{BIG}:{catalog.sample_tag}"),
        Timing("search by repository name", f"/search/?q={catalog.sample_repository}"),
        Timing("search by substring of names", "/search/?q=pp0012"),
        Timing('search by tag ("latest": in every repository)', "/search/?q=latest"),
        Timing("search by tag prefix", "/search/?q=v0.1"),
        Timing("search by digest prefix", f"/search/?q={catalog.sample_digest[7:17]}"),
        Timing("search by label (key=value prefix)", f"/search/?q={label}"),
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


def create(total: int, workdir: Path, original: str, only: list[str] | None = None) -> World:
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
    timings = pages(catalog)
    if only:
        timings = [t for t in timings if any(word in t.name.lower() for word in only)]
    return World(total, database, catalog, timings, client)


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
        # Our 1,000-tag repository is the smallest size's (the big one is larger above it).
        big = next(t for t in results[sizes[0]][1] if t.path == f"/r/{BIG}")
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
                only = [w.strip().lower() for w in args.pages.split(",") if w.strip()]
                worlds.append(create(size, workdir, str(original), only))
                catalog = worlds[-1].catalog
                print(
                    f"  filled in {catalog.seconds:.1f} s ({catalog.fill_seconds:.1f} s of rows, "
                    f"{catalog.seconds - catalog.fill_seconds:.1f} s of snapshot and ANALYZE), "
                    f"load {os.getloadavg()[:3]}",
                    flush=True,
                )
            if not args.fill_only:
                print("… measuring", flush=True)
                measure(worlds, args.requests, args.warmup, args.block)
        finally:
            for world in worlds:
                use(world)
                if args.keep:
                    print(f"kept database {world.database}")
                    continue
                connection.creation.destroy_test_db(original, verbosity=0)
        if args.fill_only:
            print(f"Load average at the start {load_start}, at the end {os.getloadavg()[:3]}.")
            return 0
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
        if args.keep and not args.database_url:
            print(f"kept {workdir} (the SQLite files): remove it when done")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
