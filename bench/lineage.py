#!/usr/bin/env python3
"""What "built on" / "used by" (issue 17) costs a tag page, at 1k and 100k tags.

It fills the same synthetic catalog as ``bench/pages.py`` (every image has 4 layers, the
first shared by all of them: a popular base), adds the layer chains the sync stores
(``Layer.chain``, ``Manifest.top_chain``) and one base image whose single layer is that shared
one, so that "used by" of the base matches about three quarters of all images: the worst case.
Then it times, in the same run and interleaved:

- the floor: a tag page whose image has no chains (lineage skipped), otherwise the same;
- a tag page with lineage (built on the base);
- the base image's page ("used by" ~75% of the catalog).

Targets: p95 ≤ 50 ms, and lineage page p95 ÷ floor p95 ≤ 1.5 at every size.

    .venv/bin/python bench/lineage.py [--sizes 1000,100000] [--requests 100]

The fill takes minutes at 100k tags. ``--keep --workdir DIR`` keeps the filled databases (the
SQLite files in DIR; on PostgreSQL ``test_NAME_<size>``) and notes them in DIR/worlds.json, to
EXPLAIN their queries; ``--reuse --workdir DIR`` then times them again without filling (after
a change to the code, not to the schema). Drop kept PostgreSQL databases by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
sys.path.insert(0, str(BASE_DIR / "bench"))

import pages  # noqa: E402  (bench/pages.py: the synthetic catalog and the timing loop)


def add_lineage(world: pages.World) -> None:
    from django.db import connection, transaction

    from registryui.catalog.lineage import layer_chains
    from registryui.catalog.models import Layer, Manifest, Repository, Tag

    floor_digest = world.catalog.sample_digest
    with transaction.atomic():
        by_manifest: dict[int, list[Layer]] = {}
        for layer in Layer.objects.order_by("manifest_id", "position").only(
            "id", "manifest_id", "digest"
        ):
            by_manifest.setdefault(layer.manifest_id, []).append(layer)
        floor_id = Manifest.objects.get(digest=floor_digest).id
        layer_rows, top_rows = [], []
        for manifest_id, layers in by_manifest.items():
            if manifest_id == floor_id:
                continue
            chains = layer_chains(x.digest for x in layers)
            layer_rows.extend(
                (chain, layer.id) for layer, chain in zip(layers, chains, strict=True)
            )
            top_rows.append((chains[-1], manifest_id))
        with connection.cursor() as cursor:
            cursor.executemany("UPDATE catalog_layer SET chain = %s WHERE id = %s", layer_rows)
            cursor.executemany("UPDATE catalog_manifest SET top_chain = %s WHERE id = %s", top_rows)
        base_layer = pages._digest("base", 0)
        base = Manifest.objects.create(
            digest=pages._digest("the base"),
            media_type="application/vnd.oci.image.manifest.v1+json",
            kind="image",
            size=500,
            total_size=5_000_000,
            raw="{}",
            top_chain=layer_chains([base_layer])[0],
        )
        Layer.objects.create(
            manifest=base, position=0, digest=base_layer, size=5_000_000, chain=base.top_chain
        )
        repository = Repository.objects.create(name="bench/base", last_synced_at=datetime.now(UTC))
        Tag.objects.create(repository=repository, name="bookworm", manifest=base)
        derived = (
            Tag.objects.filter(repository__name=pages.BIG)
            .exclude(manifest__digest=floor_digest)
            .exclude(manifest__kind="index")
            .values_list("name", flat=True)
            .first()
        )
    with connection.cursor() as cursor:
        # The fill analysed the tables before the chains above were written: statistics saying
        # every layer has the same chain made SQLite scan all layers for "used by" (PostgreSQL
        # would re-analyse on its own after so many updates; a SQLite database holds no
        # statistics unless ANALYZE ran, and then plans as with fresh ones).
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    world.timings = [
        pages.Timing("tag page, no lineage (floor)", f"/r/{pages.BIG}:{world.catalog.sample_tag}"),
        pages.Timing("tag page with lineage (built on)", f"/r/{pages.BIG}:{derived}"),
        pages.Timing("base image page (used by ~75%)", "/r/bench/base:bookworm"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--requests", "-n", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--block", type=int, default=20)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", ""))
    parser.add_argument("--workdir", help="where SQLite files and worlds.json go (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep the filled databases")
    parser.add_argument("--reuse", action="store_true", help="time the kept databases again")
    args = parser.parse_args()
    if (args.keep or args.reuse) and not args.workdir:
        parser.error("--keep and --reuse need --workdir")
    with tempfile.TemporaryDirectory(prefix="bench-lineage-") as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        pages.setup_django(workdir, args.database_url)
        from django.conf import settings
        from django.db import connection

        original = settings.DATABASES["default"]["NAME"]
        kept = workdir / "worlds.json"
        worlds = []
        try:
            if args.reuse:
                worlds = [reused(entry) for entry in json.loads(kept.read_text())]
            else:
                for size in (int(s) for s in args.sizes.split(",")):
                    world = pages.create(size, workdir, original)
                    add_lineage(world)
                    worlds.append(world)
                    print(
                        f"filled {size:,} tags ({world.catalog.manifests:,} manifests)", flush=True
                    )
                if args.keep:
                    kept.write_text(json.dumps([kept_entry(world) for world in worlds]))
            pages.measure(worlds, args.requests, args.warmup, args.block)
        finally:
            for world in worlds:
                pages.use(world)
                if args.keep or args.reuse:
                    print(f"kept database {world.database}")
                elif connection.vendor != "sqlite":
                    connection.creation.destroy_test_db(world.database, verbosity=0)
        print(f"\n{platform.node()} · {os.cpu_count()} CPUs · {connection.vendor}")
        # CPU: this process's time per request, which hardly depends on other work on the
        # machine (on SQLite it includes the queries; on PostgreSQL it does not).
        print(
            f"{'page':40} {'size':>8} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8} {'÷ floor':>8}"
            f" {'CPU p50':>8} {'÷ floor':>8}"
        )
        for world in worlds:
            floor, floor_cpu = world.timings[0].p95, world.timings[0].cpu_p50
            for timing in world.timings:
                print(
                    f"{timing.name:40} {world.size:>8,} {timing.p50:8.1f} {timing.p95:8.1f} "
                    f"{timing.queries:8} {timing.p95 / floor:8.2f} {timing.cpu_p50:8.1f} "
                    f"{timing.cpu_p50 / floor_cpu:8.2f}"
                )
    return 0


def kept_entry(world: pages.World) -> dict:
    return {
        "size": world.size,
        "database": world.database,
        "timings": [(t.name, t.path) for t in world.timings],
    }


def reused(entry: dict) -> pages.World:
    from django.contrib.auth import get_user_model
    from django.test import Client

    world = pages.World(
        entry["size"],
        entry["database"],
        pages.Catalog(),
        [pages.Timing(name, path) for name, path in entry["timings"]],
    )
    pages.use(world)
    world.client = Client()
    world.client.force_login(get_user_model().objects.get(username="bench"))
    return world


if __name__ == "__main__":
    raise SystemExit(main())
