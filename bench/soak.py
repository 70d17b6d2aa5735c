#!/usr/bin/env python3
"""Soak: a stream of cleanup actions and re-syncs under a 5 % mixed-fault proxy.

Starts a real registry (``docker-registry``, Distribution 2.8) on a free loopback port and a
``FaultProxy`` in front of it with ``faultrules.MixedFaults``: 5 % of the registry requests get a
503 before the registry sees them, a 500 after the registry applied them, a wrong
``Docker-Content-Digest`` (another real image's), a false 404 (reads) or a 0.3 s delay. The app
talks only to the proxy, with its production settings (retries included); the benchmark reads
the truth straight from the registry.

1. Seeds ``--repositories`` x ``--tags`` tags (images shared by 1-3 tags), syncs without faults,
   dates the rows over the last 20 days (for retention), and notes every tag: the baseline.
2. With faults on: a re-sync, then until ``--duration`` seconds have passed (or ``--max-actions``
   were taken), a stream of actions picked from what the database shows, as a user would:
   delete a tag, delete an image, bulk delete, retag (onto a new tag), a retention run on one
   repository, a re-sync every tenth action, and now and then a push straight to the registry
   (a tag nobody confirmed, sometimes onto an image about to be deleted).
3. Faults off: the registry's tags are read directly and compared with the baseline: a tag that
   disappeared without being confirmed by an action is an **unconfirmed deletion**; a tag that
   now serves another digest than it had is an **unconfirmed change**. Then one fault-free sync,
   and every database row is compared with the registry: **wrong rows**.

Both results must be 0. The run is bounded (time and action count) and stops by itself.

    .venv/bin/python bench/soak.py [--duration 180] [--rate 0.05] [--seed 1]
        [--repositories 12] [--tags 12] [--database-url postgres://…/NAME] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
sys.path.insert(0, str(BASE_DIR / "bench"))

from sync import Postgres, machine  # noqa: E402 (the sibling benchmark's helpers)

ACTIONS = ("delete_tag", "delete_image", "bulk_delete", "retag", "retention", "push")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of actions")
    parser.add_argument("--max-actions", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=0.05, help="share of faulty requests")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repositories", "-n", type=int, default=12)
    parser.add_argument("--tags", "-m", type=int, default=12)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", ""),
        help="postgres://USER@HOST:PORT/NAME: a database to create for the run (default SQLite)",
    )
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="registryui-soak-"))
    try:
        return run(args, workdir)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def registry_truth(client, repositories: list[str]) -> dict[tuple[str, str], str]:
    """Every (repository, tag) → digest, read from the registry itself (no faults)."""
    from registryui.registry import RegistryError

    truth = {}
    for name in repositories:
        try:
            tags = client.list_tags(name)
        except RegistryError as exc:
            if exc.not_found:
                continue
            raise
        for tag in tags:
            try:
                truth[(name, tag)] = client.head_manifest(name, tag).digest
            except RegistryError as exc:
                if not exc.not_found:
                    raise
    return truth


def run(args: argparse.Namespace, workdir: Path) -> int:
    from registryui.devtools.faultrules import MixedFaults
    from registryui.devtools.faults import FaultProxy
    from registryui.devtools.registry import RegistryProcess

    registry = RegistryProcess(workdir / "registry").start()
    proxy = FaultProxy(registry.url).start()
    faults = MixedFaults(proxy, rate=0.0, seed=args.seed)
    proxy.route(faults)
    postgres = Postgres(args.database_url) if args.database_url else None
    os.environ["DJANGO_SETTINGS_MODULE"] = "registryui.settings"
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{workdir / 'soak.sqlite3'}"
    os.environ["REGISTRY_URL"] = proxy.url
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    os.environ.setdefault("LOG_FORMAT", "plain")
    os.environ.setdefault("SECRET_KEY", "bench-" + secrets.token_urlsafe(32))
    try:
        import django

        django.setup()
        if postgres:
            postgres.create()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        return soak(args, registry, proxy, faults, bool(postgres))
    finally:
        proxy.stop()
        registry.stop()
        if postgres:
            postgres.drop()


def soak(args, registry, proxy, faults, on_postgres: bool) -> int:
    from django.conf import settings
    from django.utils import timezone

    from registryui.catalog.models import Manifest, Repository, Tag
    from registryui.catalog.upstream import get_client
    from registryui.cleanup import retention
    from registryui.cleanup.actions import Actor, delete_tags
    from registryui.cleanup.models import RetentionPolicy
    from registryui.cleanup.retag import retag
    from registryui.devtools.seed import Seeder
    from registryui.registry import RegistryClient, RegistryError
    from registryui.sync.syncer import Syncer

    rng = random.Random(args.seed)
    direct = RegistryClient(registry.url, retries=0)
    seeder = Seeder(direct)
    names = [f"soak/app-{i:02d}" for i in range(args.repositories)]
    started = time.monotonic()
    for name in names:
        for t in range(args.tags):
            # Images shared by 1-3 tags: deleting one tag must keep its siblings.
            seeder.put(name, f"t{t:02d}", note=f"{name} image {t // rng.choice((1, 2, 3))}")
    seed_seconds = time.monotonic() - started
    initial = Syncer(get_client(), concurrency=settings.SYNC_CONCURRENCY, trigger="bench").run()
    assert initial.ok, initial.error
    now = timezone.now()
    for tag in Tag.objects.all():
        tag.first_seen = now - timedelta(days=rng.uniform(0, 20))
        tag.save(update_fields=["first_seen"])

    baseline = registry_truth(direct, names)
    tags_at_start = len(baseline)
    confirmed: set[tuple[str, str]] = set()
    actor = Actor(name="soak", via="bench")
    results: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    syncs: list[str] = []
    faults.rate = args.rate
    print(
        f"registry {registry.url} behind {proxy.url}; {len(baseline)} tags in {len(names)} "
        f"repositories (seeded in {seed_seconds:.1f}s); faults {args.rate:.0%} (seed "
        f"{args.seed}); {'PostgreSQL' if on_postgres else 'SQLite'}; retries "
        f"{settings.REGISTRY_RETRIES}"
    )

    def resync() -> None:
        run = Syncer(get_client(), concurrency=settings.SYNC_CONCURRENCY, trigger="bench").run()
        syncs.append("ok" if run.ok else "failed")

    def random_tag():
        return Tag.objects.select_related("repository", "manifest").order_by("?").first()

    def act(kind: str) -> None:
        if kind == "push":
            # Tags nobody confirmed, mostly onto images that already have tags (siblings an
            # action must keep), keeping each repository at about its starting size.
            name = min(names, key=lambda n: Tag.objects.filter(repository__name=n).count())
            for _ in range(rng.randint(2, 4)):
                counts["pushed tags"] += 1
                tag = f"pushed-{counts['pushed tags']:04d}"
                note = f"{name} image {rng.randint(0, args.tags // 2)}"
                baseline[(name, tag)] = seeder.put(name, tag, note=note)
            results["push:done"] += 1
            return
        if kind == "retention":
            repository = Repository.objects.filter(name__in=names).order_by("?").first()
            policy, _ = RetentionPolicy.objects.update_or_create(
                name="soak",
                defaults={
                    "repository_pattern": repository.name,
                    "keep_last": 2,
                    "older_than_days": 7,
                    "enabled": True,
                },
            )
            planned = retention.preview(policy, [repository])
            for item in planned.repositories:
                confirmed.update((item.repository.name, t) for t in item.expected)
            result = retention.apply(policy, planned, actor)
            results[f"retention:{'failed' if result.failures else 'ok'}"] += 1
            return
        tag = random_tag()
        if tag is None:
            return
        repository = tag.repository
        if kind == "retag":
            new_tag = f"retag-{counts['retag']:04d}"
            outcome = retag(repository, tag.manifest, new_tag, actor, source=str(tag))
            results[f"retag:{outcome.status}"] += 1
            digest = ""
            try:
                digest = direct.head_manifest(repository.name, new_tag).digest
            except RegistryError:
                pass
            if digest:
                baseline[(repository.name, new_tag)] = digest
            return
        if kind == "delete_tag":
            expected, mode = {tag.name: tag.manifest.digest}, "tags"
        elif kind == "delete_image":
            expected = dict(
                repository.tags.filter(manifest=tag.manifest).values_list(
                    "name", "manifest__digest"
                )
            )
            mode = "image"
        else:
            rows = list(
                repository.tags.order_by("?").values_list("name", "manifest__digest")[
                    : rng.randint(2, 4)
                ]
            )
            expected, mode = dict(rows), "tags"
        confirmed.update((repository.name, t) for t in expected)
        execution = delete_tags(repository, expected, actor, mode=mode)
        for outcome in execution.outcomes:
            results[f"{kind}:{outcome.result}"] += 1
        if execution.error:
            results[f"{kind}:stopped"] += 1

    resync()
    deadline = time.monotonic() + args.duration
    actions = 0
    weights = (4, 2, 2, 2, 1, 4)
    while time.monotonic() < deadline and actions < args.max_actions:
        kind = rng.choices(ACTIONS, weights=weights)[0]
        counts[kind] += 1
        actions += 1
        try:
            act(kind)
        except RegistryError as exc:
            # Only the bench's own direct pushes can raise here; the actions report instead.
            results[f"{kind}:raised {exc.code}"] += 1
        if actions % 10 == 0:
            resync()
    stream_seconds = time.monotonic() - (deadline - args.duration)
    faults.rate = 0.0
    proxy.clear()

    truth = registry_truth(direct, names)
    unconfirmed_deletions = sorted(
        f"{n}:{t}" for (n, t) in baseline if (n, t) not in truth and (n, t) not in confirmed
    )
    unconfirmed_changes = sorted(
        f"{n}:{t} {baseline[(n, t)][:19]} -> {d[:19]}"
        for (n, t), d in truth.items()
        if (n, t) in baseline and baseline[(n, t)] != d
    )
    unknown = sorted(f"{n}:{t}" for (n, t) in truth if (n, t) not in baseline)
    final = Syncer(get_client(), concurrency=settings.SYNC_CONCURRENCY, trigger="bench").run()
    rows = {
        (name, tag): digest
        for name, tag, digest in Tag.objects.values_list(
            "repository__name", "name", "manifest__digest"
        )
    }
    wrong_rows = sorted(
        f"{key[0]}:{key[1]} db={rows.get(key, '-')[:19]} registry={truth.get(key, '-')[:19]}"
        for key in set(rows) | set(truth)
        if rows.get(key) != truth.get(key)
    )
    summary = {
        "machine": machine(),
        "database": "PostgreSQL" if on_postgres else "SQLite",
        "duration_seconds": round(stream_seconds, 1),
        "fault_rate": args.rate,
        "seed": args.seed,
        "actions": actions,
        "actions_by_kind": dict(counts),
        "outcomes": dict(sorted(results.items())),
        "syncs_under_faults": dict(Counter(syncs)),
        "proxy_requests": faults.requests,
        "faults_injected": dict(faults.counts),
        "tags_at_start": tags_at_start,
        "tags_at_end": len(truth),
        "confirmed_tags": len(confirmed),
        "manifests_in_database": Manifest.objects.count(),
        "final_sync_ok": final.ok,
        "unconfirmed_deletions": len(unconfirmed_deletions),
        "unconfirmed_changes": len(unconfirmed_changes),
        "tags_nobody_pushed": len(unknown),
        "wrong_rows_after_sync": len(wrong_rows),
    }
    print(
        f"{actions} actions in {stream_seconds:.0f}s {dict(counts)}; {len(syncs)} re-syncs under "
        f"faults {dict(Counter(syncs))}; {faults.requests} registry requests, faults injected "
        f"{dict(faults.counts)}"
    )
    print(f"outcomes: {dict(sorted(results.items()))}")
    print(
        f"tags: {summary['tags_at_start']} at start, {counts['pushed tags']} pushed meanwhile, "
        f"{len(confirmed)} confirmed for deletion, {len(truth)} at the end"
    )
    for label, items in (
        ("unconfirmed deletions", unconfirmed_deletions),
        ("unconfirmed changes", unconfirmed_changes),
        ("tags nobody pushed", unknown),
        ("wrong rows after one fault-free sync", wrong_rows),
    ):
        print(f"{label}: {len(items)}" + "".join(f"\n  {item}" for item in items[:20]))
    if args.json:
        print(json.dumps(summary, indent=2))
    bad = unconfirmed_deletions or unconfirmed_changes or unknown or wrong_rows
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
